//! One operation over many apps at once (`restart all`, `reload all`, the
//! start of an ecosystem file): the apps are worked on in parallel, a
//! bounded number at a time, and every app's outcome is kept and reported,
//! in the order the apps were named. One app's instances are still handled
//! the way its operation says (a reload rolls them one by one).

use std::future::Future;

use futures_util::stream::{self, StreamExt};

use super::target::Selected;
use super::{InstanceInfo, Report, Supervisor};
use crate::error::{Error, Result};
use crate::model::AppOutcome;

/// How many apps one operation works on at once. An app's stop, restart,
/// start or delete is mostly waiting (for the old process to handle its
/// signal and exit; a new process is spawned, not waited for), so the
/// apps of an operation all go at once up to this bound, which only caps
/// the daemon's own buffers for huge files. (At 16, `buffered` also kept
/// app 17 waiting for app 1 even when apps 2 to 16 were done.) What does
/// cost CPU, new cluster workers coming up in a reload, is bounded apart
/// (`WORKER_STARTUPS`). On 60 idle apps the time of `restart all` is set
/// by the CPU the Node start-ups need, not by this bound.
pub(super) const APP_CONCURRENCY: usize = 64;

/// How many reloads bring up a new cluster worker at once, across the
/// apps of an operation: each waits for its worker to listen, and a Node
/// start-up costs ~100 ms of CPU and ~40 MB while it loads, so on 2 cores
/// 16 already keep the CPU busy; more at once would only push every one
/// of them towards its listen_timeout.
pub(super) const WORKER_STARTUPS: usize = 16;

/// Runs `op` on every item, at most `limit` at once, and returns the
/// outputs in the order of the items (not of completion).
pub(super) async fn bounded<I, F, Fut>(items: I, limit: usize, op: F) -> Vec<Fut::Output>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future,
{
    let done: Vec<Fut::Output> = stream::iter(items)
        .map(op)
        .buffered(limit.max(1))
        .collect()
        .await;
    if done.len() > 1 {
        crate::memory::give_back();
    }
    done
}

/// What an operation did on one app.
#[derive(Debug)]
pub(super) struct AppDone {
    pub app: String,
    pub result: Result<()>,
    pub notices: Vec<String>,
    pub instances: Vec<InstanceInfo>,
}

/// What the operation's step on one app returns to `each_app`.
#[derive(Debug, Default)]
pub(super) struct Step {
    pub result: Option<Error>,
    pub notices: Vec<String>,
    /// The instances to report, when not the app's instances afterwards
    /// (a delete reports the ones it removed).
    pub instances: Option<Vec<InstanceInfo>>,
}

impl From<Result<()>> for Step {
    fn from(r: Result<()>) -> Self {
        Step {
            result: r.err(),
            ..Step::default()
        }
    }
}

/// How `each_app` takes an app's operation lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// Waits for an operation in progress on the app to end.
    Wait,
    /// Fails the app at once when one is in progress (a reload does not
    /// queue behind another reload).
    Try,
}

/// The report of an operation from each app's outcome, in order: the
/// notices and instances of each, every app's outcome, and (if any app
/// failed) an error with the first failure's code whose message names
/// every failure and the apps `verb` anyway.
pub(super) fn merge(done: Vec<AppDone>, verb: &str) -> Report {
    let mut report = Report::default();
    let mut failures: Vec<Error> = Vec::new();
    let mut went_through: Vec<String> = Vec::new();
    for d in done {
        report.notices.extend(d.notices);
        report.instances.extend(d.instances);
        let error = match d.result {
            Ok(()) => {
                went_through.push(d.app.clone());
                None
            }
            Err(e) => {
                let wire = e.to_wire();
                failures.push(e);
                Some(wire)
            }
        };
        report.apps.push(AppOutcome {
            app: d.app,
            ok: error.is_none(),
            error,
        });
    }
    let mut failures = failures.into_iter();
    report.error = failures.next().map(|first| {
        let others: Vec<String> = failures.map(|e| e.to_string()).collect();
        first
            .with_message(|m| partial(m, &others, verb, &went_through))
            .to_wire()
    });
    report
}

/// The message of an operation where some apps failed: the first failure,
/// the others, and the apps it went through on.
fn partial(first: String, others: &[String], verb: &str, went_through: &[String]) -> String {
    let mut m = first;
    if !others.is_empty() {
        m.push_str("; also: ");
        m.push_str(&others.join("; "));
    }
    if !went_through.is_empty() {
        m.push_str(&format!("; {verb} anyway: {}", went_through.join(", ")));
    }
    m
}

