//! Lifecycle operations on apps and instances: start, stop, restart,
//! delete, signal, and the supervisor's own shutdown. Each multi-step
//! operation on an app runs under that app's operation lock.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use nix::sys::signal::Signal;

use super::auto::Automation;
use super::registry::{App, SlotHandle, SlotRef};
use super::replies::gather;
use super::slot::SlotCommand;
use super::target::Selected;
use super::{Report, RestartReason, Status, Supervisor};
use crate::cluster::listeners::ListenerPool;
use crate::error::{Error, Result};
use crate::spec::{AppSpec, ExecMode};

impl Supervisor {
    /// Starts new apps, each in turn. An app that exists and is stopped or
    /// errored is started again with the new spec; one that runs is an
    /// error. One that cannot start does not keep the ones after it from
    /// starting: the error names every failure and what started anyway.
    pub async fn start(&self, specs: Vec<AppSpec>) -> Result<Report> {
        let mut report = Report::default();
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for spec in specs {
            let name = spec.name.clone();
            if let Some(w) = self.root_warning(&spec) {
                report.notices.push(w);
            }
            match self.start_one(spec, true).await {
                Ok(notices) => {
                    report.notices.extend(notices);
                    report.instances.extend(self.infos_of(&name, None));
                    started.push(name);
                }
                Err(e) => failed.push(e),
            }
        }
        let mut failed = failed.into_iter();
        match failed.next() {
            None => Ok(report),
            Some(first) => {
                let others: Vec<String> = failed.map(|e| e.to_string()).collect();
                Err(first.with_message(|m| partial_start(m, &others, &started)))
            }
        }
    }

    /// Said once per daemon: apps of a root daemon run as root unless they
    /// name a user.
    fn root_warning(&self, spec: &AppSpec) -> Option<String> {
        if spec.uid.is_some() || !nix::unistd::geteuid().is_root() {
            return None;
        }
        if self.inner.root_warned.swap(true, Ordering::Relaxed) {
            return None;
        }
        let w = format!(
            "{} runs as root because the daemon does and the app sets no uid; set uid (and gid) to drop privileges",
            spec.name
        );
        tracing::warn!("{w}");
        Some(w)
    }

    /// Registers an app and (with `run`) starts its instances; without `run`
    /// the instances are listed as stopped (a resurrected stopped app).
    /// Returns what the user should know (a path that cannot be watched).
    pub(super) async fn start_one(&self, spec: AppSpec, run: bool) -> Result<Vec<String>> {
        let spec = Arc::new(spec);
        let name = spec.name.clone();
        let stale = {
            let mut reg = self.reg();
            match reg.app(&name) {
                Some(app) => {
                    let running: Vec<String> = app
                        .slots
                        .iter()
                        .filter(|s| s.st().status.is_active())
                        .map(|s| s.id.to_string())
                        .collect();
                    if !running.is_empty() {
                        return Err(Error::AlreadyRunning(format!(
                            "{name} is already running (id {}); use pmr restart {name} or pmr reload {name}",
                            running.join(", ")
                        )));
                    }
                    let idx = reg.apps.iter().position(|a| a.spec.name == name);
                    idx.map(|i| reg.apps.remove(i))
                }
                None => None,
            }
        };
        if let Some(old) = stale {
            self.shutdown_slots(&old.slots).await;
            self.forget_logs(&old.slots);
        }
        let handles = {
            let mut reg = self.reg();
            if reg.app(&name).is_some() {
                return Err(Error::AlreadyRunning(format!(
                    "{name} was started meanwhile by another request"
                )));
            }
            let pool = (spec.exec_mode == ExecMode::Cluster).then(|| ListenerPool::new(spec.lb));
            if let Some(p) = &pool {
                self.inner.shared.ports.register(&name, p);
            }
            let slots: Vec<SlotHandle> = (0..spec.instances)
                .map(|i| self.new_slot(&mut reg, &spec, &pool, i))
                .collect();
            let replies: Vec<_> = slots
                .iter()
                .filter(|_| run)
                .map(|s| s.ask(|reply| SlotCommand::Start { spec: None, reply }))
                .collect();
            reg.apps.push(App {
                spec: spec.clone(),
                pool,
                slots,
                op: Arc::new(tokio::sync::Mutex::new(())),
                auto: Automation::default(),
            });
            replies
        };
        if let Err(e) = gather(handles).await {
            // Nothing half-started stays registered.
            let removed = {
                let mut reg = self.reg();
                let idx = reg.apps.iter().position(|a| a.spec.name == name);
                idx.map(|i| reg.apps.remove(i))
            };
            if let Some(app) = removed {
                self.shutdown_slots(&app.slots).await;
                self.forget_logs(&app.slots);
            }
            return Err(e);
        }
        Ok(self.sync_automation(&name).await)
    }

