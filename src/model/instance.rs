//! What pmr publishes about one instance: its status, its `jlist` row
//! (`InstanceInfo`), what `describe` adds (`Description`), and the figures
//! and records inside them.

use serde::{Deserialize, Serialize};

use super::event::Event;
use crate::logs::LogPaths;
use crate::spec::{AppSpec, ExecMode};

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
    /// Health checks failed, or the event loop stayed blocked.
    Health,
}

impl RestartReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::Crash => "crash",
            RestartReason::Memory => "memory",
            RestartReason::Watch => "watch",
            RestartReason::Cron => "cron",
            RestartReason::User => "user",
            RestartReason::Health => "health",
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
    #[serde(default)]
    pub health: u32,
}

impl RestartCounts {
    pub fn add(&mut self, r: RestartReason) {
        match r {
            RestartReason::Crash => self.crash += 1,
            RestartReason::Memory => self.memory += 1,
            RestartReason::Watch => self.watch += 1,
            RestartReason::Cron => self.cron += 1,
            RestartReason::User => self.user += 1,
            RestartReason::Health => self.health += 1,
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

/// A cluster worker's connections, when the supervisor hands them out
/// (every policy but `shared`), since its process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    /// Open now (accepted minus those the worker reported closed; the
    /// closes arrive in batches, a few tens of milliseconds late).
    pub open: u64,
    /// Handed to the worker and taken by it.
    pub accepted: u64,
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

/// What an instance's health checks say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No check has passed yet since the process started.
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// The health of a running instance (absent without a check or a
/// `max_event_loop_lag`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthInfo {
    pub status: HealthStatus,
    /// `http`, `tcp`, `command`, or `event_loop` (the watchdog alone).
    pub check: String,
    /// When the last check ran, in milliseconds since the epoch.
    pub last_check_at: Option<u64>,
    /// What the last check said (`HTTP 200`, `no answer within 2000 ms`).
    pub last_result: Option<String>,
    pub consecutive_failures: u32,
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
    /// Health checks and the event-loop watchdog, when configured.
    #[serde(default)]
    pub health: Option<HealthInfo>,
    /// The worker's connections (cluster mode, balanced policies).
    #[serde(default)]
    pub connections: Option<Connections>,
}

/// What `describe` returns for one instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Description {
    pub info: InstanceInfo,
    pub spec: AppSpec,
    pub history: Vec<Event>,
    pub sockets: Vec<String>,
    /// The kernel spreads the connections of these sockets over a socket
    /// per worker (`round-robin` where the kernel allows it).
    #[serde(default)]
    pub kernel_steered: bool,
    /// Why the app's `watch` paths are not watched, when they should be.
    #[serde(default)]
    pub watch_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
