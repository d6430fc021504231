//! Reload with real processes: one instance at a time, the old process kept
//! when its replacement never gets ready (rollback, `PMR_RELOAD`), one
//! operation per app at a time (`PMR_BUSY`), and a fork-mode app restarted
//! instead, with a notice saying so.

mod common;

use std::collections::BTreeMap;

use common::{alive, kind, pid_after, read_pid_file, wait_gone, Harness};
use pmr::spec::{ExecMode, Instances};
use pmr::supervisor::state::ReloadStep;
use pmr::supervisor::{Event, EventKind, Status};

/// Says 'ready' after READY_DELAY ms, or never when NO_READY is set.
const READY_APP: &str = "
if (!process.env.NO_READY) setTimeout(() => process.send('ready'), Number(process.env.READY_DELAY || 0))
setInterval(() => {}, 1 << 30)
";

fn target(name: &str) -> Vec<String> {
    vec![name.to_string()]
}

fn step(e: &Event) -> Option<ReloadStep> {
    match e.kind {
        EventKind::Reload { step, .. } => Some(step),
        _ => None,
    }
}

/// A cluster app of `n` instances that waits for 'ready', online.
async fn ready_app(h: &Harness, name: &str, n: u32, listen_timeout: u64) -> Vec<u32> {
    let mut cfg = h.node(name, READY_APP);
    cfg.exec_mode = Some(ExecMode::Cluster);
    cfg.instances = Some(Instances::Count(i64::from(n)));
    cfg.wait_ready = Some(true);
    cfg.listen_timeout = Some(listen_timeout);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    h.wait_for(&format!("{name} online"), |l| {
        let rows: Vec<_> = l.iter().filter(|i| i.name == name).collect();
        (rows.len() == n as usize && rows.iter().all(|i| i.status == Status::Online))
            .then(|| rows.iter().filter_map(|i| i.pid).collect())
    })
    .await
}

