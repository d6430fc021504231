//! The handover of a slot to a replacement process without a gap: the
//! replacement must be ready (what "ready" means depends on the app) before
//! the old process is asked to stop, for a reload and for a replacement
//! over the memory limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Phase, Slot};
use crate::clock::now_ms;
use crate::cluster::channel::ChannelEvent;
use crate::error::{Error, Result};
use crate::spec::{AppSpec, ExecMode};
use crate::supervisor::child::{wait_for_exit, RunningProcess};
use crate::supervisor::state::{EventKind, MemoryExceeded, ReloadStep, RestartReason, Status};

/// How long a hand-over waits for the clients of the replaced worker to
/// start their Engine.IO sessions again elsewhere. Socket.IO clients retry
/// after 0.5-1.5 s by default (`reconnectionDelay` 1 s, randomized by half),
/// then handshake; clients that went for good cost this much once.
const SESSIONS_BACK_WAIT: Duration = Duration::from_secs(3);

/// What makes a replacement process count as ready during a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// `process.send('ready')` (wait_ready).
    ReadyMessage,
    /// A server is listening.
    Listening,
    /// The cluster worker is up (apps that never listen).
    Online,
}

impl Slot {
    fn readiness(&self) -> Readiness {
        if self.spec.wait_ready {
            Readiness::ReadyMessage
        } else if self.listens {
            Readiness::Listening
        } else {
            Readiness::Online
        }
    }

    /// Replaces a process that stayed over its memory limit, gracefully:
    /// in cluster mode through a reload (the replacement is ready before
    /// the old process stops, so the other instances and the shared socket
    /// keep every connection), otherwise by a restart. A reload that fails
    /// still ends in a restart: the limit is there to protect the machine.
    pub(super) async fn replace_for_memory(
        &mut self,
        p: Box<RunningProcess>,
        memory: u64,
        limit: u64,
    ) -> Phase {
        self.st().memory_exceeded = Some(MemoryExceeded {
            at: now_ms(),
            memory,
            limit,
        });
        self.emit(EventKind::MemoryLimit { limit, memory });
        let p = if self.spec.exec_mode == ExecMode::Cluster && p.has_channel() {
            match self.reload(p, None, RestartReason::Memory).await {
                (next, Ok(())) => return next,
                (Phase::Running(old), Err(_)) => old,
                (other, Err(_)) => return other,
            }
        } else {
            p
        };
        let hold = self.pool.as_ref().map(|pool| pool.acquire());
        self.stop_process(p).await;
        self.emit(EventKind::Restart {
            reason: RestartReason::Memory,
            delay_ms: 0,
        });
        let next = self.restart_now(RestartReason::Memory);
        drop(hold);
        next
    }

