//! An alert as receivers get it: built from a supervisor event (pure), and
//! written as pmr's JSON payload or as a Slack-compatible body.

use serde::Serialize;
use serde_json::{json, Value};

use super::spec::AlertKind;
use crate::model::{short_size, EventKind, ReloadStep};

/// How many of the instance's last log lines an alert carries.
pub const LOG_LINES: usize = 20;

/// The payload every webhook receives (and a command reads on stdin).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub event: AlertKind,
    pub host: String,
    pub app: Option<String>,
    pub id: Option<u32>,
    pub instance: Option<u32>,
    pub pid: Option<u32>,
    /// RFC 3339, UTC.
    pub time: String,
    pub time_ms: u64,
    /// One line for a person.
    pub message: String,
    /// What this kind of event adds (exit code, signal, uptime, restarts,
    /// reason, memory...).
    pub details: Value,
    /// The instance's last lines, both streams, oldest first (`[err] ` marks stderr).
    pub logs: Vec<String>,
    /// A summary of this many alerts of the same kind for the same app
    /// that were held back by the rate limit (0: a single alert).
    pub suppressed: u32,
}

/// What an event is, as an alert: its kind, a message, details. Events
/// that are no alert give None.
pub fn classify(kind: &EventKind) -> Option<(AlertKind, String, Value)> {
    Some(match kind {
        EventKind::Exit {
            code,
            signal,
            expected: false,
        } => {
            let how = match (signal, code) {
                (Some(s), _) => format!("killed by {s}"),
                (None, Some(c)) => format!("exited with code {c}"),
                (None, None) => "exited".into(),
            };
            (
                AlertKind::Crash,
                format!("crashed: {how}"),
                json!({ "exit_code": code, "signal": signal }),
            )
        }
        EventKind::Errored { reason } => (
            AlertKind::Errored,
            format!("errored, not restarted again: {reason}"),
            json!({ "reason": reason }),
        ),
        EventKind::MemoryLimit { limit, memory } => (
            AlertKind::Memory,
            format!(
                "over its memory limit ({} > {}): replaced",
                short_size(*memory),
                short_size(*limit)
            ),
            json!({ "memory": memory, "limit": limit }),
        ),
        EventKind::Unhealthy { detail } => (
            AlertKind::Health,
            format!("unhealthy: {detail}; replaced"),
            json!({ "reason": detail }),
        ),
        EventKind::Reload {
            step: ReloadStep::Failed,
            detail,
        } => (
            AlertKind::ReloadFailed,
            format!(
                "reload failed, the old process serves on: {}",
                detail.as_deref().unwrap_or("no detail")
            ),
            json!({ "reason": detail }),
        ),
        _ => return None,
    })
}

impl Alert {
    /// The line a person reads first: who, where, what.
    pub fn headline(&self) -> String {
        let who = match (&self.app, self.instance, self.pid) {
            (Some(a), Some(i), Some(p)) => format!("{a} (instance {i}, pid {p})"),
            (Some(a), Some(i), None) => format!("{a} (instance {i})"),
            (Some(a), _, _) => a.clone(),
            (None, _, _) => "pmr".into(),
        };
        format!("{who} on {}: {}", self.host, self.message)
    }

    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `{"text": ...}`: what Slack's incoming webhooks take, and Mattermost's,
    /// and Discord's `/slack` endpoint. The log lines go in a code block.
    pub fn slack_body(&self) -> Vec<u8> {
        let mut text = format!("*pmr* {}: {}", self.event.as_str(), self.headline());
        if !self.logs.is_empty() {
            // Triple backticks inside a log line would end the block early.
            let lines: Vec<String> = self.logs.iter().map(|l| l.replace("```", "'''")).collect();
            text.push_str(&format!("\n```\n{}\n```", lines.join("\n")));
        }
        serde_json::to_vec(&json!({ "text": text })).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            event: AlertKind::Crash,
            host: "web1".into(),
            app: Some("api".into()),
            id: Some(3),
            instance: Some(1),
            pid: Some(4242),
            time: "2026-12-01T10:00:00.000Z".into(),
            time_ms: 0,
            message: "crashed: exited with code 1".into(),
            details: json!({"exit_code": 1}),
            logs: vec!["listening".into(), "[err] Error: ```boom```".into()],
            suppressed: 0,
        }
    }

    #[test]
    fn events_that_are_alerts() {
        let crash = EventKind::Exit {
            code: Some(1),
            signal: None,
            expected: false,
        };
        let (k, m, d) = classify(&crash).unwrap();
        assert_eq!(
            (k, m.as_str()),
            (AlertKind::Crash, "crashed: exited with code 1")
        );
        assert_eq!(d["exit_code"], 1);
        let asked = EventKind::Exit {
            code: Some(0),
            signal: None,
            expected: true,
        };
        assert!(classify(&asked).is_none(), "a stop is no crash");
        assert!(classify(&EventKind::Online).is_none());
        let (k, ..) = classify(&EventKind::Unhealthy { detail: "x".into() }).unwrap();
        assert_eq!(k, AlertKind::Health);
    }

    #[test]
    fn payload_and_slack_body() {
        let a = alert();
        let v: Value = serde_json::from_slice(&a.payload()).unwrap();
        assert_eq!(v["event"], "crash");
        assert_eq!(v["app"], "api");
        assert_eq!(v["pid"], 4242);
        assert_eq!(v["logs"].as_array().unwrap().len(), 2);
        let s: Value = serde_json::from_slice(&a.slack_body()).unwrap();
        let text = s["text"].as_str().unwrap();
        assert!(
            text.starts_with("*pmr* crash: api (instance 1, pid 4242) on web1: crashed"),
            "{text}"
        );
        assert!(text.contains("'''boom'''"), "{text}");
        assert_eq!(text.matches("```").count(), 2);
    }
}
