//! What the supervisor publishes about each instance: the `jlist` row, the
//! event stream, and the bits of history `describe` shows.

use std::collections::VecDeque;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::logs::LogPaths;
use crate::spec::ExecMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Launching,
    Online,
    Stopping,
    Stopped,
    Errored,
    WaitingRestart,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Launching => "launching",
            Status::Online => "online",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Errored => "errored",
            Status::WaitingRestart => "waiting-restart",
        }
    }

    /// Running, or about to run again.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Launching | Status::Online | Status::WaitingRestart | Status::Stopping
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartReason {
    Crash,
    Memory,
    Watch,
    Cron,
    User,
}

/// Restarts counted by why they happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartCounts {
    pub crash: u32,
    pub memory: u32,
    pub watch: u32,
    pub cron: u32,
    pub user: u32,
}

impl RestartCounts {
    pub fn add(&mut self, r: RestartReason) {
        match r {
            RestartReason::Crash => self.crash += 1,
            RestartReason::Memory => self.memory += 1,
            RestartReason::Watch => self.watch += 1,
            RestartReason::Cron => self.cron += 1,
            RestartReason::User => self.user += 1,
        }
    }
}

/// How the last process of an instance ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub code: Option<i32>,
    pub signal: Option<String>,
    /// Milliseconds since the epoch.
    pub at: u64,
    pub uptime_ms: u64,
    /// pmr asked for it (stop, restart, reload).
    pub expected: bool,
}

impl ExitRecord {
    pub fn describe(&self) -> String {
        match (&self.signal, self.code) {
            (Some(s), _) => format!("killed by {s}"),
            (None, Some(c)) => format!("exited with code {c}"),
            (None, None) => "exited".into(),
        }
    }
}

/// One row of `pmr jlist`: the contract in DESIGN.md plus details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub name: String,
    pub namespace: String,
    pub id: u32,
    pub instance: u32,
    pub pid: Option<u32>,
    pub status: Status,
    pub restarts: u32,
    pub restart_reasons: RestartCounts,
    pub unstable_restarts: u32,
    pub uptime_ms: u64,
    pub memory: u64,
    pub cpu: f64,
    pub mode: ExecMode,
    pub started_at: Option<u64>,
    pub created_at: u64,
    pub last_exit: Option<ExitRecord>,
    pub errored_reason: Option<String>,
    pub last_error: Option<String>,
    pub listening: Vec<String>,
    pub logs: LogPaths,
    pub log_dropped_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadStep {
    /// A replacement process was started.
    ReplacementStarted,
    ReplacementReady,
    /// The old process was asked to stop.
    OldStopping,
    OldExited,
    /// The replacement failed; the old process keeps serving.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A process was spawned.
    Start,
    Online,
    Listening {
        address: String,
    },
    /// The app said `process.send('ready')`.
    Ready,
    Exit {
        code: Option<i32>,
        signal: Option<String>,
        expected: bool,
    },
    Restart {
        reason: RestartReason,
        delay_ms: u64,
    },
    Errored {
        reason: String,
    },
    Stop,
    /// The app's own `process.send()` payload.
    Message {
        data: Value,
    },
    Reload {
        step: ReloadStep,
        detail: Option<String>,
    },
    /// Something went wrong that the user should see (bind failure, spawn error).
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub app: String,
    pub id: u32,
    pub instance: u32,
    pub pid: Option<u32>,
    /// Milliseconds since the epoch.
    pub time: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// The line `pmr logs` shows for this event.
    pub fn describe(&self) -> String {
        let pid = self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        match &self.kind {
            EventKind::Start => format!("started{pid}"),
            EventKind::Online => format!("online{pid}"),
            EventKind::Listening { address } => format!("listening on {address}{pid}"),
            EventKind::Ready => format!("ready{pid}"),
            EventKind::Exit {
                code,
                signal,
                expected,
            } => {
                let how = match (signal, code) {
                    (Some(s), _) => format!("killed by {s}"),
                    (None, Some(c)) => format!("exited with code {c}"),
                    (None, None) => "exited".into(),
                };
                let why = if *expected { "" } else { " (crash)" };
                format!("{how}{why}{pid}")
            }
            EventKind::Restart { reason, delay_ms } => {
                let r = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if *delay_ms > 0 {
                    format!("restarting in {delay_ms} ms (reason: {r})")
                } else {
                    format!("restarting (reason: {r})")
                }
            }
            EventKind::Errored { reason } => format!("errored: {reason}"),
            EventKind::Stop => format!("stopped{pid}"),
            EventKind::Message { data } => format!("message: {data}"),
            EventKind::Reload { step, detail } => {
                let s = match step {
                    ReloadStep::ReplacementStarted => "reload: replacement started",
                    ReloadStep::ReplacementReady => "reload: replacement ready",
                    ReloadStep::OldStopping => "reload: stopping the old process",
                    ReloadStep::OldExited => "reload: old process exited",
                    ReloadStep::Failed => "reload failed",
                };
                match detail {
                    Some(d) => format!("{s}{pid}: {d}"),
                    None => format!("{s}{pid}"),
                }
            }
            EventKind::Error { message } => format!("error: {message}"),
        }
    }
}

/// How many events `describe` keeps per instance.
pub const HISTORY: usize = 20;

/// The live state of one instance, written by its slot task only.
#[derive(Debug)]
pub(crate) struct InstanceState {
    pub status: Status,
    pub pid: Option<u32>,
    pub started: Option<Instant>,
    pub started_at: Option<u64>,
    pub restarts: u32,
    pub reasons: RestartCounts,
    pub unstable_restarts: u32,
    pub last_exit: Option<ExitRecord>,
    pub errored_reason: Option<String>,
    pub last_error: Option<String>,
    pub cpu: f64,
    pub memory: u64,
    pub listening: Vec<String>,
    pub history: VecDeque<Event>,
    pub created_at: u64,
}

impl InstanceState {
    pub fn new(created_at: u64) -> Self {
        InstanceState {
            status: Status::Stopped,
            pid: None,
            started: None,
            started_at: None,
            restarts: 0,
            reasons: RestartCounts::default(),
            unstable_restarts: 0,
            last_exit: None,
            errored_reason: None,
            last_error: None,
            cpu: 0.0,
            memory: 0,
            listening: Vec::new(),
            history: VecDeque::with_capacity(HISTORY),
            created_at,
        }
    }

    pub fn uptime_ms(&self) -> u64 {
        match (self.status, self.started) {
            (Status::Online | Status::Launching | Status::Stopping, Some(t)) => {
                t.elapsed().as_millis() as u64
            }
            _ => 0,
        }
    }

    pub fn remember(&mut self, e: &Event) {
        if matches!(e.kind, EventKind::Message { .. }) {
            return;
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(e.clone());
    }
}

/// What `describe` returns for one instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Description {
    pub info: InstanceInfo,
    pub spec: crate::spec::AppSpec,
    pub history: Vec<Event>,
    pub sockets: Vec<String>,
}
