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

impl RestartReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::Crash => "crash",
            RestartReason::Memory => "memory",
            RestartReason::Watch => "watch",
            RestartReason::Cron => "cron",
            RestartReason::User => "user",
        }
    }
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

/// What the Node.js runtime of an instance says about itself through the
/// preload; absent for other apps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// How late a timer fires: 0 on an idle loop, the length of the block
    /// when the loop is busy (and growing while it stays blocked).
    pub event_loop_lag_ms: f64,
    pub heap_used: u64,
    pub heap_total: u64,
    pub active_handles: u32,
}

/// The last time an instance went over its memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryExceeded {
    /// Milliseconds since the epoch.
    pub at: u64,
    pub memory: u64,
    pub limit: u64,
}

impl MemoryExceeded {
    pub fn describe(&self) -> String {
        format!(
            "memory limit {} exceeded ({})",
            short_size(self.limit),
            short_size(self.memory)
        )
    }
}

/// A size the way users write limits (`300M`, `1.5G`), with a decimal only
/// where it tells two close figures apart (`80.4M` against a limit of `80M`).
pub fn short_size(b: u64) -> String {
    let (unit, name) = match b {
        b if b >= 1 << 30 => (1u64 << 30, "G"),
        b if b >= 1 << 20 => (1 << 20, "M"),
        b if b >= 1 << 10 => (1 << 10, "K"),
        _ => return b.to_string(),
    };
    let v = b as f64 / unit as f64;
    if b.is_multiple_of(unit) || v >= 100.0 {
        format!("{v:.0}{name}")
    } else {
        format!("{v:.1}{name}")
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
    /// RSS of the instance's whole process tree, in bytes.
    pub memory: u64,
    /// CPU of the whole process tree, in percent of one core.
    pub cpu: f64,
    /// Processes in the tree (the instance's own and its descendants).
    pub processes: u32,
    /// `max_memory_restart`, in bytes.
    pub memory_limit: Option<u64>,
    pub memory_exceeded: Option<MemoryExceeded>,
    pub node: Option<NodeMetrics>,
    pub mode: ExecMode,
    pub started_at: Option<u64>,
    pub created_at: u64,
    pub last_exit: Option<ExitRecord>,
    pub errored_reason: Option<String>,
    pub last_error: Option<String>,
    pub listening: Vec<String>,
    pub logs: LogPaths,
    pub log_dropped_bytes: u64,
    /// Changes under the app's `watch` paths replace it right now.
    #[serde(default)]
    pub watching: bool,
    /// When `cron_restart` next replaces the app, in milliseconds since the epoch.
    #[serde(default)]
    pub next_cron_restart: Option<u64>,
    /// What a stop reaches: `cgroup <path>` or `process group <pgid>`.
    pub kill_scope: Option<String>,
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
    /// The instance stayed over `max_memory_restart`; a replacement follows.
    MemoryLimit {
        limit: u64,
        memory: u64,
    },
    /// A watched file changed or the cron schedule came due: the instance
    /// is being replaced (reloaded in cluster mode, restarted in fork mode).
    Replacing {
        reason: RestartReason,
        detail: String,
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
                let r = reason.as_str();
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
            EventKind::MemoryLimit { limit, memory } => format!(
                "memory limit {} exceeded ({}){pid}: replacing it",
                short_size(*limit),
                short_size(*memory)
            ),
            EventKind::Replacing { reason, detail } => {
                format!("{detail}: replacing it{pid} (reason: {})", reason.as_str())
            }
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
    pub processes: u32,
    pub memory_exceeded: Option<MemoryExceeded>,
    /// The preload's last report, when it came, and how often it reports.
    pub node: Option<(NodeMetrics, Instant, u64)>,
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
            processes: 0,
            memory_exceeded: None,
            node: None,
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

    /// The preload's figures. A report that is overdue means the event loop
    /// is blocked right now: the lag shown is at least how overdue it is, so
    /// a stuck app shows a growing lag rather than its last calm figure.
    pub fn node_metrics(&self) -> Option<NodeMetrics> {
        let (m, at, interval_ms) = self.node?;
        let overdue = at.elapsed().as_secs_f64() * 1000.0 - interval_ms as f64;
        Some(NodeMetrics {
            event_loop_lag_ms: m.event_loop_lag_ms.max(overdue),
            ..m
        })
    }

    /// Forgets the figures of a process that is gone or replaced.
    pub fn clear_figures(&mut self) {
        self.cpu = 0.0;
        self.memory = 0;
        self.processes = 0;
        self.node = None;
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
    /// Why the app's `watch` paths are not watched, when they should be.
    #[serde(default)]
    pub watch_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_read_like_the_limits_users_write() {
        assert_eq!(short_size(300 << 20), "300M");
        assert_eq!(short_size(412 * (1 << 20) + 300_000), "412M");
        assert_eq!(short_size(80 * (1 << 20) + 400_000), "80.4M");
        assert_eq!(short_size(1 << 30), "1G");
        assert_eq!(short_size(3 << 29), "1.5G");
        assert_eq!(short_size(512 << 10), "512K");
        assert_eq!(short_size(100), "100");
        let e = MemoryExceeded {
            at: 0,
            memory: 412 << 20,
            limit: 300 << 20,
        };
        assert_eq!(e.describe(), "memory limit 300M exceeded (412M)");
    }

    #[test]
    fn an_overdue_report_shows_as_lag() {
        let mut st = InstanceState::new(0);
        assert_eq!(st.node_metrics(), None);
        let m = NodeMetrics {
            event_loop_lag_ms: 2.0,
            heap_used: 1,
            heap_total: 2,
            active_handles: 3,
        };
        st.node = Some((m, Instant::now(), 1000));
        assert_eq!(st.node_metrics(), Some(m), "a fresh report as it is");
        let late = Instant::now() - Duration::from_millis(4000);
        st.node = Some((m, late, 1000));
        let lag = st.node_metrics().unwrap().event_loop_lag_ms;
        assert!((3000.0..3500.0).contains(&lag), "{lag}");
        st.clear_figures();
        assert_eq!(st.node_metrics(), None);
    }
}
