//! The daemon as a native process: the same daemon the Node host (daemon.js)
//! runs, without a Node runtime underneath — a tenth of the memory. The
//! launcher starts it with PMR_HOME set and `--keeper --preload <drain.js>`:
//! `--keeper` makes this process the keeper (`pmr::keeper::run`), which runs
//! the daemon proper as its child with the other arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use pmr::daemon::DaemonOptions;
use pmr::paths::Home;

fn main() -> ExitCode {
    let all: Vec<_> = std::env::args_os().skip(1).collect();
    if all.first().is_some_and(|a| a == "--keeper") {
        let binary = match std::env::current_exe() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("pmr-daemon: cannot find its own binary: {e}");
                return ExitCode::FAILURE;
            }
        };
        let code = pmr::keeper::run::run(binary, all[1..].to_vec());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let mut args = all.into_iter();
    let mut preload = None;
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--preload") => preload = args.next().map(PathBuf::from),
            Some("--version") => {
                println!("pmr-daemon {}", pmr::VERSION);
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("usage: pmr-daemon [--keeper] [--preload <drain.js>]   (PMR_HOME selects the home)");
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
    pmr::process::priority::boost_daemon(std::os::unix::process::parent_id());
    pmr::memory::one_arena();
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
