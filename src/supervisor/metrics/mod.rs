//! The sampler task: every `metrics.interval` it scans the process table
//! once (`linux` or `portable`), sums each running instance's process tree
//! (`tree`: an app that leaks through a child is still caught), writes the
//! figures into the instances' state, and asks a slot to replace its
//! process when the memory limit rule (`crate::policy::memory`) says so.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(target_os = "linux"))]
mod portable;
mod tree;

#[cfg(target_os = "linux")]
use linux as os;
#[cfg(not(target_os = "linux"))]
use portable as os;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::slot::SlotCommand;
use super::state::{InstanceState, Status};
use super::Inner;
use crate::policy::memory::MemoryWatch;
use crate::settings::Settings;
use tree::{CpuTracker, ProcSample};

/// The resident memory of one process, read at once: what `list` shows for
/// an instance the sampler has not reached yet (a start just returned)
/// rather than nothing. 0 where it cannot be read.
pub(super) fn first_memory(pid: u32) -> u64 {
    #[cfg(target_os = "linux")]
    {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .filter(|v| *v > 0)
            .unwrap_or(4096) as u64;
        // statm: size, then resident, in pages.
        std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * page)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        0
    }
}

/// What the sampler needs of one running instance, taken under the registry lock.
struct Target {
    slot: u32,
    pid: u32,
    limit: Option<u64>,
    state: Arc<Mutex<InstanceState>>,
    tx: mpsc::UnboundedSender<SlotCommand>,
}

/// The state the blocking part of a tick carries from one tick to the next.
struct Sampler {
    scanner: os::Scanner,
    procs: Vec<ProcSample>,
    cpu: CpuTracker,
}

pub(super) fn spawn_sampler(inner: Weak<Inner>, mut settings: watch::Receiver<Settings>) {
    tokio::spawn(async move {
        let scanner = match os::Scanner::new() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("no CPU or memory figures on this system: {e}");
                return;
            }
        };
        let mut sampler = Some(Sampler {
            scanner,
            procs: Vec::new(),
            cpu: CpuTracker::default(),
        });
        let mut watches: HashMap<u32, MemoryWatch> = HashMap::new();
        loop {
            let ms = settings.borrow_and_update().metrics.interval_ms.max(1);
            let period = Duration::from_millis(ms);
            // Ticks fall on multiples of the interval in wall-clock time, as
            // the preload's reports do: one wake-up serves both.
            let to_boundary = Duration::from_millis(ms - crate::clock::now_ms() % ms);
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + to_boundary, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    changed = settings.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if settings.borrow().metrics.interval_ms != period.as_millis() as u64 {
                            break;
                        }
                        continue;
                    }
                }
                let Some(targets) = targets(&inner) else {
                    return;
                };
                let Some(mut s) = sampler.take() else { return };
                let now = Instant::now();
                if targets.is_empty() {
                    s.cpu.reset(now);
                    watches.clear();
                    sampler = Some(s);
                    continue;
                }
                let roots: HashSet<u32> = targets.iter().map(|t| t.pid).collect();
                // Reading /proc is blocking file I/O: off the runtime's workers.
                let joined = tokio::task::spawn_blocking(move || {
                    let usage = match s.scanner.scan(&mut s.procs) {
                        Ok(()) => Ok(s.cpu.usage(&s.procs, &roots, now)),
                        Err(e) => Err(e),
                    };
                    (s, usage)
                })
                .await;
                let Ok((s, usage)) = joined else {
                    tracing::warn!("the metrics sampler stopped");
                    return;
                };
                sampler = Some(s);
                let usage = match usage {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!("cannot read the process table: {e}");
                        continue;
                    }
                };
                watches.retain(|slot, _| targets.iter().any(|t| t.slot == *slot));
                for t in targets {
                    let u = usage.get(&t.pid).copied().unwrap_or_default();
                    let watched = {
                        let mut st = t.state.lock().unwrap_or_else(|e| e.into_inner());
                        if st.pid != Some(t.pid) {
                            continue;
                        }
                        st.cpu = u.cpu;
                        st.memory = u.memory;
                        st.processes = u.processes;
                        matches!(st.status, Status::Online | Status::Launching)
                    };
                    let watch = watches.entry(t.slot).or_default();
                    let limit = t.limit.filter(|_| watched);
                    if watch.sample(t.pid, u.memory, limit) {
                        if let Some(limit) = limit {
                            let _ = t.tx.send(SlotCommand::MemoryLimit {
                                pid: t.pid,
                                memory: u.memory,
                                limit,
                            });
                        }
                    }
                }
            }
        }
    });
}

/// The running instances; None once the supervisor is gone.
fn targets(inner: &Weak<Inner>) -> Option<Vec<Target>> {
    let inner = inner.upgrade()?;
    let reg = inner.registry.lock().unwrap_or_else(|e| e.into_inner());
    Some(
        reg.apps
            .iter()
            .flat_map(|a| a.slots.iter().map(move |s| (a, s)))
            .filter_map(|(a, s)| {
                let pid = s.st().pid?;
                Some(Target {
                    slot: s.id,
                    pid,
                    limit: a.spec.max_memory_restart,
                    state: s.state.clone(),
                    tx: s.tx.clone(),
                })
            })
            .collect(),
    )
}
