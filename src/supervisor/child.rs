//! One running child process of an instance: spawned with its pipes and
//! IPC channel wired up, watched for exit, and stopped as a whole process
//! group. Slots spawn through the `Spawner` seam: the supervisor's is the
//! OS (`OsSpawner`); a test gives fake children whose exits it triggers.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::stdin::{StdinPipe, StdinRefusal};
use super::Shared;
use crate::cluster::balance::Policy;
use crate::cluster::channel::{self, Channel, ChannelEvent, Outgoing};
use crate::cluster::distribute::WorkerLoad;
use crate::cluster::listeners::ListenerPool;
use crate::cluster::message::{health_check_request, next_check_id, PathAnswer};
use crate::logs::capture::{capture, Format, Target};
use crate::logs::{LogPaths, Stream};
use crate::process::pidfd::Pidfd;
use crate::process::scope::KillScope;
use crate::process::spawn::{spawn, Credentials, SpawnArgs, IPC_FD};
use crate::spec::{AppSpec, ExecMode};

/// How often a stop looks for processes left in the group after the main one exited.
const GROUP_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ProcessExit {
    pub fn signal_name(&self) -> Option<String> {
        self.signal.map(|s| {
            Signal::try_from(s)
                .map(|sig| sig.as_str().to_string())
                .unwrap_or_else(|_| format!("signal {s}"))
        })
    }
}

pub(crate) type ExitWatch = watch::Receiver<Option<ProcessExit>>;

/// Waits until the watched process has exited. Cancel-safe.
pub(crate) async fn wait_for_exit(w: &mut ExitWatch) -> ProcessExit {
    loop {
        if let Some(e) = *w.borrow_and_update() {
            return e;
        }
        if w.changed().await.is_err() {
            return w.borrow().unwrap_or(ProcessExit {
                code: None,
                signal: None,
            });
        }
    }
}

pub(crate) struct Launch<'a> {
    pub spec: &'a AppSpec,
    pub id: u32,
    pub instance: u32,
    pub shared: &'a Arc<Shared>,
    pub pool: Option<&'a Arc<ListenerPool>>,
    pub paths: &'a LogPaths,
}

/// How a slot gets its processes.
pub(crate) trait Spawner: Send + Sync {
    fn spawn(&self, l: Launch<'_>) -> io::Result<RunningProcess>;
}

/// Real processes: what every supervisor outside tests spawns with.
pub(crate) struct OsSpawner;

impl Spawner for OsSpawner {
    fn spawn(&self, l: Launch<'_>) -> io::Result<RunningProcess> {
        // A spawn waits until the child has exec'd, and on a machine busy
        // with Node start-ups (the apps of a `restart all`) a child just
        // forked gets the CPU late: ~100 ms per spawn was seen with 60 apps
        // on 2 cores. That wait must not hold a runtime worker (there are
        // two, and every slot's exits and events run on them):
        // block_in_place hands the worker's other tasks on, so the spawns of
        // many apps wait side by side.
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| RunningProcess::launch(l))
            }
            _ => RunningProcess::launch(l),
        }
    }
}

/// What a slot does to a process tree besides waiting for its exit.
pub(crate) trait ProcessTree: Send + Sync {
    /// A signal to the main process only (`pmr sendSignal`); ESRCH once it exited.
    fn signal_main(&self, sig: Signal) -> io::Result<()>;
    /// A signal to every process of the tree: how a graceful stop begins.
    fn signal_all(&self, sig: Signal);
    /// SIGKILL to every process of the tree.
    fn kill_all(&self);
    /// Some process of the tree is still there.
    fn alive(&self) -> bool;
}

/// A real process's tree: its cgroup or its process group.
pub(super) struct OsTree {
    pub pid: u32,
    pub exit: ExitWatch,
    pub scope: Arc<KillScope>,
}

impl ProcessTree for OsTree {
    /// Through the pidfd, never to another process that got its pid: the
    /// pidfd is opened first, so an exit not seen yet means the pidfd
    /// names this process.
    fn signal_main(&self, sig: Signal) -> io::Result<()> {
        match Pidfd::open(self.pid) {
            Ok(fd) if self.exit.borrow().is_none() => fd.signal(sig),
            _ => Err(io::Error::from_raw_os_error(
                nix::errno::Errno::ESRCH as i32,
            )),
        }
    }

    fn signal_all(&self, sig: Signal) {
        self.scope.signal_all(sig);
    }

    fn kill_all(&self) {
        self.scope.kill_all();
    }

    fn alive(&self) -> bool {
        self.scope.alive()
    }
}

