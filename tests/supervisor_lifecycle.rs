//! The supervisor's lifecycle with real small processes: the restart policy
//! as apps live it (crash loop to errored, min_uptime, restart_delay,
//! exponential backoff, stop_exit_codes, autorestart off), scaling, delete
//! during a restart delay, a partial start, the orphans of a crash, and what
//! the event/log stream carries.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{alive, env_of, kind, read_pid_file, wait_gone, Events, Harness};
use pmr::supervisor::{Event, EventKind, RestartReason, ScaleTo, Status};

fn target(name: &str) -> Vec<String> {
    vec![name.to_string()]
}

fn is<'a>(app: &'a str, k: &'static str) -> impl Fn(&Event) -> bool + 'a {
    move |e| e.app == app && kind(e) == k
}

/// The delays the Restart events of `app` announced, in order.
fn announced_delays(events: &Events, app: &str) -> Vec<u64> {
    events
        .of(app)
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Restart { delay_ms, .. } => Some(delay_ms),
            _ => None,
        })
        .collect()
}

/// For each restart of `app`: how long after the crash the next process
/// was spawned (event times, in ms).
fn measured_gaps(events: &Events, app: &str) -> Vec<u64> {
    let evs = events.of(app);
    let mut gaps = Vec::new();
    let mut last_exit = None;
    for e in &evs {
        match e.kind {
            EventKind::Exit { .. } => last_exit = Some(e.time),
            EventKind::Start => {
                if let Some(t) = last_exit.take() {
                    gaps.push(e.time.saturating_sub(t));
                }
            }
            _ => {}
        }
    }
    gaps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_ends_errored_after_max_restarts_and_a_user_restart_forgives_it() {
    let h = Harness::new();
    let mut events = h.events();
    let mut cfg = h.sh("crashy", "exit 1");
    cfg.max_restarts = Some(3);
    // Every exit of `exit 1` comes well within this, however loaded the machine.
    cfg.min_uptime = Some(10_000);
    let report = h
        .sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert_eq!(report.instances.len(), 1);

    let errored = events
        .until("crashy errored", is("crashy", "errored"))
        .await;
    let EventKind::Errored { reason } = &errored.kind else {
        unreachable!()
    };
    assert!(
        reason.contains("3 unstable restarts (max_restarts 3)"),
        "{reason}"
    );
    assert!(
        reason.contains("the last one exited with code 1"),
        "{reason}"
    );

    let seq: Vec<&str> = events.of("crashy").iter().map(kind).collect();
    let one = ["start", "online", "exit"];
    let mut expected: Vec<&str> = Vec::new();
    for i in 0..4 {
        expected.extend(one);
        expected.push(if i < 3 { "restart" } else { "errored" });
    }
    assert_eq!(seq, expected, "{}", events.describe());
    for e in events.of("crashy") {
        match e.kind {
            EventKind::Exit { code, expected, .. } => {
                assert_eq!((code, expected), (Some(1), false), "a crash, not a stop")
            }
            EventKind::Restart { reason, .. } => assert_eq!(reason, RestartReason::Crash),
            _ => {}
        }
    }

    let [row] = &h.rows("crashy")[..] else {
        panic!("one instance")
    };
    assert_eq!(row.status, Status::Errored);
    assert_eq!(row.restarts, 3, "max_restarts restarts, then errored");
    assert_eq!(row.restart_reasons.crash, 3);
    assert_eq!(row.unstable_restarts, 3);
    assert_eq!(row.pid, None);
    assert_eq!(row.errored_reason.as_deref(), Some(reason.as_str()));
    let d = h
        .sup
        .describe(&target("crashy"))
        .unwrap_or_else(|e| panic!("describe: {e}"));
    assert!(
        d[0].history.iter().any(|e| kind(e) == "errored"),
        "describe's history shows the errored event"
    );

    // A user restart gives the app its full max_restarts again.
    h.sup
        .restart(&target("crashy"), None)
        .await
        .unwrap_or_else(|e| panic!("restart: {e}"));
    events
        .until("crashy errored again", is("crashy", "errored"))
        .await;
    let [row] = &h.rows("crashy")[..] else {
        panic!("one instance")
    };
    assert_eq!(row.status, Status::Errored);
    assert_eq!(
        row.restarts, 6,
        "three more crash restarts after the user's"
    );
    assert_eq!(row.unstable_restarts, 3);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_min_uptime_is_not_unstable() {
    let h = Harness::new();
    let mut events = h.events();
    let mut cfg = h.sh("slowcrash", "sleep 0.3; exit 1");
    cfg.max_restarts = Some(1);
    cfg.min_uptime = Some(100);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    // The process a restart spawns is announced after it is counted.
    events
        .until("the first start", is("slowcrash", "start"))
        .await;
    for n in 1..=3 {
        events
            .until(&format!("restart {n} to spawn"), is("slowcrash", "start"))
            .await;
    }
    assert!(
        !events.seen().iter().any(|e| kind(e) == "errored"),
        "{}",
        events.describe()
    );
    let row = &h.rows("slowcrash")[0];
    assert_ne!(row.status, Status::Errored);
    assert!(row.restarts >= 3, "{}", row.restarts);
    assert_eq!(row.unstable_restarts, 0, "each run outlived min_uptime");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_delay_holds_every_restart_back() {
    let h = Harness::new();
    let mut events = h.events();
    let mut cfg = h.sh("delayed", "exit 1");
    cfg.restart_delay = Some(300);
    cfg.max_restarts = Some(2);
    cfg.min_uptime = Some(10_000);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    events
        .until("the first restart", is("delayed", "restart"))
        .await;
    h.wait_for("delayed to wait for its restart", |l| {
        l.iter()
            .any(|i| i.name == "delayed" && i.status == Status::WaitingRestart && i.pid.is_none())
            .then_some(())
    })
    .await;
    events.until("errored", is("delayed", "errored")).await;

    assert_eq!(announced_delays(&events, "delayed"), [300, 300]);
    let gaps = measured_gaps(&events, "delayed");
    assert_eq!(gaps.len(), 2, "{}", events.describe());
    // Event times are whole milliseconds: allow the one lost in rounding.
    assert!(gaps.iter().all(|g| g + 1 >= 300), "never early: {gaps:?}");
    assert_eq!(h.rows("delayed")[0].restarts, 2);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exponential_backoff_grows_the_gap_between_spawns() {
    let h = Harness::new();
    let mut events = h.events();
    let mut cfg = h.sh("backoff", "exit 1");
    cfg.exp_backoff_restart_delay = Some(200);
    cfg.max_restarts = Some(4);
    cfg.min_uptime = Some(10_000);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    events.until("errored", is("backoff", "errored")).await;

    // ×1.5 per consecutive crash, as PM2 users know it.
    assert_eq!(announced_delays(&events, "backoff"), [200, 300, 450, 675]);
    let gaps = measured_gaps(&events, "backoff");
    assert_eq!(gaps.len(), 4, "{}", events.describe());
    for (gap, delay) in gaps.iter().zip([200, 300, 450, 675]) {
        assert!(gap + 1 >= delay, "a restart came early: {gaps:?}");
    }
    assert!(
        gaps[3] > gaps[0],
        "the last gap is longer than the first: {gaps:?}"
    );
    assert_eq!(h.rows("backoff")[0].restarts, 4);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_exit_codes_and_autorestart_off_leave_the_app_stopped() {
    let h = Harness::new();
    let mut events = h.events();
    let mut coded = h.sh("coded", "exit 3");
    coded.stop_exit_codes = Some(vec![3]);
    let mut once = h.sh("once", "exit 1");
    once.autorestart = Some(false);
    // The control: an exit code not in the list is a crash.
    let mut other = h.sh("othercode", "exit 4");
    other.stop_exit_codes = Some(vec![3]);
    other.max_restarts = Some(1);
    other.min_uptime = Some(10_000);
    h.sup
        .start(vec![h.spec(coded), h.spec(once), h.spec(other)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));

    for (what, app, k) in [
        ("coded stopped", "coded", "stop"),
        ("once stopped", "once", "stop"),
        ("othercode errored", "othercode", "errored"),
    ] {
        events.seen_or_until(what, is(app, k)).await;
    }

    for (app, code) in [("coded", 3), ("once", 1)] {
        let seq: Vec<&str> = events.of(app).iter().map(kind).collect();
        assert_eq!(
            seq,
            ["start", "online", "exit", "stop"],
            "{app}: {}",
            events.describe()
        );
        let [row] = &h.rows(app)[..] else {
            panic!("{app}: one instance")
        };
        assert_eq!(row.status, Status::Stopped, "{app}");
        assert_eq!(row.restarts, 0, "{app}");
        assert_eq!(row.pid, None, "{app}");
        let exit = row.last_exit.as_ref().map(|e| (e.code, e.expected));
        assert_eq!(exit, Some((Some(code), false)), "{app}");
    }
    let row = &h.rows("othercode")[0];
    assert_eq!(row.status, Status::Errored);
    assert_eq!(
        row.restarts, 1,
        "exit 4 is not in stop_exit_codes: restarted"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_and_down_numbers_the_new_instances() {
    let h = Harness::new();
    let mut cfg = h.sh("scaled", "exec sleep 1000");
    cfg.instances = Some(pmr::spec::Instances::Count(2));
    let report = h
        .sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert_eq!(report.instances.len(), 2);
    let env = |pid: Option<u32>, var: &str| pid.and_then(|p| env_of(p, var));

    let before = h.rows("scaled");
    assert_eq!(
        before.iter().map(|i| i.instance).collect::<Vec<_>>(),
        [0, 1]
    );
    for i in &before {
        assert_eq!(i.status, Status::Online);
        assert_eq!(
            env(i.pid, "NODE_APP_INSTANCE"),
            Some(i.instance.to_string())
        );
    }

    let up = h
        .sup
        .scale("scaled", ScaleTo::Exactly(4))
        .await
        .unwrap_or_else(|e| panic!("scale to 4: {e}"));
    assert_eq!(up.instances.len(), 4);
    let after = h.rows("scaled");
    let mut instances: Vec<u32> = after.iter().map(|i| i.instance).collect();
    instances.sort_unstable();
    assert_eq!(instances, [0, 1, 2, 3]);
    for old in &before {
        let same = after.iter().find(|i| i.id == old.id);
        assert_eq!(
            same.map(|i| i.pid),
            Some(old.pid),
            "scaling up leaves the running instances alone"
        );
    }
    let max_old_id = before.iter().map(|i| i.id).max().unwrap_or(0);
    for new in after.iter().filter(|i| i.instance >= 2) {
        assert!(
            new.id > max_old_id,
            "a new instance gets a new id: {}",
            new.id
        );
        assert_eq!(new.status, Status::Online);
        assert_eq!(
            env(new.pid, "NODE_APP_INSTANCE"),
            Some(new.instance.to_string())
        );
        assert_eq!(env(new.pid, "pm_id"), Some(new.id.to_string()));
    }

    // Down by three: the highest-numbered go, the first stays as it was.
    let gone: Vec<u32> = after
        .iter()
        .filter(|i| i.instance > 0)
        .filter_map(|i| i.pid)
        .collect();
    let down = h
        .sup
        .scale("scaled", ScaleTo::By(-3))
        .await
        .unwrap_or_else(|e| panic!("scale -3: {e}"));
    assert_eq!(down.instances.len(), 1);
    let [kept] = &h.rows("scaled")[..] else {
        panic!("one instance left")
    };
    assert_eq!((kept.instance, kept.pid), (0, before[0].pid));
    wait_gone("the removed instances", &gone).await;

    // Up by one: the free instance number 1 is taken again, with a new id.
    h.sup
        .scale("scaled", ScaleTo::By(1))
        .await
        .unwrap_or_else(|e| panic!("scale +1: {e}"));
    let rows = h.rows("scaled");
    let added = rows
        .iter()
        .find(|i| i.instance == 1)
        .unwrap_or_else(|| panic!("instance 1 is back: {}", common::summary(&rows)));
    assert!(after.iter().all(|i| i.id != added.id), "ids are not reused");
    assert_eq!(env(added.pid, "NODE_APP_INSTANCE"), Some("1".into()));

    let zero = h.sup.scale("scaled", ScaleTo::Exactly(0)).await;
    assert_eq!(zero.err().map(|e| e.code()), Some("PMR_CONFIG"));
    let unknown = h.sup.scale("nosuchapp", ScaleTo::By(1)).await;
    assert_eq!(unknown.err().map(|e| e.code()), Some("PMR_NOT_FOUND"));
    assert_eq!(h.rows("scaled").len(), 2, "a refused scale changes nothing");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_during_a_restart_delay_leaves_nothing_behind() {
    let h = Harness::new();
    let mut events = h.events();
    let mut cfg = h.sh("doomed", "exit 1");
    // Long enough that the delete surely comes inside it.
    cfg.restart_delay = Some(1500);
    cfg.min_uptime = Some(10_000);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let restart = events
        .until("the restart to be scheduled", is("doomed", "restart"))
        .await;
    h.wait_for("doomed to wait for its restart", |l| {
        l.iter()
            .any(|i| i.name == "doomed" && i.status == Status::WaitingRestart)
            .then_some(())
    })
    .await;

    let report = h
        .sup
        .delete(&target("doomed"))
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    assert_eq!(report.instances.len(), 1);
    assert_eq!(report.instances[0].status, Status::Stopped);
    assert!(h.rows("doomed").is_empty(), "the app is gone from the list");
    let d = h.sup.describe(&target("doomed"));
    assert_eq!(d.err().map(|e| e.code()), Some("PMR_NOT_FOUND"));

    // The restart was due `delay_ms` after it was scheduled: wait past
    // that for a spawn that must not come.
    let EventKind::Restart { delay_ms, .. } = restart.kind else {
        unreachable!()
    };
    let respawn = events
        .within(Duration::from_millis(delay_ms + 700), is("doomed", "start"))
        .await;
    assert!(
        respawn.is_none(),
        "a deleted app was spawned again: {}",
        events.describe()
    );
    let starts = events
        .of("doomed")
        .iter()
        .filter(|e| kind(e) == "start")
        .count();
    assert_eq!(starts, 1, "only the first process: {}", events.describe());
    assert!(h.tagged_processes().is_empty());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_start_starts_the_others_and_names_every_failure() {
    let h = Harness::new();
    let first = h.spec(h.sh("first", "exec sleep 1000"));
    // Resolved while the interpreter was there; gone by the time it runs.
    let mut no_interp = h.spec(h.sh("nointerp", "exec sleep 1000"));
    no_interp.interpreter = Some(h.dir().join("no-such-interpreter"));
    // Resolved while executable; the exec bit is gone when it runs.
    let script = h.dir().join("denied.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 1000\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut denied_cfg = h.sh("denied", "");
    denied_cfg.script = Some(script.display().to_string());
    denied_cfg.args = None;
    denied_cfg.interpreter = Some("none".into());
    let denied = h.spec(denied_cfg);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("{e}"));
    let last = h.spec(h.sh("last", "exec sleep 1000"));

    let err = h
        .sup
        .start(vec![first, no_interp, denied, last])
        .await
        .and_then(pmr::supervisor::Report::into_result)
        .err()
        .unwrap_or_else(|| panic!("a start with two unspawnable apps reported success"));
    assert_eq!(err.code(), "PMR_SPAWN");
    let msg = err.to_string();
    assert!(msg.contains("(instance 0 of nointerp)"), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");
    assert!(msg.contains("; also: "), "{msg}");
    assert!(
        msg.contains("denied.sh (instance 0 of denied): Permission denied"),
        "{msg}"
    );
    assert!(msg.ends_with("; started anyway: first, last"), "{msg}");

    let list = h.sup.list();
    let rows: Vec<(String, Status)> = list.iter().map(|i| (i.name.clone(), i.status)).collect();
    assert_eq!(
        rows,
        [
            ("first".to_string(), Status::Online),
            ("last".to_string(), Status::Online)
        ],
        "nothing half-started stays registered"
    );
    for name in ["nointerp", "denied"] {
        let d = h.sup.describe(&target(name));
        assert_eq!(d.err().map(|e| e.code()), Some("PMR_NOT_FOUND"), "{name}");
    }
    // Where apps get a cgroup each, the failed spawns left none behind.
    let scope = list[0].kill_scope.clone().unwrap_or_default();
    if let Some(parent) = scope
        .strip_prefix("cgroup ")
        .and_then(|p| std::path::Path::new(p).parent())
    {
        let entries = std::fs::read_dir(parent)
            .unwrap_or_else(|e| panic!("{}: {e}", parent.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned());
        let leaked: Vec<String> = entries
            .filter(|n| n.starts_with("nointerp-") || n.starts_with("denied-"))
            .collect();
        assert!(leaked.is_empty(), "cgroups of failed spawns: {leaked:?}");
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_ends_the_orphans_of_the_dead_process() {
    let h = Harness::new();
    let mut events = h.events();
    let child_file = h.dir().join("orphan.pid");
    let body = format!(
        "sleep 1000 & echo $! > {}; while [ ! -e {}.go ]; do sleep 0.01; done; exit 1",
        child_file.display(),
        child_file.display()
    );
    let mut cfg = h.sh("orphaner", &body);
    cfg.autorestart = Some(false);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let orphan = read_pid_file(&child_file).await;
    assert!(alive(orphan), "the child runs");
    let app_pid = h.rows("orphaner")[0].pid;
    assert_eq!(
        common::stat(orphan).map(|(_, pgrp)| pgrp),
        app_pid,
        "the child is in the app's group"
    );
    std::fs::write(format!("{}.go", child_file.display()), "").unwrap_or_else(|e| panic!("{e}"));
    events
        .until("the crash to be handled", is("orphaner", "stop"))
        .await;
    wait_gone("the orphan of the crashed app", &[orphan]).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_carries_events_and_output_lines_as_asked() {
    use pmr::protocol::StreamItem;
    let h = Harness::new();
    let mut both = h.sup.stream(true, true);
    let mut only_events = h.sup.stream(true, false);
    h.sup
        .start(vec![h.spec(h.sh(
            "talker",
            "echo to-stdout; echo to-stderr >&2; exec sleep 1000",
        ))])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));

    let mut lines = Vec::new();
    let mut started = false;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while lines.len() < 2 || !started {
        let item = tokio::time::timeout_at(deadline, both.next())
            .await
            .unwrap_or_else(|_| panic!("timed out: lines {lines:?}, started {started}"));
        match item {
            Some(StreamItem::Log(l)) if l.app == "talker" => {
                lines.push((l.stream.as_str(), l.line))
            }
            Some(StreamItem::Event(e)) if e.app == "talker" && kind(&e) == "start" => {
                started = true
            }
            Some(StreamItem::Lagged(n)) => panic!("the stream lagged by {n}"),
            None => panic!("the stream ended"),
            Some(_) => {}
        }
    }
    lines.sort();
    assert_eq!(
        lines,
        [
            ("err", "to-stderr".to_string()),
            ("out", "to-stdout".to_string())
        ]
    );
    // The lines have been published: an events-only stream holds none.
    let mut events_only = Vec::new();
    while let Some(item) = only_events.try_next() {
        events_only.push(item);
    }
    assert!(
        events_only
            .iter()
            .all(|i| matches!(i, StreamItem::Event(_))),
        "{events_only:?}"
    );
    assert!(
        events_only
            .iter()
            .any(|i| matches!(i, StreamItem::Event(e) if kind(e) == "start")),
        "{events_only:?}"
    );
    h.finish().await;
}
