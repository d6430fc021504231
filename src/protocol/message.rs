//! Control requests and stream messages (replies are in `reply`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ScaleTo;
pub use crate::model::StreamItem;
use crate::spec::AppSpec;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Ping,
    Start {
        apps: Vec<AppSpec>,
    },
    /// Start the stopped instances of existing apps.
    StartExisting {
        target: Vec<String>,
    },
    Stop {
        target: Vec<String>,
    },
    Restart {
        target: Vec<String>,
        /// The caller's environment, for `--update-env`.
        #[serde(default)]
        env: Option<BTreeMap<String, String>>,
    },
    Reload {
        target: Vec<String>,
        #[serde(default)]
        env: Option<BTreeMap<String, String>>,
    },
    /// Apply changed definitions to running apps (start the missing ones).
    ReloadApps {
        apps: Vec<AppSpec>,
        #[serde(default)]
        update_env: bool,
    },
    /// The same, restarting instead of reloading.
    RestartApps {
        apps: Vec<AppSpec>,
        #[serde(default)]
        update_env: bool,
    },
    Delete {
        target: Vec<String>,
    },
    List,
    Describe {
        target: Vec<String>,
    },
    Scale {
        name: String,
        to: ScaleTo,
    },
    Signal {
        target: Vec<String>,
        signal: String,
    },
    /// Zero the restart counts of instances.
    Reset {
        target: Vec<String>,
    },
    /// Stop watching apps' files; the apps keep running.
    StopWatch {
        target: Vec<String>,
    },
    /// Turns the connection into a stream of events and/or log lines.
    Subscribe {
        #[serde(default)]
        events: bool,
        #[serde(default)]
        logs: bool,
    },
    ReloadLogs,
    /// Empty the log files of apps in place (every app without a target).
    Flush {
        #[serde(default)]
        target: Vec<String>,
    },
    /// The last lines of instances, out and err in the order they arrived.
    RecentLogs {
        ids: Vec<u32>,
        lines: usize,
        #[serde(default = "yes")]
        out: bool,
        #[serde(default = "yes")]
        err: bool,
    },
    /// Change a daemon-wide setting (`pmr set log.max_size 50M`).
    Set {
        key: String,
        value: String,
    },
    /// One setting, or all of them.
    Get {
        #[serde(default)]
        key: Option<String>,
    },
    /// Write the process list to the dump file.
    Save,
    /// Start the saved apps that are not in the list.
    Resurrect,
    /// Replace the dump with an empty list.
    ClearDump,
    /// The instances' figures in Prometheus' text format (a JSON string).
    Metrics,
    /// Stop every app, then the daemon.
    Kill,
    /// `pmr update`: this daemon exits leaving every app running, and its
    /// keeper starts `binary`, which adopts them (answered with `Killed`).
    Handoff {
        binary: std::path::PathBuf,
    },
    /// A test alert to every receiver, and each answer.
    NotifyTest,
    /// A message to one instance's `process.on('message')` (PM2's
    /// `sendDataToProcessId`).
    SendData {
        /// The instance id (not `id`: the envelope's request id has that name).
        process_id: u32,
        packet: serde_json::Value,
    },
    /// `pmr unset <key>`: a per-app value removed, any other setting back
    /// to its default.
    Unset {
        key: String,
    },
    /// A line for the stdin of an app's running instances (`pmr send`,
    /// PM2's `sendLineToStdin`).
    SendLine {
        /// An instance id or an app name.
        target: String,
        line: String,
    },
}

