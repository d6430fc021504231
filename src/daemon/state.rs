//! `$PMR_HOME/state.json`: what the daemon runs, rewritten as it changes and
//! removed on a clean exit. A daemon that finds it at start knows the
//! previous one died (kill -9, OOM killer): it stops the processes that one
//! left running — each named by pid and start time, so a recycled pid is
//! never touched — and brings its apps back, instead of starting duplicates
//! that would fail on ports still held. Under a keeper that kept their
//! pipes and channels, it adopts them instead (`Recovery::adoptions`): the
//! apps never stop.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::Result;
use crate::process::group::{group_alive, process_start, signal_group};
use crate::process::signal::parse_signal;
use crate::supervisor::{SavedApp, Supervisor};

const STATE_VERSION: u32 = 1;

/// Writes follow changes by at most this much, so a burst of events
/// (a restart storm) costs one write.
const DEBOUNCE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub daemon_pid: u32,
    pub apps: Vec<SavedApp>,
    pub processes: Vec<Tracked>,
    /// Written by a daemon that exits to be replaced (`pmr update`), not one that died.
    #[serde(default)]
    pub handoff: bool,
}

/// A process the daemon runs, as the next daemon can recognize it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub app: String,
    pub id: u32,
    pub pid: u32,
    /// Clock ticks since boot when it started.
    pub start: u64,
    pub kill_signal: String,
    pub kill_timeout_ms: u64,
    /// Its cgroup, when it had one: it holds even processes that left the group.
    #[serde(default)]
    pub cgroup: Option<std::path::PathBuf>,
    /// Which instance of the app it is (0-based), for adoption.
    #[serde(default)]
    pub instance: u32,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default)]
    pub restart_reasons: crate::model::RestartCounts,
    #[serde(default)]
    pub started_at: Option<u64>,
    /// The addresses it listens on (a cluster worker's, as `describe` shows).
    #[serde(default)]
    pub listening: Vec<String>,
}

pub fn snapshot(sup: &Supervisor) -> State {
    let apps = sup.saved_apps();
    let processes = sup
        .list()
        .into_iter()
        .filter_map(|i| {
            let pid = i.pid?;
            let spec = &apps.iter().find(|a| a.spec.name == i.name)?.spec;
            Some(Tracked {
                app: i.name,
                id: i.id,
                pid,
                start: process_start(pid)?,
                kill_signal: spec.kill_signal.to_string(),
                kill_timeout_ms: spec.kill_timeout_ms,
                cgroup: i
                    .kill_scope
                    .as_deref()
                    .and_then(|s| s.strip_prefix("cgroup "))
                    .map(std::path::PathBuf::from),
                instance: i.instance,
                restarts: i.restarts,
                restart_reasons: i.restart_reasons,
                started_at: i.started_at,
                listening: i.listening,
            })
        })
        .collect();
    State {
        version: STATE_VERSION,
        daemon_pid: std::process::id(),
        apps,
        processes,
        handoff: false,
    }
}

pub fn write(path: &Path, state: &State) -> Result<()> {
    let text = serde_json::to_vec(state)
        .map_err(|e| crate::Error::Config(format!("cannot encode the state: {e}")))?;
    crate::atomic_file::write_atomic(path, &text, None)
}

/// Keeps the state file current until the returned task is aborted.
pub fn keep(sup: Supervisor, path: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = sup.subscribe_events();
        loop {
            if let Err(e) = write(&path, &snapshot(&sup)) {
                tracing::warn!("{e}");
            }
            // Wait for a change, then let the burst it belongs to settle.
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = events.recv().await {
                return;
            }
            tokio::time::sleep(DEBOUNCE).await;
            while events.try_recv().is_ok() {}
        }
    })
}

/// What a daemon learned from its predecessor's state file.
#[derive(Debug, Default)]
pub struct Recovery {
    pub apps: Vec<SavedApp>,
    pub notices: Vec<String>,
    /// The previous daemon handed over on purpose (`pmr update`): no one
    /// needs to hear about it.
    pub handoff: bool,
    /// The live processes (and sockets) the keeper kept, for the slots.
    #[cfg(target_os = "linux")]
    pub adoptions: std::sync::Arc<crate::supervisor::adopt::Adoptions>,
}

