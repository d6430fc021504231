//! Spawning one app process: its own process group, an explicit environment,
//! stdout/stderr on pipes the supervisor reads, and optionally Node's IPC
//! channel on fd 3.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// The fd number Node expects its IPC channel on (`NODE_CHANNEL_FD=3`).
pub const IPC_FD: i32 = 3;

pub struct SpawnArgs<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    /// The worker's end of the IPC channel, placed at fd 3.
    pub ipc: Option<OwnedFd>,
}

pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

pub fn spawn(a: SpawnArgs<'_>) -> io::Result<Spawned> {
    let mut cmd = Command::new(a.program);
    cmd.args(a.args)
        .current_dir(a.cwd)
        .env_clear()
        .envs(a.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(fd) = &a.ipc {
        let raw = fd.as_raw_fd();
        // SAFETY: runs between fork and exec; dup2 and fcntl are
        // async-signal-safe and nothing here allocates or locks.
        unsafe {
            cmd.pre_exec(move || place_at_fd3(raw));
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
    Ok(Spawned {
        child,
        pid,
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
