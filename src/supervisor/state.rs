//! The live state of one instance as its slot task keeps it, and the bits
//! of history `describe` shows. The published types built from it live in
//! `crate::model`; they are re-exported here for the paths callers use.

use std::collections::VecDeque;
use std::time::Instant;

pub use crate::model::{
    short_size, Description, Event, EventKind, ExitRecord, HealthInfo, InstanceInfo,
    MemoryExceeded, NodeMetrics, ReloadStep, RestartCounts, RestartReason, Status,
};

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
    /// What the health checks (or the event-loop watchdog) say.
    pub health: Option<HealthInfo>,
    /// The current process's connections, counted by its IPC channel.
    pub load: Option<std::sync::Arc<crate::cluster::distribute::WorkerLoad>>,
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
            health: None,
            load: None,
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
        self.load = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
