//! PM2's shape of a process (`pm2 jlist`, `pm2.list()`, bus events), built
//! from pmr's typed model for tools and scripts written for PM2. A pure
//! mapping: only what pmr really knows, under PM2's key names and with its
//! value conventions (PM2 7.0.4, `lib/God/Methods.js` getFormatedProcesses
//! and `lib/God/ActionMethods.js` getMonitorData).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::instance::{Description, Status};
use crate::error::{Error, Result};
use crate::spec::{AppSpec, ExecMode};

/// One process as `pm2 jlist` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pm2Process {
    /// 0 when the process is not running, as in PM2.
    pub pid: u32,
    pub name: String,
    pub pm_id: u32,
    pub monit: Pm2Monit,
    pub pm2_env: Pm2Env,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pm2Monit {
    /// Bytes (pmr's figure covers the whole process tree).
    pub memory: u64,
    /// Percent of one core, one decimal, as PM2 rounds it.
    pub cpu: f64,
}

/// `pm2_env`: the app's options and state. PM2 also spreads the app's
/// environment over it (and its instance variable, `NODE_APP_INSTANCE: 0`);
/// those are in `vars`, never over one of the keys below.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pm2Env {
    pub name: String,
    pub namespace: String,
    pub pm_id: u32,
    /// `online`, `stopping`, `stopped`, `launching`, `errored`, `waiting restart`.
    pub status: &'static str,
    pub restart_time: u32,
    pub unstable_restarts: u32,
    /// `cluster_mode` or `fork_mode`.
    pub exec_mode: &'static str,
    pub instances: u32,
    /// When the process last started, in milliseconds since the epoch.
    pub pm_uptime: u64,
    pub created_at: u64,
    pub pm_out_log_path: String,
    pub pm_err_log_path: String,
    /// The combined log (`log_file`), when the app has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pm_log_path: Option<String>,
    /// pmr writes no per-app pid file: null (the pid is `pid`).
    pub pm_pid_path: Option<String>,
    pub pm_exec_path: String,
    pub pm_cwd: String,
    /// `node`, the interpreter's name (`bash`, `python3`), or `none` for a
    /// program run directly.
    pub exec_interpreter: String,
    pub node_args: Vec<String>,
    pub args: Vec<String>,
    /// false, true (the app's directory), or the watched paths.
    pub watch: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_watch: Vec<String>,
    pub autorestart: bool,
    pub instance_var: String,
    pub max_restarts: u32,
    pub min_uptime: u64,
    pub kill_timeout: u64,
    pub listen_timeout: u64,
    pub restart_delay: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp_backoff_restart_delay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_restart: Option<u64>,
    pub wait_ready: bool,
    pub shutdown_with_message: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_exit_codes: Vec<i32>,
    pub merge_logs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_date_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron_restart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The last exit code, once the process has exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The app's complete environment, as PM2 gives it.
    pub env: BTreeMap<String, String>,
    #[serde(flatten)]
    pub vars: BTreeMap<String, Value>,
}

/// Every key `Pm2Env` writes itself: the spread environment never takes
/// one of them (a test keeps this list in step with the struct).
const OWN_KEYS: &[&str] = &[
    "name",
    "namespace",
    "pm_id",
    "status",
    "restart_time",
    "unstable_restarts",
    "exec_mode",
    "instances",
    "pm_uptime",
    "created_at",
    "pm_out_log_path",
    "pm_err_log_path",
    "pm_log_path",
    "pm_pid_path",
    "pm_exec_path",
    "pm_cwd",
    "exec_interpreter",
    "node_args",
    "args",
    "watch",
    "ignore_watch",
    "autorestart",
    "instance_var",
    "max_restarts",
    "min_uptime",
    "kill_timeout",
    "listen_timeout",
    "restart_delay",
    "exp_backoff_restart_delay",
    "max_memory_restart",
    "wait_ready",
    "shutdown_with_message",
    "stop_exit_codes",
    "merge_logs",
    "log_date_format",
    "cron_restart",
    "uid",
    "gid",
    "exit_code",
    "env",
];

