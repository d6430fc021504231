//! `pmr-runtime`: the supervisor in the foreground, for containers. App
//! output goes to the runtime's own stdout/stderr; SIGTERM/SIGINT stop every
//! app gracefully and end the runtime; as PID 1 it reaps orphans; it exits
//! non-zero when every app is errored so the orchestrator restarts the
//! container; an optional HTTP endpoint answers Kubernetes probes.

mod health;
mod output;
#[cfg(target_os = "linux")]
mod reaper;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

pub use output::{say, Output};

/// One error line of the runtime's own.
pub fn say_error(e: &Error) {
    say(&format!("error: {e}"));
}

use crate::dashboard::{DashboardEndpoint, TokenSource};
use crate::error::{Error, Result};
use crate::host::{HostSignal, HostSignalSender};
use crate::settings::{DashboardSettings, Settings};

/// A token given to the runtime must be at least this long to be worth one.
const MIN_TOKEN_LEN: usize = 32;
use crate::spec::AppSpec;
use crate::supervisor::{Status, Supervisor, SupervisorConfig};

#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub specs: Vec<AppSpec>,
    pub output: Output,
    /// Exit once no app runs any more (all stopped or errored).
    pub auto_exit: bool,
    /// Serve /healthz and /readyz on this port.
    pub health_port: Option<u16>,
    pub health_host: String,
    /// Serve the web dashboard on this port (off when None).
    pub dashboard_port: Option<u16>,
    pub dashboard_host: String,
    pub log_dir: PathBuf,
    pub node_preload: Option<PathBuf>,
}

/// Runs the runtime on its own thread (Node's event loop stays free for
/// signals); `on_exit` gets the process exit code.
pub fn spawn(
    opts: RuntimeOptions,
    on_exit: impl FnOnce(i32) + Send + 'static,
) -> Result<HostSignalSender> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("pmr-runtime".into())
        .spawn(move || {
            let code = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Error::io("cannot start the runtime", e))
                .and_then(|rt| rt.block_on(run(opts, rx)))
                .unwrap_or_else(|e| {
                    output::say(&format!("error: {e}"));
                    1
                });
            on_exit(code);
        })
        .map_err(|e| Error::io("cannot start the runtime thread", e))?;
    Ok(tx)
}

async fn run(
    opts: RuntimeOptions,
    mut host_signals: mpsc::UnboundedReceiver<HostSignal>,
) -> Result<i32> {
    std::fs::create_dir_all(&opts.log_dir)
        .map_err(|e| Error::io(format!("cannot create {}", opts.log_dir.display()), e))?;
    let sup = Supervisor::new(SupervisorConfig {
        log_dir: opts.log_dir.clone(),
        node_preload: opts.node_preload.clone(),
        settings: Settings::default(),
    });
    #[cfg(target_os = "linux")]
    if std::process::id() == 1 {
        reaper::spawn(sup.clone());
    }
    let printer = output::spawn(sup.stream(true, true), opts.output);
    if let Some(port) = opts.health_port {
        health::serve(sup.clone(), &opts.health_host, port).await?;
    }
    let _dashboard = match opts.dashboard_port {
        Some(port) => Some(dashboard(&sup, port, &opts.dashboard_host)?),
        None => None,
    };
    let names: Vec<String> = opts.specs.iter().map(|s| s.name.clone()).collect();
    if let Err(e) = sup
        .start(opts.specs)
        .await
        .and_then(crate::model::Report::into_result)
    {
        output::say(&format!("error: {e}"));
        sup.shutdown().await;
        return Ok(1);
    }
    output::say(&format!("running {}", names.join(", ")));

    // Check now and then whether anything still runs; events make it prompt.
    let mut events = sup.subscribe_events();
    let code = loop {
        tokio::select! {
            c = host_signals.recv() => match c {
                Some(HostSignal::Shutdown) | None => {
                    output::say("stopping every app");
                    break 0;
                }
                Some(HostSignal::ReopenLogs) => sup.reopen_logs(),
            },
            _ = events.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if opts.auto_exit {
            let all = sup.list();
            if !all.is_empty() && all.iter().all(|i| !i.status.is_active()) {
                let errored = all.iter().all(|i| i.status == Status::Errored);
                output::say(if errored {
                    "every app is errored: exiting so the orchestrator can restart the container"
                } else {
                    "no app runs any more: exiting"
                });
                break if errored { 1 } else { 0 };
            }
        }
    };
    sup.shutdown().await;
    printer.finish().await;
    Ok(code)
}

/// The runtime's dashboard: its token from `PMR_DASHBOARD_TOKEN` (a
/// container's secret), or a new one printed with the link.
fn dashboard(sup: &Supervisor, port: u16, host: &str) -> Result<DashboardEndpoint> {
    let (token, given) = match std::env::var("PMR_DASHBOARD_TOKEN") {
        Ok(t) if t.trim().len() >= MIN_TOKEN_LEN => (t.trim().to_string(), true),
        Ok(_) => {
            return Err(Error::Config(format!(
                "PMR_DASHBOARD_TOKEN: use at least {MIN_TOKEN_LEN} random characters (e.g. openssl rand -hex 32)"
            )))
        }
        Err(_) => (crate::dashboard::auth::random_token()?, false),
    };
    let d = DashboardEndpoint::new(sup.clone(), TokenSource::Given(token.clone()));
    d.apply(&DashboardSettings {
        port: Some(port),
        host: host.to_string(),
    })?;
    if let Some(at) = d.local_addr() {
        let shown = if given {
            "<PMR_DASHBOARD_TOKEN>"
        } else {
            &token
        };
        say(&format!("dashboard at http://{at}/?token={shown}"));
        if let Some(w) = crate::dashboard::exposure_warning(at) {
            say(&w);
        }
    }
    Ok(d)
}
