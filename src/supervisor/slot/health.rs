//! A slot's health: it starts the checks of each new process, reads their
//! results into the state machine, runs the event-loop watchdog, and
//! replaces an unhealthy process through the zero-downtime path (a reload
//! in cluster mode, a restart otherwise) with restart reason `health`,
//! counted by the crash-loop policy.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Phase, Slot};
use crate::clock::now_ms;
use crate::cluster::channel::ChannelEvent;
use crate::cluster::message::PathAnswer;
use crate::health::check::{self, AskPreload, Outcome, Subject};
use crate::health::state::{loop_blocked, Verdict};
use crate::health::task::Probing;
use crate::health::Probe;
use crate::model::{HealthInfo, HealthStatus};
use crate::policy::restart::Decision;
use crate::process::spawn::Credentials;
use crate::spec::AppSpec;
use crate::spec::ExecMode;
use crate::supervisor::child::wait_for_exit;
use crate::supervisor::child::{Messenger, RunningProcess};
use crate::supervisor::state::{EventKind, RestartReason, Status};

/// The event-loop watchdog looks every eighth of the limit, within these.
const WATCHDOG_MAX_TICK: Duration = Duration::from_millis(250);
const WATCHDOG_MIN_TICK: Duration = Duration::from_millis(100);
fn watchdog_tick(limit_ms: u64) -> Duration {
    Duration::from_millis(limit_ms / 8).clamp(WATCHDOG_MIN_TICK, WATCHDOG_MAX_TICK)
}

/// The fastest and the slowest pace a watched preload is asked to report at.
const WATCHED_REPORT_MIN_MS: u64 = 100;
const WATCHED_REPORT_MAX_MS: u64 = 500;

/// How often the preload of an app reports, given the configured
/// `metrics.interval` and the app's `max_event_loop_lag`: a blocked loop
/// is seen once its report is overdue by more than the limit, so the
/// report interval adds to the time to notice it. A watched app reports
/// every quarter of its limit and at least every 500 ms (when that is
/// more often than the setting), so that a loop blocked forever is noticed
/// within the limit + 0.75 s (the report's pace and the watchdog's tick),
/// not the limit + a whole second and more.
pub(super) fn report_interval(metrics_interval_ms: u64, lag_limit_ms: Option<u64>) -> u64 {
    match lag_limit_ms {
        Some(l) => {
            metrics_interval_ms.min((l / 4).clamp(WATCHED_REPORT_MIN_MS, WATCHED_REPORT_MAX_MS))
        }
        None => metrics_interval_ms,
    }
}

/// The health part of a slot.
#[derive(Default)]
pub(crate) struct Health {
    pub probing: Option<Probing>,
    /// When the watchdog looks next.
    watchdog_at: Option<Instant>,
    /// The running process reported through the preload at least once.
    reported: bool,
    /// The process those apply to.
    pid: Option<u32>,
}

