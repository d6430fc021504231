//! One health check of one process: the probe carried out with its
//! timeout, and its result as a line a user can read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::message::PathAnswer;
use crate::notify::command::{self, Hook};
use crate::notify::http::{Answer, Client};
use crate::process::spawn::Credentials;
use crate::spec::health::{HealthCheck, Probe};

/// What a check is run against: one process of an instance.
#[derive(Debug, Clone)]
pub struct Subject {
    pub pid: u32,
    pub instance: u32,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    pub credentials: Option<Credentials>,
}

/// A check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub passed: bool,
    pub detail: String,
    /// The instance has no server to check yet (it has not listened).
    pub waiting: bool,
}

impl Outcome {
    fn pass(detail: impl Into<String>) -> Self {
        Outcome {
            passed: true,
            detail: detail.into(),
            waiting: false,
        }
    }
    fn fail(detail: impl Into<String>) -> Self {
        Outcome {
            passed: false,
            detail: detail.into(),
            waiting: false,
        }
    }
}

/// The way to the instance's preload, which carries out checks of a path
/// inside the instance (see `preload/health.js`).
pub(crate) trait AskPreload: Send {
    /// Asks for one GET of `path`; None when no answer came within
    /// `timeout` (a stuck event loop never answers).
    fn ask(
        &mut self,
        path: &str,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Option<PathAnswer>> + Send;
}

/// What the preload's answer (or its absence) means.
pub fn path_outcome(answer: Option<PathAnswer>, timeout_ms: u64) -> Outcome {
    match answer {
        Some(PathAnswer::Status { status, body }) => {
            let a = Answer { status, body };
            if a.ok() {
                Outcome::pass(format!("HTTP {status}"))
            } else {
                Outcome::fail(a.describe())
            }
        }
        Some(PathAnswer::Error(e)) => Outcome::fail(e),
        Some(PathAnswer::Waiting) => Outcome {
            waiting: true,
            ..Outcome::fail("no HTTP server is listening in the instance yet")
        },
        None => Outcome::fail(format!("no answer within {timeout_ms} ms")),
    }
}

/// Runs `check` once; a check of a path goes through `preload`.
pub(crate) async fn run(
    check: &HealthCheck,
    subject: &Subject,
    preload: &mut impl AskPreload,
    client: &Client,
) -> Outcome {
    let timeout = Duration::from_millis(check.timeout_ms);
    match &check.probe {
        Probe::Http(path) if path.starts_with('/') => {
            path_outcome(preload.ask(path, timeout).await, check.timeout_ms)
        }
        Probe::Http(url) => {
            let Ok(uri) = url.parse() else {
                return Outcome::fail(format!("'{url}' is not a URL"));
            };
            match client.get(&uri, timeout).await {
                Ok(a) if a.ok() => Outcome::pass(format!("HTTP {}", a.status)),
                Ok(a) => Outcome::fail(a.describe()),
                Err(e) => Outcome::fail(e),
            }
        }
        Probe::Tcp(port) => {
            let connect = tokio::net::TcpStream::connect(("127.0.0.1", *port));
            match tokio::time::timeout(timeout, connect).await {
                Ok(Ok(_)) => Outcome::pass(format!("port {port} accepts connections")),
                Ok(Err(e)) => Outcome::fail(format!("cannot connect to port {port}: {e}")),
                Err(_) => Outcome::fail(format!(
                    "no connection to port {port} within {} ms",
                    check.timeout_ms
                )),
            }
        }
        Probe::Command(c) => {
            let mut env = subject.env.clone();
            env.insert("PMR_PID".into(), subject.pid.to_string());
            env.insert("PMR_INSTANCE".into(), subject.instance.to_string());
            let r = command::run(Hook {
                command: c,
                cwd: &subject.cwd,
                env: &env,
                stdin: None,
                credentials: subject.credentials.as_ref(),
                timeout,
            })
            .await;
            match r {
                Ok(x) if x.success => Outcome::pass(x.describe()),
                Ok(x) => Outcome::fail(x.describe()),
                Err(e) => Outcome::fail(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_preloads_answers_mean() {
        let ok = |status| {
            Some(PathAnswer::Status {
                status,
                body: String::new(),
            })
        };
        assert!(path_outcome(ok(200), 100).passed);
        assert!(path_outcome(ok(204), 100).passed);
        let o = path_outcome(
            Some(PathAnswer::Status {
                status: 503,
                body: "db down".into(),
            }),
            100,
        );
        assert!(!o.passed && !o.waiting);
        assert_eq!(o.detail, "HTTP 503: db down");
        let o = path_outcome(Some(PathAnswer::Error("socket hang up".into())), 100);
        assert_eq!((o.passed, o.detail.as_str()), (false, "socket hang up"));
        let o = path_outcome(Some(PathAnswer::Waiting), 100);
        assert!(!o.passed && o.waiting);
        let o = path_outcome(None, 1500);
        assert!(!o.passed && !o.waiting);
        assert_eq!(o.detail, "no answer within 1500 ms");
    }
}
