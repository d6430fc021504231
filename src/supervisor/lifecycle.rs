//! Lifecycle operations on apps and instances: start, stop, restart,
//! delete, signal, and the supervisor's own shutdown. Each multi-step
//! operation on an app runs under that app's operation lock; operations on
//! several apps work on them in parallel (`fanout`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use nix::sys::signal::Signal;

use super::auto::Automation;
use super::fanout::{bounded, merge, AppDone, Lock, Step, APP_CONCURRENCY};
use super::registry::{App, SlotHandle, SlotRef};
use super::replies::gather;
use super::slot::SlotCommand;
use super::stops_first::{StopsFirst, STOPS_FIRST_WAIT};
use super::target::Selected;
use super::{Report, RestartReason, Status, Supervisor};
use crate::cluster::listeners::ListenerPool;
use crate::error::{Error, Result};
use crate::spec::{AppSpec, ExecMode};

impl Supervisor {
    /// Starts new apps, in parallel (`APP_CONCURRENCY` at a time). An app
    /// that exists and is stopped or errored is started again with the new
    /// spec; one that runs is an error. One that cannot start does not keep
    /// the others from starting: every app's outcome is in the report, and
    /// its error names every failure and what started anyway.
    pub async fn start(&self, specs: Vec<AppSpec>) -> Result<Report> {
        let mut notices = Vec::new();
        for spec in &specs {
            notices.extend(self.root_warning(spec));
        }
        // Ids are handed out in the order the apps are named, as when they
        // started one by one, whichever app's start ends first.
        let firsts = self.reserve_ids(&specs);
        let done = bounded(
            specs.into_iter().zip(firsts),
            APP_CONCURRENCY,
            |(spec, first)| {
                let name = spec.name.clone();
                async move {
                    let result = self.start_one(spec, true, Some(first)).await;
                    let (result, notices) = match result {
                        Ok(n) => (Ok(()), n),
                        Err(e) => (Err(e), Vec::new()),
                    };
                    AppDone {
                        instances: self.infos_of(&name, None),
                        app: name,
                        result,
                        notices,
                    }
                }
            },
        )
        .await;
        let mut report = merge(done, "started");
        notices.append(&mut report.notices);
        report.notices = notices;
        Ok(report)
    }

    /// Sets aside the ids of each app's instances, in order; returns the
    /// first id of each.
    fn reserve_ids(&self, specs: &[AppSpec]) -> Vec<u32> {
        let mut reg = self.reg();
        specs
            .iter()
            .map(|s| {
                let first = reg.next_id;
                reg.next_id += s.instances;
                first
            })
            .collect()
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
    /// Its instances take the ids from `first_id` on (set aside by
    /// `reserve_ids`), or the next free ones.
    pub(super) async fn start_one(
        &self,
        spec: AppSpec,
        run: bool,
        first_id: Option<u32>,
    ) -> Result<Vec<String>> {
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
                .map(|i| self.new_slot(&mut reg, &spec, &pool, i, first_id.map(|f| f + i)))
                .collect();
            let replies: Vec<_> = slots
                .iter()
                .filter(|_| run)
                .map(|s| s.ask(|reply| SlotCommand::Start { spec: None, reply }))
                .collect();
            reg.insert(App {
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
            .each_selected(targets, "started", |_, slots| async move {
                let pending: Vec<_> = slots
                    .iter()
                    .map(|s| {
                        if s.1.is_active() {
                            s.0.ask(|reply| SlotCommand::Restart {
                                spec: None,
                                reason: RestartReason::User,
                                stops_first: None,
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
        self.each_selected(targets, "stopped", |_, slots| async move {
            let pending: Vec<_> = slots
                .iter()
                .map(|s| s.0.ask(|reply| SlotCommand::Stop { reply }))
                .collect();
            gather(pending).await
        })
        .await
    }

    /// Stops and starts again (all instances of an app at once, the apps in
    /// parallel). With `caller_env`, the apps take that environment
    /// (`--update-env`).
    pub async fn restart(
        &self,
        targets: &[String],
        caller_env: Option<BTreeMap<String, String>>,
    ) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        let env = caller_env.as_ref();
        let stops = &self.stops_first(&sel, |_| true);
        Ok(self
            .each_app(sel, "restarted", Lock::Wait, |s| async move {
                self.set_watch_off(&s.app, false);
                let spec = self.updated_spec(&s.app, env);
                self.restart_locked(&s, spec, RestartReason::User, Some(stops))
                    .await
                    .into()
            })
            .await)
    }

    /// Stops and starts the selected instances all at once, with `new_spec`
    /// if given; the caller holds the app's operation lock. With
    /// `stops_first`, the new processes also wait for the old ones of the
    /// operation's other apps.
    pub(super) async fn restart_locked(
        &self,
        s: &Selected,
        new_spec: Option<Arc<AppSpec>>,
        reason: RestartReason,
        stops_first: Option<&Arc<StopsFirst>>,
    ) -> Result<()> {
        let pending: Vec<_> = self
            .slot_refs(s)
            .iter()
            .map(|sl| {
                sl.0.ask(|reply| SlotCommand::Restart {
                    spec: new_spec.clone(),
                    reason,
                    stops_first: stops_first.cloned(),
                    reply,
                })
            })
            .collect();
        let res = gather(pending).await;
        self.adopt_spec(&s.app, new_spec);
        res
    }

    /// The barrier of a restart of the selected instances of the apps that
    /// `restarts` picks (by their definition).
    pub(super) fn stops_first(
        &self,
        sel: &[Selected],
        restarts: impl Fn(&AppSpec) -> bool,
    ) -> Arc<StopsFirst> {
        let count = sel
            .iter()
            .filter(|s| self.reg().app(&s.app).is_some_and(|a| restarts(&a.spec)))
            .map(|s| self.slot_refs(s).len())
            .sum();
        Arc::new(StopsFirst::new(count, STOPS_FIRST_WAIT))
    }

    pub async fn delete(&self, targets: &[String]) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        Ok(self
            .each_app(sel, "deleted", Lock::Wait, |s| async move {
                let mut instances = self.infos_of(&s.app, s.ids.as_deref());
                let removed: Vec<SlotHandle> = {
                    let mut reg = self.reg();
                    let Some(app) = reg.app_mut(&s.app) else {
                        return Step::default();
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
                for i in &mut instances {
                    i.status = Status::Stopped;
                    i.pid = None;
                }
                Step {
                    instances: Some(instances),
                    ..Step::default()
                }
            })
            .await)
    }

    pub async fn signal(&self, targets: &[String], signal: Signal) -> Result<Report> {
        self.each_selected(targets, "signalled", move |_, slots| async move {
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
        self.each_selected(&[id.to_string()], "sent to", move |_, slots| {
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

    /// Runs `op` on the slots of each selected app (see `each_app`): what
    /// stop, start, signal and send share.
    pub(super) async fn each_selected<F, Fut>(
        &self,
        targets: &[String],
        verb: &str,
        op: F,
    ) -> Result<Report>
    where
        F: Fn(String, Vec<(SlotRef, Status)>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let sel = self.reg().select(targets)?;
        let op = &op;
        Ok(self
            .each_app(sel, verb, Lock::Wait, |s| async move {
                // Read under the app's lock: the slots as they are now.
                let slots = self.slot_refs(&s);
                op(s.app, slots).await.into()
            })
            .await)
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