/// Waits for the checks' next result; never, without checks.
pub(super) async fn next_probe_msg(h: &mut Health) -> Option<Outcome> {
    match h.probing.as_mut() {
        Some(p) => p.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How often a replacement's HTTP check is retried while a reload waits for it.
const READY_RETRY: Duration = Duration::from_millis(200);

impl Slot {
    fn subject(&self, spec: &AppSpec, pid: u32) -> Subject {
        Subject {
            pid,
            instance: self.instance,
            cwd: spec.cwd.clone(),
            env: spec.env.clone(),
            credentials: Credentials::resolve(spec.uid.as_deref(), spec.gid.as_deref())
                .ok()
                .flatten(),
        }
    }

    /// Readiness from the health check: with an HTTP check, a reload's
    /// replacement is ready once a check of it passes, not only once it
    /// listens. Listening addresses that arrive meanwhile go to `listening`.
    pub(super) async fn until_check_passes(
        &self,
        new: &mut RunningProcess,
        spec: &AppSpec,
        deadline: Instant,
        listening: &mut Vec<String>,
    ) -> Result<(), String> {
        let Some(check) = spec
            .health_check
            .as_ref()
            .filter(|c| matches!(c.probe, Probe::Http(_)))
        else {
            return Ok(());
        };
        let subject = self.subject(spec, new.pid);
        let client = crate::notify::http::Client::shared();
        let mut exit = new.exit_watch();
        loop {
            let mut preload = Replacement {
                p: &mut *new,
                listening: &mut *listening,
            };
            let o = tokio::select! {
                o = check::run(check, &subject, &mut preload, &client) => o,
                _ = wait_for_exit(&mut exit) => return Err("the replacement exited before its health check passed".into()),
            };
            if o.passed {
                return Ok(());
            }
            if Instant::now() + READY_RETRY >= deadline {
                return Err(format!(
                    "the replacement did not pass its health check ({}) within listen_timeout ({} ms), the last: {}",
                    check.probe.describe(),
                    spec.listen_timeout_ms,
                    o.detail
                ));
            }
            tokio::time::sleep(READY_RETRY).await;
        }
    }

    /// The event-loop limit, where it can be watched: a Node.js app with
    /// pmr's preload (which sends the heartbeats).
    pub(super) fn lag_limit(&self) -> Option<u64> {
        self.spec
            .max_event_loop_lag_ms
            .filter(|_| self.spec.node && self.shared.node_preload.is_some())
    }

    /// Makes the checks match the running process `p`: a new process gets
    /// new checks, starting from `starting`.
    pub(super) fn sync_health(&mut self, p: &RunningProcess) {
        if self.health.pid != Some(p.pid) {
            self.health.pid = Some(p.pid);
            self.health.reported = false;
            self.st().health = None;
        }
        if let Some(check) = &self.spec.health_check {
            if self.health.probing.as_ref().map(|x| x.pid) != Some(p.pid) {
                let subject = self.subject(&self.spec, p.pid);
                self.health.probing = Some(Probing::start(
                    Arc::new(check.clone()),
                    subject,
                    ToPreload {
                        messenger: p.messenger(),
                    },
                    crate::notify::http::Client::shared(),
                    p.started,
                ));
                self.health.reported = false;
                self.publish_health();
            }
        } else {
            self.health.probing = None;
        }
        match self.lag_limit() {
            Some(limit) => {
                if self.health.watchdog_at.is_none() {
                    self.health.watchdog_at = Some(Instant::now() + watchdog_tick(limit));
                }
                if self.spec.health_check.is_none() && self.st().health.is_none() {
                    self.publish_health();
                }
            }
            None => self.health.watchdog_at = None,
        }
    }

    /// No process: no checks.
    pub(super) fn end_health(&mut self) {
        self.health.probing = None;
        self.health.watchdog_at = None;
        self.health.reported = false;
        self.health.pid = None;
        self.st().health = None;
    }

    pub(super) fn watchdog_at(&self) -> Option<Instant> {
        self.health.watchdog_at
    }

    /// The instance's health as jlist shows it.
    fn publish_health(&self) {
        let info = match &self.health.probing {
            Some(pr) => HealthInfo {
                status: pr.tracker.status,
                check: pr.check.probe.kind().to_string(),
                last_check_at: pr.last.as_ref().map(|(at, _)| *at),
                last_result: pr.last.as_ref().map(|(_, o)| o.detail.clone()),
                consecutive_failures: pr.tracker.consecutive_failures,
            },
            None if self.lag_limit().is_some() => HealthInfo {
                status: if self.health.reported {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Starting
                },
                check: "event_loop".into(),
                last_check_at: None,
                last_result: None,
                consecutive_failures: 0,
            },
            None => {
                self.st().health = None;
                return;
            }
        };
        self.st().health = Some(info);
    }

    /// The preload reported: the loop runs.
    pub(super) fn heartbeat(&mut self) {
        if !self.health.reported {
            self.health.reported = true;
            if self.health.probing.is_none() {
                self.publish_health();
            }
        }
    }

    /// A result of the checks of the running process `p`.
    pub(super) async fn on_probe_msg(&mut self, p: Box<RunningProcess>, outcome: Outcome) -> Phase {
        let Some(pr) = self.health.probing.as_mut() else {
            return Phase::Running(p);
        };
        // A process that has not listened yet is still starting (a worker
        // of a loaded machine may take seconds): its checks wait for it.
        if outcome.waiting && !pr.tracker.ever_passed {
            pr.last = Some((now_ms(), outcome));
            self.publish_health();
            return Phase::Running(p);
        }
        let since = pr.started.elapsed().as_millis() as u64;
        let verdict = pr.tracker.on_result(since, outcome.passed);
        let detail = format!(
            "{} failed {} times in a row, the last: {}",
            pr.check.probe.describe(),
            pr.tracker.consecutive_failures,
            outcome.detail
        );
        if !outcome.passed {
            tracing::debug!(app = %self.spec.name, id = self.id, "health check failed: {}", outcome.detail);
        }
        pr.last = Some((now_ms(), outcome));
        let passed_once = pr.tracker.ever_passed;
        self.publish_health();
        match verdict {
            Verdict::Keep => Phase::Running(p),
            Verdict::Replace => {
                self.replace_unhealthy(p, detail, passed_once, Stuck::Answering)
                    .await
            }
        }
    }

    /// The watchdog's look at the running process `p`.
    pub(super) async fn on_watchdog(&mut self, p: Box<RunningProcess>) -> Phase {
        let Some(limit) = self.lag_limit() else {
            self.health.watchdog_at = None;
            return Phase::Running(p);
        };
        self.health.watchdog_at = Some(Instant::now() + watchdog_tick(limit));
        let (lag, interval) = {
            let st = self.st();
            let interval = st
                .node
                .map(|(_, _, i)| i)
                .unwrap_or_else(|| self.shared.settings.borrow().metrics.interval_ms);
            (st.node_metrics().map(|m| m.event_loop_lag_ms), interval)
        };
        let since = p.started.elapsed().as_millis() as u64;
        if !matches!(self.st().status, Status::Online | Status::Launching)
            || !loop_blocked(lag, since, interval, limit)
        {
            return Phase::Running(p);
        }
        let shown = lag.unwrap_or(since.saturating_sub(interval) as f64).round();
        let detail = match lag {
            Some(_) => format!("event loop blocked for {shown} ms (max_event_loop_lag {limit} ms)"),
            None => format!(
                "event loop blocked since the start, no heartbeat in {since} ms (max_event_loop_lag {limit} ms)"
            ),
        };
        let passed_once = self.health.reported;
        self.replace_unhealthy(p, detail, passed_once, Stuck::LoopBlocked)
            .await
    }

    /// Replaces an unhealthy process: in cluster mode by a reload (the
    /// others and the shared socket keep serving, and a replacement that
    /// never gets ready leaves the old process in place), otherwise, or
    /// when that reload fails, by a restart. Too many replacements of
    /// processes that never passed a check, in a row, and the instance is
    /// errored, as a crash loop is.
    pub(super) async fn replace_unhealthy(
        &mut self,
        p: Box<RunningProcess>,
        detail: String,
        passed_once: bool,
        stuck: Stuck,
    ) -> Phase {
        if let Some(h) = self.st().health.as_mut() {
            h.status = HealthStatus::Unhealthy;
        }
        self.emit(EventKind::Unhealthy {
            detail: detail.clone(),
        });
        let decision = self
            .policy
            .on_unhealthy(&self.spec.restart_policy(), passed_once);
        self.st().unstable_restarts = self.policy.unstable_restarts;
        if let Decision::Errored { reason } | Decision::Stopped { reason } = decision {
            self.end_stuck_process(p, stuck).await;
            let reason = format!("{reason}; unhealthy: {detail}");
            self.st().errored_reason = Some(reason.clone());
            self.end_health();
            let idle = self.go_idle(Status::Errored);
            self.emit(EventKind::Errored { reason });
            return idle;
        }
        let p = if self.spec.exec_mode == ExecMode::Cluster && p.has_channel() {
            match self.reload(p, None, RestartReason::Health).await {
                (next, Ok(())) => return next,
                (Phase::Running(old), Err(_)) => old,
                (other, Err(_)) => return other,
            }
        } else {
            p
        };
        let hold = self.pool.as_ref().map(|pool| pool.acquire());
        self.end_stuck_process(p, stuck).await;
        self.emit(EventKind::Restart {
            reason: RestartReason::Health,
            delay_ms: 0,
        });
        let next = self.restart_now(RestartReason::Health);
        drop(hold);
        next
    }

    /// Ends an unhealthy process. A blocked event loop cannot run the
    /// app's shutdown handlers, so a graceful stop would only add
    /// `kill_timeout` to the outage: it is killed at once.
    async fn end_stuck_process(&mut self, p: Box<RunningProcess>, stuck: Stuck) {
        match stuck {
            Stuck::Answering => self.stop_process(p).await,
            Stuck::LoopBlocked => self.kill_process(p).await,
        }
    }
}

/// Why an instance is being replaced as unhealthy.
#[derive(Clone, Copy)]
pub(super) enum Stuck {
    /// Its checks fail, but its loop runs: it can shut down gracefully.
    Answering,
    /// Its event loop has been blocked past `max_event_loop_lag`.
    LoopBlocked,
}

/// The preload of the process, reached over its IPC channel (the answer
/// comes back straight from the channel's task).
struct ToPreload {
    messenger: Option<Messenger>,
}

impl AskPreload for ToPreload {
    async fn ask(&mut self, path: &str, timeout: Duration) -> Option<PathAnswer> {
        let Some(m) = &self.messenger else {
            return Some(PathAnswer::Waiting);
        };
        let Some(answer) = m.ask_check(path, timeout.as_millis() as u64) else {
            return Some(PathAnswer::Error(
                "the IPC channel to the instance is closed".into(),
            ));
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(_)) => Some(PathAnswer::Error(
                "the IPC channel to the instance closed".into(),
            )),
            Err(_) => None,
        }
    }
}

/// A reload's replacement, asked directly: its events are read here while
/// the reload waits (the slot's loop does not run for it yet), and the
/// listening addresses that arrive meanwhile are kept.
struct Replacement<'a> {
    p: &'a mut RunningProcess,
    listening: &'a mut Vec<String>,
}

impl AskPreload for Replacement<'_> {
    async fn ask(&mut self, path: &str, timeout: Duration) -> Option<PathAnswer> {
        let mut preload = ToPreload {
            messenger: self.p.messenger(),
        };
        let events = async {
            while let Some(ev) = self.p.events.recv().await {
                if let ChannelEvent::Listening(a) = ev {
                    self.listening.push(a);
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            a = preload.ask(path, timeout) => a,
            () = events => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_preload_reports_every_quarter_of_its_limit() {
        assert_eq!(report_interval(1000, None), 1000);
        assert_eq!(report_interval(1000, Some(2000)), 500);
        assert_eq!(report_interval(1000, Some(10_000)), 500);
        assert_eq!(
            report_interval(300, Some(10_000)),
            300,
            "the setting when it is faster"
        );
        assert_eq!(report_interval(1000, Some(200)), WATCHED_REPORT_MIN_MS);
    }
}
