//! `$PMR_HOME/state.json`: what the daemon runs, rewritten as it changes and
//! removed on a clean exit. A daemon that finds it at start knows the
//! previous one died (kill -9, OOM killer): it stops the processes that one
//! left running — each named by pid and start time, so a recycled pid is
//! never touched — and brings its apps back, instead of starting duplicates
//! that would fail on ports still held.

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
            })
        })
        .collect();
    State {
        version: STATE_VERSION,
        daemon_pid: std::process::id(),
        apps,
        processes,
    }
}

fn write(path: &Path, state: &State) -> Result<()> {
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
}

/// Reads a state file left by a daemon that did not exit cleanly, stops the
/// processes it still runs, and returns its apps. No file: a clean start.
pub async fn recover(path: &Path) -> Recovery {
    let mut out = Recovery::default();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => return out,
    };
    let state: State = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            out.notices.push(format!(
                "the previous daemon left an unreadable {} ({e}); its apps are not restored",
                path.display()
            ));
            let _ = std::fs::remove_file(path);
            return out;
        }
    };
    #[cfg(target_os = "linux")]
    let cgroups: Vec<crate::process::cgroup::AppCgroup> = state
        .processes
        .iter()
        .filter_map(|t| t.cgroup.as_deref())
        .filter_map(crate::process::cgroup::AppCgroup::open)
        .collect();
    let alive: Vec<&Tracked> = state
        .processes
        .iter()
        .filter(|t| process_start(t.pid) == Some(t.start))
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
    let mut msg = format!(
        "the previous daemon (pid {}) did not exit cleanly",
        state.daemon_pid
    );
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
    out.apps = state.apps;
    out
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
            processes: vec![
                Tracked {
                    app: "a".into(),
                    id: 0,
                    pid,
                    start,
                    kill_signal: "SIGTERM".into(),
                    kill_timeout_ms: 2000,
                    cgroup: None,
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
                },
            ],
        };
        write(&path, &state).unwrap();
        let r = recover(&path).await;
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
        let r = recover(&t.path().join("state.json")).await;
        assert!(r.apps.is_empty() && r.notices.is_empty());
    }
}
