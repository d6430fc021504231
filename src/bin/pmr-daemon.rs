//! The daemon as a native process: the same daemon the Node host (daemon.js)
//! runs, without a Node runtime underneath — a tenth of the memory. The
//! launcher starts it with PMR_HOME set and `--preload <drain.js>`.

use std::path::PathBuf;
use std::process::ExitCode;

use pmr::daemon::DaemonOptions;
use pmr::paths::Home;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut preload = None;
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--preload") => preload = args.next().map(PathBuf::from),
            Some("--version") => {
                println!("pmr-daemon {}", pmr::VERSION);
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("usage: pmr-daemon [--preload <drain.js>]   (PMR_HOME selects the home)");
                return ExitCode::from(2);
            }
        }
    }
    let home = match Home::from_env() {
        Ok(h) => h,
        Err(e) => {
            println!(
                "{}",
                pmr::protocol::startup::StartupLine::Error(e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };
    let opts = DaemonOptions {
        home,
        node_preload: preload,
        report_to_stdout: true,
    };
    match pmr::daemon::run_standalone(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
