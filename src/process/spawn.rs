//! Spawning one app process: its own process group, an explicit environment,
//! stdin on a pipe the supervisor writes (`pmr send`), stdout/stderr on
//! pipes the supervisor reads, and optionally Node's IPC channel on fd 3.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// The fd number Node expects its IPC channel on (`NODE_CHANNEL_FD=3`).
pub const IPC_FD: i32 = 3;

pub struct SpawnArgs<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    /// The worker's end of the IPC channel, placed at fd 3.
    pub ipc: Option<OwnedFd>,
    /// Run as this user instead of the daemon's.
    pub credentials: Option<&'a Credentials>,
    /// `cgroup.procs` of the cgroup the process starts in.
    pub cgroup_procs: Option<&'a std::ffi::CString>,
}

/// Who an app runs as, resolved before fork (name lookups allocate and
/// lock, which the forked child must not do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as login would give them.
    pub groups: Vec<libc::gid_t>,
    pub user: String,
    pub home: std::path::PathBuf,
}

impl Credentials {
    /// `uid`/`gid` as written in an app's config: names or numbers. The
    /// group defaults to the user's primary group.
    pub fn resolve(uid: Option<&str>, gid: Option<&str>) -> Result<Option<Credentials>, String> {
        use nix::unistd::{Gid, Group, Uid, User};
        let Some(u) = uid else {
            return match gid {
                Some(g) => Err(format!("gid {g} without uid: give the user to run as too")),
                None => Ok(None),
            };
        };
        let user = match u.parse::<u32>() {
            Ok(n) => User::from_uid(Uid::from_raw(n)),
            Err(_) => User::from_name(u),
        }
        .map_err(|e| format!("cannot look up user {u}: {e}"))?
        .ok_or_else(|| format!("no user {u} on this machine"))?;
        let gid = match gid {
            None => user.gid,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => Gid::from_raw(n),
                Err(_) => {
                    Group::from_name(g)
                        .map_err(|e| format!("cannot look up group {g}: {e}"))?
                        .ok_or_else(|| format!("no group {g} on this machine"))?
                        .gid
                }
            },
        };
        Ok(Some(Credentials {
            uid: user.uid.as_raw(),
            gid: gid.as_raw(),
            groups: supplementary_groups(&user.name, gid),
            user: user.name,
            home: user.dir,
        }))
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn supplementary_groups(user: &str, gid: nix::unistd::Gid) -> Vec<libc::gid_t> {
    let Ok(name) = std::ffi::CString::new(user) else {
        return vec![gid.as_raw()];
    };
    match nix::unistd::getgrouplist(&name, gid) {
        Ok(g) => g.into_iter().map(|g| g.as_raw()).collect(),
        Err(_) => vec![gid.as_raw()],
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn supplementary_groups(_user: &str, gid: nix::unistd::Gid) -> Vec<libc::gid_t> {
    vec![gid.as_raw()]
}

/// Runs in the forked child: groups, then group, then user (the other way
/// round, the process would no longer have the right to set its groups).
fn drop_privileges(c: &Credentials) -> io::Result<()> {
    // Plain syscalls on values prepared before fork; nothing here allocates.
    // SAFETY: `groups` is a live Vec and its length is passed with it.
    let ok = unsafe { libc::setgroups(c.groups.len() as _, c.groups.as_ptr()) } == 0
        // SAFETY: setgid takes a plain integer; no memory is involved.
        && unsafe { libc::setgid(c.gid as libc::gid_t) } == 0
        // SAFETY: setuid takes a plain integer; no memory is involved.
        && unsafe { libc::setuid(c.uid as libc::uid_t) } == 0;
    if !ok {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    /// PM2 gives fork-mode apps a stdin pipe too; an app that never reads
    /// it is not affected.
    pub stdin: Option<ChildStdin>,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

pub fn spawn(a: SpawnArgs<'_>) -> io::Result<Spawned> {
    let mut cmd = Command::new(a.program);
    cmd.args(a.args)
        .current_dir(a.cwd)
        .env_clear()
        .envs(a.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(level) = super::priority::app_nice() {
        // SAFETY: runs between fork and exec; setpriority is a plain
        // syscall, async-signal-safe.
        unsafe {
            cmd.pre_exec(move || super::priority::enter_app_nice(level));
        }
    }
    if let Some(fd) = &a.ipc {
        let raw = fd.as_raw_fd();
        // SAFETY: runs between fork and exec; dup2 and fcntl are
        // async-signal-safe and nothing here allocates or locks.
        unsafe {
            cmd.pre_exec(move || place_at_fd3(raw));
        }
    }
    #[cfg(target_os = "linux")]
    if let Some(procs) = a.cgroup_procs {
        let procs = procs.clone();
        // SAFETY: open/write/close on a path built before fork. Entering
        // the cgroup before exec means nothing the app starts escapes it.
        unsafe {
            cmd.pre_exec(move || super::cgroup::AppCgroup::enter_from_child(&procs));
        }
    }
    if let Some(c) = a.credentials {
        let c = c.clone();
        // SAFETY: set*id are async-signal-safe; `c` was built before fork.
        unsafe {
            cmd.pre_exec(move || drop_privileges(&c));
        }
    }
    let mut child = cmd.spawn()?;
    // Our copy of the worker's end closes here; the worker holds the only one.
    drop(a.ipc);
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the process exited before its pid was read"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("stdout pipe missing"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("stderr pipe missing"))?;
    let stdin = child.stdin.take();
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout,
        stderr,
    })
}

/// Runs in the forked child: raw libc calls only (no allocation, no locks).
fn place_at_fd3(raw: i32) -> io::Result<()> {
    // SAFETY: plain syscalls on descriptor numbers; dup2 onto itself would
    // keep FD_CLOEXEC, so that case clears the flag instead.
    let rc = unsafe {
        if raw == IPC_FD {
            libc::fcntl(raw, libc::F_SETFD, 0)
        } else {
            libc::dup2(raw, IPC_FD)
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
