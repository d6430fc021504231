//! The daemon's files in the home: the lock that makes it the only daemon
//! there, the socket, the pid file, its own log, and the start-up report.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{umask, Mode};

use super::own_log::{OwnLog, DAEMON_LOG_CAP};
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};
use crate::paths::Home;

/// Takes the home's lock; None when another daemon holds it. The lock lives
/// as long as the returned fd, i.e. as long as this daemon.
pub fn lock_home(home: &Home) -> Result<Option<Flock<std::fs::File>>> {
    let path = home.lock_file();
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::io(
            format!("cannot lock {}", path.display()),
            std::io::Error::from(e),
        )),
    }
}

/// Binds the control socket. Holding the lock proves any socket file left
/// there belongs to a dead daemon, so it is replaced. The socket is created
/// under a umask that makes it 0600 from the first instant.
pub fn bind_socket(home: &Home) -> Result<UnixListener> {
    let path = home.socket();
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!("removed a stale socket left by a previous daemon"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::io(
                format!("cannot remove the stale socket {}", path.display()),
                e,
            ))
        }
    }
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(&path);
    umask(old);
    let l = bound.map_err(|e| Error::io(format!("cannot bind {}", path.display()), e))?;
    l.set_nonblocking(true)
        .map_err(|e| Error::io("cannot configure the control socket", e))?;
    Ok(l)
}

pub fn write_pid(home: &Home) -> Result<()> {
    write_atomic(
        &home.pid_file(),
        format!("{}\n", std::process::id()).as_bytes(),
        None,
    )
}

/// The daemon logs to `<home>/pmr.log` (size-capped, see `own_log`); its
/// stderr goes there too, so a panic message or a Node warning is not lost.
pub fn init_logging(home: &Home) -> Result<()> {
    let path = home.daemon_log();
    let log = OwnLog::open(&path, DAEMON_LOG_CAP, true)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(log))
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    Ok(())
}

/// One line to the launcher's status pipe.
pub fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Points fd 1 at /dev/null, closing the launcher's pipe so it sees EOF.
pub fn release_stdout() {
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
}
