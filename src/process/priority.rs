//! The daemon's CPU priority next to its apps'. pmr supervises apps that
//! can take every core (60 Node.js start-ups after a `restart all`, a
//! CPU-bound cluster), and a supervisor that gets 1/60th of the CPU then
//! does everything late: on 2 cores, with 60 idle apps restarting, each
//! spawn waited behind the start-ups already running (the new child must
//! run until its exec) and threads that held a lock were preempted for
//! tens of milliseconds, so the 60 spawns took 1.5 s to go out. Where the
//! OS allows it (root, or CAP_SYS_NICE), the daemon runs `DAEMON_BOOST`
//! nice levels above the level it was started at, and every app goes back
//! to that level in its child before exec: the apps keep the priority they
//! would have had, only the daemon gets ahead. Elsewhere nothing changes.

use std::sync::atomic::{AtomicI32, Ordering};

/// How many nice levels the daemon runs above its apps.
pub const DAEMON_BOOST: i32 = 5;

/// The nice level the apps get back to in their child; `NOT_SET` when the
/// daemon runs at the level it was started at.
static APP_NICE: AtomicI32 = AtomicI32::new(NOT_SET);
const NOT_SET: i32 = i32::MIN;

/// Raises the daemon's priority above the level of `reference` (the
/// process it was started by: the keeper, or whoever started it), when
/// allowed. Called at the start, before any other thread exists: on Linux
/// the level is per thread, and threads started later inherit it.
pub fn boost_daemon(reference: u32) {
    #[cfg(target_os = "linux")]
    {
        let Some(base) = nice_of(reference) else {
            return;
        };
        let target = (base - DAEMON_BOOST).max(-20);
        // SAFETY: setpriority takes plain integers; 0 is this thread.
        let ok = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target) } == 0;
        if ok {
            APP_NICE.store(base, Ordering::Relaxed);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = reference;
}

/// The level an app process is to run at, if it differs from the daemon's.
pub fn app_nice() -> Option<i32> {
    Some(APP_NICE.load(Ordering::Relaxed)).filter(|n| *n != NOT_SET)
}

/// In the child between fork and exec: back to the apps' level. A plain
/// syscall, async-signal-safe.
pub fn enter_app_nice(level: i32) -> std::io::Result<()> {
    // SAFETY: setpriority takes plain integers; 0 is the calling thread,
    // the only one in the child.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, level) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The nice level of process `pid` (its main thread); None if it cannot
/// be read.
pub fn nice_of(pid: u32) -> Option<i32> {
    // /proc/<pid>/stat field 19 is the nice level: no errno juggling (a
    // nice of -1 is a valid getpriority result).
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split_ascii_whitespace().nth(16)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_nice_level_of_a_process() {
        // SAFETY: getpriority takes plain integers.
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice_of(std::process::id()), Some(own));
        assert_eq!(nice_of(u32::MAX), None);
    }
}
