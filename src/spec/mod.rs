//! What an app is. `AppConfig` is what the user wrote (CLI flags or an
//! ecosystem entry, PM2's key names, everything optional); `AppSpec` is the
//! resolved form the supervisor runs: absolute paths, defaults applied, the
//! full environment spelled out.

pub mod cron;
pub mod datefmt;
pub mod ecosystem;
pub mod health;
pub mod js_options;
mod lb;
pub mod notify;
mod options;
mod resolve;
pub mod suggest;
pub mod units;
mod values;
pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use resolve::{
    check_runnable, default_name, host_cpus, is_node_script, validate_name, AppConfig, Instances,
    LogFile, ResolveContext, Resolved, Watch,
};

pub use lb::LoadBalance;
pub use values::{KillSignal, LogType, RotateInterval};

use crate::policy::restart::RestartPolicy;
#[cfg(test)]
pub(crate) use options::known_keys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecMode {
    Fork,
    Cluster,
}

impl ExecMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecMode::Fork => "fork",
            ExecMode::Cluster => "cluster",
        }
    }
}

pub const DEFAULT_KILL_TIMEOUT_MS: u64 = 1600;
pub const DEFAULT_LISTEN_TIMEOUT_MS: u64 = 3000;
pub use crate::policy::restart::{DEFAULT_MAX_RESTARTS, DEFAULT_MIN_UPTIME_MS};
pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_INSTANCE_VAR: &str = "NODE_APP_INSTANCE";

/// A resolved app, as the supervisor runs it and as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    pub namespace: String,
    /// The script or program as resolved (absolute).
    pub script: PathBuf,
    pub args: Vec<String>,
    /// None: the script is executed directly.
    pub interpreter: Option<PathBuf>,
    pub interpreter_args: Vec<String>,
    /// The app runs under Node.js: it gets an IPC channel and may be clustered.
    pub node: bool,
    pub cwd: PathBuf,
    /// The complete environment of the app (the caller's plus the app's own).
    pub env: BTreeMap<String, String>,
    /// The app's own part of `env` (from its config), kept so that
    /// `--update-env` can merge it over a new caller environment.
    pub app_env: BTreeMap<String, String>,
    pub instances: u32,
    /// `instances` was written `max` (or 0): one per CPU of the machine that
    /// runs it, so a dump says `max`, not this machine's count.
    #[serde(default)]
    pub instances_max: bool,
    pub exec_mode: ExecMode,
    pub autorestart: bool,
    pub max_restarts: u32,
    pub min_uptime_ms: u64,
    pub restart_delay_ms: u64,
    pub exp_backoff_restart_delay_ms: Option<u64>,
    pub stop_exit_codes: Vec<i32>,
    pub kill_timeout_ms: u64,
    pub kill_signal: KillSignal,
    pub listen_timeout_ms: u64,
    pub wait_ready: bool,
    pub shutdown_with_message: bool,
    pub max_memory_restart: Option<u64>,
    pub instance_var: String,
    pub increment_var: Option<String>,
    pub logs: LogSpec,
    /// Paths whose changes replace the app through the reload path (empty:
    /// no watching).
    #[serde(default)]
    pub watch: Vec<PathBuf>,
    /// Patterns of paths under `watch` to ignore (besides `node_modules` and
    /// dotfiles, which never are watched).
    #[serde(default)]
    pub ignore_watch: Vec<String>,
    /// Quiet time after a change before the replacement (None: 1000 ms).
    #[serde(default)]
    pub watch_delay_ms: Option<u64>,
    /// Replace the app (reload path) on this cron schedule, in local time.
    #[serde(default)]
    pub cron_restart: Option<String>,
    /// Run the app as this user (name or number): the child drops privileges
    /// before exec.
    #[serde(default)]
    pub uid: Option<String>,
    /// Run the app with this group (name or number; needs `uid`; None: the
    /// user's primary group).
    #[serde(default)]
    pub gid: Option<String>,
    /// Checks that the instance still serves; failing ones replace it.
    #[serde(default)]
    pub health_check: Option<health::HealthCheck>,
    /// An instance whose event loop stays blocked longer than this (ms) is
    /// replaced as unhealthy (None: never).
    #[serde(default)]
    pub max_event_loop_lag_ms: Option<u64>,
    /// The app's own alert receivers and events.
    #[serde(default)]
    pub notify: Option<notify::AppNotify>,
    /// `-p/--pid`: instance 0 writes its pid to this file, instance N to
    /// `<stem>-<N>.<ext>`.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// How a cluster app's connections reach its workers.
    #[serde(default)]
    pub lb: LoadBalance,
}

