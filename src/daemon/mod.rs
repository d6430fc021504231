//! The daemon: one per pmr home. Holds the home's lock, serves the control
//! socket, and runs the supervisor until `pmr kill` or a termination signal.

mod conn;
pub(crate) mod files;
mod metrics_http;
mod own_log;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, Notify};

use crate::dashboard::{DashboardEndpoint, TokenSource};
use crate::error::{Error, Result};
use crate::handler::RequestHandler;
use crate::host::{HostSignal, HostSignalSender};
use crate::paths::Home;
use crate::protocol::startup::StartupLine;
use crate::settings::Settings;
use crate::supervisor::{Supervisor, SupervisorConfig};

#[cfg(test)]
pub(crate) use conn::parse as parse_request_line;

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub home: Home,
    /// Loaded first by every Node app (`--require`).
    pub node_preload: Option<PathBuf>,
    /// fd 1 is the launcher's status pipe: say "ready" there, then let go of it.
    pub report_to_stdout: bool,
}

/// Runs a daemon on a thread of its own with its own runtime, so the host's
/// event loop stays free to receive signals. `on_exit` runs when it ends.
pub fn spawn(
    opts: DaemonOptions,
    on_exit: impl FnOnce(Result<()>) + Send + 'static,
) -> Result<HostSignalSender> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("pmr-daemon".into())
        .spawn(move || {
            let result = runtime()
                .map_err(|e| Error::io("cannot start the daemon's runtime", e))
                .and_then(|rt| rt.block_on(run(opts.clone(), rx)));
            if let Err(e) = &result {
                tracing::error!("daemon stopped: {e}");
                if opts.report_to_stdout {
                    files::report(&StartupLine::Error(e.to_string()).to_string());
                }
            }
            on_exit(result);
        })
        .map_err(|e| Error::io("cannot start the daemon thread", e))?;
    Ok(tx)
}

/// How long a thread of the blocking pool stays once idle. The spawns of
/// a many-app operation each wait for their child's exec on a thread of
/// their own (see `OsSpawner`), up to one per app; tokio's default keeps
/// them 10 s, with their stacks and malloc caches resident, although the
/// pool needs one thread a second (the metrics tick) once the burst is
/// over.
const IDLE_THREAD_KEPT: std::time::Duration = std::time::Duration::from_secs(1);

/// The daemon's runtime: two workers, as the daemon does little at a time.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pmr-worker")
        .thread_keep_alive(IDLE_THREAD_KEPT)
        .enable_all()
        .build()
}

/// Runs a daemon as a process of its own (the `pmr-daemon` binary): no
/// Node host, so the runtime owns the process's signals.
pub fn run_standalone(opts: DaemonOptions) -> Result<()> {
    let rt = runtime().map_err(|e| Error::io("cannot start the daemon's runtime", e))?;
    let report = opts.report_to_stdout;
    let result = rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        forward_signals(tx)?;
        run(opts, rx).await
    });
    if let Err(e) = &result {
        tracing::error!("daemon stopped: {e}");
        if report {
            files::report(&StartupLine::Error(e.to_string()).to_string());
        }
    }
    result
}

/// SIGINT/SIGTERM stop the daemon gracefully; SIGHUP/SIGUSR2 reopen logs.
fn forward_signals(tx: HostSignalSender) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    for (kind, host_signal) in [
        (SignalKind::interrupt(), HostSignal::Shutdown),
        (SignalKind::terminate(), HostSignal::Shutdown),
        (SignalKind::hangup(), HostSignal::ReopenLogs),
        (SignalKind::user_defined2(), HostSignal::ReopenLogs),
    ] {
        let mut s = signal(kind).map_err(|e| Error::io("cannot handle signals", e))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(host_signal).is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}

