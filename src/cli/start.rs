//! `pmr start`: from flags to a resolved app, sent to the daemon.

use std::path::Path;
use std::time::{Duration, Instant};

use super::args::StartArgs;
use super::{caller_env, ecosystem, info, show, Ctx};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::logs::tail::last_lines;
use crate::model::RecentLines;
use crate::protocol::Request;
use crate::spec::cron::check_cron;
use crate::spec::ecosystem::is_config_file;
use crate::spec::units::{parse_duration_ms, parse_size};
use crate::spec::{host_cpus, AppConfig, AppSpec, Instances, LogFile, ResolveContext, Watch};
use crate::supervisor::{Description, InstanceInfo, Report, Status};

fn duration(flag: &str, v: &Option<String>) -> Result<Option<u64>> {
    v.as_deref()
        .map(|s| parse_duration_ms(s).map_err(|e| Error::Config(format!("--{flag}: {e}"))))
        .transpose()
}

pub(super) fn config_from_flags(a: &StartArgs) -> Result<AppConfig> {
    let node_args = a
        .node_args
        .as_deref()
        .map(|s| shell_words::split(s).map_err(|e| Error::Config(format!("--node-args: {e}"))))
        .transpose()?;
    Ok(AppConfig {
        name: a.name.clone(),
        script: a.script.clone(),
        args: (!a.args.is_empty()).then(|| a.args.clone()),
        interpreter: a.interpreter.clone(),
        interpreter_args: node_args,
        cwd: a.cwd.clone(),
        instances: a
            .instances
            .as_deref()
            .map(|s| Instances::parse(s).map_err(|e| Error::Config(format!("-i: {e}"))))
            .transpose()?,
        max_memory_restart: a
            .max_memory_restart
            .as_deref()
            .map(|s| parse_size(s).map_err(|e| Error::Config(format!("--max-memory-restart: {e}"))))
            .transpose()?,
        max_restarts: a.max_restarts,
        min_uptime: duration("min-uptime", &a.min_uptime)?,
        restart_delay: duration("restart-delay", &a.restart_delay)?,
        exp_backoff_restart_delay: duration(
            "exp-backoff-restart-delay",
            &a.exp_backoff_restart_delay,
        )?,
        autorestart: a.no_autorestart.then_some(false),
        stop_exit_codes: (!a.stop_exit_codes.is_empty()).then(|| a.stop_exit_codes.clone()),
        kill_timeout: duration("kill-timeout", &a.kill_timeout)?,
        kill_signal: a.kill_signal.clone(),
        listen_timeout: duration("listen-timeout", &a.listen_timeout)?,
        wait_ready: a.wait_ready.then_some(true),
        shutdown_with_message: a.shutdown_with_message.then_some(true),
        out_file: a.out_file.clone(),
        error_file: a.error_file.clone(),
        log_file: a.log_file.clone().map(LogFile::Path),
        merge_logs: a.merge_logs.then_some(true),
        time: (a.time || a.log_date_format.is_some()).then_some(true),
        log_date_format: a.log_date_format.clone(),
        log_type: a
            .log_type
            .as_deref()
            .map(|t| match t {
                "json" => Ok(t.to_string()),
                _ => Err(Error::Config(format!(
                    "--log-type: '{t}' is not a log type, the only one is json"
                ))),
            })
            .transpose()?,
        disable_logs: a.disable_logs.then_some(true),
        instance_var: a.instance_var.clone(),
        increment_var: a.increment_var.clone(),
        namespace: a.namespace.clone(),
        watch: a.watch.as_ref().map(|w| match w {
            None => Watch::Enabled(true),
            Some(paths) => Watch::Paths(
                paths
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        }),
        ignore_watch: (!a.ignore_watch.is_empty()).then(|| a.ignore_watch.clone()),
        watch_delay: duration("watch-delay", &a.watch_delay)?,
        cron_restart: a
            .cron_restart
            .as_deref()
            .map(|c| {
                check_cron(c)
                    .map(|_| c.to_string())
                    .map_err(|e| Error::Config(format!("--cron-restart: {e}")))
            })
            .transpose()?,
        uid: a.uid.clone(),
        gid: a.gid.clone(),
        source_map_support: a.source_map_support.then_some(true),
        ..Default::default()
    })
}

/// `pmr start api`, `pmr start 3`, `pmr start all`, `pmr start /^api-/`:
/// something that is not a file but may name apps the daemon knows.
fn may_be_target(s: &str) -> bool {
    let regex = s.len() > 2 && s.starts_with('/') && s.ends_with('/');
    (regex || !s.contains('/')) && !Path::new(s).exists()
}

pub(super) fn run(ctx: &Ctx<'_>, a: StartArgs) -> Result<()> {
    let script = match a.script.clone() {
        Some(s) if !is_config_file(&s) => s,
        given => {
            let file = match given {
                Some(f) => f,
                None => ecosystem::default_file()?,
            };
            let mut flags = config_from_flags(&a)?;
            flags.script = None;
            if flags != AppConfig::default() || !a.args.is_empty() {
                return Err(Error::Config(format!(
                    "app options on the command line apply to a script; for the apps of {file}, set them in the file"
                )));
            }
            return ecosystem::start(ctx, &file, a.env.as_deref(), &a.only, !a.no_wait);
        }
    };
    ecosystem::refuse_file_options(a.env.as_deref(), &a.only)?;
    // Names of known apps win over commands in PATH, as in PM2.
    if may_be_target(&script) {
        if let Some(mut c) = ctx.existing_daemon()? {
            match c.request_as::<Report>(Request::StartExisting {
                target: vec![script.clone()],
            }) {
                Ok(report) => {
                    info(&format!("started {script}"));
                    summarize(&report);
                    let verdict = if a.no_wait {
                        Ok(())
                    } else {
                        let descs: Vec<Description> = c.request_as(Request::Describe {
                            target: vec![script.clone()],
                        })?;
                        let specs: Vec<AppSpec> = descs.into_iter().map(|d| d.spec).collect();
                        settle(&mut c, &report, &specs)?
                    };
                    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
                    return verdict;
                }
                Err(Error::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
    }
    let cfg = config_from_flags(&a)?;
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let env = caller_env();
    let node = ctx.host.node();
    let resolved = cfg.resolve(&ResolveContext {
        base_dir: &cwd,
        caller_env: &env,
        node: &node,
        cpus: host_cpus(),
        log_dir: &ctx.home.log_dir(),
    })?;
    for n in &resolved.notices {
        info(n);
    }
    announce(&resolved.spec);
    send_and_show(ctx, vec![resolved.spec], !a.no_wait)
}

pub(super) fn announce(spec: &AppSpec) {
    info(&format!(
        "starting {} as {} ({} mode, {} instance{})",
        spec.script.display(),
        spec.name,
        spec.exec_mode.as_str(),
        spec.instances,
        if spec.instances == 1 { "" } else { "s" }
    ));
}

/// Starts apps, then (with `wait`) sees them through their first moments,
/// and prints what the daemon reported and the process table.
pub(super) fn send_and_show(ctx: &Ctx<'_>, apps: Vec<AppSpec>, wait: bool) -> Result<()> {
    let mut c = ctx.daemon()?;
    let specs = if wait { apps.clone() } else { Vec::new() };
    let report: Report = c.request_as(Request::Start { apps })?;
    summarize(&report);
    let verdict = if wait {
        settle(&mut c, &report, &specs)?
    } else {
        Ok(())
    };
    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
    verdict
}

/// How often `settle` looks at the instances: short next to min_uptime
/// (1 s by default), and a `list` costs the daemon next to nothing.
const SETTLE_POLL: Duration = Duration::from_millis(20);
/// Beyond the longest time an instance may take to come online
/// (listen_timeout, after which the daemon calls it online anyway).
const SETTLE_SLACK_MS: u64 = 2000;

/// After a start: waits until the started instances are online, then
/// until each has run for its app's `min_uptime`. An instance that exited
/// meanwhile (PM2 would show it online, or restarting) makes the start
/// fail, naming the exit code and the instance's last log line; an app
/// that finished its work (stopped after exit code 0) does not. The outer
/// error is the connection's; the inner one is the verdict, returned
/// after the table is printed.
fn settle(c: &mut Client, report: &Report, specs: &[AppSpec]) -> Result<Result<()>> {
    let spec_of = |name: &str| specs.iter().find(|s| s.name == name);
    let watched: Vec<&InstanceInfo> = report
        .instances
        .iter()
        .filter(|i| i.pid.is_some() && spec_of(&i.name).is_some())
        .collect();
    let longest = watched
        .iter()
        .filter_map(|i| spec_of(&i.name))
        .map(|s| s.min_uptime_ms.max(s.listen_timeout_ms))
        .max()
        .unwrap_or(0);
    let give_up = Instant::now() + Duration::from_millis(longest + SETTLE_SLACK_MS);
    while !watched.is_empty() {
        let now = crate::clock::now_ms();
        let list: Vec<InstanceInfo> = c.request_as(Request::List)?;
        let mut settled = true;
        for first in &watched {
            let Some(i) = list.iter().find(|i| i.id == first.id) else {
                continue; // deleted meanwhile: not this start's business
            };
            let Some(spec) = spec_of(&i.name) else {
                continue;
            };
            let started = first.started_at.unwrap_or(now);
            let young = now < started + spec.min_uptime_ms;
            let exited = i.pid != first.pid || i.restarts != first.restarts;
            // pmr's own replacements (cron, watch, memory) are not crashes.
            let early = i
                .last_exit
                .as_ref()
                .is_some_and(|e| !e.expected && e.at < started + spec.min_uptime_ms);
            // An exit code the app declares as "done" is not a failure.
            let finished = i.status == Status::Stopped
                && i.last_exit.as_ref().is_some_and(|e| {
                    e.code
                        .is_some_and(|c| c == 0 || spec.stop_exit_codes.contains(&c))
                });
            if exited && early && !finished {
                return Ok(Err(early_exit(c, i, spec)?));
            }
            if young || i.status == Status::Launching {
                settled = false;
            }
        }
        if settled || Instant::now() >= give_up {
            break;
        }
        std::thread::sleep(SETTLE_POLL);
    }
    Ok(Ok(()))
}

/// The error for an instance that exited within min_uptime of its start.
fn early_exit(c: &mut Client, i: &InstanceInfo, spec: &AppSpec) -> Result<Error> {
    let how = i
        .last_exit
        .as_ref()
        .map(|e| match (&e.signal, e.code) {
            (Some(s), _) => format!("was killed by {s}"),
            (None, Some(code)) => format!("exited with code {code}"),
            (None, None) => "exited".into(),
        })
        .unwrap_or_else(|| "exited".into());
    let recent: RecentLines = c.request_as(Request::RecentLogs {
        ids: vec![i.id],
        lines: 1,
        out: true,
        err: true,
    })?;
    let last = match recent.lines.last() {
        Some(l) => Some(l.line.clone()),
        // Its past is only in its files: the error file says more.
        None => [&i.logs.err, &i.logs.out]
            .into_iter()
            .find_map(|p| last_lines(p, 1).ok().and_then(|mut v| v.pop())),
    };
    let last = match last {
        Some(l) => format!("; its last log line: {l}"),
        None => "; it wrote nothing".into(),
    };
    Ok(Error::Spawn(format!(
        "{} (id {}) {how} within min_uptime ({} ms) of its start{last} (pmr logs {} for more; --no-wait to not wait)",
        i.name, i.id, spec.min_uptime_ms, i.name
    )))
}

/// What the daemon had to say about an operation, and the errors of the
/// instances it touched.
pub(super) fn summarize(report: &Report) {
    for n in &report.notices {
        info(n);
    }
    for i in &report.instances {
        if let Some(e) = &i.last_error {
            info(&format!("{} (id {}): {e}", i.name, i.id));
        }
    }
}
