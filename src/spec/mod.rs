//! What an app is. `AppConfig` is what the user wrote (CLI flags or an
//! ecosystem entry, PM2's key names, everything optional); `AppSpec` is the
//! resolved form the supervisor runs: absolute paths, defaults applied, the
//! full environment spelled out.

mod resolve;
pub mod units;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use resolve::{
    check_runnable, default_name, is_node_script, validate_name, AppConfig, Instances,
    ResolveContext, Resolved,
};

use crate::policy::restart::RestartPolicy;

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
pub const DEFAULT_MIN_UPTIME_MS: u64 = 1000;
pub const DEFAULT_MAX_RESTARTS: u32 = 16;
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
    pub exec_mode: ExecMode,
    pub autorestart: bool,
    pub max_restarts: u32,
    pub min_uptime_ms: u64,
    pub restart_delay_ms: u64,
    pub exp_backoff_restart_delay_ms: Option<u64>,
    pub stop_exit_codes: Vec<i32>,
    pub kill_timeout_ms: u64,
    pub kill_signal: String,
    pub listen_timeout_ms: u64,
    pub wait_ready: bool,
    pub shutdown_with_message: bool,
    pub max_memory_restart: Option<u64>,
    pub instance_var: String,
    pub increment_var: Option<String>,
    pub logs: LogSpec,
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
}

impl AppSpec {
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
    use super::*;

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
