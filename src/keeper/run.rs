//! The keeper process (`pmr-daemon --keeper`): starts the daemon as its
//! child and starts it again when it dies, holds a duplicate of every
//! long-lived descriptor the daemon hands it (so the daemon's death closes
//! no listening socket, IPC channel or log pipe), and, as the child
//! subreaper, reaps the apps a dead daemon orphaned and passes their exit
//! statuses on. It does nothing else, so that it has no reason to crash.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::policy::{Binary, Ended, Exited, Next, Respawn};
use super::wire::{self, ToDaemon, ToKeeper};
use super::KEEPER_FD_ENV;

/// Exit statuses kept for a daemon that is not there to take them.
const MAX_PENDING_EXITS: usize = 4096;

static STOP: AtomicBool = AtomicBool::new(false);
/// The write end of the self-pipe that wakes the loop on a signal.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGTERM || sig == libc::SIGINT {
        STOP.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe already wakes the loop.
        unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
    }
}

struct Daemon {
    pid: Pid,
    link: Option<OwnedFd>,
    started: Instant,
    ready: bool,
    candidate: bool,
    handing_off: bool,
}

struct Keeper {
    home: Option<crate::paths::Home>,
    /// The daemon's arguments (`--preload …`), the same for every start.
    args: Vec<OsString>,
    current: PathBuf,
    previous: Option<PathBuf>,
    candidate: Option<PathBuf>,
    store: BTreeMap<String, OwnedFd>,
    exits: Vec<ToDaemon>,
    ever_ready: bool,
}

/// Runs the keeper until its daemon exits on purpose; returns the exit code.
pub fn run(binary: PathBuf, args: Vec<OsString>) -> i32 {
    let home = crate::paths::Home::from_env().ok();
    let code = serve(binary, args, home.as_ref());
    // Only our own: a keeper whose daemon found the home taken wrote none.
    if let Some(h) = &home {
        let mine = std::fs::read_to_string(super::pid_file(h)).is_ok_and(|t| {
            t.split_whitespace().next() == Some(std::process::id().to_string().as_str())
        });
        if mine {
            let _ = std::fs::remove_file(super::pid_file(h));
        }
    }
    code
}

/// Writes `keeper.pid` once our daemon serves the home (not before: a
/// daemon that finds the home taken exits, and so does its keeper).
fn write_pid_file(home: &crate::paths::Home) {
    let me = std::process::id();
    if let Some(start) = crate::process::group::process_start(me) {
        let _ = crate::atomic_file::write_atomic(
            &super::pid_file(home),
            format!("{me} {start}\n").as_bytes(),
            None,
        );
    }
}

fn serve(binary: PathBuf, args: Vec<OsString>, home: Option<&crate::paths::Home>) -> i32 {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("pmr keeper: cannot become the apps' subreaper: {e}");
    }
    let (wake_r, wake_w) =
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("pmr keeper: {e}");
                return 1;
            }
        };
    WAKE_FD.store(wake_w.as_raw_fd(), Ordering::SeqCst);
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGCHLD,
        Signal::SIGHUP,
    ] {
        // SAFETY: the handler only stores an atomic and writes one byte.
        let _ = unsafe { signal::signal(sig, SigHandler::Handler(on_signal)) };
    }
    let mut k = Keeper {
        home: home.cloned(),
        args,
        current: binary,
        previous: None,
        candidate: None,
        store: BTreeMap::new(),
        exits: Vec::new(),
        ever_ready: false,
    };
    let mut policy = Respawn::default();
    let mut daemon = match k.spawn(&k.current.clone(), false) {
        Ok(d) => Some(d),
        Err(e) => {
            // The launcher sees our stdout close and points at the daemon's log.
            eprintln!("pmr keeper: cannot start the daemon: {e}");
            return 1;
        }
    };
    // The first daemon reports to the launcher on our shared stdout; we
    // must not hold the launcher's pipe open after it let go.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
    let mut respawn_at: Option<(Instant, PathBuf, bool)> = None;
    let mut forwarded_stop = false;
    loop {
        if STOP.load(Ordering::SeqCst) {
            match &daemon {
                Some(d) if !forwarded_stop => {
                    let _ = signal::kill(d.pid, Signal::SIGTERM);
                    forwarded_stop = true;
                }
                None => return 0,
                _ => {}
            }
        }
        if let Some((at, bin, candidate)) = respawn_at.clone() {
            if Instant::now() >= at {
                respawn_at = None;
                match k.spawn(&bin, candidate) {
                    Ok(d) => daemon = Some(d),
                    Err(e) if candidate => {
                        eprintln!("pmr keeper: cannot start {}: {e}", bin.display());
                        respawn_at = Some((Instant::now(), k.current.clone(), false));
                    }
                    Err(e) => {
                        eprintln!("pmr keeper: cannot start the daemon: {e}");
                        respawn_at = Some((Instant::now() + Duration::from_secs(1), bin, false));
                    }
                }
            }
        }
        let timeout = match &respawn_at {
            Some((at, _, _)) => at.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(60),
        };
        let link_fd = daemon
            .as_ref()
            .and_then(|d| d.link.as_ref().map(|l| l.as_raw_fd()));
        let mut fds = vec![PollFd::new(wake_r.as_fd(), PollFlags::POLLIN)];
        let link_borrow;
        if let Some(l) = daemon.as_ref().and_then(|d| d.link.as_ref()) {
            link_borrow = l.as_fd();
            fds.push(PollFd::new(link_borrow, PollFlags::POLLIN));
        }
        let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32)
            .unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, ms);
        let link_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        // Drain the self-pipe.
        let mut sink = [0u8; 64];
        while nix::unistd::read(&wake_r, &mut sink).is_ok_and(|n| n > 0) {}
        if let (true, Some(fd), Some(d)) = (link_ready, link_fd, daemon.as_mut()) {
            k.serve(d, fd);
        }
        // Reap: the daemon, and any app a dead daemon left to us.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) => {
                    let (pid, code, signal) = match st {
                        WaitStatus::Exited(p, c) => (p, Some(c), None),
                        WaitStatus::Signaled(p, s, _) => (p, None, Some(s as i32)),
                        _ => continue,
                    };
                    if daemon.as_ref().is_some_and(|d| d.pid == pid) {
                        let Some(d) = daemon.take() else { continue };
                        let ended = if code == Some(0) {
                            Ended::Clean
                        } else {
                            Ended::Crashed
                        };
                        let next = policy.decide(Exited {
                            ended,
                            started: d.started,
                            now: Instant::now(),
                            was_ready: d.ready,
                            was_candidate: d.candidate,
                            handing_off: d.handing_off && k.candidate.is_some(),
                            stopping: STOP.load(Ordering::SeqCst),
                            ever_ready: k.ever_ready,
                        });
                        match next {
                            Next::Exit => return code.unwrap_or(1),
                            Next::Spawn { delay, binary } => {
                                let (bin, candidate) = match binary {
                                    Binary::Current => (k.current.clone(), false),
                                    Binary::Candidate => match k.candidate.clone() {
                                        Some(c) => {
                                            k.previous = Some(k.current.clone());
                                            (c, true)
                                        }
                                        None => (k.current.clone(), false),
                                    },
                                    Binary::Previous => {
                                        (k.previous.clone().unwrap_or(k.current.clone()), false)
                                    }
                                };
                                if binary == Binary::Previous {
                                    if let Some(p) = k.previous.take() {
                                        k.current = p;
                                    }
                                    k.candidate = None;
                                }
                                respawn_at = Some((Instant::now() + delay, bin, candidate));
                            }
                        }
                    } else {
                        k.exited(
                            ToDaemon::Exit {
                                pid: pid.as_raw() as u32,
                                code,
                                signal,
                            },
                            daemon.as_ref(),
                        );
                    }
                }
            }
        }
    }
}

