//! Signalling an app's whole process group, so grandchildren (npm → next →
//! next-server) stop with the app instead of holding its port.

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Sends `sig` to every process of the group. Ok(false): the group is gone.
pub fn signal_group(pgid: u32, sig: Signal) -> nix::Result<bool> {
    match killpg(Pid::from_raw(pgid as i32), sig) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Live (non-zombie) processes of the group.
#[cfg(target_os = "linux")]
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
                .is_some_and(|(state, pgrp)| pgrp == pgid && state != 'Z' && state != 'X')
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
pub fn group_members(_pgid: u32) -> Vec<u32> {
    Vec::new()
}

/// Whether any process of the group is still alive. Zombies do not count:
/// they hold nothing and wait only for their parent (or init) to reap them.
#[cfg(target_os = "linux")]
pub fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return killpg(Pid::from_raw(pgid as i32), None).is_ok();
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| parse_stat(&stat))
        .any(|(state, pgrp)| pgrp == pgid && state != 'Z' && state != 'X')
}

#[cfg(not(target_os = "linux"))]
pub fn group_alive(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// State and process group from `/proc/<pid>/stat`. The command name may
/// contain spaces and parentheses, so fields are counted after the last ')'.
pub fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// When a process started, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`): with the pid, it names one process for good, since a
/// recycled pid starts later.
pub fn start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the command: state is field 3, starttime field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A live process's start time, None when it is gone (or a zombie).
#[cfg(target_os = "linux")]
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    match parse_stat(&stat)? {
        ('Z' | 'X', _) => None,
        _ => start_ticks(&stat),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn process_start(_pid: u32) -> Option<u64> {
    None
}

/// Whether a pid is a live (non-zombie) process.
#[cfg(target_os = "linux")]
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

#[cfg(not(target_os = "linux"))]
pub fn pid_alive(pid: u32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        assert_eq!(parse_stat("123 (node) S 1 123 123 0"), Some(('S', 123)));
        assert_eq!(parse_stat("9 (a) b (c)) Z 1 77 77 0"), Some(('Z', 77)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn start_time_field() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(start_ticks(stat), Some(123456));
        #[cfg(target_os = "linux")]
        assert!(process_start(std::process::id()).is_some());
    }

    #[test]
    fn own_process_is_alive() {
        assert!(pid_alive(std::process::id()));
    }
}
