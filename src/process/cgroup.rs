//! One cgroup (v2) per app process where pmr may create them: every process
//! the app starts stays in it, even one that leaves the process group with
//! setsid(), so a stop can reach them all and `cgroup.kill` ends them at
//! once. Where cgroups cannot be had (v1 only, no permission, not Linux),
//! pmr falls back to process groups.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The directory under which pmr creates one cgroup per app process.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    dir: PathBuf,
}

/// `0::/some/path` of /proc/self/cgroup: our place in the v2 hierarchy.
pub fn own_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// The mount point of the cgroup v2 hierarchy and the hierarchy path it
/// shows, from /proc/self/mountinfo.
pub fn v2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if !right.starts_with("cgroup2 ") {
            return None;
        }
        let f: Vec<&str> = left.split_whitespace().collect();
        Some((PathBuf::from(f.get(4)?), f.get(3)?.to_string()))
    })
}

impl CgroupRoot {
    /// A writable place for app cgroups beside the daemon's own, if any.
    /// `PMR_CGROUPS=off` in the daemon's environment keeps to process groups.
    pub fn detect() -> Option<CgroupRoot> {
        if std::env::var("PMR_CGROUPS").is_ok_and(|v| v == "off") {
            return None;
        }
        let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let own = own_path(&cg)?;
        let (mount, mount_root) = v2_mount(&mi)?;
        let rel = own
            .strip_prefix(mount_root.trim_end_matches('/'))
            .unwrap_or(own);
        let dir = mount
            .join(rel.trim_start_matches('/'))
            .join(format!("pmr-{}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::info!(
                    "no cgroup for apps ({}: {e}): process groups are the kill scope",
                    dir.display()
                );
                return None;
            }
        }
        // Only cgroup v2 with cgroup.kill (Linux 5.14) can end a tree at once.
        if !dir.join("cgroup.kill").exists() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(CgroupRoot { dir })
    }

    pub fn create(&self, name: &str) -> io::Result<AppCgroup> {
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir)?;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| io::Error::other("cgroup path with a NUL byte"))?;
        Ok(AppCgroup { dir, procs })
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        // Empty once every app process is gone; otherwise it stays for them.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[derive(Debug)]
pub struct AppCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, prepared for the forked child (no allocation there).
    procs: CString,
}

impl AppCgroup {
    /// An app cgroup a previous daemon created, if it is still there.
    pub fn open(dir: &Path) -> Option<AppCgroup> {
        if !dir.join("cgroup.procs").exists() {
            return None;
        }
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()?;
        Some(AppCgroup {
            dir: dir.to_path_buf(),
            procs,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves the calling process into the cgroup. Runs in the forked child:
    /// open, write and close only.
    pub fn enter_from_child(procs: &CString) -> io::Result<()> {
        // SAFETY: async-signal-safe syscalls on a path built before fork.
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// The cgroup's directory, for clone3(CLONE_INTO_CGROUP).
    pub fn open_dir(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.dir)?;
        Ok(dir.into())
    }

    pub fn procs_path(&self) -> &CString {
        &self.procs
    }

    /// Pids of the processes in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    pub fn populated(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.events"))
            .map(|s| s.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    }

    /// SIGKILL to every process in the cgroup, by the kernel, at once.
    pub fn kill(&self) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.kill"), "1")
    }

    /// Whether `pid` belongs to this cgroup (checked after opening a pidfd
    /// on it, so the answer is about that very process).
    pub fn contains(&self, pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|text| self.named_in(&text))
    }

    /// Whether a `/proc/<pid>/cgroup` text puts its process in this cgroup.
    pub fn named_in(&self, proc_cgroup: &str) -> bool {
        let Some(own) = own_path(proc_cgroup) else {
            return false;
        };
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        own.ends_with(&format!("/{name}"))
    }

    pub fn remove(&self) -> io::Result<()> {
        std::fs::remove_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            own_path("12:pids:/x\n0::/user.slice/app\n"),
            Some("/user.slice/app")
        );
        let mi = "22 1 0:20 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  30 22 0:26 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v2_mount(mi),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".into()))
        );
        assert_eq!(v2_mount("1 0 0:1 / / rw - ext4 /dev/vda rw\n"), None);
    }
}
