//! `pmr start`: from flags to a resolved app, sent to the daemon.

use std::path::{Path, PathBuf};

use super::args::{AppOptions, StartArgs};
use super::report::{self, announce, start_and_show, summarize};
use super::settle::settle;
use super::{caller_env, ecosystem, info, show, Ctx};
use crate::error::{Error, Result};
use crate::protocol::Request;
use crate::spec::cron::check_cron;
use crate::spec::ecosystem::is_config_file;
use crate::spec::units::{parse_duration_ms, parse_size};
use crate::spec::{
    host_cpus, AppConfig, AppSpec, ExecMode, Instances, LogFile, ResolveContext, Watch,
};
use crate::supervisor::{Description, InstanceInfo, Report};

fn duration(flag: &str, v: &Option<String>) -> Result<Option<u64>> {
    v.as_deref()
        .map(|s| parse_duration_ms(s).map_err(|e| Error::Config(format!("--{flag}: {e}"))))
        .transpose()
}

pub(super) fn config_from_flags(a: &StartArgs, script: Option<&str>) -> Result<AppConfig> {
    let node_args = a
        .node_args
        .as_deref()
        .map(|s| shell_words::split(s).map_err(|e| Error::Config(format!("--node-args: {e}"))))
        .transpose()?;
    Ok(AppConfig {
        name: a.name.clone(),
        script: script.map(str::to_string),
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
            .map(|t| match t.parse::<crate::spec::LogType>() {
                Ok(_) => Ok(t.to_string()),
                Err(_) => Err(Error::Config(format!(
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
        health_check: health_from_flags(a)?,
        max_event_loop_lag: a
            .max_event_loop_lag
            .as_deref()
            .map(|v| {
                crate::spec::health::max_lag(&serde_json::Value::String(v.into()))
                    .map_err(|e| Error::Config(format!("--max-event-loop-lag: {e}")))
            })
            .transpose()?,
        source_map_support: if a.disable_source_map_support {
            Some(false)
        } else {
            a.source_map_support.then_some(true)
        },
        exec_mode: a.execute_command.then_some(ExecMode::Fork),
        pid_file: a.pid_file.clone(),
        force: a.force.then_some(true),
        lb: a
            .lb
            .as_deref()
            .map(|p| {
                p.parse::<crate::spec::LoadBalance>()
                    .map(|_| p.to_string())
                    .map_err(|e| Error::Config(format!("--lb: {e}")))
            })
            .transpose()?,
        ..Default::default()
    })
}

/// The `--health-*` flags as one checked health check; an error names the flag.
fn health_from_flags(a: &StartArgs) -> Result<Option<crate::spec::health::HealthCheck>> {
    use serde_json::Value;
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let raw = crate::spec::health::RawHealth {
        http: a.health_http.clone(),
        tcp: text(&a.health_tcp),
        command: a.health_cmd.clone(),
        interval: text(&a.health_interval),
        timeout: text(&a.health_timeout),
        failures: text(&a.health_failures),
        start_period: text(&a.health_start_period),
    };
    if raw.is_empty() {
        return Ok(None);
    }
    raw.resolve().map(Some).map_err(|e| {
        let flag = match e.key.as_str() {
            "" => "--health-http/--health-tcp/--health-cmd".to_string(),
            "command" => "--health-cmd".to_string(),
            k => format!("--health-{}", k.replace('_', "-")),
        };
        Error::Config(format!("{flag}: {}", e.message))
    })
}

/// `pmr start api`, `pmr start 3`, `pmr start all`, `pmr start /^api-/`:
/// something that is not a file but may name apps the daemon knows.
fn may_be_target(s: &str) -> bool {
    let regex = s.len() > 2 && s.starts_with('/') && s.ends_with('/');
    (regex || !s.contains('/')) && !Path::new(s).exists()
}

pub(super) fn run(ctx: &Ctx<'_>, a: StartArgs) -> Result<()> {
    let files: Vec<&String> = a
        .scripts
        .iter()
        .filter(|s| *s == "-" || is_config_file(s))
        .collect();
    if a.scripts.is_empty() || !files.is_empty() {
        if a.scripts.len() > 1 {
            return Err(Error::Config(format!(
                "give {} alone; to pick some of its apps use --only, e.g. --only api,worker",
                files[0]
            )));
        }
        let file = match a.scripts.first() {
            Some(f) => f.clone(),
            None => ecosystem::default_file()?,
        };
        let flags = config_from_flags(&a, None)?;
        if flags.name.is_some() {
            return Err(Error::Config(format!(
                "--name names one app; the apps of {file} take their names from the file (pick one with --only)"
            )));
        }
        return ecosystem::start(ctx, &file, a.env.as_deref(), &a.only, !a.no_wait, &flags);
    }
    ecosystem::refuse_file_options(a.env.as_deref(), &a.only)?;
    if a.scripts.len() > 1 && a.name.is_some() {
        return Err(Error::Config(format!(
            "--name names one app, and {} scripts were given; start them one at a time to name each",
            a.scripts.len()
        )));
    }
    let mut specs = Vec::new();
    for script in &a.scripts {
        // Names of known apps win over commands in PATH, as in PM2.
        if may_be_target(script) && start_existing(ctx, &a, script)? {
            continue;
        }
        specs.push(resolve_script(ctx, &a, script)?);
    }
    if specs.is_empty() {
        return Ok(());
    }
    let specs = smart_start(ctx, &a, specs)?;
    if specs.is_empty() {
        return Ok(());
    }
    specs.iter().for_each(announce);
    start_and_show(ctx, specs, !a.no_wait)
}

/// `pmr start <name|id>`: starts the stopped instances of known apps and
/// restarts the running ones (as PM2 does). False when no app matches.
fn start_existing(ctx: &Ctx<'_>, a: &StartArgs, target: &str) -> Result<bool> {
    let Some(mut c) = ctx.existing_daemon()? else {
        return Ok(false);
    };
    let opts = AppOptions {
        node_args: a.node_args.clone(),
        instances: a.instances.clone(),
        watch: a.watch.is_some(),
        name: None,
    };
    if opts.any() {
        // `pmr start api -i 4`: the options are applied as restart applies them.
        let apps = match ecosystem::with_options(ctx, &[target.to_string()], &opts) {
            Ok(apps) => apps,
            Err(Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let names: Vec<String> = apps.iter().map(|s| s.name.clone()).collect();
        let req = Request::RestartApps {
            apps,
            update_env: false,
        };
        report::reapply_and_show(ctx, req, &names, "restarted")?;
        return Ok(true);
    }
    let report = match c.request_as::<Report>(Request::StartExisting {
        target: vec![target.to_string()],
    }) {
        Ok(report) => report,
        Err(Error::NotFound(_)) => return Ok(false),
        Err(other) => return Err(other),
    };
    info(&format!("started {target}"));
    summarize(&report);
    let verdict = if let Err(e) = report::verdict(&report) {
        Err(e)
    } else if a.no_wait {
        Ok(())
    } else {
        let descs: Vec<Description> = c.request_as(Request::Describe {
            target: vec![target.to_string()],
        })?;
        let specs: Vec<AppSpec> = descs.into_iter().map(|d| d.spec).collect();
        settle(&mut c, &report, &specs)?
    };
    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
    verdict.map(|()| true)
}

fn resolve_script(ctx: &Ctx<'_>, a: &StartArgs, script: &str) -> Result<AppSpec> {
    let cfg = config_from_flags(a, Some(script))?;
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
    Ok(resolved.spec)
}

/// `pmr restart|reload <app> --name <new>`: the app, with the other
/// options given, under its new name. pmr keys an app's logs, ids and
/// history by its name, so the app is deleted and started again as `new`:
/// PM2 keeps the pm_id, pmr gives new ids, and says so.
pub(super) fn rename(ctx: &Ctx<'_>, apps: &mut [AppSpec], new: &str) -> Result<()> {
    let [spec] = apps else {
        return Err(Error::Config(format!(
            "--name {new} renames one app, and {} were named",
            apps.len()
        )));
    };
    crate::spec::validate_name(new)?;
    let mut c = ctx.running_daemon()?;
    let list: Vec<InstanceInfo> = c.request_as(Request::List)?;
    if list.iter().any(|i| i.name == new) {
        return Err(Error::AlreadyRunning(format!(
            "--name {new}: an app is already named {new}; pick another name, or pmr delete {new} first"
        )));
    }
    let old = std::mem::replace(&mut spec.name, new.to_string());
    c.request_as::<Report>(Request::Delete {
        target: vec![old.clone()],
    })?;
    info(&format!(
        "renamed {old} to {new}: pmr keys ids and logs by name, so {new} starts with new ids and its own log files"
    ));
    start_and_show(ctx, vec![spec.clone()], true)
}

/// The same file, whatever the spelling of its path.
fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

/// What `start` does with a new app whose name is taken by a running one.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Clash {
    /// Nothing runs under that name.
    Free,
    /// The same script runs under that name: PM2 restarts it.
    Restart,
    /// `--force`: a new app under this free name.
    Rename(String),
    /// Another script runs under that name (another directory's app.js).
    Refuse,
}

/// `--force`'s name for a copy of `name`: the first of name-2, name-3...
/// not taken.
pub(super) fn free_name(name: &str, taken: impl Fn(&str) -> bool) -> String {
    (2..)
        .map(|i| format!("{name}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| format!("{name}-new"))
}

/// The decision, from the running apps' names and scripts.
pub(super) fn clash(spec: &AppSpec, running: &[(String, PathBuf)], force: bool) -> Clash {
    let Some((_, script)) = running.iter().find(|(n, _)| *n == spec.name) else {
        return Clash::Free;
    };
    if force {
        return Clash::Rename(free_name(&spec.name, |n| {
            running.iter().any(|(r, _)| r == n)
        }));
    }
    if same_file(script, &spec.script) {
        Clash::Restart
    } else {
        Clash::Refuse
    }
}

/// PM2's "smart start": an app that already runs this script is restarted;
/// with `--force` a second copy starts under a free name; a name taken by
/// another script is refused with the commands that do what was meant.
/// Returns the apps still to start.
fn smart_start(ctx: &Ctx<'_>, a: &StartArgs, specs: Vec<AppSpec>) -> Result<Vec<AppSpec>> {
    let Some(mut c) = ctx.existing_daemon()? else {
        return Ok(specs);
    };
    let list: Vec<InstanceInfo> = c.request_as(Request::List)?;
    let active: Vec<String> = list
        .iter()
        .filter(|i| i.status.is_active())
        .map(|i| i.name.clone())
        .collect();
    if !specs.iter().any(|s| active.contains(&s.name)) {
        return Ok(specs);
    }
    let descs: Vec<Description> = c.request_as(Request::Describe {
        target: active.clone(),
    })?;
    let mut running: Vec<(String, PathBuf)> = Vec::new();
    let mut cwd_of = std::collections::BTreeMap::new();
    for d in descs {
        if !running.iter().any(|(n, _)| *n == d.spec.name) {
            cwd_of.insert(d.spec.name.clone(), d.spec.cwd.clone());
            running.push((d.spec.name.clone(), d.spec.script.clone()));
        }
    }
    let mut to_start = Vec::new();
    let mut restart = Vec::new();
    for mut spec in specs {
        match clash(&spec, &running, a.force) {
            Clash::Free => to_start.push(spec),
            Clash::Restart => {
                info(&format!(
                    "{} already runs {}: restarting it, as pm2 start does (pmr reload {} replaces it without downtime; -f starts a second copy)",
                    spec.name,
                    spec.script.display(),
                    spec.name
                ));
                restart.push(spec.name.clone());
            }
            Clash::Rename(free) => {
                info(&format!(
                    "--force: {} already runs, so this one is named {free} (pmr keeps names unique)",
                    spec.name
                ));
                running.push((free.clone(), spec.script.clone()));
                spec.name = free;
                to_start.push(spec);
            }
            Clash::Refuse => {
                let (_, other) = running
                    .iter()
                    .find(|(n, _)| *n == spec.name)
                    .cloned()
                    .unwrap_or_default();
                let cwd = cwd_of.get(&spec.name).cloned().unwrap_or_default();
                let arg = a.scripts.iter().find(|s| spec.script.ends_with(s.as_str()));
                let arg = arg.map_or_else(|| spec.script.display().to_string(), String::clone);
                return Err(Error::AlreadyRunning(format!(
                    "{name} is already running another script, {} (cwd {}); to run {} too: pmr start {arg} --name {name}-2; to replace it: pmr delete {name} && pmr start {arg}",
                    other.display(),
                    cwd.display(),
                    spec.script.display(),
                    name = spec.name,
                )));
            }
        }
    }
    if !restart.is_empty() {
        let report: Report = c.request_as(Request::Restart {
            target: restart.clone(),
            env: None,
        })?;
        summarize(&report);
        info(&format!("restarted {}", restart.join(", ")));
        if to_start.is_empty() {
            show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
        }
        report::verdict(&report)?;
    }
    Ok(to_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, script: &str) -> AppSpec {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.js"), "").unwrap();
        let cfg = AppConfig {
            name: Some(name.into()),
            script: Some("a.js".into()),
            ..Default::default()
        };
        let mut s = cfg
            .resolve(&ResolveContext {
                base_dir: t.path(),
                caller_env: &Default::default(),
                node: Path::new("/usr/bin/node"),
                cpus: 1,
                log_dir: t.path(),
            })
            .unwrap()
            .spec;
        s.script = script.into();
        s
    }

    #[test]
    fn a_taken_name_restarts_the_same_script_and_refuses_another() {
        let running = vec![
            ("api".to_string(), PathBuf::from("/srv/one/app.js")),
            ("api-2".to_string(), PathBuf::from("/srv/one/app.js")),
        ];
        assert_eq!(
            clash(&spec("web", "/srv/one/app.js"), &running, false),
            Clash::Free
        );
        assert_eq!(
            clash(&spec("api", "/srv/one/app.js"), &running, false),
            Clash::Restart
        );
        assert_eq!(
            clash(&spec("api", "/srv/two/app.js"), &running, false),
            Clash::Refuse
        );
        assert_eq!(
            clash(&spec("api", "/srv/one/app.js"), &running, true),
            Clash::Rename("api-3".into())
        );
    }
}