fn with(h: &Harness, var: &str, value: &str) -> BTreeMap<String, String> {
    let mut env = h.caller_env();
    env.insert(var.into(), value.into());
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_never_gets_ready_leaves_the_old_processes_serving() {
    let h = Harness::new();
    let mut events = h.events();
    // Long enough for a Node.js start on a busy machine; the failing reload
    // waits all of it.
    let before = ready_app(&h, "rdy", 2, 2000).await;

    let err = h
        .sup
        .reload(&target("rdy"), Some(with(&h, "NO_READY", "1")))
        .await
        .and_then(pmr::supervisor::Report::into_result)
        .err()
        .unwrap_or_else(|| panic!("a reload whose replacement never said ready succeeded"));
    assert_eq!(err.code(), "PMR_RELOAD");
    let msg = err.to_string();
    assert!(
        msg.contains("did not send 'ready' within listen_timeout (2000 ms)"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "the old process (pid {}) keeps serving",
            before[0]
        )),
        "{msg}"
    );

    let failed = events
        .until("the reload to fail", |e| {
            step(e) == Some(ReloadStep::Failed)
        })
        .await;
    let steps: Vec<ReloadStep> = events.of("rdy").iter().filter_map(step).collect();
    assert_eq!(
        steps,
        [ReloadStep::ReplacementStarted, ReloadStep::Failed],
        "the first failure ends the reload: {}",
        events.describe()
    );
    let replacement = events
        .of("rdy")
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Reload {
                step: ReloadStep::ReplacementStarted,
                detail: Some(d),
            } => pid_after(d, "new pid "),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the replacement's pid: {}", events.describe()));
    assert_eq!(
        failed.pid,
        Some(before[0]),
        "the event names the old process"
    );
    wait_gone("the replacement that never got ready", &[replacement]).await;

    let rows = h.rows("rdy");
    let pids: Vec<u32> = rows.iter().filter_map(|i| i.pid).collect();
    assert_eq!(pids, before, "both old processes stay");
    assert!(rows.iter().all(|i| i.status == Status::Online));
    assert!(rows.iter().all(|i| i.restarts == 0));
    assert!(before.iter().all(|p| alive(*p)));
    let d = h
        .sup
        .describe(&target("rdy"))
        .unwrap_or_else(|e| panic!("describe: {e}"));
    assert!(
        d[0].history
            .iter()
            .any(|e| step(e) == Some(ReloadStep::Failed)),
        "describe shows the failed reload"
    );

    // The failed reload left the definition as it was: a plain reload works,
    // one instance after the other.
    let report = h
        .sup
        .reload(&target("rdy"), None)
        .await
        .unwrap_or_else(|e| panic!("reload: {e}"));
    assert_eq!(report.instances.len(), 2);
    let after: Vec<u32> = h.rows("rdy").iter().filter_map(|i| i.pid).collect();
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} → {after:?}"
    );
    assert!(h.rows("rdy").iter().all(|i| i.restarts == 1));
    wait_gone("the old processes", &before).await;
    events
        .until("the second reload's last step", |e| {
            e.instance == 1 && step(e) == Some(ReloadStep::OldExited)
        })
        .await;
    let second: Vec<(u32, ReloadStep)> = events
        .of("rdy")
        .iter()
        .filter_map(|e| step(e).map(|s| (e.instance, s)))
        .skip(2)
        .collect();
    let per_instance = |i| {
        [
            ReloadStep::ReplacementStarted,
            ReloadStep::ReplacementReady,
            ReloadStep::OldStopping,
            ReloadStep::OldExited,
        ]
        .map(|s| (i, s))
    };
    let expected: Vec<(u32, ReloadStep)> =
        per_instance(0).into_iter().chain(per_instance(1)).collect();
    assert_eq!(second, expected, "{}", events.describe());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_while_another_runs_is_busy() {
    let h = Harness::new();
    let mut events = h.events();
    let before = ready_app(&h, "once", 1, 10_000).await;

    let sup = h.sup.clone();
    let slow = with(&h, "READY_DELAY", "1500");
    let first = tokio::spawn(async move { sup.reload(&target("once"), Some(slow)).await });
    events
        .until("the first reload to start its replacement", |e| {
            e.app == "once" && step(e) == Some(ReloadStep::ReplacementStarted)
        })
        .await;

    let second = h.sup.reload(&target("once"), None).await;
    let err = second
        .and_then(pmr::supervisor::Report::into_result)
        .err()
        .unwrap_or_else(|| panic!("a second reload ran during the first"));
    assert_eq!(err.code(), "PMR_BUSY");
    assert!(
        err.to_string()
            .contains("a reload of once is already in progress"),
        "{err}"
    );

    let done = first
        .await
        .unwrap_or_else(|e| panic!("the first reload's task: {e}"));
    done.unwrap_or_else(|e| panic!("the first reload: {e}"));
    let [row] = &h.rows("once")[..] else {
        panic!("one instance")
    };
    assert_ne!(row.pid, Some(before[0]), "the first reload replaced it");
    assert_eq!(row.restarts, 1, "only the first reload counted");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_during_a_stop_is_busy() {
    let h = Harness::new();
    // Ignores the stop signal: the stop lasts until kill_timeout.
    let marker = h.dir().join("ignoring.pid");
    let body = format!(
        "trap '' INT; echo $$ > {}; exec sleep 1000",
        marker.display()
    );
    let mut cfg = h.sh("stubborn", &body);
    cfg.kill_timeout = Some(1500);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let pid = h.rows("stubborn")[0].pid;
    // A stop that came before the trap would simply end it.
    assert_eq!(Some(read_pid_file(&marker).await), pid);

    let sup = h.sup.clone();
    let stop = tokio::spawn(async move { sup.stop(&target("stubborn")).await });
    h.wait_for("stubborn to be stopping", |l| {
        l.iter()
            .any(|i| i.name == "stubborn" && i.status == Status::Stopping)
            .then_some(())
    })
    .await;
    let err = h
        .sup
        .reload(&target("stubborn"), None)
        .await
        .and_then(pmr::supervisor::Report::into_result)
        .err()
        .unwrap_or_else(|| panic!("a reload ran during a stop"));
    assert_eq!(err.code(), "PMR_BUSY");
    assert!(err.to_string().contains("stubborn"), "{err}");
    assert_eq!(
        h.rows("stubborn")[0].pid,
        pid,
        "the refused reload touched nothing"
    );

    stop.await
        .unwrap_or_else(|e| panic!("the stop's task: {e}"))
        .unwrap_or_else(|e| panic!("stop: {e}"));
    let [row] = &h.rows("stubborn")[..] else {
        panic!("one instance")
    };
    assert_eq!(row.status, Status::Stopped);
    let signal = row.last_exit.as_ref().and_then(|e| e.signal.clone());
    assert_eq!(
        signal.as_deref(),
        Some("SIGKILL"),
        "killed after kill_timeout"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_mode_reload_is_a_restart_and_says_so() {
    let h = Harness::new();
    let mut events = h.events();
    h.sup
        .start(vec![h.spec(h.sh("forky", "exec sleep 1000"))])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let old = h.rows("forky")[0].pid;
    let report = h
        .sup
        .reload(&target("forky"), None)
        .await
        .unwrap_or_else(|e| panic!("reload: {e}"));
    assert!(
        report
            .notices
            .iter()
            .any(|n| n.contains("forky runs in fork mode")
                && n.contains("restarted instead of reloaded")),
        "{:?}",
        report.notices
    );
    let [row] = &h.rows("forky")[..] else {
        panic!("one instance")
    };
    assert_ne!(row.pid, old);
    assert_eq!((row.status, row.restarts), (Status::Online, 1));
    let new_pid = row.pid;
    events
        .until("the new process's start", |e| {
            kind(e) == "start" && e.pid == new_pid
        })
        .await;
    assert!(
        !events.seen().iter().any(|e| kind(e) == "reload"),
        "no reload step for a restart"
    );
    wait_gone("the old process", &old.into_iter().collect::<Vec<_>>()).await;
    h.finish().await;
}
