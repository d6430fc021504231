//! Linux: an app process started inside its cgroup by
//! clone3(CLONE_INTO_CGROUP), instead of forked and then moved there by a
//! write to `cgroup.procs`.
//!
//! Why: a write to `cgroup.procs` migrates the process, and a migration
//! takes the kernel's cgroup_threadgroup_rwsem for writing while holding
//! cgroup_mutex. The write side waits for every fork, exec, exit and thread
//! start in flight on the machine and holds new ones back: with 60 Node
//! processes booting (each starts a dozen threads) the moves, and the
//! `mkdir`s of the next apps' cgroups behind them, queue up (measured: the
//! 60th spawn of a start went out at +1.1 s, against +0.3-0.5 s without
//! cgroups). A clone into the cgroup takes that lock for reading only.
//!
//! The child is a copy of one daemon thread made by a raw syscall, so
//! glibc's thread bookkeeping in it still describes the daemon: until
//! execve it makes plain syscalls only (never the set*id wrappers, which
//! signal every thread glibc believes in), on values prepared before the
//! clone, and allocates nothing. Rust's std makes the same choice for its
//! pidfd spawns.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::spawn::{place_at_fd3, Credentials, SpawnArgs, Spawned};

/// Linux 5.7's flag; the libc crate does not name it.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Where the child failed, sent to the parent with errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Stage {
    ProcessGroup = 1,
    Stdio,
    Channel,
    Nice,
    Cwd,
    Credentials,
    Exec,
}

impl Stage {
    fn from_u32(n: u32) -> Option<Stage> {
        [
            Stage::ProcessGroup,
            Stage::Stdio,
            Stage::Channel,
            Stage::Nice,
            Stage::Cwd,
            Stage::Credentials,
            Stage::Exec,
        ]
        .into_iter()
        .find(|s| *s as u32 == n)
    }

    fn what(self) -> &'static str {
        match self {
            Stage::ProcessGroup => "starting its process group",
            Stage::Stdio => "setting up stdin/stdout/stderr",
            Stage::Channel => "placing the IPC channel on fd 3",
            Stage::Nice => "setting the nice level",
            Stage::Cwd => "changing to the working directory",
            Stage::Credentials => "switching user",
            Stage::Exec => "starting the program",
        }
    }
}

/// Everything the child needs, built before the clone.
struct Plan<'a> {
    program: CString,
    /// Null-terminated pointers into `_args`.
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    _args: Vec<CString>,
    _env: Vec<CString>,
    cwd: CString,
    /// The child's ends of stdin, stdout and stderr.
    stdio: [RawFd; 3],
    ipc: Option<RawFd>,
    nice: Option<i32>,
    credentials: Option<&'a Credentials>,
    /// Close-on-exec: the parent reads EOF once exec succeeded.
    status: RawFd,
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in the command, its environment or its directory",
        )
    })
}

/// The file execve gets: a name without a slash is looked up in the
/// child's PATH, as execvp would, but here in the parent.
fn resolve(program: &Path, env_path: Option<&str>, cwd: &Path) -> io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let search = env_path.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    for dir in search.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = cwd.join(dir).join(program);
        let Ok(c) = cstring(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: access(2) on a NUL-terminated path.
        if candidate.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found in PATH", program.display()),
    ))
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us these descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The child's ends must stay clear of fds 0-3, which it fills in itself.
fn above_three(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 4) };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// Spawns into the cgroup whose directory `cgroup` is open on. `Ok(None)`:
/// this kernel or sandbox has no clone3 into a cgroup, and the caller
/// should fork and move the child in instead.
pub(super) fn spawn(a: &SpawnArgs<'_>, cgroup: BorrowedFd<'_>) -> io::Result<Option<Spawned>> {
    if a.ipc.as_ref().is_some_and(|fd| fd.as_raw_fd() < 3) {
        return Ok(None);
    }
    let exe = resolve(a.program, a.env.get("PATH").map(String::as_str), a.cwd)?;
    let args: Vec<CString> = std::iter::once(a.program.as_os_str())
        .chain(a.args.iter().map(OsStr::new))
        .map(|s| cstring(s.as_bytes()))
        .collect::<io::Result<_>>()?;
    let env: Vec<CString> = a
        .env
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
        .collect::<io::Result<_>>()?;
    let (in_r, in_w) = cloexec_pipe()?;
    let (out_r, out_w) = cloexec_pipe()?;
    let (err_r, err_w) = cloexec_pipe()?;
    let (status_r, status_w) = cloexec_pipe()?;
    let (in_r, out_w, err_w, status_w) = (
        above_three(in_r)?,
        above_three(out_w)?,
        above_three(err_w)?,
        above_three(status_w)?,
    );
    let nul_terminated = |v: &[CString]| {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let plan = Plan {
        program: cstring(exe.as_os_str().as_bytes())?,
        argv: nul_terminated(&args),
        envp: nul_terminated(&env),
        _args: args,
        _env: env,
        cwd: cstring(a.cwd.as_os_str().as_bytes())?,
        stdio: [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        ipc: a.ipc.as_ref().map(|fd| fd.as_raw_fd()),
        nice: super::priority::app_nice(),
        credentials: a.credentials,
        status: status_w.as_raw_fd(),
    };

    let mut pidfd: libc::c_int = -1;
    // SAFETY: an all-zero clone_args is the "no options" value.
    let mut how: libc::clone_args = unsafe { std::mem::zeroed() };
    how.flags = libc::CLONE_PIDFD as u64 | CLONE_INTO_CGROUP;
    how.pidfd = std::ptr::addr_of_mut!(pidfd) as u64;
    how.exit_signal = libc::SIGCHLD as u64;
    how.cgroup = cgroup.as_raw_fd() as u64;
    // SAFETY: clone3 without CLONE_VM makes a copy of this process, like
    // fork; the child runs only `run_child`, which never returns.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of_mut!(how),
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if rc == 0 {
        run_child(&plan);
    }
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP) => {
                tracing::info!("no clone3 into a cgroup here ({e}): forking instead");
                Ok(None)
            }
            _ => Err(e),
        };
    }
    let pid = rc as u32;
    // SAFETY: CLONE_PIDFD stored a descriptor the kernel made for us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // The child holds its own copies now; ours would keep the pipes open.
    drop((in_r, out_w, err_w, status_w, plan));
    if let Some(e) = child_failure(&status_r)? {
        reap(pid);
        return Err(e);
    }
    Ok(Some(Spawned {
        pid,
        exit: Box::pin(wait(pid, pidfd)),
        stdin: pipe::Sender::from_owned_fd(in_w)?,
        stdout: pipe::Receiver::from_owned_fd(out_r)?,
        stderr: pipe::Receiver::from_owned_fd(err_r)?,
    }))
}

