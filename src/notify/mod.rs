//! Alerts: telling a person when an app crashes, goes errored, is replaced
//! for its memory or its health, or a reload fails. `alert` builds the
//! payloads, `throttle` is the per-app rate limit, `spec` the receivers and
//! settings, `http` the client, `command` the local hook. This file is the
//! dispatcher: every receiver has its own bounded queue and worker, so a
//! receiver that hangs delays nobody else, and supervision never waits for
//! a delivery (a full queue drops the alert, counted and logged).

pub mod alert;
pub mod command;
pub mod http;
pub mod spec;
pub mod throttle;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use alert::Alert;
pub use spec::{AlertKind, AppNotify, Receiver};

use crate::clock::now_ms;
use crate::process::spawn::Credentials;
use throttle::Throttle;

/// Alerts waiting for one receiver; past this, new ones are dropped.
const QUEUE: usize = 64;
/// Attempts per alert and receiver, and the pause before the first retry
/// (doubled each time).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// An alert with where it goes.
#[derive(Debug, Clone)]
pub struct Routed {
    pub alert: Alert,
    pub receivers: Vec<Receiver>,
    /// The rate limit's window for this app.
    pub window_ms: u64,
    /// A command receiver runs as the app's user.
    pub run_as: Option<Credentials>,
    /// Each delivery attempt's deadline.
    pub timeout: Duration,
}

/// One receiver's answer to `pmr notify test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyAnswer {
    pub receiver: String,
    pub ok: bool,
    /// `HTTP 200`, `no answer within 5000 ms`, `exit code 0`...
    pub answer: String,
}

/// What happened to one receiver's alerts so far.
#[derive(Debug, Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

struct Worker {
    tx: mpsc::Sender<Job>,
    counts: Arc<Counts>,
}

struct Job {
    alert: Arc<Alert>,
    run_as: Option<Credentials>,
    timeout: Duration,
}

#[derive(Default)]
struct State {
    throttle: Throttle<Routed>,
    workers: HashMap<String, Worker>,
}

pub struct Dispatcher {
    state: Mutex<State>,
    wake: Arc<tokio::sync::Notify>,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

/// A receiver's identity: its kind and its whole address.
fn key_of(r: &Receiver) -> String {
    match r {
        Receiver::Webhook(t) => format!("webhook {}", t.0),
        Receiver::Slack(t) => format!("slack {}", t.0),
        Receiver::Command(c) => format!("command {c}"),
    }
}

impl Dispatcher {
    /// Must be called inside a tokio runtime (the summaries' timer is a task).
    pub fn new() -> Arc<Dispatcher> {
        let wake = Arc::new(tokio::sync::Notify::new());
        let d = Arc::new(Dispatcher {
            state: Mutex::new(State::default()),
            wake: wake.clone(),
        });
        tokio::spawn(summaries(Arc::downgrade(&d), wake));
        d
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the alert for its receivers, unless the rate limit holds it
    /// for a summary. Never waits.
    pub fn submit(&self, r: Routed) {
        let admitted = match r.alert.app.clone() {
            Some(app) => {
                let kind = r.alert.event;
                let (now, window) = (now_ms(), r.window_ms);
                let out = self.st().throttle.admit(&app, kind, r, now, window);
                self.wake.notify_one();
                out
            }
            None => Some(r),
        };
        if let Some(r) = admitted {
            self.enqueue(r);
        }
    }

    fn enqueue(&self, r: Routed) {
        let alert = Arc::new(r.alert);
        let mut st = self.st();
        for rec in r.receivers {
            let worker = st
                .workers
                .entry(key_of(&rec))
                .or_insert_with(|| spawn_worker(rec.clone(), http::Client::shared()));
            let job = Job {
                alert: alert.clone(),
                run_as: r.run_as.clone(),
                timeout: r.timeout,
            };
            if worker.tx.try_send(job).is_err() {
                let n = worker.counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    "alert {} for {}: {} is behind, alert dropped ({n} dropped so far)",
                    alert.event.as_str(),
                    alert.app.as_deref().unwrap_or("pmr"),
                    rec.label()
                );
            }
        }
    }

