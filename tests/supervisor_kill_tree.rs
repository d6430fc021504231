//! A stop ends the app's whole process tree: a grandchild in its process
//! group always, and one that left the group with setsid wherever the kill
//! scope is a cgroup. Alone in its binary: every supervisor of a process
//! shares one cgroup parent, which the first to end removes when empty, and
//! another supervisor started meanwhile would fall back to process groups.

mod common;

use common::{alive, read_pid_file, stat, wait_gone, Harness};
use pmr::supervisor::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_whole_process_tree() {
    let h = Harness::new();
    let child_file = h.dir().join("child.pid");
    let escapee_file = h.dir().join("escapee.pid");
    let body = format!(
        "sleep 1000 & echo $! > {child}; \
         setsid sh -c 'echo $$ > {escapee}; exec sleep 1000' & \
         wait",
        child = child_file.display(),
        escapee = escapee_file.display()
    );
    let mut cfg = h.sh("tree", &body);
    // The background sleep ignores SIGINT (as `&` makes it): the stop
    // ends it with SIGKILL after this.
    cfg.kill_timeout = Some(500);
    h.sup
        .start(vec![h.spec(cfg)])
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let [row] = &h.rows("tree")[..] else {
        panic!("one instance")
    };
    let app = row
        .pid
        .unwrap_or_else(|| panic!("tree runs: {}", common::summary(&h.rows("tree"))));
    let child = read_pid_file(&child_file).await;
    let escapee = read_pid_file(&escapee_file).await;
    assert!(alive(child) && alive(escapee), "the grandchildren run");
    assert_eq!(stat(child).map(|s| s.1), Some(app), "in the app's group");
    let escapee_group = stat(escapee).map(|s| s.1);
    assert!(
        escapee_group.is_some() && escapee_group != Some(app),
        "the escapee left the app's group: {escapee_group:?}"
    );
    let scope = row.kill_scope.clone().unwrap_or_default();
    let by_cgroup = scope.starts_with("cgroup ");
    assert!(
        by_cgroup || scope == format!("process group {app}"),
        "kill scope: {scope:?}"
    );

    let report = h
        .sup
        .stop(&["tree".to_string()])
        .await
        .unwrap_or_else(|e| panic!("stop: {e}"));
    assert_eq!(report.instances[0].status, Status::Stopped);
    assert_eq!(h.rows("tree")[0].kill_scope, None);
    wait_gone("the app and its grandchild", &[app, child]).await;
    if by_cgroup {
        wait_gone("the setsid escapee", &[escapee]).await;
    } else {
        // Process groups cannot reach it: end it here so nothing is left.
        eprintln!("no cgroup v2 here: the setsid part is not checked");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(escapee as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    h.finish().await;
}