/// The processes named by kept pipes that the state does not list and
/// that are children of our keeper (so their pid names them still).
#[cfg(target_os = "linux")]
fn untracked_orphans(kept: &crate::keeper::client::Inherited, listed: &[Tracked]) -> Vec<Tracked> {
    let keeper = std::os::unix::process::parent_id();
    kept.fds
        .keys()
        .filter_map(|t| t.strip_prefix("out/")?.parse::<u32>().ok())
        .filter(|pid| !listed.iter().any(|t| t.pid == *pid))
        .filter(|pid| parent_of(*pid) == Some(keeper))
        .filter_map(|pid| {
            Some(Tracked {
                app: String::new(),
                id: 0,
                pid,
                start: process_start(pid)?,
                kill_signal: "SIGTERM".into(),
                kill_timeout_ms: 3000,
                cgroup: None,
                instance: 0,
                restarts: 0,
                restart_reasons: Default::default(),
                started_at: None,
                listening: Vec::new(),
            })
        })
        .collect()
}

/// A process's parent pid, from /proc.
#[cfg(target_os = "linux")]
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Moves what the keeper kept for process `t` into the adoptions; false
/// when it cannot be adopted (its pipes were not kept).
#[cfg(target_os = "linux")]
fn take_for_adoption(
    t: &Tracked,
    kept: &mut crate::keeper::client::Inherited,
    into: &crate::supervisor::adopt::Adoptions,
) -> bool {
    use crate::keeper::client::tags;
    let (Some(out), Some(err)) = (
        kept.fds.remove(&tags::out(t.pid)),
        kept.fds.remove(&tags::err(t.pid)),
    ) else {
        return false;
    };
    into.add_process(
        t.app.clone(),
        t.instance,
        crate::supervisor::adopt::Adoptee {
            pid: t.pid,
            cgroup: t.cgroup.clone(),
            restarts: t.restarts,
            reasons: t.restart_reasons.clone(),
            started_at: t.started_at.unwrap_or_else(crate::clock::now_ms),
            listening: t.listening.clone(),
            out,
            err,
            ipc: kept.fds.remove(&tags::ipc(t.pid)),
        },
    );
    true
}

/// Reads a state file left by a daemon that did not exit cleanly, stops the
/// processes it still runs, and returns its apps. No file: a clean start.
pub async fn recover(path: &Path, kept: Option<crate::keeper::client::Inherited>) -> Recovery {
    let mut out = Recovery::default();
    #[allow(unused_mut)]
    let mut kept = kept;
    recover_into(path, &mut kept, &mut out).await;
    // What nobody adopted is closed in the keeper too.
    for tag in kept.iter().flat_map(|k| k.fds.keys()) {
        crate::keeper::client::forget(tag);
    }
    out
}

