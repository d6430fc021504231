//! Restart and reload ordering, tested deterministically: a real
//! `Supervisor` whose slots spawn fake children (`fake_child`). Each test
//! makes the children exit or come online itself, then checks what the
//! slot did and in which order, through the events and `list`.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::{broadcast, mpsc};

use super::fake_child::{FakeChild, FakeSpawner};
use super::fanout::WORKER_STARTUPS;
use super::{Event, EventKind, RestartReason, Status, Supervisor, SupervisorConfig};
use crate::cluster::channel::ChannelEvent;
use crate::model::ReloadStep;
use crate::settings::Settings;
use crate::spec::AppSpec;
use crate::spec::{AppConfig, ResolveContext};

/// How long a test waits for something that must happen before calling
/// it a failure: only reached when the supervisor is broken.
const PATIENCE: Duration = Duration::from_secs(10);

struct Harness {
    sup: Supervisor,
    spawner: Arc<FakeSpawner>,
    spawned: mpsc::UnboundedReceiver<FakeChild>,
    events: broadcast::Receiver<Event>,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.js"), "").unwrap();
        let (spawner, spawned) = FakeSpawner::new();
        let sup = Supervisor::with_spawner(
            SupervisorConfig {
                log_dir: dir.path().join("logs"),
                node_preload: None,
                settings: Settings::default(),
            },
            spawner.clone(),
        );
        let events = sup.subscribe_events();
        Harness {
            sup,
            spawner,
            spawned,
            events,
            dir,
        }
    }

    /// An app named `web` running `app.js`, as an ecosystem file would
    /// define it with `extra` keys.
    fn spec(&self, extra: serde_json::Value) -> AppSpec {
        let mut config = serde_json::json!({ "name": "web", "script": "app.js" });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let config: AppConfig = serde_json::from_value(config).unwrap();
        config
            .resolve(&ResolveContext {
                base_dir: self.dir.path(),
                caller_env: &Default::default(),
                node: std::path::Path::new("/usr/bin/node"),
                cpus: 2,
                log_dir: &self.dir.path().join("logs"),
            })
            .unwrap()
            .spec
    }

    /// Starts the app; its first process, once the slot said it started.
    async fn start(&mut self, extra: serde_json::Value) -> FakeChild {
        let spec = self.spec(extra);
        self.sup.start(vec![spec]).await.unwrap();
        self.events_until(|k| matches!(k, EventKind::Start)).await;
        self.next_child().await
    }

    /// The next process a slot spawned.
    async fn next_child(&mut self) -> FakeChild {
        tokio::time::timeout(PATIENCE, self.spawned.recv())
            .await
            .expect("a slot spawns a process")
            .expect("the spawner is alive")
    }

    fn no_spawn_pending(&mut self) {
        assert!(
            self.spawned.try_recv().is_err(),
            "no process should have been spawned"
        );
    }

    /// Events until (and with) the first one `pred` accepts.
    async fn events_until(&mut self, pred: impl Fn(&EventKind) -> bool) -> Vec<EventKind> {
        let mut seen = Vec::new();
        loop {
            let ev = tokio::time::timeout(PATIENCE, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("the awaited event did not come; saw {seen:?}"))
                .unwrap();
            let done = pred(&ev.kind);
            seen.push(ev.kind);
            if done {
                return seen;
            }
        }
    }

    fn only(&self) -> super::InstanceInfo {
        let list = self.sup.list();
        assert_eq!(list.len(), 1, "{list:?}");
        list.into_iter().next().unwrap()
    }
}

fn is_restart(k: &EventKind) -> bool {
    matches!(k, EventKind::Restart { .. })
}

#[tokio::test]
async fn crashes_restart_per_policy_until_errored() {
    let mut h = Harness::new();
    let first = h
        .start(serde_json::json!({ "max_restarts": 2, "min_uptime": 3_600_000 }))
        .await;
    let mut child = first;
    for n in 1..=2 {
        child.exit(1);
        let seen = h.events_until(|k| matches!(k, EventKind::Start)).await;
        assert!(
            seen.contains(&EventKind::Exit {
                code: Some(1),
                signal: None,
                expected: false
            }),
            "{seen:?}"
        );
        assert!(
            seen.contains(&EventKind::Restart {
                reason: RestartReason::Crash,
                delay_ms: 0
            }),
            "{seen:?}"
        );
        let next = h.next_child().await;
        assert_ne!(next.pid, child.pid);
        assert_eq!(h.only().restarts, n);
        assert_eq!(h.only().pid, Some(next.pid));
        child = next;
    }
    // The third unstable exit in a row is one more than max_restarts.
    child.exit(1);
    let seen = h
        .events_until(|k| matches!(k, EventKind::Errored { .. }))
        .await;
    assert!(!seen.iter().any(is_restart), "{seen:?}");
    let info = h.only();
    assert_eq!(info.status, Status::Errored);
    assert_eq!(info.restarts, 2);
    assert_eq!(info.pid, None);
    h.no_spawn_pending();
}

