//! Spawning one app process: its own process group, an explicit environment,
//! stdin on a pipe the supervisor writes (`pmr send`), stdout/stderr on
//! pipes the supervisor reads, and optionally Node's IPC channel on fd 3.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};

use tokio::net::unix::pipe;
use tokio::process::Command;

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
    /// The cgroup the process starts in.
    #[cfg(target_os = "linux")]
    pub cgroup: Option<&'a super::cgroup::AppCgroup>,
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

/// Resolves to the process's exit status once it has exited (and been
/// reaped).
pub type ExitFuture = Pin<Box<dyn Future<Output = io::Result<ExitStatus>> + Send>>;

pub struct Spawned {
    pub pid: u32,
    pub exit: ExitFuture,
    /// PM2 gives fork-mode apps a stdin pipe too; an app that never reads
    /// it is not affected.
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
}

/// Set once clone3 into a cgroup was refused: the sandbox will not change,
/// so later spawns fork at once.
#[cfg(target_os = "linux")]
static NO_CLONE_INTO: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn spawn(a: SpawnArgs<'_>) -> io::Result<Spawned> {
    #[cfg(target_os = "linux")]
    use std::sync::atomic::Ordering;
    #[cfg(target_os = "linux")]
    if let Some(cg) = a.cgroup.filter(|_| !NO_CLONE_INTO.load(Ordering::Relaxed)) {
        let dir = cg.open_dir()?;
        match super::clone_into::spawn(&a, std::os::fd::AsFd::as_fd(&dir))? {
            Some(s) => {
                // Our copy of the worker's end closes here; the worker holds the only one.
                drop(a.ipc);
                return Ok(s);
            }
            None => NO_CLONE_INTO.store(true, Ordering::Relaxed),
        }
    }
    forked(a)
}

/// fork, then exec: where a process cannot be cloned into its cgroup, the
/// child moves itself there before exec.
fn forked(a: SpawnArgs<'_>) -> io::Result<Spawned> {
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
    if let Some(cg) = a.cgroup {
        let procs = cg.procs_path().clone();
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
    let missing = |what: &str| io::Error::other(format!("{what} pipe missing"));
    let stdout = child.stdout.take().ok_or_else(|| missing("stdout"))?;
    let stderr = child.stderr.take().ok_or_else(|| missing("stderr"))?;
    let stdin = child.stdin.take().ok_or_else(|| missing("stdin"))?;
    Ok(Spawned {
        pid,
        exit: Box::pin(async move { child.wait().await }),
        stdin: pipe::Sender::from_owned_fd(stdin.into_owned_fd()?)?,
        stdout: pipe::Receiver::from_owned_fd(stdout.into_owned_fd()?)?,
        stderr: pipe::Receiver::from_owned_fd(stderr.into_owned_fd()?)?,
    })
}

/// Runs in the child between fork and exec: raw libc calls only (no
/// allocation, no locks).
pub(super) fn place_at_fd3(raw: i32) -> io::Result<()> {
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// The fallback where clone3 into a cgroup is refused (seccomp, old
    /// kernels): this machine takes the clone path, so it is run directly.
    #[tokio::test]
    async fn a_forked_process_moves_into_its_cgroup_before_exec() {
        let Some(root) = super::super::cgroup::CgroupRoot::detect() else {
            eprintln!("no cgroup v2 here: the move into a cgroup not checked");
            return;
        };
        let cg = root
            .create(&format!("fork-test-{}", std::process::id()))
            .unwrap();
        let env = BTreeMap::new();
        let args = vec![
            "-c".to_string(),
            "cat /proc/self/cgroup; exit 3".to_string(),
        ];
        let mut s = forked(SpawnArgs {
            program: Path::new("/bin/sh"),
            args: &args,
            cwd: Path::new("/"),
            env: &env,
            ipc: None,
            credentials: None,
            cgroup: Some(&cg),
        })
        .unwrap();
        let mut out = String::new();
        s.stdout.read_to_string(&mut out).await.unwrap();
        assert_eq!(s.exit.await.unwrap().code(), Some(3));
        assert!(cg.named_in(&out), "not in its cgroup: {out}");
        cg.remove().unwrap();
    }
}
