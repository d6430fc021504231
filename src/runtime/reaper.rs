//! PID 1 inherits every orphan of the container and must reap it, or
//! zombies pile up. Never waitpid(-1): that would steal the exit status of
//! a managed child from tokio (which waits on it through a pidfd). Instead,
//! zombie children are found in /proc and only those pmr does not manage
//! are reaped.

use std::time::Duration;

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::supervisor::Supervisor;

const SCAN_EVERY: Duration = Duration::from_millis(500);

/// (pid, parent pid, state) of every process, from /proc.
fn processes() -> Vec<(u32, u32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let mut f = rest.split_whitespace();
            let state = f.next()?.chars().next()?;
            let ppid = f.next()?.parse().ok()?;
            Some((pid, ppid, state))
        })
        .collect()
}

/// The zombies among our children that are not managed apps.
pub fn orphans_to_reap(procs: &[(u32, u32, char)], me: u32, managed: &[u32]) -> Vec<u32> {
    procs
        .iter()
        .filter(|(pid, ppid, state)| *ppid == me && *state == 'Z' && !managed.contains(pid))
        .map(|(pid, _, _)| *pid)
        .collect()
}

pub fn spawn(sup: Supervisor) {
    tokio::spawn(async move {
        let me = std::process::id();
        loop {
            tokio::time::sleep(SCAN_EVERY).await;
            let managed: Vec<u32> = sup.list().iter().filter_map(|i| i.pid).collect();
            for pid in orphans_to_reap(&processes(), me, &managed) {
                match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
                    Ok(_) => tracing::debug!(pid, "reaped an orphan"),
                    Err(e) => tracing::debug!(pid, "could not reap: {e}"),
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unmanaged_zombie_children() {
        let procs = [
            (10, 1, 'Z'),
            (11, 1, 'Z'),
            (12, 1, 'S'),
            (13, 5, 'Z'),
            (14, 1, 'Z'),
        ];
        assert_eq!(orphans_to_reap(&procs, 1, &[11]), vec![10, 14]);
    }
}
