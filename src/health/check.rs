//! One health check of one process: the probe carried out with its
//! timeout, and its result as a line a user can read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::notify::command::{self, Hook};
use crate::notify::http::Client;
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

/// Runs `check` once. `own_port` is the instance's private check port (the
/// preload's), needed by an HTTP check of a path.
pub async fn run(
    check: &HealthCheck,
    subject: &Subject,
    own_port: Option<u16>,
    client: &Client,
) -> Outcome {
    let timeout = Duration::from_millis(check.timeout_ms);
    match &check.probe {
        Probe::Http(target) => {
            let url = if target.starts_with('/') {
                match own_port {
                    Some(p) => format!("http://127.0.0.1:{p}{target}"),
                    None => {
                        return Outcome {
                            waiting: true,
                            ..Outcome::fail("no HTTP server is listening in the instance yet")
                        }
                    }
                }
            } else {
                target.clone()
            };
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
            if let Some(p) = own_port {
                env.insert("PMR_HEALTH_PORT".into(), p.to_string());
            }
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
