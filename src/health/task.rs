//! The schedule of one process's health checks: a task that checks every
//! `interval` and reports each result to the instance's slot, which owns
//! the state machine and decides. The task ends with its handle (the
//! process's replacement or exit drops it), so a check never outlives the
//! process it checks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::check::{self, Outcome, Subject};
use super::state::Tracker;
use crate::notify::http::Client;
use crate::spec::health::HealthCheck;

/// What the task tells the slot.
#[derive(Debug)]
pub enum ProbeMsg {
    /// Ask the process for its private check port (the preload answers).
    NeedPort,
    Result(Outcome),
}

/// The checks of one running process, as its slot holds them.
pub struct Probing {
    pub pid: u32,
    pub started: Instant,
    pub tracker: Tracker,
    pub rx: mpsc::UnboundedReceiver<ProbeMsg>,
    pub port: watch::Sender<Option<u16>>,
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

/// How long a check waits for the process to name its check port before it
/// counts as a failure.
const PORT_WAIT: Duration = Duration::from_millis(500);

impl Probing {
    pub fn start(
        check: Arc<HealthCheck>,
        subject: Subject,
        client: Client,
        started: Instant,
    ) -> Probing {
        let (tx, rx) = mpsc::unbounded_channel();
        let (port, port_rx) = watch::channel(None);
        let pid = subject.pid;
        let task = tokio::spawn(schedule(check.clone(), subject, client, tx, port_rx));
        Probing {
            pid,
            started,
            tracker: Tracker::new(check.failures, check.start_period_ms),
            rx,
            port,
            check,
            last: None,
            task,
        }
    }
}

async fn schedule(
    check: Arc<HealthCheck>,
    subject: Subject,
    client: Client,
    tx: mpsc::UnboundedSender<ProbeMsg>,
    mut port: watch::Receiver<Option<u16>>,
) {
    let interval = Duration::from_millis(check.interval_ms);
    let needs_port = check.probe.http_path().is_some();
    if needs_port && tx.send(ProbeMsg::NeedPort).is_err() {
        return;
    }
    let mut next = Instant::now() + interval;
    loop {
        tokio::time::sleep_until(next).await;
        next += interval;
        if needs_port && port.borrow().is_none() {
            if tx.send(ProbeMsg::NeedPort).is_err() {
                return;
            }
            let _ = tokio::time::timeout(PORT_WAIT, port.changed()).await;
        }
        let own_port = *port.borrow();
        let outcome = check::run(&check, &subject, own_port, &client).await;
        if tx.send(ProbeMsg::Result(outcome)).is_err() {
            return;
        }
        // A check slower than the interval: the next one starts a full
        // interval later, not at once.
        let now = Instant::now();
        if next < now {
            next = now + interval;
        }
    }
}