async fn run(
    opts: DaemonOptions,
    mut host_signals: mpsc::UnboundedReceiver<HostSignal>,
) -> Result<()> {
    let home = opts.home.clone();
    // First: what a previous daemon left with our keeper, if we have one.
    let kept = crate::keeper::client::attach();
    home.ensure()?;
    files::init_logging(&home)?;
    let lock = match files::lock_home(&home)? {
        Some(l) => l,
        None => {
            if opts.report_to_stdout {
                files::report(&StartupLine::AlreadyRunning.to_string());
            }
            return Ok(());
        }
    };
    let recovery = state::recover(&home.state_file(), kept).await;
    let listener = files::bind_socket(&home)?;
    let listener = UnixListener::from_std(listener)
        .map_err(|e| Error::io("cannot serve the control socket", e))?;
    files::write_pid(&home)?;
    tracing::info!(pid = std::process::id(), home = %home.root().display(), version = crate::VERSION, "daemon ready");
    if opts.report_to_stdout {
        for n in &recovery.notices {
            files::report(&StartupLine::Notice(n.clone()).to_string());
        }
        files::report(&StartupLine::Ready(std::process::id()).to_string());
        files::release_stdout();
    }

    let settings = Settings::load(&home.config_file())?;
    let metrics = settings.metrics.clone();
    let dashboard_settings = settings.dashboard.clone();
    let cfg = SupervisorConfig {
        log_dir: home.log_dir(),
        node_preload: opts.node_preload.clone(),
        settings,
    };
    #[cfg(target_os = "linux")]
    let sup = Supervisor::with_spawner(
        cfg,
        Arc::new(crate::supervisor::adopt::AdoptingSpawner {
            adoptions: recovery.adoptions.clone(),
        }),
    );
    #[cfg(not(target_os = "linux"))]
    let sup = Supervisor::new(cfg);
    #[cfg(target_os = "linux")]
    let adoptions = recovery.adoptions.clone();
    if !recovery.apps.is_empty() {
        // An update hands over on purpose; a death is what someone must hear of.
        if !recovery.handoff {
            sup.alert_daemon_started(format!(
                "the pmr daemon started again (pid {}) after one that did not exit cleanly; it took over {} app(s)",
                std::process::id(),
                recovery.apps.len()
            ));
        }
        match sup.restore(recovery.apps).await {
            Ok(r) => r.notices.iter().for_each(|n| tracing::info!("{n}")),
            Err(e) => tracing::error!("restoring the previous daemon's apps failed: {e}"),
        }
    }
    #[cfg(target_os = "linux")]
    stop_unclaimed(&adoptions);
    crate::keeper::client::ready();
    let keeper = state::keep(sup.clone(), home.state_file());
    let endpoint = Arc::new(metrics_http::MetricsEndpoint::new(sup.clone()));
    // A port taken since the setting was made must not keep the apps down.
    if let Err(e) = endpoint.apply(&metrics) {
        tracing::warn!("{e}");
    }
    let dashboard = Arc::new(DashboardEndpoint::new(
        sup.clone(),
        TokenSource::File(home.root().join("dashboard.token")),
    ));
    if let Err(e) = dashboard.apply(&dashboard_settings) {
        tracing::warn!("{e}");
    }
    let kill = Arc::new(Notify::new());
    let ctx = Arc::new(conn::Context {
        control: RequestHandler::new(sup.clone(), Some(home.clone())).with_settings_hook(Box::new(
            move |s| {
                let notes = [endpoint.apply(&s.metrics)?, dashboard.apply(&s.dashboard)?];
                let notes: Vec<String> = notes.into_iter().flatten().collect();
                Ok((!notes.is_empty()).then(|| notes.join("\n")))
            },
        )),
        kill: kill.clone(),
        home: home.clone(),
        uid: nix::unistd::geteuid().as_raw(),
    });

    let _lock = lock;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { tokio::spawn(conn::serve(ctx.clone(), stream)); }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            c = host_signals.recv() => match c {
                Some(HostSignal::ReopenLogs) => sup.reopen_logs(),
                Some(HostSignal::Shutdown) | None => break,
            },
            _ = kill.notified() => break,
        }
    }
    drop(listener);
    keeper.abort();
    wind_down(&ctx).await;
    tracing::info!("daemon exits");
    Ok(())
}

/// Processes adopted for apps no longer in the list: stopped, as a
/// daemon without a keeper would have.
#[cfg(target_os = "linux")]
fn stop_unclaimed(adoptions: &crate::supervisor::adopt::Adoptions) {
    for a in adoptions.unclaimed() {
        tracing::warn!(pid = a.pid, "stopping a process no app claims");
        let _ = crate::process::group::signal_group(a.pid, nix::sys::signal::Signal::SIGTERM);
        crate::keeper::client::forget(&crate::keeper::client::tags::out(a.pid));
        crate::keeper::client::forget(&crate::keeper::client::tags::err(a.pid));
        crate::keeper::client::forget(&crate::keeper::client::tags::ipc(a.pid));
    }
}

/// `pmr update`: saves the state for the next daemon and asks the keeper
/// to start `binary` once this one has exited.
fn hand_off(ctx: &conn::Context, binary: &std::path::Path) -> Result<()> {
    if !crate::keeper::client::attached() {
        return Err(Error::Daemon(
            "this daemon runs without a keeper (started by an older pmr or by the Node host): it cannot hand over".into(),
        ));
    }
    let mut snap = state::snapshot(&ctx.control.sup);
    snap.handoff = true;
    state::write(&ctx.home.state_file(), &snap)?;
    crate::keeper::client::hand_off_to(binary);
    Ok(())
}

/// Stops taking connections, stops every app, removes the pid file.
/// Idempotent: `pmr kill` runs it before replying, the main loop after.
async fn wind_down(ctx: &conn::Context) {
    let _ = std::fs::remove_file(ctx.home.socket());
    tracing::info!("stopping every app");
    ctx.control.sup.shutdown().await;
    // A clean exit: the next daemon has nothing to recover.
    let _ = std::fs::remove_file(ctx.home.state_file());
    let _ = std::fs::remove_file(ctx.home.pid_file());
}