    /// `pmr start <name|id>`: starts the stopped or errored instances of
    /// existing apps and, as PM2 does, restarts the running ones. A watch
    /// the user turned off stays off (as in PM2).
    pub async fn start_existing(&self, targets: &[String]) -> Result<Report> {
        let mut restarted = Vec::new();
        let sel = self.reg().select(targets)?;
        for s in sel {
            let refs = self.slot_refs(&s);
            if !refs.is_empty() && refs.iter().all(|r| r.1.is_active()) {
                restarted.push(s.app);
            }
        }
        let mut report = self
            .each_selected(targets, |_, slots| async move {
                let pending: Vec<_> = slots
                    .iter()
                    .map(|s| {
                        if s.1.is_active() {
                            s.0.ask(|reply| SlotCommand::Restart {
                                spec: None,
                                reason: RestartReason::User,
                                reply,
                            })
                        } else {
                            s.0.ask(|reply| SlotCommand::Start { spec: None, reply })
                        }
                    })
                    .collect();
                gather(pending).await
            })
            .await?;
        for app in restarted {
            report.notices.push(format!(
                "{app} was running: restarted it, as pm2 start does (pmr reload {app} replaces it without downtime)"
            ));
        }
        Ok(report)
    }

    pub async fn stop(&self, targets: &[String]) -> Result<Report> {
        self.each_selected(targets, |_, slots| async move {
            let pending: Vec<_> = slots
                .iter()
                .map(|s| s.0.ask(|reply| SlotCommand::Stop { reply }))
                .collect();
            gather(pending).await
        })
        .await
    }

    /// Stops and starts again (all instances at once). With `caller_env`, the
    /// apps take that environment (`--update-env`).
    pub async fn restart(
        &self,
        targets: &[String],
        caller_env: Option<BTreeMap<String, String>>,
    ) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        let mut report = Report::default();
        let mut first_err = None;
        for s in sel {
            let Some(op) = self.reg().app(&s.app).map(|a| a.op.clone()) else {
                continue;
            };
            let _guard = op.lock().await;
            self.set_watch_off(&s.app, false);
            let spec = self.updated_spec(&s.app, caller_env.as_ref());
            if let Err(e) = self.restart_locked(&s, spec, RestartReason::User).await {
                first_err.get_or_insert(e);
            }
            report.notices.extend(self.sync_automation(&s.app).await);
            report
                .instances
                .extend(self.infos_of(&s.app, s.ids.as_deref()));
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Stops and starts the selected instances all at once, with `new_spec`
    /// if given; the caller holds the app's operation lock.
    pub(super) async fn restart_locked(
        &self,
        s: &Selected,
        new_spec: Option<Arc<AppSpec>>,
        reason: RestartReason,
    ) -> Result<()> {
        let pending: Vec<_> = self
            .slot_refs(s)
            .iter()
            .map(|sl| {
                sl.0.ask(|reply| SlotCommand::Restart {
                    spec: new_spec.clone(),
                    reason,
                    reply,
                })
            })
            .collect();
        let res = gather(pending).await;
        self.adopt_spec(&s.app, new_spec);
        res
    }

    pub async fn delete(&self, targets: &[String]) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        let mut report = Report::default();
        for s in sel {
            let Some(op) = self.reg().app(&s.app).map(|a| a.op.clone()) else {
                continue;
            };
            let _guard = op.lock().await;
            report
                .instances
                .extend(self.infos_of(&s.app, s.ids.as_deref()));
            let removed: Vec<SlotHandle> = {
                let mut reg = self.reg();
                let Some(app) = reg.app_mut(&s.app) else {
                    continue;
                };
                let (gone, keep): (Vec<SlotHandle>, Vec<SlotHandle>) =
                    std::mem::take(&mut app.slots)
                        .into_iter()
                        .partition(|sl| s.ids.as_ref().is_none_or(|ids| ids.contains(&sl.id)));
                app.slots = keep;
                if app.slots.is_empty() {
                    reg.apps.retain(|a| a.spec.name != s.app);
                }
                // As PM2: once the list is empty, ids start at 0 again.
                if reg.apps.is_empty() {
                    reg.next_id = 0;
                }
                gone
            };
            self.shutdown_slots(&removed).await;
            self.forget_logs(&removed);
            report.notices.extend(self.sync_automation(&s.app).await);
        }
        for i in &mut report.instances {
            i.status = Status::Stopped;
            i.pid = None;
        }
        Ok(report)
    }

