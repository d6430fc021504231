//! What replaces an app's instances without a user asking — its file
//! watcher and its cron schedule — and the commands that act on them
//! (`pmr stop --watch`, `pmr reset`).

use std::path::PathBuf;
use std::sync::Arc;

use super::registry::App;
use super::replies::gather;
use super::slot::SlotCommand;
use super::state::{Event, EventKind};
use super::target::Selected;
use super::watcher::WatchKey;
use super::{cron, watcher, Report, RestartReason, Status, Supervisor};
use crate::clock::now_ms;
use crate::error::Result;

/// The tasks of one app. They run while the app has an instance that is
/// not stopped, and end with the app.
#[derive(Default)]
pub(super) struct Automation {
    pub watch: Option<watcher::Watching>,
    /// `pmr stop --watch`: not watching until a user starts, restarts or
    /// reloads the app.
    pub watch_off: bool,
    /// Why the app is not watched although it should be.
    pub watch_error: Option<String>,
    pub cron: Option<cron::Scheduled>,
}

/// A task that ends when its handle is dropped.
pub(super) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An instance that a user did not stop: automatic replacements are for
/// those (an errored one too: a fixed file should bring it back).
fn live(app: &App) -> bool {
    app.slots.iter().any(|s| s.st().status != Status::Stopped)
}

impl Supervisor {
    /// What the watcher never watches: where pmr writes the app's output.
    fn excluded(&self, app: &App) -> Vec<PathBuf> {
        let mut v = vec![self.inner.cfg.log_dir.clone()];
        for s in &app.slots {
            v.extend([s.paths.out.clone(), s.paths.err.clone()]);
            v.extend(s.paths.combined.clone());
        }
        v
    }

    fn wanted_watch(&self, app: &App) -> Option<WatchKey> {
        (live(app) && !app.auto.watch_off && !app.spec.watch.is_empty())
            .then(|| WatchKey::of(&app.spec, self.excluded(app)))
    }

    /// Starts or ends the app's watcher and schedule to match its
    /// definition and its state. Returns what the user should be told (a
    /// path that cannot be watched).
    pub(super) async fn sync_automation(&self, name: &str) -> Vec<String> {
        let key = {
            let mut reg = self.reg();
            let Some(app) = reg.app_mut(name) else {
                return Vec::new();
            };
            let pattern = app.spec.cron_restart.clone().filter(|_| live(app));
            let same = matches!((&app.auto.cron, &pattern), (Some(c), Some(p)) if c.pattern == *p);
            if !same {
                app.auto.cron = pattern.and_then(|p| {
                    cron::start(Arc::downgrade(&self.inner), name.to_string(), p)
                        .inspect_err(|e| tracing::warn!(app = name, "{e}"))
                        .ok()
                });
            }
            let key = self.wanted_watch(app);
            if key.is_none() {
                app.auto.watch = None;
                app.auto.watch_error = None;
                return Vec::new();
            }
            if app.auto.watch.as_ref().map(|w| &w.key) == key.as_ref() {
                return Vec::new();
            }
            app.auto.watch = None;
            key
        };
        let Some(key) = key else { return Vec::new() };
        let started =
            watcher::start(Arc::downgrade(&self.inner), name.to_string(), key.clone()).await;
        let mut reg = self.reg();
        let Some(app) = reg.app_mut(name) else {
            return Vec::new();
        };
        // Settled meanwhile by another request: that one's answer stands.
        if app.auto.watch.is_some() || self.wanted_watch(app).as_ref() != Some(&key) {
            return Vec::new();
        }
        match started {
            Ok(w) => {
                app.auto.watch = Some(w);
                app.auto.watch_error = None;
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(app = name, "{e}");
                app.auto.watch_error = Some(e.clone());
                vec![format!("{name}: {e}; the app runs, but is not watched")]
            }
        }
    }

    pub(super) fn set_watch_off(&self, name: &str, off: bool) {
        if let Some(app) = self.reg().app_mut(name) {
            app.auto.watch_off = off;
        }
    }

