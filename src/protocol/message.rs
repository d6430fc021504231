//! Control requests, replies and stream messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorBody;
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

/// What the daemon writes back for a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub v: u32,
    pub id: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// What the daemon says about itself in reply to `ping`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    pub home: String,
}
