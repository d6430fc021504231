//! The supervisor: the registry of apps and their instance slots, and the
//! operations on them (start, stop, restart, reload, delete, scale, signal,
//! list, describe). The daemon serves it over the control socket; the JS API
//! can also run it in-process.

mod auto;
mod cron;
mod metrics;
mod persist;
mod process;
pub mod prometheus;
mod scopes;
mod slot;
pub mod state;
pub(crate) mod target;
mod watcher;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::cluster::listeners::ListenerPool;
use crate::error::{Error, Result};
use crate::logs::file::LogFiles;
use crate::logs::history::Histories;
use crate::logs::{is_discard, paths_for, LogLine, LogPaths, RecentLines};
use crate::process::scope::KillScope;
use crate::protocol::StreamItem;
use crate::settings::Settings;
use crate::spec::{AppSpec, ExecMode};
use auto::{AbortOnDrop, Automation};
pub use persist::SavedApp;
use slot::{Slot, SlotCommand};
use state::InstanceState;
pub use state::{
    Description, Event, EventKind, InstanceInfo, MemoryExceeded, NodeMetrics, RestartReason, Status,
};
use target::{select, Candidate, Selected};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Where default log files go.
    pub log_dir: PathBuf,
    /// A script every Node app loads first (`--require`), if any.
    pub node_preload: Option<PathBuf>,
    /// Daemon-wide settings (log rotation, metrics); `set_settings` changes them live.
    pub settings: Settings,
}

/// What is shared by every slot.
pub(crate) struct Shared {
    pub events: broadcast::Sender<Event>,
    pub logs: broadcast::Sender<LogLine>,
    pub files: LogFiles,
    /// Each instance's recent lines, for `pmr logs --lines`.
    pub histories: Histories,
    pub node_preload: Option<PathBuf>,
    /// The live settings (slots read the metrics interval the preload should report at).
    pub settings: watch::Receiver<Settings>,
    /// Where each app process gets its cgroup, when pmr may create them.
    #[cfg(target_os = "linux")]
    pub cgroups: Option<crate::process::cgroup::CgroupRoot>,
    /// The tree of every running process, by its main pid.
    pub scopes: scopes::Scopes,
    worker_ids: AtomicU64,
}

impl Shared {
    pub fn next_worker_id(&self) -> u64 {
        self.worker_ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn scope_of(&self, pid: u32) -> Option<Arc<KillScope>> {
        self.scopes.get(pid)
    }
}

struct SlotHandle {
    id: u32,
    instance: u32,
    state: Arc<Mutex<InstanceState>>,
    tx: mpsc::UnboundedSender<SlotCommand>,
    paths: LogPaths,
}

impl SlotHandle {
    fn st(&self) -> MutexGuard<'_, InstanceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> SlotCommand) -> oneshot::Receiver<T> {
        ask(&self.tx, make)
    }
}

/// Sends a command to a slot and returns the receiver of its reply. A slot
/// whose task ended drops the reply sender, which the caller sees.
fn ask<T>(
    tx: &mpsc::UnboundedSender<SlotCommand>,
    make: impl FnOnce(oneshot::Sender<T>) -> SlotCommand,
) -> oneshot::Receiver<T> {
    let (reply, rx) = oneshot::channel();
    let _ = tx.send(make(reply));
    rx
}

struct App {
    spec: Arc<AppSpec>,
    pool: Option<Arc<ListenerPool>>,
    slots: Vec<SlotHandle>,
    /// Serializes multi-step operations (restart, reload, scale, delete) on the app.
    op: Arc<tokio::sync::Mutex<()>>,
    auto: Automation,
}

#[derive(Default)]
struct Registry {
    apps: Vec<App>,
    next_id: u32,
}

impl Registry {
    fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.spec.name == name)
    }

    fn app_mut(&mut self, name: &str) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.spec.name == name)
    }

    fn select(&self, targets: &[String]) -> Result<Vec<Selected>> {
        let cands: Vec<Candidate<'_>> = self
            .apps
            .iter()
            .map(|a| Candidate {
                name: &a.spec.name,
                namespace: &a.spec.namespace,
                ids: a.slots.iter().map(|s| s.id).collect(),
            })
            .collect();
        select(&cands, targets)
    }
}

