//! The supervisor: the registry of apps and their instance slots, and the
//! operations on them (start, stop, restart, reload, delete, scale, signal,
//! list, describe). The daemon serves it over the control socket; the JS API
//! can also run it in-process. This file holds the `Supervisor` itself and
//! wires the modules that carry out each kind of operation.

#[cfg(target_os = "linux")]
pub(crate) mod adopt;
mod alerts;
mod auto;
mod child;
mod cron;
pub mod dump;
#[cfg(test)]
mod fake_child;
mod fanout;
mod lifecycle;
mod log_ops;
mod metrics;
#[cfg(test)]
mod ordering_tests;
mod persist;
mod pid_files;
pub mod prometheus;
mod registry;
mod reload;
mod replies;
mod scale;
mod scopes;
mod slot;
pub mod state;
mod stdin;
mod stops_first;
mod stream;
pub(crate) mod target;
mod watcher;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::logs::file::LogFiles;
use crate::logs::history::Histories;
use crate::logs::LogLine;
pub use crate::model::{
    Description, Event, EventKind, InstanceInfo, MemoryExceeded, NodeMetrics, Report,
    RestartReason, ScaleTo, Status, StreamItem,
};
use crate::process::scope::KillScope;
use crate::settings::Settings;
use auto::AbortOnDrop;
use child::{OsSpawner, Spawner};
pub use persist::SavedApp;
use registry::Registry;
pub use stream::Stream;

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
    /// How slots get their processes.
    pub spawner: Arc<dyn Spawner>,
    /// Which cluster app holds which listening socket (a second app on the
    /// same port is told which one, and not restarted in a loop).
    pub ports: registry::PortHolders,
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

struct Inner {
    registry: Mutex<Registry>,
    shared: Arc<Shared>,
    cfg: SupervisorConfig,
    settings: watch::Sender<Settings>,
    /// The "apps run as root" warning was given.
    root_warned: AtomicBool,
    /// Where alerts are queued for their receivers.
    alerts: Arc<crate::notify::Dispatcher>,
    /// Permits for new cluster workers coming up in reloads
    /// (`fanout::WORKER_STARTUPS`).
    startups: tokio::sync::Semaphore,
}

#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// Must be called inside a tokio runtime: slots and sampling are tasks.
    pub fn new(cfg: SupervisorConfig) -> Self {
        Self::with_spawner(cfg, Arc::new(OsSpawner))
    }

    /// A supervisor whose slots spawn through `spawner` (a test's fakes).
    pub(crate) fn with_spawner(cfg: SupervisorConfig, spawner: Arc<dyn Spawner>) -> Self {
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
            spawner,
            ports: registry::PortHolders::default(),
            worker_ids: AtomicU64::new(0),
        });
        let inner = Arc::new(Inner {
            registry: Mutex::new(Registry::default()),
            shared,
            settings,
            cfg,
            root_warned: AtomicBool::new(false),
            alerts: crate::notify::Dispatcher::new(),
            startups: tokio::sync::Semaphore::new(fanout::WORKER_STARTUPS),
        });
        alerts::spawn(Arc::downgrade(&inner), inner.shared.events.subscribe());
        metrics::spawn_sampler(Arc::downgrade(&inner), settings_rx);
        pid_files::spawn_writer(Arc::downgrade(&inner), inner.shared.events.subscribe());
        Supervisor { inner }
    }

    pub fn settings(&self) -> Settings {
        self.inner.settings.borrow().clone()
    }

    pub fn set_settings(&self, s: Settings) {
        self.inner.shared.files.set_defaults(&s.log);
        self.inner.settings.send_replace(s);
    }
}