/// Where an app's output goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogSpec {
    /// Explicit stdout file; None: `<home>/logs/<name>-out[-<id>].log`.
    pub out_file: Option<PathBuf>,
    pub error_file: Option<PathBuf>,
    /// Also write both streams, combined, to this file.
    pub log_file: Option<PathBuf>,
    /// One file for all instances instead of one per instance.
    pub merge_logs: bool,
    /// Prefix each line with a timestamp.
    pub time: bool,
    /// strftime-style format of that timestamp (ISO 8601 when unset).
    pub log_date_format: Option<String>,
    /// `json`: one JSON object per line (timestamp, app, id, instance,
    /// stream, message).
    #[serde(default)]
    pub log_type: Option<LogType>,
    /// Rotation options of this app; None: the daemon-wide setting.
    /// Rotate a file before it passes this many bytes (0: never by size).
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Rotated files kept per log file.
    #[serde(default)]
    pub retain: Option<u32>,
    /// Gzip rotated files.
    #[serde(default)]
    pub compress: Option<bool>,
    /// `daily`: also rotate at the first write of a new day; `none`: not.
    #[serde(default)]
    pub rotate_interval: Option<RotateInterval>,
}

/// The file of one instance: the path itself for instance 0,
/// `<stem>-<instance>.<ext>` for the others. It does not depend on the
/// instance count, which a scale or a reload changes while processes start.
pub fn pid_path(file: &Path, instance: u32) -> PathBuf {
    if instance == 0 {
        return file.to_path_buf();
    }
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match file.extension() {
        Some(ext) => format!("{stem}-{instance}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{instance}"),
    };
    file.with_file_name(name)
}

impl AppSpec {
    /// The `-p/--pid` file of one instance, if the app has one.
    pub fn pid_file_of(&self, instance: u32) -> Option<PathBuf> {
        self.pid_file.as_deref().map(|f| pid_path(f, instance))
    }