    /// Replaces the running process without a gap: the replacement must be
    /// ready before the old process is asked to stop. On failure the old
    /// process stays and the error names the instance and the cause.
    pub(super) async fn reload(
        &mut self,
        old: Box<RunningProcess>,
        spec: Option<Arc<AppSpec>>,
        reason: RestartReason,
    ) -> (Phase, Result<()>) {
        let spec = spec.unwrap_or_else(|| self.spec.clone());
        let readiness = if spec.wait_ready {
            Readiness::ReadyMessage
        } else {
            self.readiness()
        };
        let mut new = match self.launch(&spec) {
            Ok(p) => p,
            Err(e) => {
                self.emit(EventKind::Reload {
                    step: ReloadStep::Failed,
                    detail: Some(e.to_string()),
                });
                return (Phase::Running(old), Err(Error::Reload(e.to_string())));
            }
        };
        // Every step names both pids for what they are: the slot's own pid
        // switches from the old process to the new one half-way through.
        let pids = format!("old pid {}, new pid {}", old.pid, new.pid);
        self.emit(EventKind::Reload {
            step: ReloadStep::ReplacementStarted,
            detail: Some(pids.clone()),
        });
        let deadline = Instant::now() + Duration::from_millis(spec.listen_timeout_ms);
        let mut listening = Vec::new();
        let mut new_exit = new.exit_watch();
        let outcome: std::result::Result<(), String> = loop {
            tokio::select! {
                ev = new.events.recv() => match ev {
                    Some(ChannelEvent::Listening(a)) => {
                        new.listened = true;
                        listening.push(a);
                        if readiness == Readiness::Listening { break Ok(()); }
                    }
                    Some(ChannelEvent::Online) if readiness == Readiness::Online => break Ok(()),
                    Some(ChannelEvent::Ready) if readiness == Readiness::ReadyMessage => break Ok(()),
                    Some(ChannelEvent::BindFailed { address, errno }) => {
                        break Err(format!("cannot listen on {address}: {}", std::io::Error::from_raw_os_error(errno)));
                    }
                    Some(_) => {}
                    None => {}
                },
                exit = wait_for_exit(&mut new_exit) => {
                    let how = match (exit.signal_name(), exit.code) {
                        (Some(s), _) => format!("was killed by {s}"),
                        (None, Some(c)) => format!("exited with code {c}"),
                        (None, None) => "exited".into(),
                    };
                    break Err(format!("the replacement {how} before it was ready"));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let what = match readiness {
                        Readiness::ReadyMessage => "send 'ready'",
                        Readiness::Listening => "listen",
                        Readiness::Online => "come online",
                    };
                    break Err(format!(
                        "the replacement did not {what} within listen_timeout ({} ms)",
                        spec.listen_timeout_ms
                    ));
                }
            }
        };
        // With an HTTP health check, ready means a check of it passed too.
        let outcome = match outcome {
            Ok(()) => {
                self.until_check_passes(&mut new, &spec, deadline, &mut listening)
                    .await
            }
            failed => failed,
        };
        if let Err(cause) = outcome {
            new.kill().await;
            let msg = format!(
                "reload of {} instance {} (id {}) failed: {cause}; the old process (pid {}) keeps serving",
                spec.name, self.instance, self.id, old.pid
            );
            self.emit(EventKind::Reload {
                step: ReloadStep::Failed,
                detail: Some(cause),
            });
            return (Phase::Running(old), Err(Error::Reload(msg)));
        }

        self.spec = spec;
        self.count_restart(reason);
        {
            let mut st = self.st();
            st.clear_figures();
            st.load = new.load.clone();
            st.pid = Some(new.pid);
            st.started = Some(new.started.into_std());
            st.started_at = Some(new.started_at);
            st.status = Status::Online;
            st.listening = listening;
        }
        self.emit(EventKind::Reload {
            step: ReloadStep::ReplacementReady,
            detail: Some(pids.clone()),
        });
        self.emit(EventKind::Reload {
            step: ReloadStep::OldStopping,
            detail: Some(pids.clone()),
        });
        let mut old = old;
        // The Engine.IO sessions it holds, before they end with it.
        let sessions = self.pool.as_ref().zip(old.worker).and_then(|(pool, gone)| {
            let (live, held) = pool.sessions.count(gone);
            (held > 0).then(|| (pool.sessions.clone(), gone, live, held))
        });
        let exit = old.stop(&self.spec).await;
        let how = match (exit.signal_name(), exit.code) {
            (Some(s), _) => format!("killed by {s}"),
            (None, Some(c)) => format!("exited with code {c}"),
            (None, None) => "exited".into(),
        };
        let mut detail = format!("old pid {} {how}, new pid {}", old.pid, new.pid);
        // Its clients reconnect to the other workers: the hand-over is done
        // when they have (or the bound passes, or the replacement exits), so
        // that the next instance's turn, and the reload's end, find every
        // client connected and reached by a broadcast.
        if let Some((sessions, gone, live, held)) = sessions {
            let since = Instant::now();
            let back = tokio::select! {
                back = sessions.back_elsewhere(gone, live, SESSIONS_BACK_WAIT) => back,
                _ = wait_for_exit(&mut new_exit) => false,
            };
            let ms = since.elapsed().as_millis();
            detail.push_str(&if back {
                format!(
                    "; the {held} Engine.IO sessions it held were back on other workers in {ms} ms"
                )
            } else {
                let (now, still) = sessions.count(gone);
                let away = live.saturating_sub(now - still);
                format!("; {away} of the {held} Engine.IO sessions it held not back after {ms} ms")
            });
        }
        self.emit(EventKind::Reload {
            step: ReloadStep::OldExited,
            detail: Some(detail),
        });
        (Phase::Running(Box::new(new)), Ok(()))
    }
}