/// What a spawner hands over for a new process.
pub(crate) struct Spawned {
    pub pid: u32,
    /// Becomes `Some` once the process exited.
    pub exit: ExitWatch,
    /// What the process says over its IPC channel.
    pub events: mpsc::UnboundedReceiver<ChannelEvent>,
    /// Messages to the process, when it has an IPC channel.
    pub outgoing: Option<mpsc::UnboundedSender<Outgoing>>,
    /// The task serving the IPC channel, ended with the process handle.
    pub channel_task: Option<JoinHandle<()>>,
    pub tree: Box<dyn ProcessTree>,
}

/// Sends messages to one process over its IPC channel.
#[derive(Clone)]
pub(crate) struct Messenger(mpsc::UnboundedSender<Outgoing>);

impl Messenger {
    /// Asks the preload for the health check of `path` (see
    /// `preload/health.js`); None once the channel is gone. The receiver
    /// gets the answer, or an error if the channel ends first.
    pub fn ask_check(&self, path: &str, timeout_ms: u64) -> Option<oneshot::Receiver<PathAnswer>> {
        let id = next_check_id();
        let (reply, answer) = oneshot::channel();
        let msg = health_check_request(id, path, timeout_ms);
        self.0
            .send(Outgoing::HealthCheck { id, msg, reply })
            .ok()
            .map(|()| answer)
    }
}

pub(crate) struct RunningProcess {
    pub pid: u32,
    pub started: Instant,
    pub started_at: u64,
    exit: ExitWatch,
    pub events: mpsc::UnboundedReceiver<ChannelEvent>,
    outgoing: Option<mpsc::UnboundedSender<Outgoing>>,
    channel_task: Option<JoinHandle<()>>,
    /// The worker left through `disconnect` on its own: not a crash.
    pub exited_after_disconnect: bool,
    pub listened: bool,
    /// Its connections, when the supervisor hands them out.
    pub load: Option<Arc<WorkerLoad>>,
    /// What its app's pool knows it by (a cluster worker's channel token).
    pub worker: Option<u64>,
    /// Every process of this one's tree.
    tree: Box<dyn ProcessTree>,
    /// Its stdin, for `pmr send` (none for a fake child).
    stdin: Option<StdinPipe>,
    /// An adopted process's figures from the daemon that started it.
    pub carried: Option<Carried>,
}

/// What an adopted process keeps from the daemon that started it.
#[derive(Debug, Clone)]
pub(crate) struct Carried {
    pub restarts: u32,
    pub reasons: crate::model::RestartCounts,
    pub started_at: u64,
}

impl Drop for RunningProcess {
    fn drop(&mut self) {
        if let Some(t) = self.channel_task.take() {
            t.abort();
        }
    }
}

