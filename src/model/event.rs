//! The event stream: what happened to an instance (spawned, online, exited,
//! restarting, a reload step...), as subscribers and `describe`'s history
//! see it, and the line `pmr logs` prints for each.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::instance::{short_size, RestartReason};

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
    /// Health checks failed `failures` times in a row, or the event loop
    /// stayed blocked past `max_event_loop_lag`: a replacement follows.
    Unhealthy {
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
                    // The slot still holds the old process, which serves on.
                    ReloadStep::Failed => {
                        let old = self
                            .pid
                            .map(|p| format!(" (old pid {p} keeps serving)"))
                            .unwrap_or_default();
                        return match detail {
                            Some(d) => format!("reload failed{old}: {d}"),
                            None => format!("reload failed{old}"),
                        };
                    }
                };
                // The steps' detail names the old and the new pid; the
                // event's own pid is left out because it is the old one
                // before the replacement is ready and the new one after.
                match detail {
                    Some(d) => format!("{s}: {d}"),
                    None => s.to_string(),
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
            EventKind::Unhealthy { detail } => format!("unhealthy{pid}: {detail}; replacing it"),
        }
    }
}
