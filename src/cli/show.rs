//! `list`, `jlist` and `describe`, and what `send` and per-app `set` did.

use super::args::ListFormat;
use super::table::Table;
use super::{outln, Ctx};
use crate::error::{Error, Result};
use crate::protocol::Request;
use crate::spec::looks_secret;
use crate::spec::units::{format_bytes, format_uptime};
use crate::spec::watch::DEFAULT_WATCH_DELAY_MS;
use crate::supervisor::state::short_size;
use crate::supervisor::{Description, InstanceInfo, Status};

pub(super) fn list(ctx: &Ctx<'_>) -> Result<()> {
    let rows: Vec<InstanceInfo> = match ctx.existing_daemon()? {
        Some(mut c) => c.request_as(Request::List)?,
        None => Vec::new(),
    };
    print_table(ctx, &rows);
    Ok(())
}

pub(super) fn print_table(ctx: &Ctx<'_>, rows: &[InstanceInfo]) {
    let s = &ctx.style;
    if rows.is_empty() {
        outln("[pmr] no apps; start one with: pmr start app.js --name api");
        return;
    }
    let mut t = Table::new(&[
        "id", "name", "mode", "pid", "status", "restarts", "uptime", "cpu", "memory",
    ]);
    for r in rows {
        let running = r.pid.is_some();
        t.row(vec![
            r.id.to_string(),
            s.bold(&s.cyan(&r.name)),
            r.mode.as_str().to_string(),
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            s.status(r.status),
            r.restarts.to_string(),
            if running {
                format_uptime(r.uptime_ms)
            } else {
                "-".into()
            },
            if running {
                format!("{:.0}%", r.cpu)
            } else {
                "-".into()
            },
            if running {
                format_bytes(r.memory)
            } else {
                "-".into()
            },
        ]);
    }
    super::out(&t.render());
    for r in rows.iter().filter(|r| r.status == Status::Errored) {
        if let Some(why) = &r.errored_reason {
            outln(&format!("[pmr] {} (id {}) is errored: {why}", r.name, r.id));
        }
    }
}

/// The list's shape: `--format`, else `PMR_FORMAT`, else pmr's.
fn list_format(flag: Option<ListFormat>) -> Result<ListFormat> {
    if let Some(f) = flag {
        return Ok(f);
    }
    match std::env::var("PMR_FORMAT").ok().as_deref().map(str::trim) {
        None | Some("") | Some("pmr") => Ok(ListFormat::Pmr),
        Some("pm2") => Ok(ListFormat::Pm2),
        Some(other) => Err(Error::Config(format!(
            "PMR_FORMAT={other} is not a list format: use pm2 (PM2's shape) or pmr"
        ))),
    }
}

/// `jlist`, and `prettylist` (`pretty`): the same JSON, indented. In
/// PM2's shape (`--format pm2`), every instance's description is mapped by
/// `model::pm2`, since PM2's shape carries the app's options too; in id
/// order, as PM2 lists them.
pub(super) fn jlist(ctx: &Ctx<'_>, pretty: bool, format: Option<ListFormat>) -> Result<()> {
    let format = list_format(format)?;
    let text = match (format, ctx.existing_daemon()?) {
        (_, None) => json_text(&Vec::<InstanceInfo>::new(), pretty),
        (ListFormat::Pmr, Some(mut c)) => {
            json_text(&c.request_as::<Vec<InstanceInfo>>(Request::List)?, pretty)
        }
        (ListFormat::Pm2, Some(mut c)) => {
            // One request: a list, then a describe of its ids, would fail
            // on an app deleted in between.
            let descs: Vec<Description> = match c.request_as(Request::Describe {
                target: vec!["all".into()],
            }) {
                Err(Error::NotFound(_)) => Vec::new(),
                other => other?,
            };
            let mut procs = crate::model::pm2::processes(&descs);
            procs.sort_by_key(|p| p.pm_id);
            json_text(&procs, pretty)
        }
    }?;
    outln(&text);
    Ok(())
}

fn json_text<T: serde::Serialize>(value: &T, pretty: bool) -> Result<String> {
    if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| Error::Protocol(format!("cannot print the list: {e}")))
}

/// `pmr pid [name]`: the pids of running instances, one per line; with no
/// daemon there are none.
pub(super) fn pids(ctx: &Ctx<'_>, target: Option<String>) -> Result<()> {
    let rows: Vec<InstanceInfo> = match (target, ctx.existing_daemon()?) {
        (None, None) => Vec::new(),
        (None, Some(mut c)) => c.request_as(Request::List)?,
        (Some(t), c) => {
            let mut c = match c {
                Some(c) => c,
                None => ctx.running_daemon()?,
            };
            let descs: Vec<Description> = c.request_as(Request::Describe { target: vec![t] })?;
            descs.into_iter().map(|d| d.info).collect()
        }
    };
    for pid in rows.iter().filter_map(|r| r.pid) {
        if !outln(&pid.to_string()) {
            break;
        }
    }
    Ok(())
}

