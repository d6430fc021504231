//! `startDaemon` and `daemonSignal`: the daemon's Node host (daemon.js).

use std::path::PathBuf;
use std::sync::Mutex;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use pmr::daemon::DaemonOptions;
use pmr::host::{HostSignal, HostSignalSender};
use pmr::paths::Home;

use crate::Outcome;

/// The running daemon's control channel (one daemon per process).
static DAEMON: Mutex<Option<HostSignalSender>> = Mutex::new(None);

/// Starts the daemon for `home` on a thread of its own. `onExit` is called
/// with an error message (or null) when it ends; until then Node stays alive.
#[napi(catch_unwind, ts_return_type = "void")]
pub fn start_daemon(
    home: String,
    preload: Option<String>,
    on_exit: ThreadsafeFunction<Option<String>, (), Option<String>, Status, false>,
) -> Outcome<()> {
    let opts = DaemonOptions {
        home: Home::new(home),
        node_preload: preload.map(PathBuf::from),
        report_to_stdout: true,
    };
    pmr::daemon::spawn(opts, move |result| {
        let msg = result.err().map(|e| e.to_string());
        on_exit.call(msg, ThreadsafeFunctionCallMode::Blocking);
    })
    .map(|tx| *DAEMON.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx))
    .into()
}

/// Forwards a signal the daemon's Node process received.
#[napi(catch_unwind)]
pub fn daemon_signal(signal: String) -> bool {
    let control = match signal.as_str() {
        "SIGINT" | "SIGTERM" => HostSignal::Shutdown,
        "SIGHUP" | "SIGUSR2" => HostSignal::ReopenLogs,
        _ => return false,
    };
    DAEMON
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|tx| tx.send(control).is_ok())
}
