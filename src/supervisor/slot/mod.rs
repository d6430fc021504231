//! One instance slot of an app (`pmr list` shows one row per slot): a task
//! that owns the slot's process, applies the restart policy when it exits,
//! and carries out start, stop, restart and reload (the handover to a
//! replacement is in `handover`). The slot is the only writer of its
//! `InstanceState`.

mod handover;
mod health;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::child::{wait_for_exit, Launch, ProcessExit, RunningProcess};
use super::state::{
    Event, EventKind, ExitRecord, InstanceState, NodeMetrics, RestartReason, Status,
};
use super::stops_first::StopsFirst;
use super::Shared;
use crate::clock::now_ms;
use crate::cluster::channel::ChannelEvent;
use crate::cluster::listeners::{ActiveGuard, ListenerPool};
use crate::error::{Error, Result};
use crate::logs::LogPaths;
use crate::policy::restart::{Decision, Exit, RestartState};
use crate::spec::{AppSpec, ExecMode};

pub(crate) enum SlotCommand {
    Start {
        spec: Option<Arc<AppSpec>>,
        reply: oneshot::Sender<Result<()>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
    Restart {
        spec: Option<Arc<AppSpec>>,
        reason: RestartReason,
        /// The operation's other old processes, when it restarts many at
        /// once: this slot's new process waits for them.
        stops_first: Option<Arc<StopsFirst>>,
        reply: oneshot::Sender<Result<()>>,
    },
    Reload {
        spec: Option<Arc<AppSpec>>,
        reason: RestartReason,
        reply: oneshot::Sender<Result<()>>,
    },
    Signal {
        signal: Signal,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Stop and end the slot (delete, scale down).
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// A message for the process's `process.on('message')`.
    Send {
        packet: serde_json::Value,
        reply: oneshot::Sender<Result<()>>,
    },
    /// A line for the process's stdin (`pmr send`).
    Stdin {
        line: String,
        reply: oneshot::Sender<Result<()>>,
    },
    /// `pmr reset`: forget the restart counts, the crash-loop count included.
    ResetCounters {
        reply: oneshot::Sender<()>,
    },
    /// The sampler saw process `pid` stay over `max_memory_restart`.
    MemoryLimit {
        pid: u32,
        memory: u64,
        limit: u64,
    },
}

enum Phase {
    Idle,
    Running(Box<RunningProcess>),
    Waiting(Instant),
}

pub(crate) struct Slot {
    pub id: u32,
    pub instance: u32,
    pub state: Arc<Mutex<InstanceState>>,
    pub spec: Arc<AppSpec>,
    pub shared: Arc<Shared>,
    pub pool: Option<Arc<ListenerPool>>,
    pub paths: LogPaths,
    pub policy: RestartState,
    /// Keeps the app's listening sockets open while this slot is active.
    pub guard: Option<ActiveGuard>,
    /// The last process of this slot listened; replacements must too.
    pub listens: bool,
    /// While a wait_ready process has not said ready: when to give up waiting.
    launch_deadline: Option<Instant>,
    /// Health checks and the event-loop watchdog of the running process.
    health: health::Health,
    /// Its process could not listen because another cluster app holds the
    /// port: the exit that follows is final (a restart cannot free it).
    port_clash: Option<String>,
}

impl Slot {
    pub fn new(
        id: u32,
        instance: u32,
        spec: Arc<AppSpec>,
        shared: Arc<Shared>,
        pool: Option<Arc<ListenerPool>>,
        paths: LogPaths,
    ) -> Self {
        Slot {
            id,
            instance,
            state: Arc::new(Mutex::new(InstanceState::new(now_ms()))),
            spec,
            shared,
            pool,
            paths,
            policy: RestartState::default(),
            guard: None,
            listens: false,
            launch_deadline: None,
            health: health::Health::default(),
            port_clash: None,
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, InstanceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, kind: EventKind) {
        let mut st = self.st();
        let ev = Event {
            app: self.spec.name.clone(),
            id: self.id,
            instance: self.instance,
            pid: st.pid,
            time: now_ms(),
            kind,
        };
        if !matches!(ev.kind, EventKind::Message { .. }) {
            tracing::info!(app = %ev.app, id = ev.id, "{}", ev.describe());
        }
        st.remember(&ev);
        drop(st);
        let _ = self.shared.events.send(ev);
    }

    fn set_status(&self, s: Status) {
        self.st().status = s;
    }

    fn activate(&mut self) {
        if self.guard.is_none() {
            self.guard = self.pool.as_ref().map(|p| p.acquire());
        }
    }

    fn deactivate(&mut self) {
        self.guard = None;
    }

    fn launch(&mut self, spec: &AppSpec) -> Result<RunningProcess> {
        let p = self
            .shared
            .spawner
            .spawn(Launch {
                spec,
                id: self.id,
                instance: self.instance,
                shared: &self.shared,
                pool: self.pool.as_ref(),
                paths: &self.paths,
            })
            .map_err(|e| {
                Error::Spawn(format!(
                    "cannot start {} (instance {} of {}): {e}",
                    spec.script.display(),
                    self.instance,
                    spec.name
                ))
            })?;
        Ok(p)
    }

    /// Spawns the slot's process and makes it the current one.
    fn start_process(&mut self) -> Result<Box<RunningProcess>> {
        self.port_clash = None;
        self.activate();
        let spec = self.spec.clone();
        match self.launch(&spec) {
            Ok(p) => {
                let waits =
                    spec.wait_ready || (spec.exec_mode == ExecMode::Cluster && p.has_channel());
                {
                    let mut st = self.st();
                    st.pid = Some(p.pid);
                    st.started = Some(p.started.into_std());
                    st.started_at = Some(p.started_at);
                    st.status = if waits {
                        Status::Launching
                    } else {
                        Status::Online
                    };
                    st.errored_reason = None;
                    st.listening.clear();
                    st.clear_figures();
                    st.load = p.load.clone();
                    // Adopted from a daemon that died: its history goes on.
                    if let Some(c) = &p.carried {
                        st.restarts = c.restarts;
                        st.reasons = c.reasons.clone();
                        st.started_at = Some(c.started_at);
                        let age = Duration::from_millis(now_ms().saturating_sub(c.started_at));
                        st.started = std::time::Instant::now().checked_sub(age);
                    }
                }
                self.launch_deadline = spec
                    .wait_ready
                    .then(|| Instant::now() + Duration::from_millis(spec.listen_timeout_ms));
                self.emit(EventKind::Start);
                if !waits {
                    self.emit(EventKind::Online);
                }
                Ok(Box::new(p))
            }
            Err(e) => {
                self.st().last_error = Some(e.to_string());
                self.emit(EventKind::Error {
                    message: e.to_string(),
                });
                Err(e)
            }
        }
    }

    fn count_restart(&self, reason: RestartReason) {
        let mut st = self.st();
        st.restarts += 1;
        st.reasons.add(reason);
    }

    fn record_exit(&mut self, exit: ProcessExit, uptime: Duration, expected: bool) {
        self.end_health();
        let rec = ExitRecord {
            code: exit.code,
            signal: exit.signal_name(),
            at: now_ms(),
            uptime_ms: uptime.as_millis() as u64,
            expected,
        };
        self.st().last_exit = Some(rec.clone());
        self.emit(EventKind::Exit {
            code: rec.code,
            signal: rec.signal,
            expected,
        });
        let mut st = self.st();
        st.pid = None;
        st.started = None;
        st.clear_figures();
        st.listening.clear();
    }

    fn go_idle(&mut self, status: Status) -> Phase {
        self.end_health();
        self.set_status(status);
        self.launch_deadline = None;
        self.deactivate();
        Phase::Idle
    }

    async fn stop_process(&mut self, mut p: Box<RunningProcess>) {
        self.set_status(Status::Stopping);
        let exit = p.stop(&self.spec).await;
        self.record_exit(exit, p.started.elapsed(), true);
    }

    /// As `stop_process`, without the graceful part.
    async fn kill_process(&mut self, mut p: Box<RunningProcess>) {
        self.set_status(Status::Stopping);
        let exit = p.kill().await;
        self.record_exit(exit, p.started.elapsed(), true);
    }

    /// The process exited without being asked to.
    fn on_crash(&mut self, p: Box<RunningProcess>, exit: ProcessExit) -> Phase {
        p.kill_orphans();
        let uptime = p.started.elapsed();
        self.record_exit(exit, uptime, false);
        if let Some(reason) = self.port_clash.take() {
            drop(p);
            self.st().errored_reason = Some(reason.clone());
            let idle = self.go_idle(Status::Errored);
            self.emit(EventKind::Errored { reason });
            return idle;
        }
        let decision = self.policy.on_exit(
            &self.spec.restart_policy(),
            Exit {
                code: exit.code,
                uptime,
                voluntary: p.exited_after_disconnect,
            },
        );
        self.st().unstable_restarts = self.policy.unstable_restarts;
        drop(p);
        match decision {
            Decision::Restart { delay } => {
                // Here and below the state changes before the event goes
                // out: a subscriber that reads `list()` on an event sees it.
                if !delay.is_zero() {
                    self.set_status(Status::WaitingRestart);
                }
                self.emit(EventKind::Restart {
                    reason: RestartReason::Crash,
                    delay_ms: delay.as_millis() as u64,
                });
                if delay.is_zero() {
                    self.restart_now(RestartReason::Crash)
                } else {
                    Phase::Waiting(Instant::now() + delay)
                }
            }
            Decision::Errored { reason } => {
                let last = self
                    .st()
                    .last_exit
                    .as_ref()
                    .map(|e| e.describe())
                    .unwrap_or_default();
                let reason = format!("{reason}; the last one {last}");
                self.st().errored_reason = Some(reason.clone());
                let idle = self.go_idle(Status::Errored);
                self.emit(EventKind::Errored { reason });
                idle
            }
            Decision::Stopped { reason } => {
                tracing::info!(app = %self.spec.name, id = self.id, "not restarted: {reason}");
                let idle = self.go_idle(Status::Stopped);
                self.emit(EventKind::Stop);
                idle
            }
        }
    }

    /// An automatic restart; a process that cannot even be spawned counts
    /// as an instant crash, so the policy ends a hopeless loop.
    fn restart_now(&mut self, reason: RestartReason) -> Phase {
        self.count_restart(reason);
        match self.start_process() {
            Ok(p) => Phase::Running(p),
            Err(_) => {
                let decision = self.policy.on_exit(
                    &self.spec.restart_policy(),
                    Exit {
                        code: None,
                        uptime: Duration::ZERO,
                        voluntary: false,
                    },
                );
                self.st().unstable_restarts = self.policy.unstable_restarts;
                match decision {
                    Decision::Restart { delay } => {
                        self.set_status(Status::WaitingRestart);
                        Phase::Waiting(Instant::now() + delay.max(Duration::from_millis(100)))
                    }
                    Decision::Errored { reason } | Decision::Stopped { reason } => {
                        let last = self.st().last_error.clone().unwrap_or_default();
                        let reason = format!("{reason}; the last error: {last}");
                        self.st().errored_reason = Some(reason.clone());
                        let idle = self.go_idle(Status::Errored);
                        self.emit(EventKind::Errored { reason });
                        idle
                    }
                }
            }
        }
    }

    /// A user asked for the slot to run (start, restart).
    fn user_start(&mut self, spec: Option<Arc<AppSpec>>) -> (Phase, Result<()>) {
        if let Some(s) = spec {
            self.spec = s;
        }
        self.policy.reset();
        self.st().unstable_restarts = 0;
        match self.start_process() {
            Ok(p) => (Phase::Running(p), Ok(())),
            Err(e) => {
                self.st().errored_reason = Some(e.to_string());
                let idle = self.go_idle(Status::Errored);
                self.emit(EventKind::Errored {
                    reason: e.to_string(),
                });
                (idle, Err(e))
            }
        }
    }

    fn on_channel_event(&mut self, p: &mut RunningProcess, ev: ChannelEvent) {
        match ev {
            ChannelEvent::Online => {
                if !self.spec.wait_ready && self.st().status == Status::Launching {
                    self.set_status(Status::Online);
                    self.emit(EventKind::Online);
                }
            }
            ChannelEvent::Listening(address) => {
                p.listened = true;
                self.listens = true;
                self.st().listening.push(address.clone());
                self.emit(EventKind::Listening { address });
            }
            ChannelEvent::Ready => {
                if self.st().status == Status::Launching {
                    self.set_status(Status::Online);
                    self.launch_deadline = None;
                }
                self.emit(EventKind::Ready);
            }
            ChannelEvent::ExitedAfterDisconnect => p.exited_after_disconnect = true,
            ChannelEvent::BindFailed { address, errno } => {
                let holder = (errno == nix::errno::Errno::EADDRINUSE as i32)
                    .then(|| self.shared.ports.holder_of(&address, &self.spec.name))
                    .flatten();
                let msg = match holder {
                    Some(h) => {
                        let m = super::registry::port_clash_message(&self.spec.name, &address, &h);
                        self.port_clash = Some(m.clone());
                        m
                    }
                    None => format!(
                        "cannot listen on {address}: {}",
                        std::io::Error::from_raw_os_error(errno)
                    ),
                };
                self.st().last_error = Some(msg.clone());
                self.emit(EventKind::Error { message: msg });
            }
            ChannelEvent::Metrics(r) => {
                let metrics = NodeMetrics {
                    event_loop_lag_ms: r.lag_ms,
                    heap_used: r.heap_used,
                    heap_total: r.heap_total,
                    active_handles: r.handles,
                };
                let interval = health::report_interval(
                    self.shared.settings.borrow().metrics.interval_ms,
                    self.lag_limit(),
                );
                self.st().node = Some((metrics, Instant::now().into_std(), r.interval_ms));
                self.heartbeat();
                // The preload starts at its default pace: tell it the
                // configured one, or a watched app's faster one (and any
                // later change), when they differ.
                if r.interval_ms != interval {
                    p.send(crate::cluster::message::metrics_interval(interval));
                }
            }
            // No more reports will come: figures that would only age away.
            ChannelEvent::Closed => self.st().node = None,
            ChannelEvent::App(data) => self.emit(EventKind::Message { data }),
        }
    }

    /// Handles a command; returns the next phase, or None when the slot ends.
    async fn on_command(&mut self, phase: Phase, cmd: SlotCommand) -> Option<Phase> {
        match cmd {
            SlotCommand::Start { spec, reply } => {
                let (next, result) = match phase {
                    Phase::Running(p) => (Phase::Running(p), Ok(())),
                    Phase::Waiting(_) | Phase::Idle => self.user_start(spec),
                };
                let _ = reply.send(result);
                Some(next)
            }
            SlotCommand::Stop { reply } => {
                let next = self.stop_phase(phase).await;
                let _ = reply.send(());
                Some(next)
            }
            SlotCommand::Restart {
                spec,
                reason,
                stops_first,
                reply,
            } => {
                // A restart counts whether or not a process was running (a
                // stopped app too), as PM2 counts it: `list`, `describe` and
                // the event stream all see this one count. An errored app
                // brought back starts afresh, as after `start`.
                let counts = self.st().status != Status::Errored;
                // Hold the sockets through the gap so connections queue.
                let hold = self.pool.as_ref().map(|p| p.acquire());
                if let Phase::Running(p) = phase {
                    self.stop_process(p).await;
                }
                if let Some(s) = stops_first {
                    s.stopped().await;
                }
                if counts {
                    self.count_restart(reason);
                    self.emit(EventKind::Restart {
                        reason,
                        delay_ms: 0,
                    });
                }
                let (next, result) = self.user_start(spec);
                drop(hold);
                let _ = reply.send(result);
                Some(next)
            }
            SlotCommand::Reload {
                spec,
                reason,
                reply,
            } => {
                let (next, result) = match phase {
                    Phase::Running(p) => self.reload(p, spec, reason).await,
                    other => {
                        let was_waiting = matches!(other, Phase::Waiting(_));
                        if was_waiting {
                            self.count_restart(reason);
                        }
                        self.user_start(spec)
                    }
                };
                let _ = reply.send(result);
                Some(next)
            }
            SlotCommand::Signal { signal, reply } => {
                let result = match &phase {
                    Phase::Running(p) => p
                        .signal(signal)
                        .map_err(|e| Error::NotFound(format!("cannot signal pid {}: {e}", p.pid))),
                    _ => Err(Error::NotFound(format!(
                        "{} (id {}) is not running",
                        self.spec.name, self.id
                    ))),
                };
                let _ = reply.send(result);
                Some(phase)
            }
            SlotCommand::Send { packet, reply } => {
                let result = match &phase {
                    Phase::Running(p) if p.send(packet) => Ok(()),
                    Phase::Running(p) => Err(Error::NotFound(format!(
                        "{} (id {}, pid {}) has no IPC channel to receive messages",
                        self.spec.name, self.id, p.pid
                    ))),
                    _ => Err(Error::NotFound(format!(
                        "{} (id {}) is not running",
                        self.spec.name, self.id
                    ))),
                };
                let _ = reply.send(result);
                Some(phase)
            }
            SlotCommand::Stdin { line, reply } => {
                let result = match &phase {
                    Phase::Running(p) => p
                        .send_line(&line)
                        .map_err(|r| super::stdin::refusal_error(&self.spec.name, self.id, r)),
                    _ => Err(Error::NotFound(format!(
                        "{} (id {}) is not running",
                        self.spec.name, self.id
                    ))),
                };
                let _ = reply.send(result);
                Some(phase)
            }
            SlotCommand::Shutdown { reply } => {
                self.stop_phase(phase).await;
                let _ = reply.send(());
                None
            }
            SlotCommand::ResetCounters { reply } => {
                self.policy.reset();
                {
                    let mut st = self.st();
                    st.restarts = 0;
                    st.reasons = Default::default();
                    st.unstable_restarts = 0;
                }
                let _ = reply.send(());
                Some(phase)
            }
            SlotCommand::MemoryLimit { pid, memory, limit } => match phase {
                Phase::Running(p) if p.pid == pid => {
                    Some(self.replace_for_memory(p, memory, limit).await)
                }
                // Already replaced or stopped since that sample.
                other => Some(other),
            },
        }
    }

    async fn stop_phase(&mut self, phase: Phase) -> Phase {
        let was_active = !matches!(phase, Phase::Idle);
        if let Phase::Running(p) = phase {
            self.stop_process(p).await;
        }
        let idle = self.go_idle(Status::Stopped);
        if was_active {
            self.emit(EventKind::Stop);
        }
        idle
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<SlotCommand>) {
        let mut phase = Phase::Idle;
        loop {
            phase = match phase {
                Phase::Idle => match rx.recv().await {
                    Some(cmd) => match self.on_command(Phase::Idle, cmd).await {
                        Some(p) => p,
                        None => return,
                    },
                    None => return,
                },
                Phase::Waiting(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => self.restart_now(RestartReason::Crash),
                        cmd = rx.recv() => match cmd {
                            Some(cmd) => match self.on_command(Phase::Waiting(at), cmd).await {
                                Some(p) => p,
                                None => return,
                            },
                            None => return,
                        },
                    }
                }
                Phase::Running(mut p) => {
                    self.sync_health(&p);
                    let launch_deadline = self.launch_deadline;
                    let watchdog_at = self.watchdog_at();
                    let mut exit_watch = p.exit_watch();
                    tokio::select! {
                        exit = wait_for_exit(&mut exit_watch) => self.on_crash(p, exit),
                        Some(msg) = health::next_probe_msg(&mut self.health) => {
                            self.on_probe_msg(p, msg).await
                        }
                        _ = async {
                            match watchdog_at {
                                Some(d) => tokio::time::sleep_until(d).await,
                                None => std::future::pending().await,
                            }
                        } => self.on_watchdog(p).await,
                        Some(ev) = p.events.recv() => {
                            self.on_channel_event(&mut p, ev);
                            Phase::Running(p)
                        }
                        _ = async {
                            match launch_deadline {
                                Some(d) => tokio::time::sleep_until(d).await,
                                None => std::future::pending().await,
                            }
                        } => {
                            // PM2 behaviour: a wait_ready app that never says
                            // ready is considered online after listen_timeout.
                            self.launch_deadline = None;
                            if self.st().status == Status::Launching {
                                self.set_status(Status::Online);
                                self.emit(EventKind::Online);
                            }
                            Phase::Running(p)
                        }
                        cmd = rx.recv() => match cmd {
                            Some(cmd) => match self.on_command(Phase::Running(p), cmd).await {
                                Some(p) => p,
                                None => return,
                            },
                            None => {
                                self.stop_process(p).await;
                                return;
                            }
                        },
                    }
                }
            };
        }
    }
}