/// EOF: the exec happened. Otherwise the child sent (stage, errno).
fn child_failure(status: &OwnedFd) -> io::Result<Option<io::Error>> {
    let mut buf = [0u8; 8];
    let n = loop {
        // SAFETY: reads into a local buffer of the length given.
        let n = unsafe { libc::read(status.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let stage = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let os = io::Error::from_raw_os_error(errno);
    // The exec's own error reads as std's spawn says it: the caller names
    // the program.
    Ok(Some(match Stage::from_u32(stage) {
        Some(Stage::Exec) => os,
        other => {
            let what = other.map_or("starting", Stage::what);
            io::Error::new(os.kind(), format!("{what}: {os}"))
        }
    }))
}

/// A child that failed before exec exits at once: collect it.
fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child, into a local.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
}

/// The child's exit status, once its pidfd turns readable. The pidfd
/// keeps the pid from being reused before this waitpid reaps it.
async fn wait(pid: u32, pidfd: OwnedFd) -> io::Result<ExitStatus> {
    // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it
    // until it is dropped.
    let ready = unsafe { AsyncFd::register(pidfd) }.map_err(io::Error::from)?;
    loop {
        let mut guard = ready.readable().await?;
        let mut status = 0;
        // SAFETY: waitpid on our own child, into a local.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if rc == pid as libc::pid_t {
            return Ok(ExitStatus::from_raw(status));
        }
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        guard.clear_ready();
    }
}

/// The child, from the clone to execve. Never returns.
fn run_child(p: &Plan<'_>) -> ! {
    let fail = |stage: Stage| -> ! {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
        msg[4..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: write and _exit are plain syscalls; `msg` is local.
        unsafe {
            libc::write(p.status, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    };
    // SAFETY: plain syscalls on values prepared before the clone; this
    // process has this one thread.
    unsafe {
        // What std's spawn gives a child: no blocked signals, SIGPIPE back
        // to its default (Rust programs ignore it).
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if libc::setpgid(0, 0) != 0 {
            fail(Stage::ProcessGroup);
        }
        for (target, fd) in p.stdio.iter().enumerate() {
            if libc::dup2(*fd, target as RawFd) < 0 {
                fail(Stage::Stdio);
            }
        }
    }
    if let Some(fd) = p.ipc {
        if place_at_fd3(fd).is_err() {
            fail(Stage::Channel);
        }
    }
    if let Some(level) = p.nice {
        if super::priority::enter_app_nice(level).is_err() {
            fail(Stage::Nice);
        }
    }
    // SAFETY: as above.
    unsafe {
        if libc::chdir(p.cwd.as_ptr()) != 0 {
            fail(Stage::Cwd);
        }
        if let Some(c) = p.credentials {
            // Raw syscalls: they change this thread, the only one here.
            let ok = libc::syscall(
                libc::SYS_setgroups,
                c.groups.len() as libc::c_long,
                c.groups.as_ptr(),
            ) == 0
                && libc::syscall(libc::SYS_setgid, c.gid as libc::c_long) == 0
                && libc::syscall(libc::SYS_setuid, c.uid as libc::c_long) == 0;
            if !ok {
                fail(Stage::Credentials);
            }
        }
        libc::execve(p.program.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
    }
    fail(Stage::Exec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::fd::AsFd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn finds_a_bare_name_in_the_childs_path() {
        let cwd = Path::new("/");
        assert_eq!(
            resolve(Path::new("sh"), Some("/nonexistent:/bin"), cwd).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            resolve(Path::new("./x"), None, cwd).unwrap(),
            PathBuf::from("./x")
        );
        let e = resolve(Path::new("no-such-tool-pmr"), Some("/bin"), cwd).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_child_reports_the_stage_it_failed_at() {
        let (r, w) = cloexec_pipe().unwrap();
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&(Stage::Cwd as u32).to_ne_bytes());
        msg[4..].copy_from_slice(&libc::ENOENT.to_ne_bytes());
        // SAFETY: write of a local buffer to our own pipe.
        unsafe { libc::write(w.as_raw_fd(), msg.as_ptr().cast(), 8) };
        drop(w);
        let e = child_failure(&r).unwrap().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e
            .to_string()
            .starts_with("changing to the working directory"));
        let (r, w) = cloexec_pipe().unwrap();
        drop(w);
        assert!(child_failure(&r).unwrap().is_none(), "EOF means exec");
    }

    fn test_cgroup(
        name: &str,
    ) -> Option<(
        super::super::cgroup::CgroupRoot,
        super::super::cgroup::AppCgroup,
    )> {
        let root = super::super::cgroup::CgroupRoot::detect()?;
        let cg = root.create(name).ok()?;
        Some((root, cg))
    }

    #[tokio::test]
    async fn a_process_starts_in_its_cgroup_with_its_stdio_cwd_and_env() {
        let Some((_root, cg)) = test_cgroup(&format!("clone-test-{}", std::process::id())) else {
            eprintln!("no cgroup v2 here: clone3 into a cgroup not checked");
            return;
        };
        let dir = std::env::temp_dir();
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
        env.insert("PMR_T".to_string(), "v1".to_string());
        let args = vec![
            "-c".to_string(),
            "read line; echo \"$line $PMR_T $(pwd)\"; echo err >&2; \
             cat /proc/self/cgroup; exit 7"
                .to_string(),
        ];
        let a = SpawnArgs {
            program: Path::new("sh"),
            args: &args,
            cwd: &dir,
            env: &env,
            ipc: None,
            credentials: None,
            cgroup: Some(&cg),
        };
        let fd = cg.open_dir().unwrap();
        let mut s = spawn(&a, fd.as_fd())
            .unwrap()
            .expect("clone3 on this kernel");
        let mut stdin = s.stdin;
        stdin.write_all(b"hello\n").await.unwrap();
        drop(stdin);
        let (mut out, mut err) = (String::new(), String::new());
        s.stdout.read_to_string(&mut out).await.unwrap();
        s.stderr.read_to_string(&mut err).await.unwrap();
        let status = s.exit.await.unwrap();
        assert_eq!(status.code(), Some(7));
        let first = out.lines().next().unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(first, format!("hello v1 {}", real.display()));
        assert_eq!(err, "err\n");
        assert!(cg.named_in(&out), "not in its cgroup: {out}");
        cg.remove().unwrap();
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_and_leaves_no_process() {
        let Some((_root, cg)) = test_cgroup(&format!("clone-miss-{}", std::process::id())) else {
            eprintln!("no cgroup v2 here: clone3 into a cgroup not checked");
            return;
        };
        let env = BTreeMap::new();
        let a = SpawnArgs {
            program: Path::new("/bin/true"),
            args: &[],
            cwd: Path::new("/nonexistent-pmr-dir"),
            env: &env,
            ipc: None,
            credentials: None,
            cgroup: Some(&cg),
        };
        let fd = cg.open_dir().unwrap();
        let e = spawn(&a, fd.as_fd()).err().expect("a missing cwd fails");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("working directory"), "{e}");
        assert!(cg.pids().is_empty(), "the failed child was reaped");
        cg.remove().unwrap();
    }

    #[tokio::test]
    async fn a_process_runs_as_the_user_it_is_given() {
        if nix::unistd::geteuid().as_raw() != 0 {
            eprintln!("not root: switching user not checked");
            return;
        }
        let Some((_root, cg)) = test_cgroup(&format!("clone-user-{}", std::process::id())) else {
            eprintln!("no cgroup v2 here: clone3 into a cgroup not checked");
            return;
        };
        let who = Credentials::resolve(Some("nobody"), None).unwrap().unwrap();
        let env = BTreeMap::new();
        let args = vec!["-c".to_string(), "id -u; id -g; id -G".to_string()];
        let a = SpawnArgs {
            program: Path::new("/bin/sh"),
            args: &args,
            cwd: Path::new("/"),
            env: &env,
            ipc: None,
            credentials: Some(&who),
            cgroup: Some(&cg),
        };
        let fd = cg.open_dir().unwrap();
        let mut s = spawn(&a, fd.as_fd())
            .unwrap()
            .expect("clone3 on this kernel");
        let mut out = String::new();
        s.stdout.read_to_string(&mut out).await.unwrap();
        assert!(s.exit.await.unwrap().success());
        let groups: Vec<String> = who.groups.iter().map(|g| g.to_string()).collect();
        let want = format!("{}\n{}\n{}\n", who.uid, who.gid, groups.join(" "));
        assert_eq!(out, want);
        cg.remove().unwrap();
    }
}
