//! Control requests and stream messages (replies are in `reply`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::logs::LogLine;
use crate::spec::AppSpec;
use crate::supervisor::{Event, ScaleTo};

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

/// What a subscribed connection receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamItem {
    Event(Event),
    Log(LogLine),
    /// The subscriber fell behind and this many items were skipped for it.
    Lagged(u64),
}