    pub fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy {
            autorestart: self.autorestart,
            max_restarts: self.max_restarts,
            min_uptime: std::time::Duration::from_millis(self.min_uptime_ms),
            restart_delay: std::time::Duration::from_millis(self.restart_delay_ms),
            exp_backoff: self
                .exp_backoff_restart_delay_ms
                .map(std::time::Duration::from_millis),
            stop_exit_codes: self.stop_exit_codes.clone(),
        }
    }

    /// The same app, run with a new caller environment (`--update-env`).
    pub fn with_caller_env(&self, caller_env: &BTreeMap<String, String>) -> AppSpec {
        let mut env = resolve::inherited_env(caller_env);
        env.extend(self.app_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        AppSpec {
            env,
            ..self.clone()
        }
    }

    /// This definition, keeping the inherited environment of `running`
    /// (reload of a changed config without `--update-env`).
    pub fn keeping_env_of(&self, running: &AppSpec) -> AppSpec {
        let mut env: BTreeMap<String, String> = running
            .env
            .iter()
            .filter(|(k, _)| !running.app_env.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(self.app_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        AppSpec {
            env,
            ..self.clone()
        }
    }

    /// The program and arguments to exec.
    pub fn command_line(&self) -> (PathBuf, Vec<String>) {
        match &self.interpreter {
            Some(interp) => {
                let mut argv = self.interpreter_args.clone();
                argv.push(self.script.to_string_lossy().into_owned());
                argv.extend(self.args.iter().cloned());
                (interp.clone(), argv)
            }
            None => (self.script.clone(), self.args.clone()),
        }
    }
}

/// What differs between two definitions of an app, for the user: one entry
/// per changed option, the app's own env keys named one by one (values of
/// secret-looking keys are not shown). The inherited shell environment is
/// not compared: it differs between any two shells.
pub fn changes(old: &AppSpec, new: &AppSpec) -> Vec<String> {
    let mut out = Vec::new();
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return out;
    };
    for (k, vb) in &b {
        if k == "env" || k == "app_env" {
            continue;
        }
        let va = a.get(k).unwrap_or(&serde_json::Value::Null);
        if va != vb {
            out.push(format!("{k} {va} -> {vb}"));
        }
    }
    for (k, v) in &new.app_env {
        match old.app_env.get(k) {
            Some(o) if o == v => {}
            Some(_) if looks_secret(k) => out.push(format!("env {k} changed")),
            Some(o) => out.push(format!("env {k} {o:?} -> {v:?}")),
            None if looks_secret(k) => out.push(format!("env {k} added")),
            None => out.push(format!("env {k}={v:?} added")),
        }
    }
    for k in old.app_env.keys().filter(|k| !new.app_env.contains_key(*k)) {
        out.push(format!("env {k} removed"));
    }
    out
}

/// Whether an environment variable probably holds a secret, so that
/// `describe` shows it masked (`pmr env` shows the real value).
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "KEY",
        "CREDENTIAL",
        "PRIVATE",
    ]
    .iter()
    .any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    use super::pid_path;
    use std::path::{Path, PathBuf};

    #[test]
    fn instance_0_writes_the_file_the_others_numbered_ones() {
        let f = Path::new("/run/api.pid");
        assert_eq!(pid_path(f, 0), PathBuf::from("/run/api.pid"));
        assert_eq!(pid_path(f, 1), PathBuf::from("/run/api-1.pid"));
        assert_eq!(
            pid_path(Path::new("/run/api"), 2),
            PathBuf::from("/run/api-2")
        );
    }

    use super::*;

    fn spec() -> AppSpec {
        AppSpec {
            name: "api".into(),
            namespace: DEFAULT_NAMESPACE.into(),
            script: "/srv/app.js".into(),
            args: vec![],
            interpreter: Some("/usr/bin/node".into()),
            interpreter_args: vec![],
            node: true,
            cwd: "/srv".into(),
            env: BTreeMap::from([
                ("PATH".to_string(), "/bin".to_string()),
                ("PORT".to_string(), "3000".to_string()),
            ]),
            app_env: BTreeMap::from([("PORT".to_string(), "3000".to_string())]),
            instances: 2,
            instances_max: false,
            exec_mode: ExecMode::Cluster,
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            restart_delay_ms: 0,
            exp_backoff_restart_delay_ms: None,
            stop_exit_codes: vec![],
            kill_timeout_ms: 1600,
            kill_signal: KillSignal::default(),
            listen_timeout_ms: 3000,
            wait_ready: false,
            shutdown_with_message: false,
            max_memory_restart: None,
            instance_var: DEFAULT_INSTANCE_VAR.into(),
            increment_var: None,
            logs: LogSpec::default(),
            watch: vec![],
            ignore_watch: vec![],
            watch_delay_ms: None,
            cron_restart: None,
            uid: None,
            gid: None,
            health_check: None,
            max_event_loop_lag_ms: None,
            notify: None,
            pid_file: None,
            lb: Default::default(),
        }
    }

    #[test]
    fn changes_name_options_and_env_keys_but_hide_secrets() {
        let old = spec();
        let mut new = spec();
        new.instances = 4;
        new.app_env.insert("PORT".into(), "4000".into());
        new.app_env.insert("API_TOKEN".into(), "s3cret".into());
        new.env.insert("SHLVL".into(), "3".into());
        let c = changes(&old, &new);
        assert!(c.contains(&"instances 2 -> 4".to_string()), "{c:?}");
        assert!(
            c.contains(&"env PORT \"3000\" -> \"4000\"".to_string()),
            "{c:?}"
        );
        assert!(c.contains(&"env API_TOKEN added".to_string()), "{c:?}");
        assert!(
            !c.iter()
                .any(|x| x.contains("s3cret") || x.contains("SHLVL")),
            "{c:?}"
        );
        assert!(changes(&old, &old).is_empty());
    }

    #[test]
    fn keeping_env_replaces_only_the_apps_own_part() {
        let running = spec();
        let mut new = spec();
        new.env = BTreeMap::from([("PATH".to_string(), "/other".to_string())]);
        new.app_env = BTreeMap::from([("PORT".to_string(), "4000".to_string())]);
        let merged = new.keeping_env_of(&running);
        assert_eq!(merged.env["PATH"], "/bin");
        assert_eq!(merged.env["PORT"], "4000");
    }

    #[test]
    fn secret_looking_keys() {
        assert!(looks_secret("DB_PASSWORD"));
        assert!(looks_secret("api_key"));
        assert!(looks_secret("GITHUB_TOKEN"));
        assert!(looks_secret("JWT_SECRET"));
        assert!(!looks_secret("PORT"));
        assert!(!looks_secret("NODE_ENV"));
    }
}