/// PM2's spelling of a status (`waiting restart`, with a space).
pub fn status(s: Status) -> &'static str {
    match s {
        Status::Launching => "launching",
        Status::Online => "online",
        Status::Stopping => "stopping",
        Status::Stopped => "stopped",
        Status::Errored => "errored",
        Status::WaitingRestart => "waiting restart",
    }
}

pub fn exec_mode(m: ExecMode) -> &'static str {
    match m {
        ExecMode::Cluster => "cluster_mode",
        ExecMode::Fork => "fork_mode",
    }
}

fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn interpreter(spec: &AppSpec) -> String {
    if spec.node {
        return "node".into();
    }
    match &spec.interpreter {
        Some(i) => i
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path(i)),
        None => "none".into(),
    }
}

fn watch(spec: &AppSpec) -> Value {
    match spec.watch.as_slice() {
        [] => Value::Bool(false),
        [only] if *only == spec.cwd => Value::Bool(true),
        paths => Value::Array(paths.iter().map(|p| Value::String(path(p))).collect()),
    }
}

/// One instance in PM2's shape.
pub fn process(d: &Description) -> Pm2Process {
    let (i, spec) = (&d.info, &d.spec);
    let running = i.pid.is_some();
    // PM2 keeps the last start time of a stopped process.
    let pm_uptime = i
        .started_at
        .or_else(|| {
            i.last_exit
                .as_ref()
                .map(|e| e.at.saturating_sub(e.uptime_ms))
        })
        .unwrap_or(i.created_at);
    let mut vars = BTreeMap::new();
    vars.insert(spec.instance_var.clone(), Value::from(i.instance));
    for (k, v) in &spec.env {
        if !OWN_KEYS.contains(&k.as_str()) {
            vars.entry(k.clone())
                .or_insert_with(|| Value::String(v.clone()));
        }
    }
    vars.retain(|k, _| !OWN_KEYS.contains(&k.as_str()));
    Pm2Process {
        pid: i.pid.unwrap_or(0),
        name: i.name.clone(),
        pm_id: i.id,
        monit: Pm2Monit {
            memory: if running { i.memory } else { 0 },
            cpu: if running {
                (i.cpu * 10.0).round() / 10.0
            } else {
                0.0
            },
        },
        pm2_env: Pm2Env {
            name: i.name.clone(),
            namespace: i.namespace.clone(),
            pm_id: i.id,
            status: status(i.status),
            restart_time: i.restarts,
            unstable_restarts: i.unstable_restarts,
            exec_mode: exec_mode(i.mode),
            instances: spec.instances,
            pm_uptime,
            created_at: i.created_at,
            pm_out_log_path: path(&i.logs.out),
            pm_err_log_path: path(&i.logs.err),
            pm_log_path: i.logs.combined.as_deref().map(path),
            pm_pid_path: spec.pid_file_of(i.instance).as_deref().map(path),
            pm_exec_path: path(&spec.script),
            pm_cwd: path(&spec.cwd),
            exec_interpreter: interpreter(spec),
            node_args: if spec.node {
                spec.interpreter_args.clone()
            } else {
                Vec::new()
            },
            args: spec.args.clone(),
            watch: watch(spec),
            ignore_watch: spec.ignore_watch.clone(),
            autorestart: spec.autorestart,
            instance_var: spec.instance_var.clone(),
            max_restarts: spec.max_restarts,
            min_uptime: spec.min_uptime_ms,
            kill_timeout: spec.kill_timeout_ms,
            listen_timeout: spec.listen_timeout_ms,
            restart_delay: spec.restart_delay_ms,
            exp_backoff_restart_delay: spec.exp_backoff_restart_delay_ms,
            max_memory_restart: spec.max_memory_restart,
            wait_ready: spec.wait_ready,
            shutdown_with_message: spec.shutdown_with_message,
            stop_exit_codes: spec.stop_exit_codes.clone(),
            merge_logs: spec.logs.merge_logs,
            log_date_format: spec.logs.log_date_format.clone(),
            cron_restart: spec.cron_restart.clone(),
            uid: spec.uid.clone(),
            gid: spec.gid.clone(),
            exit_code: i.last_exit.as_ref().and_then(|e| e.code),
            env: spec.env.clone(),
            vars,
        },
    }
}

pub fn processes(descs: &[Description]) -> Vec<Pm2Process> {
    descs.iter().map(process).collect()
}