impl Supervisor {
    /// Runs `op` on each selected app, in parallel (`APP_CONCURRENCY` at
    /// a time), each under its app's operation lock taken as `lock` says;
    /// then brings the app's automation in line and reports its instances.
    /// An app deleted before its turn is skipped. Every app's outcome is in
    /// the report; none stops the others.
    pub(super) async fn each_app<F, Fut>(
        &self,
        sel: Vec<Selected>,
        verb: &str,
        lock: Lock,
        op: F,
    ) -> Report
    where
        F: Fn(Selected) -> Fut,
        Fut: Future<Output = Step>,
    {
        let op = &op;
        let done = bounded(sel, APP_CONCURRENCY, |s| self.one_app(s, lock, op)).await;
        merge(done.into_iter().flatten().collect(), verb)
    }

    async fn one_app<F, Fut>(&self, s: Selected, lock: Lock, op: &F) -> Option<AppDone>
    where
        F: Fn(Selected) -> Fut,
        Fut: Future<Output = Step>,
    {
        let mutex = self.reg().app(&s.app).map(|a| a.op.clone())?;
        let _guard = match lock {
            Lock::Wait => mutex.lock().await,
            Lock::Try => match mutex.try_lock() {
                Ok(g) => g,
                Err(_) => {
                    return Some(AppDone {
                        result: Err(busy(&s.app)),
                        notices: Vec::new(),
                        instances: self.infos_of(&s.app, s.ids.as_deref()),
                        app: s.app,
                    })
                }
            },
        };
        let step = op(s.clone()).await;
        let mut notices = step.notices;
        notices.extend(self.sync_automation(&s.app).await);
        let instances = step
            .instances
            .unwrap_or_else(|| self.infos_of(&s.app, s.ids.as_deref()));
        Some(AppDone {
            app: s.app,
            result: step.result.map_or(Ok(()), Err),
            notices,
            instances,
        })
    }
}

/// The error for an app another operation holds.
pub(super) fn busy(app: &str) -> Error {
    Error::Busy(format!(
        "a reload of {app} is already in progress; try again when it ends"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn bounded_keeps_the_order_and_never_exceeds_the_limit() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        // Later items finish first: the output is still in item order.
        let out = bounded(0..20u64, 4, |i| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20 - i)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }
        })
        .await;
        assert_eq!(out, (0..20u64).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 4, "4 in flight, no more");
    }

    #[tokio::test]
    async fn bounded_work_takes_the_slowest_batch_not_the_sum() {
        // 32 waits of 100 ms, 16 at a time: two rounds (200 ms), far from
        // the 3.2 s of one after the other.
        let t0 = std::time::Instant::now();
        let out = bounded(0..32, 16, |i| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            i
        })
        .await;
        let took = t0.elapsed();
        assert_eq!(out.len(), 32);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_millis(1600), "{took:?}");
        // A limit of 0 still makes progress, one at a time.
        assert_eq!(bounded(0..3, 0, |i| async move { i }).await, vec![0, 1, 2]);
    }

    fn done(app: &str, result: Result<()>) -> AppDone {
        AppDone {
            app: app.into(),
            result,
            notices: vec![format!("{app} notice")],
            instances: Vec::new(),
        }
    }

    #[test]
    fn merge_reports_every_app_and_names_every_failure() {
        let r = merge(
            vec![
                done("a", Ok(())),
                done("b", Err(Error::Spawn("cannot start b".into()))),
                done("c", Ok(())),
                done("d", Err(Error::Busy("d is busy".into()))),
            ],
            "restarted",
        );
        assert_eq!(
            r.notices,
            ["a notice", "b notice", "c notice", "d notice"].map(String::from)
        );
        let ok: Vec<(&str, bool)> = r.apps.iter().map(|a| (a.app.as_str(), a.ok)).collect();
        assert_eq!(ok, [("a", true), ("b", false), ("c", true), ("d", false)]);
        assert_eq!(
            r.apps[1].error.as_ref().map(|e| e.code.as_str()),
            Some("PMR_SPAWN")
        );
        assert_eq!(
            r.apps[3].error.as_ref().map(|e| e.code.as_str()),
            Some("PMR_BUSY")
        );
        let e = r.error.clone().map(Error::from_wire).unwrap();
        assert_eq!(e.code(), "PMR_SPAWN", "the first failure's code");
        assert_eq!(
            e.to_string(),
            "cannot start b; also: d is busy; restarted anyway: a, c"
        );
        assert!(r.into_result().is_err());
    }

    #[test]
    fn merge_without_failures_has_no_error() {
        let r = merge(vec![done("a", Ok(()))], "stopped");
        assert!(r.error.is_none());
        assert!(r.apps[0].ok && r.apps[0].error.is_none());
        assert!(r.into_result().is_ok());
        let only = merge(
            vec![done("a", Err(Error::Spawn("a failed".into())))],
            "started",
        );
        assert_eq!(only.error.map(|e| e.message).as_deref(), Some("a failed"));
    }
}
