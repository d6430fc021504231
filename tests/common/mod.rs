//! Shared plumbing of the supervisor integration tests: a real `Supervisor`
//! in a temporary home, apps resolved the way clients resolve them, waits
//! with deadlines that fail saying what was seen, and the `/proc` checks
//! that prove every process a test started is gone.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pmr::settings::Settings;
use pmr::spec::{AppConfig, AppSpec, ResolveContext};
use pmr::supervisor::{Event, EventKind, InstanceInfo, Supervisor, SupervisorConfig};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// How long any single wait may take before the test fails. Generous: the
/// machine is shared, and a passing test never comes near it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Every app a harness starts carries this variable, valued with the
/// harness's own directory; its processes (grandchildren included, they
/// inherit it) are found by it in `/proc/<pid>/environ`.
const TAG_VAR: &str = "PMR_TEST_TAG";

/// A supervisor in a temporary home, and what is needed to prove the test
/// left no process behind.
pub struct Harness {
    pub sup: Supervisor,
    dir: tempfile::TempDir,
    tag: String,
    node: Option<PathBuf>,
    /// Every event since the start, read at the end for the pids they name.
    seen: broadcast::Receiver<Event>,
    finished: bool,
}

impl Harness {
    /// Must run inside a tokio runtime (the supervisor spawns tasks).
    pub fn new() -> Harness {
        let dir = tempfile::Builder::new()
            .prefix("pmr-supervisor-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary home: {e}"));
        let log_dir = dir.path().join("logs");
        std::fs::create_dir_all(&log_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_dir.display()));
        let sup = Supervisor::new(SupervisorConfig {
            log_dir,
            node_preload: None,
            settings: Settings::default(),
        });
        let seen = sup.subscribe_events();
        let tag = dir.path().display().to_string();
        Harness {
            sup,
            dir,
            tag,
            node: find_in_path("node"),
            seen,
            finished: false,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An app running `/bin/sh -c <body>` in the harness's directory.
    pub fn sh(&self, name: &str, body: &str) -> AppConfig {
        AppConfig {
            name: Some(name.into()),
            script: Some("/bin/sh".into()),
            args: Some(vec!["-c".into(), body.into()]),
            env: Some(BTreeMap::from([(TAG_VAR.to_string(), self.tag.clone())])),
            ..AppConfig::default()
        }
    }

    /// A Node.js app whose script is `source`, written to `<name>.js`.
    pub fn node(&self, name: &str, source: &str) -> AppConfig {
        let file = self.dir().join(format!("{name}.js"));
        std::fs::write(&file, source)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        AppConfig {
            name: Some(name.into()),
            script: Some(file.display().to_string()),
            env: Some(BTreeMap::from([(TAG_VAR.to_string(), self.tag.clone())])),
            ..AppConfig::default()
        }
    }

    /// The environment a client would send along: enough to find programs.
    pub fn caller_env(&self) -> BTreeMap<String, String> {
        ["PATH", "HOME"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect()
    }

    /// Resolves an app as the CLI and the JS API do before they send it.
    pub fn spec(&self, cfg: AppConfig) -> AppSpec {
        let node = self.node.clone().unwrap_or_else(|| PathBuf::from("node"));
        let caller_env = self.caller_env();
        let log_dir = self.dir().join("logs");
        let ctx = ResolveContext {
            base_dir: self.dir(),
            caller_env: &caller_env,
            node: &node,
            cpus: 2,
            log_dir: &log_dir,
        };
        if cfg.script.as_deref().is_some_and(|s| s.ends_with(".js")) && self.node.is_none() {
            panic!("these tests need `node` on PATH");
        }
        match cfg.resolve(&ctx) {
            Ok(r) => r.spec,
            Err(e) => panic!("cannot resolve {:?}: {e} ({})", cfg.name, e.code()),
        }
    }

    /// The instances of one app, in list order.
    pub fn rows(&self, name: &str) -> Vec<InstanceInfo> {
        self.sup
            .list()
            .into_iter()
            .filter(|i| i.name == name)
            .collect()
    }

    /// Polls `list()` until `check` returns something, or fails the test
    /// with `what` and the last list it saw.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&[InstanceInfo]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let list = self.sup.list();
            if let Some(v) = check(&list) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what}; the list was: {}",
                    summary(&list)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A fresh view of the event stream, from now on.
    pub fn events(&self) -> Events {
        Events {
            rx: self.sup.subscribe_events(),
            seen: Vec::new(),
        }
    }

    /// Processes alive that carry this harness's tag.
    pub fn tagged_processes(&self) -> Vec<u32> {
        processes_with_env(&format!("{TAG_VAR}={}", self.tag))
    }

    /// Shuts the supervisor down and fails the test if any process it
    /// started (by the pids the events named, or by the tag) is still alive.
    pub async fn finish(mut self) {
        self.sup.shutdown().await;
        assert!(
            self.sup.list().is_empty(),
            "after shutdown the list still has: {}",
            summary(&self.sup.list())
        );
        let mut pids = BTreeSet::new();
        loop {
            match self.seen.try_recv() {
                Ok(ev) => pids.extend(pids_named(&ev)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        assert!(!pids.is_empty(), "the test started no process at all");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let alive: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
            let tagged = self.tagged_processes();
            if alive.is_empty() && tagged.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "after shutdown, processes are still alive: by pid {alive:?}, by tag {tagged:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.finished = true;
    }
}

impl Drop for Harness {
    /// A test that failed before `finish` still leaves nothing running.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.sup.kill_all_now();
        for pid in self.tagged_processes() {
            // The tag was just read from this very pid's environment.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A subscriber's events, kept as they are read so a failed wait can say
/// what did happen.
pub struct Events {
    rx: broadcast::Receiver<Event>,
    seen: Vec<Event>,
}

impl Events {
    /// The next event matching `want`, within the deadline.
    pub async fn until(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        match self.within(DEADLINE, &want).await {
            Some(ev) => ev,
            None => panic!(
                "timed out after {DEADLINE:?} waiting for {what}; events seen: {}",
                self.describe()
            ),
        }
    }

    /// An event matching `want` among those read so far, or else the next
    /// one: for waits on several apps whose events interleave in any order.
    pub async fn seen_or_until(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        match self.seen.iter().find(|e| want(e)) {
            Some(ev) => ev.clone(),
            None => self.until(what, want).await,
        }
    }

    /// The next event matching `want` if one comes within `limit`.
    pub async fn within(
        &mut self,
        limit: Duration,
        want: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return None,
                Ok(Ok(ev)) => {
                    self.seen.push(ev.clone());
                    if want(&ev) {
                        return Some(ev);
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    panic!("the event subscriber lagged by {n} events: the test cannot see them")
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    panic!("the event stream closed while waiting")
                }
            }
        }
    }

    /// Every event read so far, in order.
    pub fn seen(&self) -> &[Event] {
        &self.seen
    }

    /// The events read so far of one app.
    pub fn of(&self, app: &str) -> Vec<Event> {
        self.seen.iter().filter(|e| e.app == app).cloned().collect()
    }

    pub fn describe(&self) -> String {
        self.seen
            .iter()
            .map(|e| format!("[{} {}] {}", e.app, e.id, e.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The short name of an event's kind, for comparing sequences.
pub fn kind(e: &Event) -> &'static str {
    match &e.kind {
        EventKind::Start => "start",
        EventKind::Online => "online",
        EventKind::Listening { .. } => "listening",
        EventKind::Ready => "ready",
        EventKind::Exit { .. } => "exit",
        EventKind::Restart { .. } => "restart",
        EventKind::Errored { .. } => "errored",
        EventKind::Stop => "stop",
        EventKind::Message { .. } => "message",
        EventKind::Reload { .. } => "reload",
        EventKind::Error { .. } => "error",
        EventKind::MemoryLimit { .. } => "memory-limit",
        EventKind::Replacing { .. } => "replacing",
        EventKind::Unhealthy { .. } => "unhealthy",
    }
}

/// Every pid an event names: its instance's, and a reload's replacement
/// (named in the detail before it becomes the instance's pid).
fn pids_named(e: &Event) -> Vec<u32> {
    let mut pids: Vec<u32> = e.pid.into_iter().collect();
    if let EventKind::Reload {
        detail: Some(d), ..
    } = &e.kind
    {
        pids.extend(pid_after(d, "new pid "));
    }
    pids
}

/// The number that follows `prefix` in `text`.
pub fn pid_after(text: &str, prefix: &str) -> Option<u32> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// One line per instance, for failure messages.
pub fn summary(list: &[InstanceInfo]) -> String {
    if list.is_empty() {
        return "(empty)".into();
    }
    list.iter()
        .map(|i| {
            format!(
                "{} id {} instance {} pid {:?} {} restarts {}",
                i.name,
                i.id,
                i.instance,
                i.pid,
                i.status.as_str(),
                i.restarts
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// State and process group of a process, from `/proc/<pid>/stat`; None once
/// it is gone. The command may hold spaces and ')' , so fields are counted
/// after the last ')'.
pub fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Alive: present and not a zombie. A zombie holds nothing; here PID 1
/// reaps orphans late, so `kill -0` would call dead processes alive.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Polls until none of `pids` is alive, or fails naming the survivors.
pub async fn wait_gone(what: &str, pids: &[u32]) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {DEADLINE:?} waiting for {what}: still alive {alive:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One variable of a live process's environment (as it was at exec).
pub fn env_of(pid: u32, var: &str) -> Option<String> {
    // Between fork and exec the child still runs this test binary with its
    // environment, and while it is inside execve (`sh -c 'exec sleep'`
    // replacing the shell) its environ reads back empty: read again until a
    // new image is in place, as long as the process lives.
    let own_exe = std::fs::read_link("/proc/self/exe").ok();
    let mut raw = Vec::new();
    for _ in 0..200 {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let execed = exe.is_some() && exe != own_exe;
        if (execed && !raw.is_empty()) || !alive(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let prefix = format!("{var}=");
    raw.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_string))
}

/// Live processes whose environment holds `entry` (`NAME=value`).
fn processes_with_env(entry: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|raw| raw.split(|b| *b == 0).any(|kv| kv == entry.as_bytes()))
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Polls until `path` holds a pid (a line the app wrote), or fails.
pub async fn read_pid_file(path: &Path) -> u32 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {DEADLINE:?} waiting for the app to write {}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
