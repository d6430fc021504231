//! The schedule of one process's health checks: a task that checks every
//! `interval` and reports each result to the instance's slot, which owns
//! the state machine and decides. The task ends with its handle (the
//! process's replacement or exit drops it), so a check never outlives the
//! process it checks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::check::{self, AskPreload, Outcome, Subject};
use super::state::Tracker;
use crate::notify::http::Client;
use crate::spec::health::HealthCheck;

/// The checks of one running process, as its slot holds them.
pub struct Probing {
    pub pid: u32,
    pub started: Instant,
    pub tracker: Tracker,
    pub rx: mpsc::UnboundedReceiver<Outcome>,
    pub check: Arc<HealthCheck>,
    /// The last check: when (ms since the epoch) and what it said.
    pub last: Option<(u64, Outcome)>,
    task: JoinHandle<()>,
}

impl Drop for Probing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Probing {
    pub(crate) fn start(
        check: Arc<HealthCheck>,
        subject: Subject,
        preload: impl AskPreload + 'static,
        client: Client,
        started: Instant,
    ) -> Probing {
        let (tx, rx) = mpsc::unbounded_channel();
        let pid = subject.pid;
        let task = tokio::spawn(schedule(check.clone(), subject, preload, client, tx));
        Probing {
            pid,
            started,
            tracker: Tracker::new(check.failures, check.start_period_ms),
            rx,
            check,
            last: None,
            task,
        }
    }
}

/// The first check time after `now` on a grid of `interval` shared by the
/// whole daemon: the checks of every process with the same interval fall
/// due at the same instants, so the daemon wakes once per interval for all
/// of them rather than once per process (each wake-up of an idle daemon
/// costs more than the IPC round trip of a check). The first check of a
/// new process comes within one interval of its start, as before.
fn aligned(now: Instant, interval: Duration) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let step = interval.as_nanos().max(1);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let ticks = since / step + 1;
    epoch + Duration::from_nanos(u64::try_from(ticks * step).unwrap_or(u64::MAX))
}

async fn schedule(
    check: Arc<HealthCheck>,
    subject: Subject,
    mut preload: impl AskPreload,
    client: Client,
    tx: mpsc::UnboundedSender<Outcome>,
) {
    let interval = Duration::from_millis(check.interval_ms);
    let mut next = aligned(Instant::now(), interval);
    loop {
        tokio::time::sleep_until(next).await;
        next += interval;
        let outcome = check::run(&check, &subject, &mut preload, &client).await;
        if tx.send(outcome).is_err() {
            return;
        }
        // A check slower than the interval: the next one is at the next
        // instant of the grid, not at once.
        let now = Instant::now();
        if next < now {
            next = aligned(now, interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_of_the_same_interval_fall_due_together() {
        let i = Duration::from_millis(5000);
        // A point of the grid, whenever the grid began.
        let point = aligned(Instant::now(), i) - i;
        let a = aligned(point + Duration::from_millis(1), i);
        let b = aligned(point + Duration::from_millis(1234), i);
        assert_eq!(a, b, "two processes started apart share the instant");
        assert_eq!(a, point + i);
        let c = aligned(a, i);
        assert_eq!(c, a + i, "on the instant itself: the next one");
    }
}
