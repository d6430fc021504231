//! A test double for the spawn seam: fake children that run nothing. The
//! test decides when each one exits, comes online or says ready, and sees
//! what the slot did to it; a stop signal makes a fake exit at once, as a
//! well-behaved app does. Nothing waits on a clock, so the order of what
//! happens is the order the test makes it happen.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};

use super::child::{Launch, ProcessExit, ProcessTree, RunningProcess, Spawned, Spawner};
use crate::cluster::channel::{ChannelEvent, Outgoing};

/// Far above any real pid (the kernel's limit is 2^22), so the metrics
/// sampler never mistakes a fake for a process of the machine.
const FIRST_PID: u32 = 1 << 30;

/// Hands every fake it spawns to the test, in spawn order.
pub(crate) struct FakeSpawner {
    spawned: mpsc::UnboundedSender<FakeChild>,
    next_pid: AtomicU32,
    /// How many of the next spawns to refuse.
    refusals: AtomicU32,
}

impl FakeSpawner {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<FakeChild>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let s = FakeSpawner {
            spawned: tx,
            next_pid: AtomicU32::new(FIRST_PID),
            refusals: AtomicU32::new(0),
        };
        (Arc::new(s), rx)
    }

    /// The next spawn fails as an exec the OS refuses would.
    pub fn refuse_next(&self) {
        self.refusals.fetch_add(1, Ordering::SeqCst);
    }
}

impl Spawner for FakeSpawner {
    fn spawn(&self, l: Launch<'_>) -> io::Result<RunningProcess> {
        let refuse = self
            .refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if refuse.is_ok() {
            return Err(io::Error::from_raw_os_error(
                nix::errno::Errno::EACCES as i32,
            ));
        }
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let (exit_tx, exit_rx) = watch::channel(None);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        // Node apps have an IPC channel; the fake keeps its far end open.
        let (outgoing, far_end) = match l.spec.node {
            true => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        let state = Arc::new(FakeState {
            exit: exit_tx,
            signals: Mutex::new(Vec::new()),
            _far_end: Mutex::new(far_end),
        });
        let _ = self.spawned.send(FakeChild {
            pid,
            state: state.clone(),
            events: events_tx,
        });
        Ok(RunningProcess::new(Spawned {
            pid,
            exit: exit_rx,
            events: events_rx,
            outgoing,
            channel_task: None,
            tree: Box::new(FakeTree(state)),
        }))
    }
}

struct FakeState {
    exit: watch::Sender<Option<ProcessExit>>,
    /// Every signal the slot sent, SIGKILL included.
    signals: Mutex<Vec<Signal>>,
    _far_end: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
}

impl FakeState {
    /// The first exit counts; a process exits once.
    fn exit_with(&self, code: Option<i32>, signal: Option<Signal>) {
        self.exit.send_if_modified(|e| {
            if e.is_some() {
                return false;
            }
            *e = Some(ProcessExit {
                code,
                signal: signal.map(|s| s as i32),
            });
            true
        });
    }

    fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }
}

struct FakeTree(Arc<FakeState>);

impl ProcessTree for FakeTree {
    fn signal_main(&self, sig: Signal) -> io::Result<()> {
        if self.0.exited() {
            return Err(io::Error::from_raw_os_error(
                nix::errno::Errno::ESRCH as i32,
            ));
        }
        self.0.signals.lock().unwrap().push(sig);
        Ok(())
    }

    fn signal_all(&self, sig: Signal) {
        self.0.signals.lock().unwrap().push(sig);
        self.0.exit_with(None, Some(sig));
    }

    fn kill_all(&self) {
        if !self.0.exited() {
            self.0.signals.lock().unwrap().push(Signal::SIGKILL);
        }
        self.0.exit_with(None, Some(Signal::SIGKILL));
    }

    fn alive(&self) -> bool {
        !self.0.exited()
    }
}

/// The test's end of one fake child.
pub(crate) struct FakeChild {
    pub pid: u32,
    state: Arc<FakeState>,
    events: mpsc::UnboundedSender<ChannelEvent>,
}

impl FakeChild {
    /// The process exits on its own with `code` (a crash, for the slot).
    pub fn exit(&self, code: i32) {
        self.state.exit_with(Some(code), None);
    }

    /// The process says something over its IPC channel.
    pub fn say(&self, ev: ChannelEvent) {
        let _ = self.events.send(ev);
    }

    /// The signals the slot sent this process so far.
    pub fn signals(&self) -> Vec<Signal> {
        self.state.signals.lock().unwrap().clone()
    }

    pub fn exited(&self) -> bool {
        self.state.exited()
    }
}
