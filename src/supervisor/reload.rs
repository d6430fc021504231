//! Reload and config adoption: replacing running instances one at a time
//! without a gap (`pmr reload`), and applying changed app definitions to
//! running apps (`pmr reload|restart <ecosystem file>`), many apps in
//! parallel.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fanout::{bounded, busy, merge, AppDone, Lock, Step, APP_CONCURRENCY};
use super::replies::flatten;
use super::slot::SlotCommand;
use super::stops_first::StopsFirst;
use super::target::Selected;
use super::{Report, RestartReason, Supervisor};
use crate::error::Result;
use crate::spec::{AppSpec, ExecMode};

/// How `apply_apps` replaces the instances of an app that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    Reload,
    Restart,
}

impl Supervisor {
    /// Replaces instances one at a time, each only once its replacement is
    /// ready; the apps are reloaded in parallel, and one that fails does not
    /// keep the others on their old code. Fork-mode apps are restarted
    /// instead (and the report says so).
    pub async fn reload(
        &self,
        targets: &[String],
        caller_env: Option<BTreeMap<String, String>>,
    ) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        let env = caller_env.as_ref();
        // Fork-mode apps are restarted: their old processes stop first.
        let stops = &self.stops_first(&sel, |spec| spec.exec_mode == ExecMode::Fork);
        Ok(self
            .each_app(sel, "reloaded", Lock::Try, |s| async move {
                self.set_watch_off(&s.app, false);
                let new_spec = self.updated_spec(&s.app, env);
                let mut step = Report::default();
                let done = self
                    .reload_locked(&s, new_spec, &mut step, RestartReason::User, Some(stops))
                    .await;
                Step {
                    result: done.err(),
                    notices: step.notices,
                    instances: None,
                }
            })
            .await)
    }

    /// Applies changed app definitions (an edited ecosystem file) to running
    /// apps with the least disruption the mode allows: removed instances go
    /// first, the rest are reloaded one by one with the new definition, then
    /// added instances start. Apps not running yet are started. Without
    /// `update_env` the apps keep the shell environment they started with.
    pub async fn reload_apps(&self, specs: Vec<AppSpec>, update_env: bool) -> Result<Report> {
        self.apply_apps(specs, update_env, Apply::Reload).await
    }

    /// Like `reload_apps`, but every instance is stopped and started again
    /// with its new definition at once (what `pmr restart <file>` means).
    pub async fn restart_apps(&self, specs: Vec<AppSpec>, update_env: bool) -> Result<Report> {
        self.apply_apps(specs, update_env, Apply::Restart).await
    }

    /// `reload_apps` and `restart_apps`: every app in parallel
    /// (`APP_CONCURRENCY` at a time), each app's outcome reported.
    async fn apply_apps(
        &self,
        specs: Vec<AppSpec>,
        update_env: bool,
        how: Apply,
    ) -> Result<Report> {
        // The apps not running yet take their ids in the file's order.
        let firsts: Vec<Option<u32>> = {
            let mut reg = self.reg();
            specs
                .iter()
                .map(|s| {
                    reg.app(&s.name).is_none().then(|| {
                        let first = reg.next_id;
                        reg.next_id += s.instances;
                        first
                    })
                })
                .collect()
        };
        let done = bounded(
            specs.into_iter().zip(firsts),
            APP_CONCURRENCY,
            |(spec, first)| async move {
                let app = spec.name.clone();
                let mut notices = Vec::new();
                let result = self
                    .apply_one(spec, update_env, how, first, &mut notices)
                    .await;
                AppDone {
                    instances: self.infos_of(&app, None),
                    app,
                    result,
                    notices,
                }
            },
        )
        .await;
        Ok(merge(
            done,
            match how {
                Apply::Reload => "reloaded",
                Apply::Restart => "restarted",
            },
        ))
    }

    /// Applies one app's definition (see `reload_apps`); what the user
    /// should know goes to `notices`, also when it fails.
    async fn apply_one(
        &self,
        spec: AppSpec,
        update_env: bool,
        how: Apply,
        first_id: Option<u32>,
        notices: &mut Vec<String>,
    ) -> Result<()> {
        let verb = match how {
            Apply::Reload => "reloading",
            Apply::Restart => "restarting",
        };
        let name = spec.name.clone();
        let existing = self
            .reg()
            .app(&name)
            .map(|a| (a.op.clone(), a.spec.clone()));
        let Some((op, old)) = existing else {
            let started = self.start_one(spec, true, first_id).await?;
            notices.push(format!("{name} was not running: started"));
            notices.extend(started);
            return Ok(());
        };
        let spec = if update_env {
            spec
        } else {
            spec.keeping_env_of(&old)
        };
        let changes = crate::spec::changes(&old, &spec);
        if changes.is_empty() {
            notices.push(format!("{name}: definition unchanged, {verb}"));
        } else {
            notices.push(format!("{name}: applying {}", changes.join("; ")));
        }
        if spec.exec_mode != old.exec_mode {
            notices.push(format!(
                "{name}: exec_mode changes from {} to {}, which needs a full restart",
                old.exec_mode.as_str(),
                spec.exec_mode.as_str()
            ));
            {
                let _guard = op.try_lock().map_err(|_| busy(&name))?;
            }
            self.delete(std::slice::from_ref(&name))
                .await?
                .into_result()?;
            notices.extend(self.start_one(spec, true, None).await?);
            return Ok(());
        }
        let _guard = op.try_lock().map_err(|_| busy(&name))?;
        self.set_watch_off(&name, false);
        let new = Arc::new(spec);
        let current = self
            .reg()
            .app(&name)
            .map(|a| a.slots.len() as u32)
            .unwrap_or(0);
        if new.instances < current {
            self.resize_locked(&name, new.clone()).await?;
        }
        let all = Selected {
            app: name.clone(),
            ids: None,
        };
        let mut step = Report::default();
        let replaced = match how {
            Apply::Reload => {
                self.reload_locked(
                    &all,
                    Some(new.clone()),
                    &mut step,
                    RestartReason::User,
                    None,
                )
                .await
            }
            Apply::Restart => {
                self.restart_locked(&all, Some(new.clone()), RestartReason::User, None)
                    .await
            }
        };
        notices.extend(step.notices);
        replaced?;
        if new.instances > current {
            self.resize_locked(&name, new.clone()).await?;
        }
        notices.extend(self.sync_automation(&name).await);
        Ok(())
    }

    /// The reload of one selection; the caller holds the app's operation lock.
    /// Instances are replaced one after the other, each asked only once the
    /// one before is done: the first failure ends the reload there, so the
    /// instances not reached yet keep their old processes (and `gather`'s
    /// wait-for-all rule has nothing to wait for).
    pub(super) async fn reload_locked(
        &self,
        s: &Selected,
        new_spec: Option<Arc<AppSpec>>,
        report: &mut Report,
        reason: RestartReason,
        stops_first: Option<&Arc<StopsFirst>>,
    ) -> Result<()> {
        let Some(mode) = self.reg().app(&s.app).map(|a| a.spec.exec_mode) else {
            return Ok(());
        };
        if mode == ExecMode::Fork {
            let node = self.reg().app(&s.app).is_some_and(|a| a.spec.node);
            // -i 1 only helps a Node.js script: `npm start` stays fork mode.
            let how = if node {
                "start it with -i 1 (not -x) for zero-downtime reloads".to_string()
            } else {
                format!("for zero-downtime reloads run the Node.js script itself (pmr start server.js --name {} -i 1), not a command that starts it", s.app)
            };
            report.notices.push(format!(
                "{} runs in fork mode, which cannot hand over a port: restarted instead of reloaded (brief downtime); {how}",
                s.app
            ));
            self.restart_locked(s, new_spec, reason, stops_first)
                .await?;
        } else {
            for sl in &self.slot_refs(s) {
                // The semaphore is never closed: no permit means none needed.
                let _startup = self.inner.startups.acquire().await.ok();
                let r = sl.0.ask(|reply| SlotCommand::Reload {
                    spec: new_spec.clone(),
                    reason,
                    reply,
                });
                flatten(r.await)?;
            }
            self.adopt_spec(&s.app, new_spec);
        }
        report
            .instances
            .extend(self.infos_of(&s.app, s.ids.as_deref()));
        Ok(())
    }

    /// Makes `new_spec` the app's definition (its instance count stays the
    /// number of slots it has).
    pub(super) fn adopt_spec(&self, app: &str, new_spec: Option<Arc<AppSpec>>) {
        let Some(ns) = new_spec else { return };
        if let Some(app) = self.reg().app_mut(app) {
            app.spec = Arc::new(AppSpec {
                instances: app.slots.len() as u32,
                ..(*ns).clone()
            });
        }
    }

    pub(super) fn updated_spec(
        &self,
        app: &str,
        caller_env: Option<&BTreeMap<String, String>>,
    ) -> Option<Arc<AppSpec>> {
        let env = caller_env?;
        let reg = self.reg();
        reg.app(app).map(|a| Arc::new(a.spec.with_caller_env(env)))
    }
}
