//! Everything that belongs to one app process, and how to signal all of it
//! without ever signalling a stranger: its cgroup where pmr has one (setsid
//! escapees included, `cgroup.kill` for the end), else its process group.
//! Each signal goes through a pidfd opened on a process then checked to be
//! a member, so a recycled pid is never hit.

use nix::sys::signal::Signal;

#[cfg(target_os = "linux")]
use super::cgroup::AppCgroup;
use super::group::{group_alive, group_members, signal_group};
use super::pidfd::Pidfd;

pub struct KillScope {
    pgid: u32,
    /// The process that leads the group; while it is unreaped, the group's
    /// id cannot belong to anyone else.
    leader: Option<Pidfd>,
    #[cfg(target_os = "linux")]
    cgroup: Option<AppCgroup>,
}

impl KillScope {
    #[cfg(target_os = "linux")]
    pub fn new(pid: u32, leader: Option<Pidfd>, cgroup: Option<AppCgroup>) -> Self {
        KillScope {
            pgid: pid,
            leader,
            cgroup,
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(pid: u32, leader: Option<Pidfd>) -> Self {
        KillScope { pgid: pid, leader }
    }

    /// What `describe` says the scope is.
    pub fn describe(&self) -> String {
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            return format!("cgroup {}", cg.path().display());
        }
        format!("process group {}", self.pgid)
    }

    /// Sends `sig` to every process of the app.
    pub fn signal_all(&self, sig: Signal) {
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            for pid in cg.pids() {
                if let Ok(fd) = Pidfd::open(pid) {
                    if cg.contains(pid) {
                        let _ = fd.signal(sig);
                    }
                }
            }
            return;
        }
        self.signal_group(sig);
    }

    fn signal_group(&self, sig: Signal) {
        if cfg!(not(target_os = "linux")) || self.leader.as_ref().is_some_and(Pidfd::unreaped) {
            let _ = signal_group(self.pgid, sig);
            return;
        }
        // The leader is gone: its id may be recycled as some new process's
        // pid and group. Members other than the leader were started by the
        // app and keep its group id; reach each of them by pidfd.
        for pid in group_members(self.pgid)
            .into_iter()
            .filter(|p| *p != self.pgid)
        {
            if let Ok(fd) = Pidfd::open(pid) {
                if group_members(self.pgid).contains(&pid) {
                    let _ = fd.signal(sig);
                }
            }
        }
    }

    /// Ends every process of the app now.
    pub fn kill_all(&self) {
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            if cg.kill().is_ok() {
                return;
            }
        }
        self.signal_all(Signal::SIGKILL);
    }

    /// Whether any process of the app is still alive.
    pub fn alive(&self) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            return cg.populated();
        }
        group_alive(self.pgid)
    }
}

impl Drop for KillScope {
    fn drop(&mut self) {
        // An empty cgroup goes with its process; one still holding escapees
        // is killed, and the kernel empties it right away.
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            if cg.populated() {
                let _ = cg.kill();
                for _ in 0..50 {
                    if !cg.populated() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
            let _ = cg.remove();
        }
    }
}
