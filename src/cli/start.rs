//! `pmr start`: from flags to a resolved app, sent to the daemon.

use std::path::Path;

use super::args::StartArgs;
use super::report::{announce, start_and_show, summarize};
use super::settle::settle;
use super::{caller_env, ecosystem, info, show, Ctx};
use crate::error::{Error, Result};
use crate::protocol::Request;
use crate::spec::cron::check_cron;
use crate::spec::ecosystem::is_config_file;
use crate::spec::units::{parse_duration_ms, parse_size};
use crate::spec::{host_cpus, AppConfig, AppSpec, Instances, LogFile, ResolveContext, Watch};
use crate::supervisor::{Description, InstanceInfo, Report};

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
        source_map_support: a.source_map_support.then_some(true),
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
    start_and_show(ctx, vec![resolved.spec], !a.no_wait)
}