/// Scale to a number of instances, or by a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleTo {
    Exactly(u32),
    By(i64),
}

impl ScaleTo {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim();
        let bad = || format!("'{s}' is not an instance count: use 4, +2 or -1");
        if t.starts_with('+') || t.starts_with('-') {
            t.parse::<i64>().map(ScaleTo::By).map_err(|_| bad())
        } else {
            t.parse::<u32>().map(ScaleTo::Exactly).map_err(|_| bad())
        }
    }

    pub fn apply(self, current: u32) -> u32 {
        match self {
            ScaleTo::Exactly(n) => n,
            ScaleTo::By(d) => (current as i64 + d).clamp(0, u32::MAX as i64) as u32,
        }
    }
}

/// The result of an operation: the instances it touched, and anything the
/// user should be told about how it went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub instances: Vec<InstanceInfo>,
    pub notices: Vec<String>,
}

struct Inner {
    registry: Mutex<Registry>,
    shared: Arc<Shared>,
    cfg: SupervisorConfig,
    settings: watch::Sender<Settings>,
    /// The "apps run as root" warning was given.
    root_warned: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// Must be called inside a tokio runtime: slots and sampling are tasks.
    pub fn new(cfg: SupervisorConfig) -> Self {
        crate::process::fds::close_inherited_on_exec();
        let (events, _) = broadcast::channel(1024);
        let (logs, _) = broadcast::channel(4096);
        let (settings, settings_rx) = watch::channel(cfg.settings.clone());
        let shared = Arc::new(Shared {
            events,
            logs,
            files: LogFiles::new(cfg.settings.log.clone()),
            histories: Histories::default(),
            node_preload: cfg.node_preload.clone(),
            settings: settings_rx.clone(),
            #[cfg(target_os = "linux")]
            cgroups: crate::process::cgroup::CgroupRoot::detect(),
            scopes: scopes::Scopes::default(),
            worker_ids: AtomicU64::new(0),
        });
        let inner = Arc::new(Inner {
            registry: Mutex::new(Registry::default()),
            shared,
            settings,
            cfg,
            root_warned: std::sync::atomic::AtomicBool::new(false),
        });
        metrics::spawn_sampler(Arc::downgrade(&inner), settings_rx);
        Supervisor { inner }
    }

    pub fn settings(&self) -> Settings {
        self.inner.settings.borrow().clone()
    }

    pub fn set_settings(&self, s: Settings) {
        self.inner.shared.files.set_defaults(&s.log);
        self.inner.settings.send_replace(s);
    }