    /// `pmr stop --watch`: stops watching the apps, which keep running.
    pub async fn stop_watch(&self, targets: &[String]) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        let mut report = Report::default();
        for s in sel {
            let Some((op, watched)) = self
                .reg()
                .app(&s.app)
                .map(|a| (a.op.clone(), !a.spec.watch.is_empty()))
            else {
                continue;
            };
            let _guard = op.lock().await;
            self.set_watch_off(&s.app, true);
            report.notices.extend(self.sync_automation(&s.app).await);
            report.notices.push(if watched {
                format!(
                    "{app}: stopped watching; it keeps running (pmr restart {app} watches again)",
                    app = s.app
                )
            } else {
                format!("{}: not watched (no watch option)", s.app)
            });
            report
                .instances
                .extend(self.infos_of(&s.app, s.ids.as_deref()));
        }
        Ok(report)
    }

    /// A watcher that broke while running (a new directory past the
    /// inotify limit): the user sees it in describe and in the logs.
    pub(super) fn watch_failed(&self, name: &str, message: String) {
        if let Some(app) = self.reg().app_mut(name) {
            app.auto.watch_error = Some(message.clone());
        }
        self.app_event(name, None, EventKind::Error { message });
    }

    /// Replaces the app's instances that a user did not stop, as a reload
    /// does (zero downtime in cluster mode, a restart in fork mode), counted
    /// under `reason`. For the watcher and the schedule: failures are
    /// reported as events and in the daemon's log, nobody waits for them.
    pub(super) async fn replace_app(&self, name: &str, reason: RestartReason, detail: String) {
        let Some(op) = self.reg().app(name).map(|a| a.op.clone()) else {
            return;
        };
        let _guard = op.lock().await;
        let ids: Vec<u32> = match self.reg().app(name) {
            Some(app) => app
                .slots
                .iter()
                .filter(|s| s.st().status != Status::Stopped)
                .map(|s| s.id)
                .collect(),
            None => return,
        };
        if ids.is_empty() {
            tracing::info!(app = name, "{detail}: not replaced, the app is stopped");
            return;
        }
        self.app_event(name, Some(&ids), EventKind::Replacing { reason, detail });
        let sel = Selected {
            app: name.to_string(),
            ids: Some(ids),
        };
        let mut report = Report::default();
        if let Err(e) = self
            .reload_locked(&sel, None, &mut report, reason, None)
            .await
        {
            tracing::warn!(app = name, "{e}");
        }
        for n in report.notices {
            tracing::info!(app = name, "{n}");
        }
    }

    /// An event about the app as a whole, on each of its instances (all of
    /// them, or `ids`).
    fn app_event(&self, name: &str, ids: Option<&[u32]>, kind: EventKind) {
        let reg = self.reg();
        let Some(app) = reg.app(name) else { return };
        for s in app
            .slots
            .iter()
            .filter(|s| ids.is_none_or(|ids| ids.contains(&s.id)))
        {
            let mut st = s.st();
            let ev = Event {
                app: name.to_string(),
                id: s.id,
                instance: s.instance,
                pid: st.pid,
                time: now_ms(),
                kind: kind.clone(),
            };
            tracing::info!(app = name, id = s.id, "{}", ev.describe());
            st.remember(&ev);
            drop(st);
            let _ = self.inner.shared.events.send(ev);
        }
    }

    /// `pmr reset`: zero the restart counts of the selected instances.
    pub async fn reset(&self, targets: &[String]) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        let mut report = Report::default();
        for s in sel {
            // The slot owns its counts (its crash-loop count too): it resets them.
            let pending: Vec<_> = self
                .slot_refs(&s)
                .iter()
                .map(|sl| sl.0.ask(|reply| SlotCommand::ResetCounters { reply }))
                .collect();
            // Resets cannot fail: there is no error to keep.
            let _ = gather(pending).await;
            report
                .instances
                .extend(self.infos_of(&s.app, s.ids.as_deref()));
        }
        Ok(report)
    }
}
