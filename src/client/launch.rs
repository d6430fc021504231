//! Starting the daemon on first use: `node <pkg>/daemon.js` (or the native
//! daemon) in a session of its own, which reports on a pipe that it is ready,
//! or why it could not start (`protocol::startup`).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::Client;
use crate::error::{Error, Result};
use crate::paths::Home;
use crate::protocol::startup::StartupLine;

/// How to run a daemon.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub node: PathBuf,
    /// daemon.js: the Node-hosted daemon, used when there is no native one.
    pub daemon_script: PathBuf,
    /// The native daemon (`pmr-daemon`, next to the addon), when there is one.
    pub daemon_binary: Option<PathBuf>,
}

impl Launcher {
    /// The drain preload every Node app loads, shipped beside daemon.js.
    fn preload(&self) -> PathBuf {
        self.daemon_script
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("preload")
            .join("drain.js")
    }

    fn command(&self) -> Command {
        // PMR_NODE_DAEMON=1 picks the Node host even where the native daemon
        // exists (to compare them, or to debug with Node's tools).
        let native = self
            .daemon_binary
            .as_ref()
            .filter(|b| b.is_file() && std::env::var_os("PMR_NODE_DAEMON").is_none());
        match native {
            Some(bin) => {
                let mut cmd = Command::new(bin);
                // The keeper runs the daemon and outlives it: see keeper::run.
                cmd.arg("--keeper").arg("--preload").arg(self.preload());
                cmd
            }
            None => {
                let mut cmd = Command::new(&self.node);
                // The daemon's JavaScript is a few lines run once: V8's JIT
                // (and the WebAssembly it would enable) only costs memory there.
                cmd.args(["--jitless", "--no-expose-wasm"])
                    .arg(&self.daemon_script);
                cmd
            }
        }
    }
}

/// How a daemon this call started came up.
enum Launched {
    /// It serves the home; what it had to tell.
    Ready(Vec<String>),
    /// Another client started one at the same moment, which holds the home.
    AlreadyRunning,
}

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the home's daemon, starting one if none runs. When this
/// call started it, the second value holds what the new daemon has to tell
/// (e.g. that its predecessor died and what it did about that).
pub fn connect_or_start(home: &Home, launcher: &Launcher) -> Result<(Client, Option<Vec<String>>)> {
    if let Some(c) = Client::connect(home)? {
        return Ok((c, None));
    }
    home.ensure()?;
    // A daemon that died is being brought back by its keeper.
    let notices = if crate::keeper::alive(home) {
        Vec::new()
    } else {
        match launch(home, launcher)? {
            Launched::Ready(n) => n,
            Launched::AlreadyRunning => Vec::new(),
        }
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(c) = Client::connect(home)? {
            return Ok((c, Some(notices)));
        }
        if Instant::now() > deadline {
            return Err(Error::Daemon(format!(
                "the daemon did not open {} in time; see {}",
                home.socket().display(),
                home.daemon_log().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a daemon and waits for its report (see `StartupLine`).
fn launch(home: &Home, l: &Launcher) -> Result<Launched> {
    let mut cmd = l.command();
    cmd.env("PMR_HOME", home.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; nothing else runs after fork.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::Daemon(format!(
            "cannot start the daemon ({}): {e}",
            cmd.get_program().to_string_lossy()
        ))
    })?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| Error::Daemon("the daemon's status pipe is missing".into()))?;
    // The daemon is our child until we exit; reap it if it ends first so a
    // long-lived caller (a deploy script) keeps no zombie.
    std::thread::spawn(move || {
        let _ = child.wait();
    });

    let deadline = Instant::now() + START_TIMEOUT;
    let mut said = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Daemon(format!(
                "the daemon did not start within {} s; see {}",
                START_TIMEOUT.as_secs(),
                home.daemon_log().display()
            )));
        }
        let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::Daemon(format!("waiting for the daemon failed: {e}"))),
        }
        let n = out.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        said.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&said);
        if text.ends_with('\n')
            && text
                .lines()
                .filter_map(StartupLine::parse)
                .any(|l| l.is_verdict())
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&said);
    let mut notices = Vec::new();
    for line in text.lines().filter_map(StartupLine::parse) {
        match line {
            StartupLine::Notice(n) => notices.push(n),
            StartupLine::Ready(_) => return Ok(Launched::Ready(notices)),
            StartupLine::AlreadyRunning => return Ok(Launched::AlreadyRunning),
            StartupLine::Error(msg) => return Err(Error::Daemon(msg)),
        }
    }
    Err(Error::Daemon(format!(
        "the daemon exited during start-up; see {}",
        home.daemon_log().display()
    )))
}
