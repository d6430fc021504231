//! The keeper: the small process the CLI launches in place of the daemon.
//! It runs the daemon as its child, brings it back when it dies, and holds
//! the descriptors that must outlive it (`run`); `client` is the daemon's
//! side of that link, `wire` its messages, `policy` when to respawn.

pub mod client;
pub mod policy;
pub mod run;
pub mod wire;

/// The environment variable naming the daemon's end of the keeper link.
pub const KEEPER_FD_ENV: &str = "PMR_KEEPER_FD";

/// `$PMR_HOME/keeper.pid`: `<pid> <start time>` of the home's keeper.
fn pid_file(home: &crate::paths::Home) -> std::path::PathBuf {
    home.root().join("keeper.pid")
}

/// The home has a live keeper, which brings a daemon back by itself: a
/// client that finds no daemon waits for it instead of starting another
/// (which would not have the kept sockets and pipes).
pub fn alive(home: &crate::paths::Home) -> bool {
    let Ok(text) = std::fs::read_to_string(pid_file(home)) else {
        return false;
    };
    let mut it = text
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok());
    match (it.next(), it.next()) {
        (Some(pid), Some(start)) => {
            u32::try_from(pid)
                .ok()
                .and_then(crate::process::group::process_start)
                == Some(start)
        }
        _ => false,
    }
}