/// `processes` from and to JSON text (`describe`'s answer in, PM2's list
/// out), for the Node-API binding.
pub fn processes_json(text: &str) -> Result<String> {
    let descs: Vec<Description> = serde_json::from_str(text)
        .map_err(|e| Error::Protocol(format!("not a list of descriptions: {e}")))?;
    serde_json::to_string(&processes(&descs))
        .map_err(|e| Error::Protocol(format!("cannot encode PM2's list: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogPaths;
    use crate::model::instance::{ExitRecord, InstanceInfo, RestartCounts};
    use crate::spec::{KillSignal, LogSpec};
    use std::path::PathBuf;

    fn spec() -> AppSpec {
        AppSpec {
            name: "api".into(),
            namespace: "default".into(),
            script: "/srv/api/server.js".into(),
            args: vec!["--port".into(), "3000".into()],
            interpreter: Some("/usr/local/bin/node".into()),
            interpreter_args: vec!["--max-old-space-size=100".into()],
            node: true,
            cwd: "/srv/api".into(),
            env: BTreeMap::from([
                ("PORT".to_string(), "3000".to_string()),
                ("status".to_string(), "from env".to_string()),
            ]),
            app_env: BTreeMap::new(),
            instances: 2,
            exec_mode: ExecMode::Cluster,
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            restart_delay_ms: 0,
            exp_backoff_restart_delay_ms: None,
            stop_exit_codes: vec![],
            kill_timeout_ms: 1600,
            kill_signal: "SIGINT".parse::<KillSignal>().unwrap(),
            listen_timeout_ms: 3000,
            wait_ready: false,
            shutdown_with_message: false,
            max_memory_restart: Some(1 << 30),
            instance_var: "NODE_APP_INSTANCE".into(),
            increment_var: None,
            logs: LogSpec::default(),
            watch: vec!["/srv/api".into()],
            ignore_watch: vec![],
            watch_delay_ms: None,
            cron_restart: None,
            uid: None,
            gid: None,
            health_check: None,
            max_event_loop_lag_ms: None,
            notify: None,
            instances_max: false,
            pid_file: None,
            lb: Default::default(),
        }
    }

    fn info(status: Status, pid: Option<u32>) -> InstanceInfo {
        InstanceInfo {
            name: "api".into(),
            namespace: "default".into(),
            id: 3,
            instance: 1,
            pid,
            status,
            restarts: 2,
            restart_reasons: RestartCounts::default(),
            unstable_restarts: 1,
            uptime_ms: 5000,
            memory: 50 << 20,
            cpu: 12.345,
            processes: 1,
            memory_limit: None,
            memory_exceeded: None,
            node: None,
            mode: ExecMode::Cluster,
            started_at: pid.map(|_| 1_700_000_005_000),
            created_at: 1_700_000_000_000,
            last_exit: None,
            errored_reason: None,
            last_error: None,
            listening: vec![],
            health: None,
            connections: None,
            logs: LogPaths {
                out: PathBuf::from("/h/logs/api-out-3.log"),
                err: PathBuf::from("/h/logs/api-error-3.log"),
                combined: None,
            },
            log_dropped_bytes: 0,
            watching: true,
            next_cron_restart: None,
            kill_scope: None,
        }
    }

    fn describe(info: InstanceInfo) -> Description {
        Description {
            info,
            spec: spec(),
            history: vec![],
            sockets: vec![],
            kernel_steered: false,
            watch_error: None,
        }
    }

    #[test]
    fn a_running_cluster_instance_in_pm2s_words() {
        let p = process(&describe(info(Status::Online, Some(4242))));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["pid"], 4242);
        assert_eq!(v["pm_id"], 3);
        assert_eq!(
            v["monit"],
            serde_json::json!({"memory": 50 << 20, "cpu": 12.3})
        );
        let e = &v["pm2_env"];
        assert_eq!(e["status"], "online");
        assert_eq!(e["exec_mode"], "cluster_mode");
        assert_eq!(e["restart_time"], 2);
        assert_eq!(e["unstable_restarts"], 1);
        assert_eq!(e["instances"], 2);
        assert_eq!(e["pm_uptime"], 1_700_000_005_000u64);
        assert_eq!(e["pm_exec_path"], "/srv/api/server.js");
        assert_eq!(e["pm_cwd"], "/srv/api");
        assert_eq!(e["pm_out_log_path"], "/h/logs/api-out-3.log");
        assert_eq!(e["pm_err_log_path"], "/h/logs/api-error-3.log");
        assert_eq!(e["pm_pid_path"], Value::Null);
        assert_eq!(e["exec_interpreter"], "node");
        assert_eq!(
            e["node_args"],
            serde_json::json!(["--max-old-space-size=100"])
        );
        assert_eq!(e["args"], serde_json::json!(["--port", "3000"]));
        assert_eq!(
            e["watch"], true,
            "watching the app's directory is watch: true"
        );
        assert_eq!(e["max_memory_restart"], 1u64 << 30);
        assert_eq!(e["NODE_APP_INSTANCE"], 1, "the instance variable, a number");
        assert_eq!(e["PORT"], "3000", "the environment is spread over pm2_env");
        assert_eq!(e["env"]["status"], "from env");
        assert_eq!(
            e["status"], "online",
            "an env variable never hides a key of PM2's"
        );
        assert!(e.get("exit_code").is_none());
    }

    #[test]
    fn stopped_and_waiting_instances() {
        let mut i = info(Status::Stopped, None);
        i.last_exit = Some(ExitRecord {
            code: Some(0),
            signal: None,
            at: 1_700_000_009_000,
            uptime_ms: 4000,
            expected: true,
        });
        let p = process(&describe(i));
        assert_eq!(p.pid, 0, "pid 0 when stopped");
        assert_eq!(
            p.monit,
            Pm2Monit {
                memory: 0,
                cpu: 0.0
            }
        );
        assert_eq!(p.pm2_env.status, "stopped");
        assert_eq!(p.pm2_env.exit_code, Some(0));
        assert_eq!(p.pm2_env.pm_uptime, 1_700_000_005_000, "its last start");
        let never = process(&describe(info(Status::Errored, None)));
        assert_eq!(never.pm2_env.pm_uptime, 1_700_000_000_000);
        assert_eq!(status(Status::WaitingRestart), "waiting restart");
        assert_eq!(exec_mode(ExecMode::Fork), "fork_mode");
    }

    #[test]
    fn interpreters_and_watch_paths() {
        let mut s = spec();
        s.node = false;
        s.interpreter = Some("/usr/bin/python3".into());
        assert_eq!(interpreter(&s), "python3");
        s.interpreter = None;
        assert_eq!(interpreter(&s), "none");
        s.watch = vec![];
        assert_eq!(watch(&s), Value::Bool(false));
        s.watch = vec!["/srv/api/src".into()];
        assert_eq!(watch(&s), serde_json::json!(["/srv/api/src"]));
    }

    #[test]
    fn own_keys_are_every_key_the_struct_writes() {
        let mut p = process(&describe(info(Status::Stopped, None)));
        p.pm2_env.vars.clear();
        p.pm2_env.pm_log_path = Some("x".into());
        p.pm2_env.exit_code = Some(1);
        p.pm2_env.exp_backoff_restart_delay = Some(1);
        p.pm2_env.log_date_format = Some("x".into());
        p.pm2_env.cron_restart = Some("x".into());
        p.pm2_env.uid = Some("x".into());
        p.pm2_env.gid = Some("x".into());
        p.pm2_env.ignore_watch = vec!["x".into()];
        p.pm2_env.stop_exit_codes = vec![0];
        let v = serde_json::to_value(&p.pm2_env).unwrap();
        let mut written: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut own = OWN_KEYS.to_vec();
        written.sort_unstable();
        own.sort_unstable();
        assert_eq!(written, own);
    }

    #[test]
    fn from_describe_json() {
        let d = describe(info(Status::Online, Some(1)));
        let text = serde_json::to_string(&vec![d]).unwrap();
        let out: Value = serde_json::from_str(&processes_json(&text).unwrap()).unwrap();
        assert_eq!(out[0]["name"], "api");
        assert_eq!(
            processes_json("{}").unwrap_err().code(),
            Error::Protocol(String::new()).code()
        );
    }
}