async fn recover_into(
    path: &Path,
    #[allow(unused_variables)] kept: &mut Option<crate::keeper::client::Inherited>,
    out: &mut Recovery,
) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => return,
    };
    let state: State = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            out.notices.push(format!(
                "the previous daemon left an unreadable {} ({e}); its apps are not restored",
                path.display()
            ));
            let _ = std::fs::remove_file(path);
            return;
        }
    };
    let alive: Vec<&Tracked> = state
        .processes
        .iter()
        .filter(|t| process_start(t.pid) == Some(t.start))
        .collect();
    // Under a keeper that kept their pipes, the live processes are adopted.
    #[cfg(target_os = "linux")]
    let (adopted, alive): (Vec<&Tracked>, Vec<&Tracked>) = match kept.as_mut() {
        Some(k) => alive
            .into_iter()
            .partition(|t| take_for_adoption(t, k, &out.adoptions)),
        None => (Vec::new(), alive),
    };
    #[cfg(not(target_os = "linux"))]
    let adopted: Vec<&Tracked> = Vec::new();
    #[cfg(target_os = "linux")]
    if let Some(k) = kept.as_mut() {
        let tags: Vec<String> = k.fds.keys().cloned().collect();
        for tag in tags {
            if let Some((app, key)) = crate::keeper::client::tags::parse_listen(&tag) {
                let (app, key) = (app.to_owned(), key.to_owned());
                if let Some(fd) = k.fds.remove(&tag) {
                    out.adoptions.add_listener(app, key, tag, fd);
                }
            }
        }
    }
    // Processes the state never listed (started in the instant before the
    // daemon died: a reload's replacement, a start under way) whose pipes
    // the keeper kept: still the keeper's children, they are stopped too.
    #[cfg(target_os = "linux")]
    let untracked: Vec<Tracked> = kept
        .as_ref()
        .map(|k| untracked_orphans(k, &state.processes))
        .unwrap_or_default();
    #[cfg(target_os = "linux")]
    let alive: Vec<&Tracked> = alive.into_iter().chain(untracked.iter()).collect();
    #[cfg(target_os = "linux")]
    let cgroups: Vec<crate::process::cgroup::AppCgroup> = alive
        .iter()
        .filter_map(|t| t.cgroup.as_deref())
        .filter_map(crate::process::cgroup::AppCgroup::open)
        .collect();
    let deadline = Instant::now()
        + Duration::from_millis(alive.iter().map(|t| t.kill_timeout_ms).max().unwrap_or(0));
    for t in &alive {
        let sig = parse_signal(&t.kill_signal).unwrap_or(Signal::SIGINT);
        let _ = signal_group(t.pid, sig);
    }
    while alive.iter().any(|t| group_alive(t.pid)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in &alive {
        // Still the same process (or its group): finish it.
        if process_start(t.pid) == Some(t.start) || group_alive(t.pid) {
            let _ = signal_group(t.pid, Signal::SIGKILL);
        }
    }
    // What left the process groups is still in the cgroups.
    #[cfg(target_os = "linux")]
    for cg in &cgroups {
        if cg.populated() {
            let _ = cg.kill();
        }
        for _ in 0..100 {
            if !cg.populated() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = cg.remove();
        if let Some(parent) = cg.path().parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    let names: Vec<String> = state.apps.iter().map(|a| a.spec.name.clone()).collect();
    let mut msg = if state.handoff {
        format!(
            "took over from the previous daemon (pid {}), which handed over",
            state.daemon_pid
        )
    } else {
        format!(
            "the previous daemon (pid {}) did not exit cleanly",
            state.daemon_pid
        )
    };
    if !adopted.is_empty() {
        msg.push_str(&format!(
            "; adopted the {} process{} it left running (not restarted)",
            adopted.len(),
            if adopted.len() == 1 { "" } else { "es" }
        ));
    }
    if !alive.is_empty() {
        msg.push_str(&format!(
            "; stopped the {} process{} it left running",
            alive.len(),
            if alive.len() == 1 { "" } else { "es" }
        ));
    }
    if !names.is_empty() {
        msg.push_str(&format!("; restoring {}", names.join(", ")));
    }
    tracing::warn!("{msg}");
    out.notices.push(msg);
    out.handoff = state.handoff;
    out.apps = state.apps;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[tokio::test]
    async fn recovery_stops_the_survivors_and_returns_the_apps() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("state.json");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = process_start(pid).unwrap();
        let state = State {
            version: STATE_VERSION,
            daemon_pid: 99999,
            apps: vec![],
            handoff: false,
            processes: vec![
                Tracked {
                    app: "a".into(),
                    id: 0,
                    pid,
                    start,
                    kill_signal: "SIGTERM".into(),
                    kill_timeout_ms: 2000,
                    cgroup: None,
                    instance: 0,
                    restarts: 0,
                    restart_reasons: Default::default(),
                    started_at: None,
                    listening: vec![],
                },
                // Same pid number, another process: must be left alone.
                Tracked {
                    app: "b".into(),
                    id: 1,
                    pid: std::process::id(),
                    start: 1,
                    kill_signal: "SIGKILL".into(),
                    kill_timeout_ms: 0,
                    cgroup: None,
                    instance: 0,
                    restarts: 0,
                    restart_reasons: Default::default(),
                    started_at: None,
                    listening: vec![],
                },
            ],
        };
        write(&path, &state).unwrap();
        let r = recover(&path, None).await;
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(
            r.notices[0].contains("stopped the 1 process it left running"),
            "{:?}",
            r.notices
        );
    }

    #[tokio::test]
    async fn no_file_is_a_clean_start() {
        let t = tempfile::tempdir().unwrap();
        let r = recover(&t.path().join("state.json"), None).await;
        assert!(r.apps.is_empty() && r.notices.is_empty());
    }
}
