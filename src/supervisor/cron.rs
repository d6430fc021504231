//! `cron_restart`: a task per app that replaces the app's instances on
//! schedule (through the reload path: zero downtime in cluster mode), in
//! the daemon's local time.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Local};

use super::{AbortOnDrop, Inner, RestartReason, Supervisor};
use crate::spec::cron::Schedule;

/// The longest single sleep: waking up now and then keeps the schedule on
/// the wall clock when it jumps (NTP, a suspended machine).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A running schedule; dropping it ends it.
pub(super) struct Scheduled {
    pub pattern: String,
    /// The next run, in milliseconds since the epoch.
    next: Arc<Mutex<Option<u64>>>,
    _task: AbortOnDrop,
}

impl Scheduled {
    pub fn next_ms(&self) -> Option<u64> {
        *self.next.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) fn start(sup: Weak<Inner>, app: String, pattern: String) -> Result<Scheduled, String> {
    let schedule = Schedule::parse(&pattern)?;
    let next = Arc::new(Mutex::new(None));
    let task = tokio::spawn(run(sup, app, pattern.clone(), schedule, next.clone()));
    Ok(Scheduled {
        pattern,
        next,
        _task: AbortOnDrop(task),
    })
}

async fn run(
    sup: Weak<Inner>,
    app: String,
    pattern: String,
    schedule: Schedule,
    next: Arc<Mutex<Option<u64>>>,
) {
    loop {
        let at = schedule.next_after(&Local::now());
        *next.lock().unwrap_or_else(|e| e.into_inner()) =
            at.map(|t| t.timestamp_millis().max(0) as u64);
        let Some(at) = at else {
            tracing::warn!(app, "cron_restart {pattern} never matches again");
            return;
        };
        wait_until(at).await;
        let Some(inner) = sup.upgrade() else { return };
        Supervisor { inner }
            .replace_app(&app, RestartReason::Cron, format!("cron_restart {pattern}"))
            .await;
    }
}

async fn wait_until(at: DateTime<Local>) {
    loop {
        let Ok(left) = (at - Local::now()).to_std() else {
            return;
        };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(MAX_SLEEP)).await;
    }
}