    pub async fn signal(&self, targets: &[String], signal: Signal) -> Result<Report> {
        self.each_selected(targets, move |_, slots| async move {
            let pending: Vec<_> = slots
                .iter()
                .map(|s| s.0.ask(|reply| SlotCommand::Signal { signal, reply }))
                .collect();
            gather(pending).await
        })
        .await
    }

    /// PM2's `sendDataToProcessId`: the packet (`{topic, data}`, typed
    /// `process:msg` unless it says otherwise) reaches instance `id`'s
    /// `process.on('message')`, with the `id` added as PM2 adds it.
    pub async fn send_data(&self, id: u32, packet: serde_json::Value) -> Result<Report> {
        let packet = crate::cluster::message::process_message(id, packet).map_err(Error::Config)?;
        self.each_selected(&[id.to_string()], move |_, slots| {
            let packet = packet.clone();
            async move {
                let pending: Vec<_> = slots
                    .iter()
                    .map(|s| {
                        let packet = packet.clone();
                        s.0.ask(|reply| SlotCommand::Send { packet, reply })
                    })
                    .collect();
                gather(pending).await
            }
        })
        .await
    }

    /// Stops every app gracefully and forgets them (daemon shutdown).
    pub async fn shutdown(&self) {
        let apps: Vec<App> = std::mem::take(&mut self.reg().apps);
        let all: Vec<SlotHandle> = apps.into_iter().flat_map(|a| a.slots).collect();
        self.shutdown_slots(&all).await;
    }

    /// Kills every app's process group at once, synchronously: for an
    /// in-process supervisor whose host process is exiting.
    pub fn kill_all_now(&self) {
        self.inner.shared.scopes.close_and_kill_all();
    }

    /// Runs `op` on each selected app under the app's operation lock, and
    /// reports the touched instances afterwards.
    pub(super) async fn each_selected<F, Fut>(&self, targets: &[String], op: F) -> Result<Report>
    where
        F: Fn(String, Vec<(SlotRef, Status)>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let sel = self.reg().select(targets)?;
        let mut report = Report::default();
        let mut first_err = None;
        for s in sel {
            let Some(lock) = self.reg().app(&s.app).map(|a| a.op.clone()) else {
                continue;
            };
            let _guard = lock.lock().await;
            let slots = self.slot_refs(&s);
            if let Err(e) = op(s.app.clone(), slots).await {
                first_err.get_or_insert(e);
            }
            report.notices.extend(self.sync_automation(&s.app).await);
            report
                .instances
                .extend(self.infos_of(&s.app, s.ids.as_deref()));
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    pub(super) async fn shutdown_slots(&self, slots: &[SlotHandle]) {
        let pending: Vec<_> = slots
            .iter()
            .map(|s| s.ask(|reply| SlotCommand::Shutdown { reply }))
            .collect();
        // Shutdowns cannot fail: there is no error to keep.
        let _ = gather(pending).await;
    }
}

/// The message of a start where some apps failed: the first failure, the
/// others, and the apps that run anyway.
fn partial_start(first: String, others: &[String], started: &[String]) -> String {
    let mut m = first;
    if !others.is_empty() {
        m.push_str("; also: ");
        m.push_str(&others.join("; "));
    }
    if !started.is_empty() {
        m.push_str("; started anyway: ");
        m.push_str(&started.join(", "));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::partial_start;

    #[test]
    fn partial_start_names_every_failure_and_what_runs() {
        assert_eq!(partial_start("a failed".into(), &[], &[]), "a failed");
        assert_eq!(
            partial_start(
                "a failed".into(),
                &["b failed".into()],
                &["c".into(), "d".into()]
            ),
            "a failed; also: b failed; started anyway: c, d"
        );
    }
}
