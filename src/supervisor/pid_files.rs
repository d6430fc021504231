//! `-p/--pid <file>` (PM2's per-app pid files): each instance's pid is
//! written to its file when its process starts and the file is removed
//! when that process ends, driven by the supervisor's own events.

use std::sync::Weak;

use tokio::sync::broadcast;

use super::Inner;
use crate::model::{Event, EventKind};

/// Follows the events until the supervisor is gone.
pub(super) fn spawn_writer(inner: Weak<Inner>, mut events: broadcast::Receiver<Event>) {
    tokio::spawn(async move {
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                // A burst outran us: the next event of each instance fixes its file.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(inner) = inner.upgrade() else { return };
            let target = {
                let reg = inner.registry.lock().unwrap_or_else(|e| e.into_inner());
                reg.app(&ev.app)
                    .and_then(|a| a.spec.pid_file_of(ev.instance))
            };
            drop(inner);
            let (Some(path), Some(pid)) = (target, ev.pid) else {
                continue;
            };
            match ev.kind {
                EventKind::Start => {
                    if let Err(e) = std::fs::write(&path, format!("{pid}\n")) {
                        tracing::warn!(app = %ev.app, "cannot write the pid file {}: {e}", path.display());
                    }
                }
                EventKind::Exit { .. } | EventKind::Stop | EventKind::Errored { .. } => {
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
