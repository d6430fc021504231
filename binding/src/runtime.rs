//! `runRuntime` and `runtimeSignal`: pmr-runtime's Node host (bin/pmr-runtime.js).

use std::path::PathBuf;
use std::sync::Mutex;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use pmr::host::{HostSignal, HostSignalSender};

use crate::cli::{CliHost, Host};

static RUNTIME: Mutex<Option<HostSignalSender>> = Mutex::new(None);

/// Starts the runtime; returns 0 once it runs (`onExit(code)` is called when
/// it ends) or the exit code of a command-line problem already printed.
#[napi(catch_unwind)]
pub fn run_runtime(
    argv: Vec<String>,
    host: CliHost,
    preload: String,
    load_config: Function<String, String>,
    on_exit: ThreadsafeFunction<i32, (), i32, Status, false>,
) -> i32 {
    let host = Host {
        paths: host,
        load_config,
    };
    let opts = match pmr::cli::runtime::options(&argv, &host, Some(PathBuf::from(preload))) {
        Ok(o) => o,
        Err(code) => return code,
    };
    match pmr::runtime::spawn(opts, move |code| {
        on_exit.call(code, ThreadsafeFunctionCallMode::Blocking);
    }) {
        Ok(tx) => {
            *RUNTIME.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
            0
        }
        Err(e) => {
            pmr::runtime::say_error(&e);
            1
        }
    }
}

/// Forwards a signal the runtime's Node process received.
#[napi(catch_unwind)]
pub fn runtime_signal(signal: String) -> bool {
    let control = match signal.as_str() {
        "SIGINT" | "SIGTERM" => HostSignal::Shutdown,
        "SIGHUP" | "SIGUSR2" => HostSignal::ReopenLogs,
        _ => return false,
    };
    RUNTIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|tx| tx.send(control).is_ok())
}