    /// `pmr notify test`: one attempt per receiver, all at once, each answer.
    pub async fn test(
        &self,
        receivers: Vec<Receiver>,
        alert: Alert,
        timeout: Duration,
    ) -> Vec<NotifyAnswer> {
        let alert = Arc::new(alert);
        let tries = receivers.into_iter().map(|r| {
            let alert = alert.clone();
            let client = http::Client::shared();
            async move {
                let res = deliver(&r, &alert, None, timeout, &client).await;
                let (ok, answer) = match res {
                    Ok(a) => (true, a),
                    Err(Failure { text, .. }) => (false, text),
                };
                NotifyAnswer {
                    receiver: r.label(),
                    ok,
                    answer,
                }
            }
        });
        futures_join_all(tries).await
    }
}

/// Runs the futures at once and keeps their order (no extra crate for it).
async fn futures_join_all<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// Sends the summaries of rate-limit windows as they end. Holds the
/// dispatcher weakly: it ends once the dispatcher is gone (whose drop wakes it).
async fn summaries(d: Weak<Dispatcher>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let next = match d.upgrade() {
            Some(strong) => strong.st().throttle.next_due(),
            None => return,
        };
        let wait = async {
            match next {
                Some(at) => {
                    let ms = at.saturating_sub(now_ms());
                    tokio::time::sleep(Duration::from_millis(ms)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = wake.notified() => {}
        }
        let Some(strong) = d.upgrade() else { return };
        let due = strong.st().throttle.due(now_ms(), |r: &Routed| r.window_ms);
        for (held, span_ms, mut last) in due {
            let kind = last.alert.event.as_str();
            let what = last.alert.message.clone();
            let secs = span_secs(span_ms);
            let alerts = if held == 1 { "alert" } else { "alerts" };
            last.alert.suppressed = held;
            last.alert.message =
                format!("{held} more {kind} {alerts} in the last {secs} s (the last: {what})");
            strong.enqueue(last);
        }
    }
}

/// A summary's span as people say it: `1.5`, `60`, `240` (seconds).
fn span_secs(ms: u64) -> String {
    if ms < 10_000 {
        let tenths = (ms + 50) / 100;
        match tenths % 10 {
            0 => (tenths / 10).to_string(),
            t => format!("{}.{t}", tenths / 10),
        }
    } else {
        ((ms + 500) / 1000).to_string()
    }
}

struct Failure {
    text: String,
    /// Worth another attempt (a timeout, a 5xx, a refused connection), or
    /// not (a 4xx: the URL or the body is wrong).
    retry: bool,
}

fn spawn_worker(rec: Receiver, client: http::Client) -> Worker {
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let app = job.alert.app.clone().unwrap_or_else(|| "pmr".into());
            let kind = job.alert.event.as_str();
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 1;
            loop {
                match deliver(&rec, &job.alert, job.run_as.as_ref(), job.timeout, &client).await {
                    Ok(answer) => {
                        c.delivered.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            "alert {kind} for {app} delivered to {} ({answer})",
                            rec.label()
                        );
                        break;
                    }
                    Err(f) if f.retry && attempt < ATTEMPTS => {
                        tracing::info!(
                            "alert {kind} for {app}: {} attempt {attempt} of {ATTEMPTS} failed: {}; retrying in {} ms",
                            rec.label(),
                            f.text,
                            backoff.as_millis()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        attempt += 1;
                    }
                    Err(f) => {
                        let n = c.failed.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(
                            "alert {kind} for {app} not delivered to {} after {attempt} attempt(s): {} ({n} failed so far, {} delivered)",
                            rec.label(),
                            f.text,
                            c.delivered.load(Ordering::Relaxed)
                        );
                        break;
                    }
                }
            }
        }
    });
    Worker { tx, counts }
}

/// The environment a command receiver gets: the event in `PMR_EVENT`
/// (JSON) and its main fields one by one, and a PATH to find programs.
fn hook_env(a: &Alert) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    );
    env.insert(
        "PMR_EVENT".into(),
        String::from_utf8_lossy(&a.payload()).into_owned(),
    );
    env.insert("PMR_EVENT_NAME".into(), a.event.as_str().into());
    env.insert("PMR_MESSAGE".into(), a.headline());
    env.insert("PMR_HOST".into(), a.host.clone());
    if let Some(app) = &a.app {
        env.insert("PMR_APP".into(), app.clone());
    }
    if let Some(i) = a.instance {
        env.insert("PMR_INSTANCE".into(), i.to_string());
    }
    if let Some(p) = a.pid {
        env.insert("PMR_PID".into(), p.to_string());
    }
    env
}

async fn deliver(
    rec: &Receiver,
    alert: &Alert,
    run_as: Option<&Credentials>,
    timeout: Duration,
    client: &http::Client,
) -> Result<String, Failure> {
    let post = |t: &http::Target, body: Vec<u8>| {
        let uri = t.0.clone();
        async move {
            match client.post_json(&uri, body, timeout).await {
                Ok(a) if a.ok() => Ok(a.describe()),
                Ok(a) => Err(Failure {
                    retry: a.status >= 500 || a.status == 429,
                    text: a.describe(),
                }),
                Err(text) => Err(Failure { text, retry: true }),
            }
        }
    };
    match rec {
        Receiver::Webhook(t) => post(t, alert.payload()).await,
        Receiver::Slack(t) => post(t, alert.slack_body()).await,
        Receiver::Command(c) => {
            let env = hook_env(alert);
            let payload = alert.payload();
            let r = command::run(command::Hook {
                command: c,
                cwd: Path::new("/"),
                env: &env,
                stdin: Some(&payload),
                credentials: run_as,
                timeout,
            })
            .await;
            match r {
                Ok(x) if x.success => Ok(x.describe()),
                Ok(x) => Err(Failure {
                    text: x.describe(),
                    retry: true,
                }),
                Err(text) => Err(Failure { text, retry: false }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::span_secs;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span_secs(1503), "1.5");
        assert_eq!(span_secs(3000), "3");
        assert_eq!(span_secs(60_020), "60");
        assert_eq!(span_secs(239_600), "240");
    }
}