fn time_of(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub(super) fn describe(ctx: &Ctx<'_>, targets: Vec<String>) -> Result<()> {
    let s = &ctx.style;
    let descs: Vec<Description> = ctx
        .running_daemon()?
        .request_as(Request::Describe { target: targets })?;
    for d in descs {
        let i = &d.info;
        let sp = &d.spec;
        let mut t = Table::new(&["", ""]);
        let mut kv = |k: &str, v: String| t.row(vec![s.bold(k), v]);
        kv("status", s.status(i.status));
        kv("name", i.name.clone());
        kv("namespace", i.namespace.clone());
        kv("id / instance", format!("{} / {}", i.id, i.instance));
        kv(
            "pid",
            i.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        );
        kv(
            "mode",
            format!(
                "{} ({} instance{})",
                i.mode.as_str(),
                sp.instances,
                if sp.instances == 1 { "" } else { "s" }
            ),
        );
        kv("script", sp.script.display().to_string());
        if !sp.args.is_empty() {
            kv("args", shell_words::join(&sp.args));
        }
        kv(
            "interpreter",
            sp.interpreter
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none (executed directly)".into()),
        );
        if !sp.interpreter_args.is_empty() {
            kv("interpreter args", shell_words::join(&sp.interpreter_args));
        }
        kv("cwd", sp.cwd.display().to_string());
        let r = &i.restart_reasons;
        kv(
            "restarts",
            format!(
                "{} (crash {}, memory {}, watch {}, cron {}, user {})",
                i.restarts, r.crash, r.memory, r.watch, r.cron, r.user
            ),
        );
        kv(
            "unstable restarts",
            format!("{} of max {}", i.unstable_restarts, sp.max_restarts),
        );
        if i.pid.is_some() {
            kv("uptime", format_uptime(i.uptime_ms));
            let tree = match i.processes {
                0 | 1 => String::new(),
                n => format!(" ({n} processes)"),
            };
            kv("cpu", format!("{:.1}%{tree}", i.cpu));
            kv("memory", format!("{}{tree}", format_bytes(i.memory)));
            if let Some(n) = &i.node {
                kv(
                    "heap",
                    format!(
                        "{} used of {}",
                        format_bytes(n.heap_used),
                        format_bytes(n.heap_total)
                    ),
                );
                kv("event loop lag", format!("{:.1} ms", n.event_loop_lag_ms));
                kv("active handles", n.active_handles.to_string());
            }
        }
        if let Some(e) = &i.memory_exceeded {
            kv(
                "memory limit",
                s.yellow(&format!("{} at {}", e.describe(), time_of(e.at))),
            );
        }
        if let Some(at) = i.started_at {
            kv("started at", time_of(at));
        }
        kv("created at", time_of(i.created_at));
        if let Some(e) = &i.last_exit {
            kv(
                "last exit",
                format!(
                    "{} at {} after {} ms{}",
                    e.describe(),
                    time_of(e.at),
                    e.uptime_ms,
                    if e.expected {
                        " (asked by pmr)"
                    } else {
                        " (crash)"
                    }
                ),
            );
        }
        if let Some(why) = &i.errored_reason {
            kv("errored because", s.red(why));
        }
        if let Some(err) = &i.last_error {
            kv("last error", s.red(err));
        }
        if !i.listening.is_empty() {
            kv("listening", i.listening.join(", "));
        }
        if !d.sockets.is_empty() {
            kv("sockets held by pmr", d.sockets.join(", "));
        }
        if i.mode == crate::spec::ExecMode::Cluster {
            let by = match d.spec.lb {
                _ if d.kernel_steered => ", by the kernel (a socket per worker)",
                crate::spec::LoadBalance::Shared => "",
                _ => ", by pmr",
            };
            kv("balancing", format!("{}{by}", d.spec.lb));
        }
        if let Some(c) = &i.connections {
            kv(
                "connections",
                format!("{} open, {} accepted", c.open, c.accepted),
            );
        }
        kv("out log", i.logs.out.display().to_string());
        kv("error log", i.logs.err.display().to_string());
        if let Some(scope) = &i.kill_scope {
            kv("kill scope", scope.clone());
        }
        if let Some(c) = &i.logs.combined {
            kv("combined log", c.display().to_string());
        }
        if i.log_dropped_bytes > 0 {
            kv("log bytes dropped", s.red(&i.log_dropped_bytes.to_string()));
        }
        kv(
            "restart policy",
            format!(
                "autorestart {}, min_uptime {} ms, max_restarts {}, restart_delay {} ms{}{}",
                sp.autorestart,
                sp.min_uptime_ms,
                sp.max_restarts,
                sp.restart_delay_ms,
                sp.exp_backoff_restart_delay_ms
                    .map(|d| format!(", exp_backoff_restart_delay {d} ms"))
                    .unwrap_or_default(),
                if sp.stop_exit_codes.is_empty() {
                    String::new()
                } else {
                    format!(", stop_exit_codes {:?}", sp.stop_exit_codes)
                }
            ),
        );
        kv(
            "stopping",
            format!(
                "{} then SIGKILL after kill_timeout {} ms",
                if sp.shutdown_with_message {
                    "'shutdown' message".to_string()
                } else {
                    sp.kill_signal.to_string()
                },
                sp.kill_timeout_ms
            ),
        );
        kv(
            "readiness",
            format!(
                "{}, listen_timeout {} ms",
                if sp.wait_ready {
                    "process.send('ready')"
                } else {
                    "listening"
                },
                sp.listen_timeout_ms
            ),
        );
        if let Some(m) = sp.max_memory_restart {
            kv(
                "max memory",
                format!(
                    "{} for the whole process tree (replaced after 2 samples over it)",
                    short_size(m)
                ),
            );
        }
        kv(
            "instance variable",
            match &sp.increment_var {
                Some(v) => format!("{}, {v} incremented per instance", sp.instance_var),
                None => sp.instance_var.clone(),
            },
        );
        if !sp.watch.is_empty() {
            let paths: Vec<String> = sp.watch.iter().map(|p| p.display().to_string()).collect();
            let mut w = paths.join(", ");
            if !sp.ignore_watch.is_empty() {
                w.push_str(&format!(", ignoring {}", sp.ignore_watch.join(", ")));
            }
            w.push_str(&format!(
                ", delay {} ms",
                sp.watch_delay_ms.unwrap_or(DEFAULT_WATCH_DELAY_MS)
            ));
            let state = if i.watching {
                "watching".to_string()
            } else if let Some(e) = &d.watch_error {
                s.red(&format!("not watching: {e}"))
            } else if i.status == Status::Stopped {
                "not watching while stopped".to_string()
            } else {
                format!(
                    "not watching (pmr stop --watch; pmr restart {} watches again)",
                    i.name
                )
            };
            kv("watch", format!("{w}: {state}"));
        }
        if let Some(c) = &sp.cron_restart {
            let next = match i.next_cron_restart {
                Some(at) => format!("next at {}", time_of(at)),
                None if i.status == Status::Stopped => "not while stopped".into(),
                None => "no next run".into(),
            };
            kv("cron restart", format!("{c}: {next}"));
        }
        if let Some(hc) = &sp.health_check {
            kv(
                "health check",
                format!(
                    "{} every {} ms, timeout {} ms, unhealthy after {} failures",
                    hc.probe.describe(),
                    hc.interval_ms,
                    hc.timeout_ms,
                    hc.failures
                ),
            );
        }
        if let Some(h) = &i.health {
            let last = match (&h.last_result, h.last_check_at) {
                (Some(r), Some(at)) => format!(", last check {}: {r}", time_of(at)),
                _ => String::new(),
            };
            let status = match h.status {
                crate::model::HealthStatus::Healthy => s.green("healthy"),
                crate::model::HealthStatus::Unhealthy => s.red("unhealthy"),
                crate::model::HealthStatus::Starting => s.yellow("starting"),
            };
            kv(
                "health",
                format!(
                    "{status} ({} failed in a row{last})",
                    h.consecutive_failures
                ),
            );
        }
        if let Some(l) = sp.max_event_loop_lag_ms {
            kv("max event loop lag", format!("{l} ms"));
        }
        if sp.uid.is_some() || sp.gid.is_some() {
            // The child drops to these before exec; without gid it takes
            // the user's primary group, as login would.
            kv(
                "user / group",
                format!(
                    "{} / {}",
                    sp.uid.as_deref().unwrap_or("-"),
                    sp.gid.as_deref().unwrap_or("the user's primary group")
                ),
            );
        }
        if let Some(t) = &sp.logs.log_type {
            kv("log type", format!("{t} (one JSON object per line)"));
        }
        let mut env: Vec<String> = sp
            .app_env
            .iter()
            .map(|(k, v)| format!("{k}={}", if looks_secret(k) { "****" } else { v }))
            .collect();
        env.push(format!(
            "(+{} variables inherited from the shell that started it)",
            sp.env.len().saturating_sub(sp.app_env.len())
        ));
        kv("env", env.join("\n"));
        outln(&format!(
            "{} {} (id {})",
            s.bold("Describing"),
            s.cyan(&i.name),
            i.id
        ));
        super::out(&t.render());
        if !d.history.is_empty() {
            outln(&s.bold("Recent events"));
            for e in &d.history {
                outln(&format!("  {}  {}", time_of(e.time), e.describe()));
            }
        }
        outln("");
    }
    Ok(())
}

/// What `pmr send` did: one line per instance that got the line.
pub(super) fn sent_line(report: &crate::supervisor::Report) {
    for i in &report.instances {
        super::info(&format!(
            "sent the line to the stdin of {} (id {}, pid {})",
            i.name,
            i.id,
            i.pid.map_or_else(|| "-".into(), |p| p.to_string())
        ));
    }
}

/// What `pmr unset <app>.<KEY>` did.
pub(super) fn unset_app(r: &crate::protocol::SettingChanged) -> Result<()> {
    super::info(&format!("{} is unset", r.key));
    if let Some(note) = &r.note {
        super::info(note);
    }
    Ok(())
}
