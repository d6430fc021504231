//! Adoption: a daemon started after one died (or after `pmr update` handed
//! over) takes the processes its predecessor left running instead of
//! starting new ones. Each slot that would spawn asks the `AdoptingSpawner`
//! first; a process still alive whose pipes and channel the keeper kept is
//! wrapped as if just spawned — exit seen through its pidfd, exit status
//! from the keeper (its parent now), pipes read again from where the dead
//! daemon stopped — and carries its restart counts on.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

use super::child::{
    start_capture, Carried, Launch, OsSpawner, OsTree, ProcessExit, RunningProcess, Spawned,
    Spawner,
};
use crate::cluster::channel::{Channel, ChannelEvent};
use crate::model::RestartCounts;
use crate::process::pidfd::Pidfd;
use crate::process::scope::KillScope;
use crate::spec::ExecMode;

/// How long an exit status may take to come from the keeper.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// A process a previous daemon left, with what the keeper kept for it.
#[derive(Debug)]
pub(crate) struct Adoptee {
    pub pid: u32,
    pub cgroup: Option<PathBuf>,
    pub restarts: u32,
    pub reasons: RestartCounts,
    pub started_at: u64,
    pub listening: Vec<String>,
    pub out: OwnedFd,
    pub err: OwnedFd,
    pub ipc: Option<OwnedFd>,
}

/// A listening socket the keeper kept: Node's key, the keeper's tag, the socket.
#[derive(Debug)]
struct KeptListener {
    key: String,
    tag: String,
    fd: OwnedFd,
}

/// What a daemon can adopt: processes by (app, instance), and each
/// cluster app's listening sockets.
#[derive(Debug, Default)]
pub(crate) struct Adoptions {
    procs: Mutex<HashMap<(String, u32), Adoptee>>,
    listeners: Mutex<HashMap<String, Vec<KeptListener>>>,
}

impl Adoptions {
    pub fn add_process(&self, app: String, instance: u32, a: Adoptee) {
        lock(&self.procs).insert((app, instance), a);
    }

    pub fn add_listener(&self, app: String, key: String, tag: String, fd: OwnedFd) {
        lock(&self.listeners)
            .entry(app)
            .or_default()
            .push(KeptListener { key, tag, fd });
    }

    /// What no slot claimed (an app deleted from the saved list meanwhile).
    pub fn unclaimed(&self) -> Vec<Adoptee> {
        lock(&self.procs).drain().map(|(_, a)| a).collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The daemon's spawner: adopts where it can, spawns otherwise.
pub(crate) struct AdoptingSpawner {
    pub adoptions: Arc<Adoptions>,
}

impl Spawner for AdoptingSpawner {
    fn spawn(&self, l: Launch<'_>) -> io::Result<RunningProcess> {
        if let Some(pool) = l.pool {
            pool.set_owner(&l.spec.name);
            // New workers must get the very socket the old ones listen on.
            let mut kept = lock(&self.adoptions.listeners)
                .remove(&l.spec.name)
                .unwrap_or_default();
            // A steered address's group is made from a worker's slot; its
            // overflow socket joins it after.
            kept.sort_by_key(|k| {
                crate::cluster::steered::parse_slot_key(&k.key)
                    .is_some_and(|(_, s)| s == crate::cluster::steered::SlotName::Overflow)
            });
            for k in kept {
                if let Err(e) = pool.adopt(k.key, k.tag, k.fd) {
                    tracing::warn!(app = %l.spec.name, "cannot take over a listening socket: {e}");
                }
            }
        }
        let adoptee = lock(&self.adoptions.procs).remove(&(l.spec.name.clone(), l.instance));
        match adoptee {
            Some(a) => {
                let pid = a.pid;
                adopt(&l, a).or_else(|e| {
                    tracing::warn!(app = %l.spec.name, pid, "cannot adopt the process: {e}; starting a new one");
                    OsSpawner.spawn(l)
                })
            }
            None => OsSpawner.spawn(l),
        }
    }
}

/// Wraps a live process of a previous daemon as this slot's process.
fn adopt(l: &Launch<'_>, a: Adoptee) -> io::Result<RunningProcess> {
    let pidfd = Pidfd::open(a.pid)?;
    // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it (open,
    // same description) until it is dropped.
    let readiness = unsafe { AsyncFd::register(pidfd.try_clone_fd()?) }.map_err(io::Error::from)?;
    let cgroup = a
        .cgroup
        .as_deref()
        .and_then(crate::process::cgroup::AppCgroup::open);
    let scope = Arc::new(KillScope::new(a.pid, Some(pidfd), cgroup));
    if !l.shared.scopes.register(a.pid, &scope) {
        return Err(io::Error::other(
            "not adopted: the supervisor's host is exiting",
        ));
    }
    start_capture(
        l,
        tokio::net::unix::pipe::Receiver::from_owned_fd(a.out)?,
        tokio::net::unix::pipe::Receiver::from_owned_fd(a.err)?,
    );

    let (exit_tx, exit_rx) = watch::channel(None);
    let pid = a.pid;
    tokio::spawn(async move {
        // A pidfd turns readable when its process exits; the keeper, its
        // parent now, reaps it and says how it ended.
        let _ = readiness.readable().await;
        let exit = match crate::keeper::client::reaped(pid, REAP_WAIT).await {
            Some(r) => ProcessExit {
                code: r.code,
                signal: r.signal,
            },
            None => ProcessExit {
                code: None,
                signal: None,
            },
        };
        super::child::forget_with_keeper(pid);
        let _ = exit_tx.send(Some(exit));
    });

    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    // It said these to the dead daemon already; the slot needs to hear them.
    let _ = ev_tx.send(ChannelEvent::Online);
    for address in &a.listening {
        let _ = ev_tx.send(ChannelEvent::Listening(address.clone()));
    }
    if l.spec.wait_ready {
        let _ = ev_tx.send(ChannelEvent::Ready);
    }
    let mut load = None;
    let mut worker = None;
    let (outgoing, channel_task) = match a.ipc {
        Some(fd) => {
            let mut ch = Channel::new(fd, l.pool.cloned(), ev_tx)?;
            worker = Some(ch.token());
            if l.spec.exec_mode == ExecMode::Cluster {
                ch.rejoin(a.pid);
                load = l
                    .pool
                    .is_some_and(|p| p.policy() != crate::cluster::balance::Policy::Shared)
                    .then(|| ch.load());
            }
            let (out_tx, out_rx) = mpsc::unbounded_channel();
            (Some(out_tx), Some(tokio::spawn(ch.run(out_rx))))
        }
        None => (None, None),
    };
    let mut p = RunningProcess::new(Spawned {
        pid: a.pid,
        exit: exit_rx.clone(),
        events: ev_rx,
        outgoing,
        channel_task,
        tree: Box::new(OsTree {
            pid: a.pid,
            exit: exit_rx,
            scope,
        }),
    });
    p.load = load;
    p.worker = worker;
    p.carried = Some(Carried {
        restarts: a.restarts,
        reasons: a.reasons,
        started_at: a.started_at,
    });
    Ok(p)
}