impl Request {
    /// Every command a request may name in `cmd`.
    pub const COMMANDS: &'static [&'static str] = &[
        "ping",
        "start",
        "start_existing",
        "stop",
        "restart",
        "reload",
        "reload_apps",
        "restart_apps",
        "delete",
        "list",
        "describe",
        "scale",
        "signal",
        "reset",
        "stop_watch",
        "subscribe",
        "reload_logs",
        "flush",
        "recent_logs",
        "set",
        "get",
        "save",
        "resurrect",
        "clear_dump",
        "metrics",
        "kill",
        "handoff",
        "notify_test",
        "send_data",
        "send_line",
        "unset",
    ];

    /// The `cmd` this request is written with. The match is exhaustive, so
    /// a new request cannot be added without its name.
    pub fn command(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Start { .. } => "start",
            Request::StartExisting { .. } => "start_existing",
            Request::Stop { .. } => "stop",
            Request::Restart { .. } => "restart",
            Request::Reload { .. } => "reload",
            Request::ReloadApps { .. } => "reload_apps",
            Request::RestartApps { .. } => "restart_apps",
            Request::Delete { .. } => "delete",
            Request::List => "list",
            Request::Describe { .. } => "describe",
            Request::Scale { .. } => "scale",
            Request::Signal { .. } => "signal",
            Request::Reset { .. } => "reset",
            Request::StopWatch { .. } => "stop_watch",
            Request::Subscribe { .. } => "subscribe",
            Request::ReloadLogs => "reload_logs",
            Request::Flush { .. } => "flush",
            Request::RecentLogs { .. } => "recent_logs",
            Request::Set { .. } => "set",
            Request::Get { .. } => "get",
            Request::Save => "save",
            Request::Resurrect => "resurrect",
            Request::ClearDump => "clear_dump",
            Request::Metrics => "metrics",
            Request::Kill => "kill",
            Request::Handoff { .. } => "handoff",
            Request::NotifyTest => "notify_test",
            Request::SendData { .. } => "send_data",
            Request::SendLine { .. } => "send_line",
            Request::Unset { .. } => "unset",
        }
    }
}

fn yes() -> bool {
    true
}

/// What a client writes: a request with its id and the protocol version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub id: u64,
    #[serde(flatten)]
    pub req: Request,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_is_written_with_its_listed_command() {
        let t = || vec!["all".to_string()];
        let examples = [
            Request::Ping,
            Request::Start { apps: vec![] },
            Request::StartExisting { target: t() },
            Request::Stop { target: t() },
            Request::Restart {
                target: t(),
                env: None,
            },
            Request::Reload {
                target: t(),
                env: None,
            },
            Request::ReloadApps {
                apps: vec![],
                update_env: false,
            },
            Request::RestartApps {
                apps: vec![],
                update_env: false,
            },
            Request::Delete { target: t() },
            Request::List,
            Request::Describe { target: t() },
            Request::Scale {
                name: "a".into(),
                to: ScaleTo::Exactly(1),
            },
            Request::Signal {
                target: t(),
                signal: "SIGUSR2".into(),
            },
            Request::Reset { target: t() },
            Request::StopWatch { target: t() },
            Request::Subscribe {
                events: true,
                logs: true,
            },
            Request::ReloadLogs,
            Request::Flush { target: t() },
            Request::RecentLogs {
                ids: vec![0],
                lines: 5,
                out: true,
                err: true,
            },
            Request::Set {
                key: "log.retain".into(),
                value: "3".into(),
            },
            Request::Get { key: None },
            Request::Save,
            Request::Resurrect,
            Request::ClearDump,
            Request::Metrics,
            Request::Kill,
            Request::Handoff {
                binary: "/usr/lib/pmr/pmr-daemon".into(),
            },
            Request::NotifyTest,
            Request::SendData {
                process_id: 0,
                packet: serde_json::json!({"topic": "t", "data": 1}),
            },
            Request::SendLine {
                target: "0".into(),
                line: "hello".into(),
            },
            Request::Unset {
                key: "api.PORT".into(),
            },
        ];
        let named: std::collections::BTreeSet<&str> =
            examples.iter().map(Request::command).collect();
        let listed: std::collections::BTreeSet<&str> = Request::COMMANDS.iter().copied().collect();
        assert_eq!(named, listed);
        for req in examples {
            let v = serde_json::to_value(&req).unwrap();
            assert_eq!(v["cmd"], req.command());
            let back: Request = serde_json::from_value(v).unwrap();
            assert_eq!(back.command(), req.command());
        }
    }
}
