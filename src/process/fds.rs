//! Descriptors a process inherited at start-up (a terminal's, a CI
//! runner's) must not leak into the apps it spawns: every app gets exactly
//! 0, 1, 2 (and 3, its IPC channel).

/// Marks every descriptor above 2 close-on-exec. Descriptors this process
/// opens itself already are (Rust and libuv open them so); this catches the
/// ones inherited from whoever started us.
pub fn close_inherited_on_exec() {
    let fds: Vec<i32> =
        match std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd")) {
            Ok(dir) => dir
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .filter(|fd| *fd > 2)
                .collect(),
            Err(_) => return,
        };
    for fd in fds {
        // SAFETY: F_SETFD only changes a flag; an fd closed meanwhile (the
        // directory's own) just fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn inherited_descriptors_become_cloexec() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let raw = r.as_raw_fd();
        // SAFETY: clearing the flag on our own pipe.
        unsafe { libc::fcntl(raw, libc::F_SETFD, 0) };
        close_inherited_on_exec();
        // SAFETY: reading the flag of our own pipe.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}
