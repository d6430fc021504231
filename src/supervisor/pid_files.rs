//! `-p/--pid <file>` (PM2's per-app pid files): each instance's pid is
//! written to its file when its process starts and the file is removed
//! when that process ends, driven by the supervisor's own events.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Weak;

use tokio::sync::broadcast;

use super::Inner;
use crate::model::{Event, EventKind};

/// Follows the events until the supervisor is gone.
pub(super) fn spawn_writer(inner: Weak<Inner>, mut events: broadcast::Receiver<Event>) {
    tokio::spawn(async move {
        // The file and pid each instance was given: its exit may be seen
        // after the slot forgot its pid, or the app left the registry.
        let mut written: HashMap<(String, u32), (PathBuf, u32)> = HashMap::new();
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                // A burst outran us: the next event of each instance fixes its file.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let key = (ev.app.clone(), ev.instance);
            match ev.kind {
                EventKind::Start => {
                    let Some(inner) = inner.upgrade() else { return };
                    let path = {
                        let reg = inner.registry.lock().unwrap_or_else(|e| e.into_inner());
                        reg.app(&ev.app)
                            .and_then(|a| a.spec.pid_file_of(ev.instance))
                    };
                    drop(inner);
                    let (Some(path), Some(pid)) = (path, ev.pid) else {
                        continue;
                    };
                    if let Err(e) = std::fs::write(&path, format!("{pid}\n")) {
                        tracing::warn!(app = %ev.app, "cannot write the pid file {}: {e}", path.display());
                    }
                    written.insert(key, (path, pid));
                }
                EventKind::Exit { .. } | EventKind::Stop | EventKind::Errored { .. } => {
                    // In a reload the replacement starts before the old
                    // process ends: that old exit leaves the new file alone.
                    let current = written.get(&key).map(|(_, p)| *p);
                    if current.is_none() || ev.pid.is_some_and(|p| Some(p) != current) {
                        continue;
                    }
                    let Some((path, pid)) = written.remove(&key) else {
                        continue;
                    };
                    // Only the file of this process: a replacement may have written its own.
                    let ours =
                        std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == pid.to_string());
                    if ours {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                _ => {}
            }
        }
    });
}