impl Keeper {
    /// Starts a daemon with a fresh link and sends it what is held.
    fn spawn(&mut self, binary: &PathBuf, candidate: bool) -> std::io::Result<Daemon> {
        let (ours, theirs) = wire::pair()?;
        let raw = theirs.as_raw_fd();
        let mut cmd = Command::new(binary);
        cmd.args(&self.args).env(KEEPER_FD_ENV, raw.to_string());
        // SAFETY: fcntl is async-signal-safe; it only makes the daemon's end inheritable.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(theirs);
        let pid = Pid::from_raw(child.id() as i32);
        // The std handle would reap nothing: waitpid above does.
        drop(child);
        for (tag, fd) in &self.store {
            let _ = wire::send(
                ours.as_raw_fd(),
                &ToDaemon::Fd { tag: tag.clone() },
                Some(fd.as_fd()),
            );
        }
        for e in self.exits.drain(..) {
            let _ = wire::send(ours.as_raw_fd(), &e, None);
        }
        let _ = wire::send(ours.as_raw_fd(), &ToDaemon::End, None);
        Ok(Daemon {
            pid,
            link: Some(ours),
            started: Instant::now(),
            ready: false,
            candidate,
            handing_off: false,
        })
    }

    /// Handles what the daemon sent; a closed link means it is going away.
    fn serve(&mut self, d: &mut Daemon, fd: i32) {
        loop {
            let mut pfd = [PollFd::new(
                // SAFETY: `fd` is the live link of `d`, borrowed for this poll only.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                PollFlags::POLLIN,
            )];
            if !matches!(poll(&mut pfd, PollTimeout::ZERO), Ok(n) if n > 0) {
                return;
            }
            match wire::recv::<ToKeeper>(fd) {
                Ok(Some((ToKeeper::Keep { tag }, Some(held)))) => {
                    self.store.insert(tag, held);
                }
                Ok(Some((ToKeeper::Keep { .. }, None))) => {}
                Ok(Some((ToKeeper::Forget { tag, ack }, _))) => {
                    self.store.remove(&tag);
                    if ack {
                        let _ = wire::send(fd, &ToDaemon::Forgot { tag }, None);
                    }
                }
                Ok(Some((ToKeeper::Next { binary }, _))) => {
                    self.candidate = Some(binary);
                    d.handing_off = true;
                }
                Ok(Some((ToKeeper::Ready, _))) => {
                    d.ready = true;
                    if !self.ever_ready {
                        if let Some(h) = &self.home {
                            write_pid_file(h);
                        }
                    }
                    self.ever_ready = true;
                    if d.candidate {
                        if let Some(c) = self.candidate.take() {
                            self.current = c;
                        }
                        self.previous = None;
                    }
                }
                Ok(None) | Err(_) => {
                    d.link = None;
                    return;
                }
            }
        }
    }

    fn exited(&mut self, e: ToDaemon, daemon: Option<&Daemon>) {
        if let Some(link) = daemon.and_then(|d| d.link.as_ref()) {
            if wire::send(link.as_raw_fd(), &e, None).is_ok() {
                return;
            }
        }
        if self.exits.len() < MAX_PENDING_EXITS {
            self.exits.push(e);
        }
    }
}
