//! From the supervisor's events to alerts: which events are alerts, what
//! each carries (the instance's restarts, uptime, last log lines), and who
//! receives them (the app's own `notify` receivers, else the daemon-wide
//! settings). Runs as a task on the event stream, so supervision never
//! waits for it; an app without receivers costs one lookup per event that
//! is an alert.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::broadcast;

use super::{Event, Inner, Supervisor};
use crate::clock::now_ms;
use crate::logs::Stream;
use crate::notify::alert::{classify, LOG_LINES};
use crate::notify::{Alert, AlertKind, Dispatcher, NotifyAnswer, Receiver, Routed};
use crate::process::spawn::Credentials;
use crate::settings::NotifySettings;

fn daemon_receivers(s: &NotifySettings) -> Vec<Receiver> {
    crate::notify::spec::receivers(&s.webhook, &s.slack, s.command.as_deref())
}

pub(super) fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Reads the event stream until the supervisor is gone.
pub(super) fn spawn(inner: Weak<Inner>, mut events: broadcast::Receiver<Event>) {
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) => {
                    let Some(inner) = inner.upgrade() else { return };
                    Supervisor { inner }.route_alert(&ev);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("alerts: {n} events were missed (the event stream ran ahead)");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

impl Supervisor {
    fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.inner.alerts
    }

    fn route_alert(&self, ev: &Event) {
        let Some((kind, message, mut details)) = classify(&ev.kind) else {
            return;
        };
        let settings = self.inner.settings.borrow().notify.clone();
        let (receivers, events, window_ms, run_as, restarts, uptime_ms) = {
            let reg = self.reg();
            let Some(app) = reg.app(&ev.app) else { return };
            let own = app.spec.notify.clone().unwrap_or_default();
            let receivers = if own.has_receivers() {
                crate::notify::spec::of_app(&own)
            } else {
                daemon_receivers(&settings)
            };
            if receivers.is_empty() {
                return;
            }
            let slot = app.slots.iter().find(|s| s.id == ev.id);
            let (restarts, uptime) = slot
                .map(|s| {
                    let st = s.st();
                    (st.restarts, st.last_exit.as_ref().map(|e| e.uptime_ms))
                })
                .unwrap_or((0, None));
            let run_as = Credentials::resolve(app.spec.uid.as_deref(), app.spec.gid.as_deref())
                .ok()
                .flatten();
            (
                receivers,
                own.events.or(settings.events.clone()),
                own.throttle_ms.unwrap_or(settings.throttle_ms),
                run_as,
                restarts,
                uptime,
            )
        };
        if events.as_ref().is_some_and(|e| !e.contains(&kind)) {
            return;
        }
        details["restarts"] = restarts.into();
        if kind == AlertKind::Crash {
            details["uptime_ms"] = uptime_ms.into();
        }
        let logs = self
            .inner
            .shared
            .histories
            .get(ev.id)
            .map(|h| {
                h.tail(LOG_LINES, true, true)
                    .lines
                    .into_iter()
                    .rev()
                    .take(LOG_LINES)
                    .rev()
                    .map(|l| match l.stream {
                        Stream::Err => format!("[err] {}", l.line),
                        Stream::Out => l.line,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let alert = Alert {
            event: kind,
            host: host_name(),
            app: Some(ev.app.clone()),
            id: Some(ev.id),
            instance: Some(ev.instance),
            pid: ev.pid,
            time: rfc3339(ev.time),
            time_ms: ev.time,
            message,
            details,
            logs,
            suppressed: 0,
        };
        self.dispatcher().submit(Routed {
            alert,
            receivers,
            window_ms,
            run_as,
            timeout: Duration::from_millis(settings.timeout_ms),
        });
    }

    /// The daemon came back after one that did not exit cleanly.
    pub fn alert_daemon_started(&self, detail: String) {
        let settings = self.inner.settings.borrow().notify.clone();
        let receivers = daemon_receivers(&settings);
        if receivers.is_empty()
            || settings
                .events
                .as_ref()
                .is_some_and(|e| !e.contains(&AlertKind::Daemon))
        {
            return;
        }
        let now = now_ms();
        self.dispatcher().submit(Routed {
            alert: Alert {
                event: AlertKind::Daemon,
                host: host_name(),
                app: None,
                id: None,
                instance: None,
                pid: Some(std::process::id()),
                time: rfc3339(now),
                time_ms: now,
                message: detail,
                details: serde_json::json!({}),
                logs: Vec::new(),
                suppressed: 0,
            },
            receivers,
            window_ms: settings.throttle_ms,
            run_as: None,
            timeout: Duration::from_millis(settings.timeout_ms),
        });
    }

    /// `pmr notify test`: a test alert to every receiver (the daemon-wide
    /// ones and each app's own), one attempt each, and every answer.
    pub async fn notify_test(&self) -> Vec<NotifyAnswer> {
        let settings = self.inner.settings.borrow().notify.clone();
        let mut receivers: Vec<Receiver> = daemon_receivers(&settings);
        for app in &self.reg().apps {
            if let Some(n) = &app.spec.notify {
                for r in crate::notify::spec::of_app(n) {
                    if !receivers.contains(&r) {
                        receivers.push(r);
                    }
                }
            }
        }
        let now = now_ms();
        let alert = Alert {
            event: AlertKind::Test,
            host: host_name(),
            app: None,
            id: None,
            instance: None,
            pid: Some(std::process::id()),
            time: rfc3339(now),
            time_ms: now,
            message: "a test alert from pmr notify test".into(),
            details: serde_json::json!({}),
            logs: Vec::new(),
            suppressed: 0,
        };
        self.dispatcher()
            .test(receivers, alert, Duration::from_millis(settings.timeout_ms))
            .await
    }
}