/// The environment one instance's process gets: the app's, plus its
/// identity (PM2's names included, for apps that read them).
fn instance_env(l: &Launch<'_>) -> BTreeMap<String, String> {
    let mut env = l.spec.env.clone();
    // `pmr set <app>.<KEY> <value>` wins over the app's own env.
    if let Some(vars) = l.shared.settings.borrow().apps.get(&l.spec.name) {
        env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    env.insert(l.spec.instance_var.clone(), l.instance.to_string());
    if let Some(var) = &l.spec.increment_var {
        let base: i64 = env
            .get(var)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        env.insert(var.clone(), (base + l.instance as i64).to_string());
    }
    env.insert("pm_id".into(), l.id.to_string());
    env.insert("PMR_ID".into(), l.id.to_string());
    env.insert("PMR_APP_NAME".into(), l.spec.name.clone());
    env
}

/// Reads the process's stdout and stderr into its log files.
pub(super) fn start_capture<O, E>(l: &Launch<'_>, stdout: O, stderr: E)
where
    O: tokio::io::AsyncRead + Unpin + Send + 'static,
    E: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let spec = l.spec;
    let format = Format::of(&spec.logs);
    let history = l.shared.histories.of(&spec.name, l.id);
    let files = &l.shared.files;
    let combined = l.paths.combined.as_ref().map(|p| files.get(p, &spec.logs));
    let target = |stream: Stream, path: &std::path::Path| Target {
        app: spec.name.clone(),
        id: l.id,
        instance: l.instance,
        stream,
        file: files.get(path, &spec.logs),
        combined: combined.clone(),
        format: format.clone(),
        history: history.clone(),
        tap: l.shared.logs.clone(),
    };
    tokio::spawn(capture(stdout, target(Stream::Out, &l.paths.out)));
    tokio::spawn(capture(stderr, target(Stream::Err, &l.paths.err)));
}

/// Hands the keeper (when the daemon has one) a duplicate of the pipes
/// and channel of process `pid`, so that the daemon's death closes none.
pub(super) fn keep_with_keeper(
    pid: u32,
    out: BorrowedFd<'_>,
    err: BorrowedFd<'_>,
    ipc: Option<BorrowedFd<'_>>,
) {
    use crate::keeper::client::{self, tags};
    if !client::attached() {
        return;
    }
    client::keep(&tags::out(pid), out);
    client::keep(&tags::err(pid), err);
    if let Some(ipc) = ipc {
        client::keep(&tags::ipc(pid), ipc);
    }
}

/// The process is gone: the keeper closes its duplicates.
pub(super) fn forget_with_keeper(pid: u32) {
    use crate::keeper::client::{self, tags};
    if !client::attached() {
        return;
    }
    client::forget(&tags::out(pid));
    client::forget(&tags::err(pid));
    client::forget(&tags::ipc(pid));
}

const HOST_EXITING: &str = "not started: the supervisor's host is exiting";

impl RunningProcess {
    /// A process that started just now.
    pub fn new(s: Spawned) -> Self {
        RunningProcess {
            pid: s.pid,
            started: Instant::now(),
            started_at: crate::clock::now_ms(),
            exit: s.exit,
            events: s.events,
            outgoing: s.outgoing,
            channel_task: s.channel_task,
            exited_after_disconnect: false,
            listened: false,
            load: None,
            worker: None,
            tree: s.tree,
            stdin: None,
            carried: None,
        }
    }

    fn launch(l: Launch<'_>) -> io::Result<Self> {
        if !l.shared.scopes.open() {
            return Err(io::Error::other(HOST_EXITING));
        }
        let spec = l.spec;
        let (program, mut args) = spec.command_line();
        let mut env = instance_env(&l);
        let mut ipc = None;
        if spec.node {
            if let Some(preload) = &l.shared.node_preload {
                args.insert(0, preload.to_string_lossy().into_owned());
                args.insert(0, "--require".into());
                // The preload drains on this signal too, not only SIGINT/SIGTERM.
                let sig = spec.kill_signal.signal();
                env.insert("PMR_KILL_SIGNAL".into(), sig.as_str().into());
                // Upgraded connections (websockets) are closed cleanly just
                // before pmr's SIGKILL would cut them.
                env.insert(
                    "PMR_KILL_TIMEOUT_MS".into(),
                    spec.kill_timeout_ms.to_string(),
                );
            }
            let (ours, theirs) = channel::pair()?;
            env.insert("NODE_CHANNEL_FD".into(), IPC_FD.to_string());
            env.insert("NODE_CHANNEL_SERIALIZATION_MODE".into(), "json".into());
            if spec.exec_mode == ExecMode::Cluster {
                env.insert(
                    "NODE_UNIQUE_ID".into(),
                    l.shared.next_worker_id().to_string(),
                );
            }
            ipc = Some((ours, theirs));
        }
        let (ours, theirs) = match ipc {
            Some((o, t)) => (Some(o), Some(t)),
            None => (None, None),
        };
        let credentials = Credentials::resolve(spec.uid.as_deref(), spec.gid.as_deref())
            .map_err(io::Error::other)?;
        if let Some(c) = &credentials {
            // What login would set; the daemon's own values would be wrong.
            env.insert("HOME".into(), c.home.display().to_string());
            env.insert("USER".into(), c.user.clone());
            env.insert("LOGNAME".into(), c.user.clone());
        }
        #[cfg(target_os = "linux")]
        let cgroup = l.shared.cgroups.as_ref().and_then(|root| {
            let name = format!("{}-{}-{}", spec.name, l.id, l.shared.next_worker_id());
            root.create(&name)
                .map_err(|e| tracing::warn!("no cgroup for {name}: {e}"))
                .ok()
        });
        let spawned = spawn(SpawnArgs {
            program: &program,
            args: &args,
            cwd: &spec.cwd,
            env: &env,
            ipc: theirs,
            credentials: credentials.as_ref(),
            #[cfg(target_os = "linux")]
            cgroup: cgroup.as_ref(),
        })
        .inspect_err(|_| {
            // No process will ever own it: nothing else would remove it.
            #[cfg(target_os = "linux")]
            if let Some(cg) = &cgroup {
                let _ = cg.remove();
            }
        })?;
        // Before anything can reap it: the pidfd names this process for good.
        let leader = Pidfd::open(spawned.pid).ok();
        #[cfg(target_os = "linux")]
        let scope = Arc::new(KillScope::new(spawned.pid, leader, cgroup));
        #[cfg(not(target_os = "linux"))]
        let scope = Arc::new(KillScope::new(spawned.pid, leader));
        if !l.shared.scopes.register(spawned.pid, &scope) {
            return Err(io::Error::other(HOST_EXITING));
        }

        // The keeper's duplicates keep these open if the daemon dies.
        keep_with_keeper(
            spawned.pid,
            spawned.stdout.as_fd(),
            spawned.stderr.as_fd(),
            ours.as_ref().map(|o| o.as_fd()),
        );
        start_capture(&l, spawned.stdout, spawned.stderr);

        let (exit_tx, exit_rx) = watch::channel(None);
        let pid = spawned.pid;
        let exited = spawned.exit;
        tokio::spawn(async move {
            let exit = match exited.await {
                Ok(st) => ProcessExit {
                    code: st.code(),
                    signal: st.signal(),
                },
                Err(e) => {
                    tracing::error!("waiting for a child failed: {e}");
                    ProcessExit {
                        code: None,
                        signal: None,
                    }
                }
            };
            forget_with_keeper(pid);
            let _ = exit_tx.send(Some(exit));
        });

        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let mut load = None;
        let mut worker = None;
        let (outgoing, channel_task) = match ours {
            Some(fd) => {
                let ch = Channel::new(fd, l.pool.cloned(), ev_tx)?;
                worker = Some(ch.token());
                // A shared socket's connections never pass through pmr.
                let balanced = l.pool.is_some_and(|p| p.policy() != Policy::Shared);
                load = balanced.then(|| ch.load());
                let (out_tx, out_rx) = mpsc::unbounded_channel();
                (Some(out_tx), Some(tokio::spawn(ch.run(out_rx))))
            }
            None => (None, None),
        };

        let mut p = RunningProcess::new(Spawned {
            pid: spawned.pid,
            exit: exit_rx.clone(),
            events: ev_rx,
            outgoing,
            channel_task,
            tree: Box::new(OsTree {
                pid: spawned.pid,
                exit: exit_rx,
                scope,
            }),
        });
        p.load = load;
        p.worker = worker;
        p.stdin = Some(StdinPipe::new(spawned.stdin));
        Ok(p)
    }

    pub fn has_channel(&self) -> bool {
        self.outgoing.is_some()
    }

    /// Waits for the process to exit. Cancel-safe.
    pub async fn wait_exit(&mut self) -> ProcessExit {
        wait_for_exit(&mut self.exit).await
    }

    /// A separate handle on the exit, so a caller can wait for it while
    /// also reading `events`.
    pub fn exit_watch(&self) -> ExitWatch {
        self.exit.clone()
    }

    pub fn send(&self, msg: Value) -> bool {
        self.outgoing
            .as_ref()
            .is_some_and(|o| o.send(Outgoing::Message(msg)).is_ok())
    }

    /// A handle on the IPC channel that a task apart from the slot can
    /// hold (a health check's schedule); None without a channel.
    pub fn messenger(&self) -> Option<Messenger> {
        self.outgoing.clone().map(Messenger)
    }

    /// A line for the process's stdin (`pmr send`); never waits.
    pub fn send_line(&self, line: &str) -> Result<(), StdinRefusal> {
        match &self.stdin {
            Some(s) => s.send_line(line),
            None => Err(StdinRefusal::Closed),
        }
    }

    /// A signal to the main process only (`pmr sendSignal`).
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        self.tree.signal_main(sig)
    }

    /// Kills what is left of the tree after the main process died on its own.
    pub fn kill_orphans(&self) {
        self.tree.kill_all();
    }

    /// Graceful stop: the kill signal (or the 'shutdown' message) to the
    /// group, up to `kill_timeout` for the whole group to go, then SIGKILL.
    pub async fn stop(&mut self, spec: &AppSpec) -> ProcessExit {
        let deadline = Instant::now() + Duration::from_millis(spec.kill_timeout_ms);
        // New connections go to the other workers (or wait) from now on.
        if let Some(o) = &self.outgoing {
            let _ = o.send(Outgoing::StopConnections);
        }
        // The preload drains on this internal message; the app gets its own.
        let by_message = spec.shutdown_with_message
            && self.send(serde_json::json!({"cmd": "NODE_PMR", "act": "drain"}))
            && self.send(Value::String("shutdown".into()));
        if !by_message {
            let sig = spec.kill_signal.signal();
            self.tree.signal_all(sig);
        }
        let exited = tokio::time::timeout_at(deadline, self.wait_exit())
            .await
            .ok();
        if exited.is_some() {
            while self.tree.alive() && Instant::now() < deadline {
                tokio::time::sleep(GROUP_POLL).await;
            }
        }
        if exited.is_none() || self.tree.alive() {
            self.tree.kill_all();
        }
        match exited {
            Some(e) => e,
            None => self.wait_exit().await,
        }
    }

    /// Immediate end of the whole group, for a replacement that failed.
    pub async fn kill(&mut self) -> ProcessExit {
        self.tree.kill_all();
        self.wait_exit().await
    }
}
