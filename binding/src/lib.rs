//! The Node-API face of pmr: converts arguments and errors, nothing more.
//! Everything it calls lives in the `pmr` core crate.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use pmr::daemon::{Control, ControlSender, DaemonOptions};
use pmr::paths::Home;

/// What `bin/pmr.js` lends the CLI.
#[napi(object)]
pub struct CliHost {
    /// `process.execPath`: apps run with the same node.
    pub node: String,
    /// Absolute path of `daemon.js`.
    pub daemon_script: String,
}

struct Host<'a> {
    paths: CliHost,
    load_config: Function<'a, String, String>,
}

impl pmr::cli::Host for Host<'_> {
    fn node(&self) -> PathBuf {
        PathBuf::from(&self.paths.node)
    }
    fn daemon_script(&self) -> PathBuf {
        PathBuf::from(&self.paths.daemon_script)
    }
    fn load_js_config(&self, path: &Path) -> pmr::Result<String> {
        self.load_config
            .call(path.to_string_lossy().into_owned())
            .map_err(|e| {
                pmr::Error::Config(format!(
                    "{}: the config loader failed: {}",
                    path.display(),
                    e.reason
                ))
            })
    }
}

/// Runs the `pmr` command line; returns the exit code. `loadConfig(path)`
/// evaluates a JavaScript config file synchronously (see `bin/pmr.js`).
#[napi(catch_unwind)]
pub fn run_cli(argv: Vec<String>, host: CliHost, load_config: Function<String, String>) -> i32 {
    pmr::cli::run(
        &argv,
        &Host {
            paths: host,
            load_config,
        },
    )
}

/// The running daemon's control channel (one daemon per process).
static DAEMON: Mutex<Option<ControlSender>> = Mutex::new(None);

/// Starts the daemon for `home` on a thread of its own. `onExit` is called
/// with an error message (or null) when it ends; until then Node stays alive.
#[napi(catch_unwind)]
pub fn start_daemon(
    home: String,
    preload: Option<String>,
    on_exit: ThreadsafeFunction<Option<String>, (), Option<String>, Status, false>,
) -> Result<()> {
    let opts = DaemonOptions {
        home: Home::new(home),
        node_preload: preload.map(PathBuf::from),
        report_to_stdout: true,
    };
    let tx = pmr::daemon::spawn(opts, move |result| {
        let msg = result.err().map(|e| e.to_string());
        on_exit.call(msg, ThreadsafeFunctionCallMode::Blocking);
    })
    .map_err(to_js)?;
    *DAEMON.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    Ok(())
}

/// Forwards a signal the daemon's Node process received.
#[napi(catch_unwind)]
pub fn daemon_signal(signal: String) -> bool {
    let control = match signal.as_str() {
        "SIGINT" | "SIGTERM" => Control::Shutdown,
        "SIGHUP" | "SIGUSR2" => Control::ReopenLogs,
        _ => return false,
    };
    DAEMON
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|tx| tx.send(control).is_ok())
}

/// A JS Error whose `code` is the core error's stable code.
fn to_js(e: pmr::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {e}", e.code()))
}
