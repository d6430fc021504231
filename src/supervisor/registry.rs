//! The registry of apps and their instance slots: what the supervisor
//! knows of each app, the handles on its slots' tasks, and the read-only
//! views built from them (`list`, `describe`).

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{mpsc, oneshot};

use super::auto::Automation;
use super::slot::{Slot, SlotCommand};
use super::state::InstanceState;
use super::target::{select, Candidate, Selected};
use super::{Description, InstanceInfo, Status, Supervisor};
use crate::cluster::listeners::ListenerPool;
use crate::error::Result;
use crate::logs::{paths_for, LogPaths};
use crate::spec::AppSpec;

/// One instance slot as the registry holds it: its state (which only its
/// task writes), its command channel and its log files.
pub(super) struct SlotHandle {
    pub(super) id: u32,
    pub(super) instance: u32,
    pub(super) state: Arc<Mutex<InstanceState>>,
    pub(super) tx: mpsc::UnboundedSender<SlotCommand>,
    pub(super) paths: LogPaths,
}

impl SlotHandle {
    pub(super) fn st(&self) -> MutexGuard<'_, InstanceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> SlotCommand,
    ) -> oneshot::Receiver<T> {
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

/// One app: its definition, its slots, and what runs beside them.
pub(super) struct App {
    pub(super) spec: Arc<AppSpec>,
    pub(super) pool: Option<Arc<ListenerPool>>,
    pub(super) slots: Vec<SlotHandle>,
    /// Serializes multi-step operations (restart, reload, scale, delete) on the app.
    pub(super) op: Arc<tokio::sync::Mutex<()>>,
    pub(super) auto: Automation,
}

/// Every app in the order they were started, and the id the next slot gets.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) apps: Vec<App>,
    pub(super) next_id: u32,
}

impl Registry {
    pub(super) fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.spec.name == name)
    }

    pub(super) fn app_mut(&mut self, name: &str) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.spec.name == name)
    }

    /// Adds an app in id order: after the apps whose instances have lower
    /// ids. Apps started one by one are appended; apps started in parallel
    /// with ids set aside in order are listed in that order whichever
    /// registered first.
    pub(super) fn insert(&mut self, app: App) {
        let first = |a: &App| a.slots.iter().map(|s| s.id).min();
        let at = match first(&app) {
            Some(id) => self
                .apps
                .iter()
                .position(|a| first(a).is_some_and(|other| other > id))
                .unwrap_or(self.apps.len()),
            None => self.apps.len(),
        };
        self.apps.insert(at, app);
    }

    pub(super) fn select(&self, targets: &[String]) -> Result<Vec<Selected>> {
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

/// The listening sockets of every cluster app, by app name, so that an app
/// that cannot listen because another holds the port is told which one.
/// Two apps never share a socket: each app's pool is its own (decided in
/// issue 18; PM2 shares, which mixes two apps' workers behind one port).
#[derive(Default)]
pub(crate) struct PortHolders {
    pools: Mutex<Vec<(String, Weak<ListenerPool>)>>,
}

impl PortHolders {
    fn lock(&self) -> MutexGuard<'_, Vec<(String, Weak<ListenerPool>)>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes an app's pool; pools of apps that are gone drop out.
    pub(super) fn register(&self, app: &str, pool: &Arc<ListenerPool>) {
        let mut pools = self.lock();
        pools.retain(|(n, p)| p.strong_count() > 0 && n != app);
        pools.push((app.to_string(), Arc::downgrade(pool)));
    }

    /// The app other than `asker` whose sockets take `address`.
    pub(crate) fn holder_of(&self, address: &str, asker: &str) -> Option<String> {
        self.lock()
            .iter()
            .filter(|(n, _)| n != asker)
            .find(|(_, p)| {
                p.upgrade()
                    .is_some_and(|p| p.addresses().iter().any(|a| same_socket(a, address)))
            })
            .map(|(n, _)| n.clone())
    }
}

/// Whether two socket addresses, as `describe` and a listen query print
/// them (`0.0.0.0:3000`, `[::]:3000`, `*:3000`, `127.0.0.1:3000`, a Unix
/// path), cannot both be bound: same port on the same or a wildcard host.
pub(crate) fn same_socket(a: &str, b: &str) -> bool {
    fn split(s: &str) -> Option<(&str, u16)> {
        let (host, port) = s.rsplit_once(':')?;
        Some((
            host.trim_start_matches('[').trim_end_matches(']'),
            port.parse().ok()?,
        ))
    }
    let wildcard = |h: &str| matches!(h, "*" | "0.0.0.0" | "::" | "");
    match (split(a), split(b)) {
        (Some((ha, pa)), Some((hb, pb))) => {
            pa == pb && pa != 0 && (ha == hb || wildcard(ha) || wildcard(hb))
        }
        (None, None) => a == b,
        _ => false,
    }
}

/// What a cluster app that cannot listen because `holder` holds the port
/// is told, in `describe` and in `pmr start`'s error.
pub(crate) fn port_clash_message(app: &str, address: &str, holder: &str) -> String {
    format!(
        "cannot listen on {address}: the cluster app '{holder}' holds that port, so {app} was stopped at its first listen instead of restarting in a loop; give {app} another port (e.g. its PORT env) or stop {holder} first"
    )
}

/// A slot's command channel, detached from the registry lock.
pub(super) struct SlotRef {
    pub(super) tx: mpsc::UnboundedSender<SlotCommand>,
    pub(super) instance: u32,
}

impl SlotRef {
    pub(super) fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> SlotCommand,
    ) -> oneshot::Receiver<T> {
        ask(&self.tx, make)
    }
}