#[tokio::test]
async fn a_crash_waits_the_restart_delay_then_restarts() {
    let mut h = Harness::new();
    let child = h.start(serde_json::json!({ "restart_delay": 50 })).await;
    let crashed_at = std::time::Instant::now();
    child.exit(3);
    let seen = h.events_until(is_restart).await;
    assert_eq!(
        seen.last(),
        Some(&EventKind::Restart {
            reason: RestartReason::Crash,
            delay_ms: 50
        })
    );
    assert_eq!(h.only().status, Status::WaitingRestart);
    let next = h.next_child().await;
    assert!(crashed_at.elapsed() >= Duration::from_millis(50));
    assert_eq!(h.only().pid, Some(next.pid));
    assert_eq!(h.only().status, Status::Online);
}

#[tokio::test]
async fn a_stop_during_the_restart_delay_cancels_the_restart() {
    let mut h = Harness::new();
    let child = h
        .start(serde_json::json!({ "restart_delay": 3_600_000 }))
        .await;
    child.exit(1);
    h.events_until(is_restart).await;
    assert_eq!(h.only().status, Status::WaitingRestart);
    h.sup.stop(&["web".into()]).await.unwrap();
    let seen = h.events_until(|k| matches!(k, EventKind::Stop)).await;
    assert_eq!(seen, [EventKind::Stop]);
    assert_eq!(h.only().status, Status::Stopped);
    h.no_spawn_pending();
    // A start afterwards is a fresh start: the crash count is forgiven.
    h.sup.start_existing(&["web".into()]).await.unwrap();
    let again = h.next_child().await;
    assert_eq!(h.only().pid, Some(again.pid));
    assert_eq!(h.only().unstable_restarts, 0);
}

#[tokio::test]
async fn a_delete_during_the_restart_delay_ends_the_slot() {
    let mut h = Harness::new();
    let child = h
        .start(serde_json::json!({ "restart_delay": 3_600_000 }))
        .await;
    child.exit(1);
    h.events_until(is_restart).await;
    let report = h.sup.delete(&["web".into()]).await.unwrap();
    assert_eq!(report.instances.len(), 1);
    assert_eq!(report.instances[0].status, Status::Stopped);
    assert!(h.sup.list().is_empty());
    h.no_spawn_pending();
}

#[tokio::test]
async fn a_refused_respawn_counts_as_a_crash_and_is_retried() {
    let mut h = Harness::new();
    let child = h.start(serde_json::json!({})).await;
    h.spawner.refuse_next();
    child.exit(1);
    let next = h.next_child().await;
    let seen = h.events_until(|k| matches!(k, EventKind::Start)).await;
    assert!(
        seen.iter()
            .any(|k| matches!(k, EventKind::Error { message } if message.contains("cannot start"))),
        "{seen:?}"
    );
    let info = h.only();
    assert_eq!(info.pid, Some(next.pid));
    assert_eq!(info.restarts, 2, "the refused attempt and the one that ran");
}

/// A cluster app of one instance whose first process came online.
async fn online_cluster_app(h: &mut Harness) -> FakeChild {
    let old = h
        .start(serde_json::json!({ "exec_mode": "cluster", "instances": 1 }))
        .await;
    assert_eq!(h.only().status, Status::Launching);
    old.say(ChannelEvent::Online);
    h.events_until(|k| matches!(k, EventKind::Online)).await;
    old
}