    fn reg(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.inner.shared.events.subscribe()
    }

    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.inner.shared.logs.subscribe()
    }

    /// Events and/or log lines, merged in arrival order.
    pub fn stream(&self, events: bool, logs: bool) -> Stream {
        Stream {
            events: events.then(|| self.subscribe_events()),
            logs: logs.then(|| self.subscribe_logs()),
        }
    }

    fn new_slot(
        &self,
        reg: &mut Registry,
        spec: &Arc<AppSpec>,
        pool: &Option<Arc<ListenerPool>>,
        instance: u32,
    ) -> SlotHandle {
        let id = reg.next_id;
        reg.next_id += 1;
        let paths = paths_for(spec, id, &self.inner.cfg.log_dir);
        let slot = Slot::new(
            id,
            instance,
            spec.clone(),
            self.inner.shared.clone(),
            pool.clone(),
            paths.clone(),
        );
        let state = slot.state.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(slot.run(rx));
        SlotHandle {
            id,
            instance,
            state,
            tx,
            paths,
        }
    }

    fn info(&self, app: &App, s: &SlotHandle) -> InstanceInfo {
        let files = &self.inner.shared.files;
        let st = s.st();
        InstanceInfo {
            name: app.spec.name.clone(),
            namespace: app.spec.namespace.clone(),
            id: s.id,
            instance: s.instance,
            pid: st.pid,
            status: st.status,
            restarts: st.restarts,
            restart_reasons: st.reasons.clone(),
            unstable_restarts: st.unstable_restarts,
            uptime_ms: st.uptime_ms(),
            memory: st.memory,
            cpu: st.cpu,
            processes: st.processes,
            memory_limit: app.spec.max_memory_restart,
            memory_exceeded: st.memory_exceeded,
            node: st.node_metrics(),
            mode: app.spec.exec_mode,
            started_at: st.started_at,
            created_at: st.created_at,
            last_exit: st.last_exit.clone(),
            errored_reason: st.errored_reason.clone(),
            last_error: st.last_error.clone(),
            listening: st.listening.clone(),
            logs: s.paths.clone(),
            log_dropped_bytes: files.dropped_bytes(&s.paths.out)
                + files.dropped_bytes(&s.paths.err),
            watching: app.auto.watch.is_some(),
            next_cron_restart: app.auto.cron.as_ref().and_then(|c| c.next_ms()),
            kill_scope: st
                .pid
                .and_then(|p| self.inner.shared.scope_of(p))
                .map(|s| s.describe()),
        }
    }

    fn infos_of(&self, name: &str, ids: Option<&[u32]>) -> Vec<InstanceInfo> {
        let reg = self.reg();
        let Some(app) = reg.app(name) else {
            return Vec::new();
        };
        app.slots
            .iter()
            .filter(|s| ids.is_none_or(|ids| ids.contains(&s.id)))
            .map(|s| self.info(app, s))
            .collect()
    }

    /// Every instance, in the order apps were started.
    pub fn list(&self) -> Vec<InstanceInfo> {
        let reg = self.reg();
        reg.apps
            .iter()
            .flat_map(|a| a.slots.iter().map(move |s| (a, s)))
            .map(|(a, s)| self.info(a, s))
            .collect()
    }

    pub fn describe(&self, targets: &[String]) -> Result<Vec<Description>> {
        let reg = self.reg();
        let sel = reg.select(targets)?;
        let mut out = Vec::new();
        for s in sel {
            let Some(app) = reg.app(&s.app) else { continue };
            for slot in app
                .slots
                .iter()
                .filter(|x| s.ids.as_ref().is_none_or(|ids| ids.contains(&x.id)))
            {
                out.push(Description {
                    info: self.info(app, slot),
                    spec: (*app.spec).clone(),
                    history: slot.st().history.iter().cloned().collect(),
                    sockets: app.pool.as_ref().map(|p| p.addresses()).unwrap_or_default(),
                    watch_error: app.auto.watch_error.clone(),
                });
            }
        }
        Ok(out)
    }

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
    async fn start_one(&self, spec: AppSpec, run: bool) -> Result<Vec<String>> {
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
            let pool = (spec.exec_mode == ExecMode::Cluster).then(ListenerPool::new);
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
        let mut first_err = None;
        for r in handles {
            if let Err(e) = flatten(r.await) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
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

    /// `pmr start <name|id>`: starts the stopped or errored instances of existing apps.
    pub async fn start_existing(&self, targets: &[String]) -> Result<Report> {
        self.watch_on(targets)?;
        self.each_selected(targets, |_, slots| async move {
            let mut pending = Vec::new();
            for s in &slots {
                if !s.1.is_active() {
                    pending.push(s.0.ask(|reply| SlotCommand::Start { spec: None, reply }));
                }
            }
            let mut res = Ok(());
            for p in pending {
                if let Err(e) = flatten(p.await) {
                    res = Err(e);
                }
            }
            res
        })
        .await
    }

    pub async fn stop(&self, targets: &[String]) -> Result<Report> {
        self.each_selected(targets, |_, slots| async move {
            let pending: Vec<_> = slots
                .iter()
                .map(|s| s.0.ask(|reply| SlotCommand::Stop { reply }))
                .collect();
            for p in pending {
                let _ = p.await;
            }
            Ok(())
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
    async fn restart_locked(
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
        let mut res = Ok(());
        for p in pending {
            if let Err(e) = flatten(p.await) {
                res = Err(e);
            }
        }
        self.adopt_spec(&s.app, new_spec);
        res
    }

    /// Makes `new_spec` the app's definition (its instance count stays the
    /// number of slots it has).
    fn adopt_spec(&self, app: &str, new_spec: Option<Arc<AppSpec>>) {
        let Some(ns) = new_spec else { return };
        if let Some(app) = self.reg().app_mut(app) {
            app.spec = Arc::new(AppSpec {
                instances: app.slots.len() as u32,
                ..(*ns).clone()
            });
        }
    }

    /// Replaces instances one at a time, each only once its replacement is
    /// ready. Fork-mode apps are restarted instead (and the report says so).
    pub async fn reload(
        &self,
        targets: &[String],
        caller_env: Option<BTreeMap<String, String>>,
    ) -> Result<Report> {
        let sel = self.reg().select(targets)?;
        let mut report = Report::default();
        for s in sel {
            let Some(op) = self.reg().app(&s.app).map(|a| a.op.clone()) else {
                continue;
            };
            let _guard = op.try_lock().map_err(|_| busy(&s.app))?;
            self.set_watch_off(&s.app, false);
            let new_spec = self.updated_spec(&s.app, caller_env.as_ref());
            let done = self
                .reload_locked(&s, new_spec, &mut report, RestartReason::User)
                .await;
            report.notices.extend(self.sync_automation(&s.app).await);
            done?;
        }
        Ok(report)
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

    async fn apply_apps(
        &self,
        specs: Vec<AppSpec>,
        update_env: bool,
        how: Apply,
    ) -> Result<Report> {
        let verb = match how {
            Apply::Reload => "reloading",
            Apply::Restart => "restarting",
        };
        let mut report = Report::default();
        for spec in specs {
            let name = spec.name.clone();
            let existing = self
                .reg()
                .app(&name)
                .map(|a| (a.op.clone(), a.spec.clone()));
            let Some((op, old)) = existing else {
                let notices = self.start_one(spec, true).await?;
                report
                    .notices
                    .push(format!("{name} was not running: started"));
                report.notices.extend(notices);
                report.instances.extend(self.infos_of(&name, None));
                continue;
            };
            let spec = if update_env {
                spec
            } else {
                spec.keeping_env_of(&old)
            };
            let changes = crate::spec::changes(&old, &spec);
            if changes.is_empty() {
                report
                    .notices
                    .push(format!("{name}: definition unchanged, {verb}"));
            } else {
                report
                    .notices
                    .push(format!("{name}: applying {}", changes.join("; ")));
            }
            if spec.exec_mode != old.exec_mode {
                report.notices.push(format!(
                    "{name}: exec_mode changes from {} to {}, which needs a full restart",
                    old.exec_mode.as_str(),
                    spec.exec_mode.as_str()
                ));
                {
                    let _guard = op.try_lock().map_err(|_| busy(&name))?;
                }
                self.delete(std::slice::from_ref(&name)).await?;
                let notices = self.start_one(spec, true).await?;
                report.notices.extend(notices);
                report.instances.extend(self.infos_of(&name, None));
                continue;
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
            match how {
                Apply::Reload => {
                    self.reload_locked(&all, Some(new.clone()), &mut step, RestartReason::User)
                        .await?
                }
                Apply::Restart => {
                    self.restart_locked(&all, Some(new.clone()), RestartReason::User)
                        .await?
                }
            }
            report.notices.extend(step.notices);
            if new.instances > current {
                self.resize_locked(&name, new.clone()).await?;
            }
            report.notices.extend(self.sync_automation(&name).await);
            report.instances.extend(self.infos_of(&name, None));
        }
        Ok(report)
    }

    /// The reload of one selection; the caller holds the app's operation lock.
    async fn reload_locked(
        &self,
        s: &Selected,
        new_spec: Option<Arc<AppSpec>>,
        report: &mut Report,
        reason: RestartReason,
    ) -> Result<()> {
        let Some(mode) = self.reg().app(&s.app).map(|a| a.spec.exec_mode) else {
            return Ok(());
        };
        if mode == ExecMode::Fork {
            report.notices.push(format!(
                "{} runs in fork mode, which cannot hand over a port: restarted instead of reloaded (brief downtime). Start it with -i 1 for zero-downtime reloads.",
                s.app
            ));
            self.restart_locked(s, new_spec, reason).await?;
        } else {
            for sl in &self.slot_refs(s) {
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

    pub async fn scale(&self, name: &str, to: ScaleTo) -> Result<Report> {
        let op = self
            .reg()
            .app(name)
            .map(|a| a.op.clone())
            .ok_or_else(|| Error::NotFound(format!("no app named '{name}' (see pmr list)")))?;
        let _guard = op.lock().await;
        let spec = {
            let reg = self.reg();
            let app = reg
                .app(name)
                .ok_or_else(|| Error::NotFound(format!("no app named '{name}'")))?;
            let wanted = to.apply(app.slots.len() as u32);
            if wanted == 0 {
                return Err(Error::Config(format!(
                    "cannot scale {name} to 0 instances; use pmr stop {name} or pmr delete {name}"
                )));
            }
            Arc::new(AppSpec {
                instances: wanted,
                ..(*app.spec).clone()
            })
        };
        self.resize_locked(name, spec).await?;
        Ok(Report {
            instances: self.infos_of(name, None),
            notices: self.sync_automation(name).await,
        })
    }

    /// Brings the app to `spec.instances` instances: new ones start with
    /// `spec`, the highest-numbered go. The caller holds the operation lock.
    async fn resize_locked(&self, name: &str, spec: Arc<AppSpec>) -> Result<()> {
        let (started, removed) = {
            let mut reg = self.reg();
            let Some(app) = reg.app(name) else {
                return Err(Error::NotFound(format!("no app named '{name}'")));
            };
            let current = app.slots.len() as u32;
            let wanted = spec.instances;
            let pool = app.pool.clone();
            let mut used: Vec<u32> = app.slots.iter().map(|s| s.instance).collect();
            let mut new_slots = Vec::new();
            let mut next_instance = 0;
            for _ in current..wanted {
                while used.contains(&next_instance) {
                    next_instance += 1;
                }
                used.push(next_instance);
                new_slots.push(self.new_slot(&mut reg, &spec, &pool, next_instance));
            }
            let app = reg
                .app_mut(name)
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            app.spec = Arc::new(AppSpec {
                instances: wanted,
                ..(*app.spec).clone()
            });
            let mut removed = Vec::new();
            if wanted < current {
                app.slots.sort_by_key(|s| s.instance);
                removed = app.slots.split_off(wanted as usize);
            }
            let started: Vec<_> = new_slots
                .iter()
                .map(|s| s.ask(|reply| SlotCommand::Start { spec: None, reply }))
                .collect();
            app.slots.extend(new_slots);
            (started, removed)
        };
        let mut first_err = None;
        for r in started {
            if let Err(e) = flatten(r.await) {
                first_err.get_or_insert(e);
            }
        }
        self.shutdown_slots(&removed).await;
        self.forget_logs(&removed);
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub async fn signal(&self, targets: &[String], signal: Signal) -> Result<Report> {
        self.each_selected(targets, move |_, slots| async move {
            let pending: Vec<_> = slots
                .iter()
                .map(|s| s.0.ask(|reply| SlotCommand::Signal { signal, reply }))
                .collect();
            let mut res = Ok(());
            for p in pending {
                if let Err(e) = flatten(p.await) {
                    res = Err(e);
                }
            }
            res
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

    /// The last `n` lines of each wanted stream of the instances `ids`, in
    /// the order they arrived, for the instances whose recent past is in
    /// memory; the others are named, for the caller to read their files.
    pub fn recent_logs(&self, ids: &[u32], n: usize, out: bool, err: bool) -> RecentLines {
        let slots: Vec<(u32, LogPaths)> = {
            let reg = self.reg();
            reg.apps
                .iter()
                .flat_map(|a| a.slots.iter())
                .filter(|s| ids.contains(&s.id))
                .map(|s| (s.id, s.paths.clone()))
                .collect()
        };
        let shared = &self.inner.shared;
        // A file that held lines before this daemon wrote to it has lines
        // no history has.
        let fresh = |p: &std::path::Path| match shared.files.find(p) {
            Some(f) => !f.preexisting(),
            None => std::fs::metadata(p).map_or(true, |m| m.len() == 0),
        };
        let mut recent = RecentLines::default();
        for (id, paths) in slots {
            let tail = shared.histories.get(id).map(|h| h.tail(n, out, err));
            let (lines, have_out, have_err, evicted) = match tail {
                Some(t) => (t.lines, t.out, t.err, t.evicted),
                None => (Vec::new(), 0, 0, false),
            };
            let enough = |wanted: bool, have: usize, path: &std::path::Path| {
                !wanted || have >= n || (!evicted && fresh(path))
            };
            if enough(out, have_out, &paths.out) && enough(err, have_err, &paths.err) {
                recent.lines.extend(lines);
            } else {
                recent.from_files.push(id);
            }
        }
        recent.lines.sort_by_key(|l| l.seq);
        recent
    }

    /// Empties the log files of the selected apps (all of them when
    /// `targets` is empty) in place, and forgets their recent lines.
    /// Returns the files emptied.
    pub fn flush(&self, targets: &[String]) -> Result<Vec<PathBuf>> {
        let slots: Vec<(u32, LogPaths)> = {
            let reg = self.reg();
            let sel = if targets.is_empty() {
                None
            } else {
                Some(reg.select(targets)?)
            };
            let chosen = |app: &str, id: u32| {
                sel.as_ref().is_none_or(|sel| {
                    sel.iter()
                        .any(|x| x.app == app && x.ids.as_ref().is_none_or(|ids| ids.contains(&id)))
                })
            };
            reg.apps
                .iter()
                .flat_map(|a| a.slots.iter().map(move |s| (a, s)))
                .filter(|(a, s)| chosen(&a.spec.name, s.id))
                .map(|(_, s)| (s.id, s.paths.clone()))
                .collect()
        };
        let mut done: Vec<PathBuf> = Vec::new();
        let mut first_err = None;
        for (id, paths) in slots {
            for p in [Some(&paths.out), Some(&paths.err), paths.combined.as_ref()]
                .into_iter()
                .flatten()
            {
                if done.contains(p) || is_discard(p) {
                    continue;
                }
                match self.inner.shared.files.truncate(p) {
                    Ok(()) => done.push(p.clone()),
                    Err(e) => {
                        first_err
                            .get_or_insert(Error::io(format!("cannot empty {}", p.display()), e));
                    }
                }
            }
            if let Some(h) = self.inner.shared.histories.get(id) {
                h.clear();
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// Asks every log file to reopen its path (after external rotation).
    pub fn reopen_logs(&self) {
        for f in self.inner.shared.files.all() {
            f.reopen();
        }
    }

    fn updated_spec(
        &self,
        app: &str,
        caller_env: Option<&BTreeMap<String, String>>,
    ) -> Option<Arc<AppSpec>> {
        let env = caller_env?;
        let reg = self.reg();
        reg.app(app).map(|a| Arc::new(a.spec.with_caller_env(env)))
    }

    fn slot_refs(&self, s: &Selected) -> Vec<(SlotRef, Status)> {
        let reg = self.reg();
        let Some(app) = reg.app(&s.app) else {
            return Vec::new();
        };
        let mut v: Vec<_> = app
            .slots
            .iter()
            .filter(|x| s.ids.as_ref().is_none_or(|ids| ids.contains(&x.id)))
            .map(|x| {
                (
                    SlotRef {
                        tx: x.tx.clone(),
                        instance: x.instance,
                    },
                    x.st().status,
                )
            })
            .collect();
        v.sort_by_key(|(r, _)| r.instance);
        v
    }

    /// Runs `op` on each selected app under the app's operation lock, and
    /// reports the touched instances afterwards.
    async fn each_selected<F, Fut>(&self, targets: &[String], op: F) -> Result<Report>
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

    async fn shutdown_slots(&self, slots: &[SlotHandle]) {
        let pending: Vec<_> = slots
            .iter()
            .map(|s| s.ask(|reply| SlotCommand::Shutdown { reply }))
            .collect();
        for p in pending {
            let _ = p.await;
        }
    }

    fn forget_logs(&self, slots: &[SlotHandle]) {
        let still_used: Vec<PathBuf> = {
            let reg = self.reg();
            reg.apps
                .iter()
                .flat_map(|a| a.slots.iter())
                .flat_map(|s| [s.paths.out.clone(), s.paths.err.clone()])
                .collect()
        };
        for s in slots {
            self.inner.shared.histories.forget(s.id);
            for p in [&s.paths.out, &s.paths.err]
                .into_iter()
                .chain(s.paths.combined.as_ref())
            {
                if !still_used.contains(p) {
                    self.inner.shared.files.forget(p);
                }
            }
        }
    }
}

/// A subscriber's view of the supervisor: what `pmr logs` follows.
pub struct Stream {
    events: Option<broadcast::Receiver<Event>>,
    logs: Option<broadcast::Receiver<LogLine>>,
}

impl Stream {
    /// An item already waiting, without waiting for one.
    pub fn try_next(&mut self) -> Option<StreamItem> {
        use broadcast::error::TryRecvError;
        for rx in [&mut self.events].into_iter().flatten() {
            match rx.try_recv() {
                Ok(e) => return Some(StreamItem::Event(e)),
                Err(TryRecvError::Lagged(n)) => return Some(StreamItem::Lagged(n)),
                Err(_) => {}
            }
        }
        for rx in [&mut self.logs].into_iter().flatten() {
            match rx.try_recv() {
                Ok(l) => return Some(StreamItem::Log(l)),
                Err(TryRecvError::Lagged(n)) => return Some(StreamItem::Lagged(n)),
                Err(_) => {}
            }
        }
        None
    }

    /// The next item; None once the supervisor is gone. A subscriber that
    /// fell behind is told how many items it missed instead of slowing anyone.
    pub async fn next(&mut self) -> Option<StreamItem> {
        use broadcast::error::RecvError;
        async fn recv<T: Clone>(
            rx: &mut Option<broadcast::Receiver<T>>,
        ) -> std::result::Result<T, RecvError> {
            match rx {
                Some(r) => r.recv().await,
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            r = recv(&mut self.events) => match r {
                Ok(e) => Some(StreamItem::Event(e)),
                Err(RecvError::Lagged(n)) => Some(StreamItem::Lagged(n)),
                Err(RecvError::Closed) => None,
            },
            r = recv(&mut self.logs) => match r {
                Ok(l) => Some(StreamItem::Log(l)),
                Err(RecvError::Lagged(n)) => Some(StreamItem::Lagged(n)),
                Err(RecvError::Closed) => None,
            },
        }
    }
}

/// How `apply_apps` replaces the instances of an app that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    Reload,
    Restart,
}

/// A slot's command channel, detached from the registry lock.
pub(crate) struct SlotRef {
    tx: mpsc::UnboundedSender<SlotCommand>,
    instance: u32,
}

impl SlotRef {
    fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> SlotCommand) -> oneshot::Receiver<T> {
        ask(&self.tx, make)
    }
}

fn busy(app: &str) -> Error {
    Error::Busy(format!(
        "a reload of {app} is already in progress; try again when it ends"
    ))
}

fn flatten(r: std::result::Result<Result<()>, oneshot::error::RecvError>) -> Result<()> {
    r.map_err(|_| Error::Daemon("an instance task ended unexpectedly".into()))?
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
