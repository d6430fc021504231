//! A handle on one process that stays valid (and never names another
//! process) after the pid is recycled: a pidfd on Linux. Elsewhere, a plain
//! pid, with the classic race accepted.

use std::io;

use nix::sys::signal::Signal;

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    pub struct Pidfd(OwnedFd);

    impl Pidfd {
        pub fn open(pid: u32) -> io::Result<Pidfd> {
            // SAFETY: pidfd_open has no memory arguments; a returned fd is ours.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: the kernel just gave us this descriptor (close-on-exec).
            Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
        }

        /// Another descriptor on the same process, to poll for its exit
        /// (readable once it has exited).
        pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
            self.0.try_clone()
        }

        /// Signal 0 checks the process still exists (a zombie does, until reaped).
        pub fn send(&self, sig: i32) -> io::Result<()> {
            // SAFETY: a null siginfo means "as kill(2) would send it".
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.0.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub struct Pidfd(u32);

    impl Pidfd {
        pub fn open(pid: u32) -> io::Result<Pidfd> {
            Ok(Pidfd(pid))
        }

        pub fn send(&self, sig: i32) -> io::Result<()> {
            // SAFETY: kill(2) with plain integers.
            if unsafe { libc::kill(self.0 as libc::pid_t, sig) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

pub use imp::Pidfd;

impl Pidfd {
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        self.send(sig as i32)
    }

    /// The process has not been reaped yet, so its pid (and its process
    /// group's id) cannot have been given to another process.
    pub fn unreaped(&self) -> bool {
        self.send(0).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_reach_only_the_opened_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = Pidfd::open(child.id()).unwrap();
        assert!(fd.unreaped());
        fd.signal(Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        #[cfg(target_os = "linux")]
        {
            assert!(!fd.unreaped(), "a reaped process is gone for its pidfd");
            assert!(fd.signal(Signal::SIGTERM).is_err());
        }
    }
}