#[tokio::test]
async fn a_reload_stops_the_old_process_only_once_the_replacement_is_ready() {
    let mut h = Harness::new();
    let old = online_cluster_app(&mut h).await;
    let sup = h.sup.clone();
    let reload = tokio::spawn(async move { sup.reload(&["web".into()], None).await });
    let new = h.next_child().await;
    h.events_until(|k| {
        matches!(
            k,
            EventKind::Reload {
                step: ReloadStep::ReplacementStarted,
                ..
            }
        )
    })
    .await;
    assert!(old.signals().is_empty(), "the old process serves meanwhile");
    new.say(ChannelEvent::Online);
    let report = tokio::time::timeout(PATIENCE, reload)
        .await
        .unwrap()
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    let steps: Vec<ReloadStep> = h
        .events_until(|k| {
            matches!(
                k,
                EventKind::Reload {
                    step: ReloadStep::OldExited,
                    ..
                }
            )
        })
        .await
        .into_iter()
        .filter_map(|k| match k {
            EventKind::Reload { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        [
            ReloadStep::ReplacementReady,
            ReloadStep::OldStopping,
            ReloadStep::OldExited
        ]
    );
    assert_eq!(old.signals(), [Signal::SIGINT]);
    assert!(new.signals().is_empty());
    let info = h.only();
    assert_eq!(info.pid, Some(new.pid));
    assert_eq!(info.status, Status::Online);
    assert_eq!(info.restart_reasons.user, 1);
}

#[tokio::test]
async fn a_replacement_that_dies_before_ready_rolls_the_reload_back() {
    let mut h = Harness::new();
    let old = online_cluster_app(&mut h).await;
    let sup = h.sup.clone();
    let reload = tokio::spawn(async move { sup.reload(&["web".into()], None).await });
    let new = h.next_child().await;
    new.exit(1);
    // The reload's report carries the app's failure.
    let err = tokio::time::timeout(PATIENCE, reload)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_result()
        .unwrap_err();
    assert_eq!(err.code(), "PMR_RELOAD");
    assert!(
        err.to_string().contains(&format!(
            "the replacement exited with code 1 before it was ready; the old process (pid {}) keeps serving",
            old.pid
        )),
        "{err}"
    );
    let seen = h
        .events_until(|k| {
            matches!(
                k,
                EventKind::Reload {
                    step: ReloadStep::Failed,
                    ..
                }
            )
        })
        .await;
    assert!(!seen.iter().any(is_restart), "{seen:?}");
    assert!(old.signals().is_empty(), "the old process was left alone");
    assert!(!old.exited());
    let info = h.only();
    assert_eq!(info.pid, Some(old.pid));
    assert_eq!(info.status, Status::Online);
    assert_eq!(info.restarts, 0);
    h.no_spawn_pending();
}

#[tokio::test]
async fn a_reload_of_many_apps_brings_up_at_most_worker_startups_new_workers_at_once() {
    let mut h = Harness::new();
    let n = WORKER_STARTUPS + 3;
    let specs: Vec<AppSpec> = (0..n)
        .map(|i| h.spec(serde_json::json!({ "name": format!("web-{i}"), "exec_mode": "cluster", "instances": 1 })))
        .collect();
    h.sup.start(specs).await.unwrap();
    for _ in 0..n {
        h.next_child().await.say(ChannelEvent::Online);
    }
    let sup = h.sup.clone();
    let reload = tokio::spawn(async move { sup.reload(&["all".into()], None).await });
    let mut coming_up = Vec::new();
    for _ in 0..WORKER_STARTUPS {
        coming_up.push(h.next_child().await);
    }
    // Every app's reload has begun (all at once); the others wait for a
    // permit, and nothing else can give one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.no_spawn_pending();
    // One replacement ready: its old worker goes, the next app's starts.
    coming_up.remove(0).say(ChannelEvent::Online);
    let next = h.next_child().await;
    next.say(ChannelEvent::Online);
    for c in coming_up {
        c.say(ChannelEvent::Online);
    }
    for _ in 0..n - WORKER_STARTUPS - 1 {
        h.next_child().await.say(ChannelEvent::Online);
    }
    let report = tokio::time::timeout(PATIENCE, reload)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(report.error.is_none(), "{report:?}");
    assert_eq!(report.apps.len(), n);
    assert!(h.sup.list().iter().all(|i| i.status == Status::Online));
}

/// What the sampler sends when the memory limit rule fires.
fn over_memory_limit(h: &Harness, pid: u32) {
    let reg = h.sup.reg();
    let slot = &reg.apps[0].slots[0];
    let sent = slot.tx.send(super::slot::SlotCommand::MemoryLimit {
        pid,
        memory: 500 << 20,
        limit: 300 << 20,
    });
    assert!(sent.is_ok(), "the slot is alive");
}

#[tokio::test]
async fn a_process_over_its_memory_limit_is_replaced_once() {
    let mut h = Harness::new();
    let old = h
        .start(serde_json::json!({ "max_memory_restart": 300 << 20 }))
        .await;
    over_memory_limit(&h, old.pid);
    let new = h.next_child().await;
    let seen = h.events_until(|k| matches!(k, EventKind::Start)).await;
    let memory = seen
        .iter()
        .position(|k| matches!(k, EventKind::MemoryLimit { .. }));
    let restart = seen.iter().position(|k| {
        *k == EventKind::Restart {
            reason: RestartReason::Memory,
            delay_ms: 0,
        }
    });
    assert!(memory.is_some() && memory < restart, "{seen:?}");
    assert_eq!(old.signals(), [Signal::SIGINT], "stopped gracefully");
    let info = h.only();
    assert_eq!(info.pid, Some(new.pid));
    assert_eq!(info.restart_reasons.memory, 1);
    assert_eq!(info.memory_exceeded.map(|m| m.limit), Some(300 << 20));
    // A late report about the process already replaced changes nothing.
    over_memory_limit(&h, old.pid);
    h.sup.stop(&["web".into()]).await.unwrap();
    h.no_spawn_pending();
    assert_eq!(h.only().restart_reasons.memory, 1);
}