impl Supervisor {
    pub(super) fn reg(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn new_slot(
        &self,
        reg: &mut Registry,
        spec: &Arc<AppSpec>,
        pool: &Option<Arc<ListenerPool>>,
        instance: u32,
        id: Option<u32>,
    ) -> SlotHandle {
        let id = id.unwrap_or_else(|| {
            let id = reg.next_id;
            reg.next_id += 1;
            id
        });
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

    pub(super) fn info(&self, app: &App, s: &SlotHandle) -> InstanceInfo {
        let files = &self.inner.shared.files;
        let st = s.st();
        // Before the sampler's first pass over a new process: its own
        // memory, read now, rather than nothing (the tree comes with the
        // sampler).
        let first_sample = match (st.memory, st.pid) {
            (0, Some(pid)) => Some(super::metrics::first_memory(pid)).filter(|&m| m > 0),
            _ => None,
        }
        .map(|m| (m, 1));
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
            memory: first_sample.map_or(st.memory, |(m, _)| m),
            cpu: st.cpu,
            processes: first_sample.map_or(st.processes, |(_, n)| n),
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
            health: st.health.clone(),
            connections: st.load.as_ref().map(|l| crate::model::Connections {
                open: l.open(),
                accepted: l.accepted(),
            }),
        }
    }

    pub(super) fn infos_of(&self, name: &str, ids: Option<&[u32]>) -> Vec<InstanceInfo> {
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
                    kernel_steered: app.pool.as_ref().is_some_and(|p| p.steers_any()),
                    watch_error: app.auto.watch_error.clone(),
                });
            }
        }
        Ok(out)
    }

    pub(super) fn slot_refs(&self, s: &Selected) -> Vec<(SlotRef, Status)> {
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
}

#[cfg(test)]
mod tests {
    use super::same_socket;

    #[test]
    fn sockets_clash_on_the_same_port_of_the_same_or_a_wildcard_host() {
        assert!(same_socket("[::]:3000", "*:3000"));
        assert!(same_socket("0.0.0.0:3000", "127.0.0.1:3000"));
        assert!(same_socket("127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(!same_socket("127.0.0.1:3000", "127.0.0.2:3000"));
        assert!(!same_socket("[::]:3000", "*:3001"));
        assert!(!same_socket("*:0", "*:0"));
        assert!(same_socket("/tmp/app.sock", "/tmp/app.sock"));
        assert!(!same_socket("/tmp/app.sock", "*:3000"));
    }
}
