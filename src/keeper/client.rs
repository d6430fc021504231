//! The daemon's side of its keeper link: at start-up it takes back what a
//! previous daemon left in the store, then hands the keeper a duplicate of
//! every long-lived descriptor it opens and takes it back when done. A
//! daemon without a keeper (the Node host, the in-process supervisor) makes
//! every call here a no-op.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::wire::{self, ToDaemon, ToKeeper};
use super::KEEPER_FD_ENV;

/// How long a forget waits for the keeper to close its copy.
const FORGET_WAIT: Duration = Duration::from_secs(1);
/// Exit statuses nobody asked for (a grandchild's) are not kept forever.
const MAX_EXITS: usize = 4096;

/// A process's end as the keeper saw it when it reaped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// What the previous daemon left with the keeper, by tag.
#[derive(Debug, Default)]
pub struct Inherited {
    pub fds: HashMap<String, OwnedFd>,
}

struct Link {
    fd: OwnedFd,
    send: Mutex<()>,
    exits: Mutex<HashMap<u32, Reaped>>,
    forgot: (Mutex<Vec<String>>, Condvar),
}

static LINK: OnceLock<Link> = OnceLock::new();

fn link() -> Option<&'static Link> {
    LINK.get()
}

/// Connects to the keeper named in the environment, if any, and takes what
/// it holds. None: this daemon runs without a keeper.
pub fn attach() -> Option<Inherited> {
    let raw: RawFd = std::env::var(KEEPER_FD_ENV).ok()?.parse().ok()?;
    // SAFETY: the keeper passed this descriptor for us alone; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: F_SETFD on our own descriptor: the apps must not inherit it.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut inherited = Inherited::default();
    let mut exits = HashMap::new();
    loop {
        match wire::recv::<ToDaemon>(fd.as_raw_fd()) {
            Ok(Some((ToDaemon::Fd { tag }, Some(held)))) => {
                inherited.fds.insert(tag, held);
            }
            Ok(Some((ToDaemon::Exit { pid, code, signal }, _))) => {
                exits.insert(pid, Reaped { code, signal });
            }
            Ok(Some((ToDaemon::End, _))) => break,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
    let l = Link {
        fd,
        send: Mutex::new(()),
        exits: Mutex::new(exits),
        forgot: (Mutex::new(Vec::new()), Condvar::new()),
    };
    if LINK.set(l).is_err() {
        return None;
    }
    let spawned = std::thread::Builder::new()
        .name("pmr-keeper-link".into())
        .spawn(read_loop);
    if let Err(e) = spawned {
        tracing::warn!("cannot read from the keeper: {e}");
    }
    Some(inherited)
}

/// This daemon has a keeper.
pub fn attached() -> bool {
    link().is_some()
}

fn read_loop() {
    let Some(l) = link() else { return };
    loop {
        match wire::recv::<ToDaemon>(l.fd.as_raw_fd()) {
            Ok(Some((ToDaemon::Exit { pid, code, signal }, _))) => {
                let mut m = l.exits.lock().unwrap_or_else(|e| e.into_inner());
                if m.len() >= MAX_EXITS {
                    m.clear();
                }
                m.insert(pid, Reaped { code, signal });
            }
            Ok(Some((ToDaemon::Forgot { tag }, _))) => {
                let (lock, cv) = &l.forgot;
                let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
                // An answer that came after its waiter gave up is not kept.
                if done.len() >= 64 {
                    done.remove(0);
                }
                done.push(tag);
                cv.notify_all();
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                tracing::warn!("the keeper closed its link: descriptors are no longer kept");
                return;
            }
        }
    }
}

fn send(msg: &ToKeeper, fd: Option<BorrowedFd<'_>>) {
    let Some(l) = link() else { return };
    let _guard = l.send.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = wire::send(l.fd.as_raw_fd(), msg, fd) {
        tracing::warn!("the keeper did not take {msg:?}: {e}");
    }
}

/// The keeper holds a duplicate of `fd` under `tag` until `forget(tag)`.
pub fn keep(tag: &str, fd: BorrowedFd<'_>) {
    send(&ToKeeper::Keep { tag: tag.into() }, Some(fd));
}

/// The keeper closes its copy; returns at once.
pub fn forget(tag: &str) {
    send(
        &ToKeeper::Forget {
            tag: tag.into(),
            ack: false,
        },
        None,
    );
}

/// The keeper closes its copy; returns once it has (a listening socket
/// must be closed everywhere before the port can be bound again).
pub fn forget_and_wait(tag: &str) {
    let Some(l) = link() else { return };
    send(
        &ToKeeper::Forget {
            tag: tag.into(),
            ack: true,
        },
        None,
    );
    let (lock, cv) = &l.forgot;
    let deadline = Instant::now() + FORGET_WAIT;
    let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(i) = done.iter().position(|t| t == tag) {
            done.swap_remove(i);
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        done = match cv.wait_timeout(done, left) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
    }
}

/// The daemon serves its home.
pub fn ready() {
    send(&ToKeeper::Ready, None);
}

/// Asks the keeper to start `binary` once this daemon has exited.
pub fn hand_off_to(binary: &Path) {
    send(
        &ToKeeper::Next {
            binary: binary.to_path_buf(),
        },
        None,
    );
}

/// How a process the keeper reaped ended: waits up to `within` for the
/// keeper's word once the process is known to be gone.
pub async fn reaped(pid: u32, within: Duration) -> Option<Reaped> {
    let l = link()?;
    let deadline = Instant::now() + within;
    loop {
        if let Some(r) = l
            .exits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid)
        {
            return Some(r);
        }
        if Instant::now() >= deadline {
            return None;
        }
        // The keeper reaps on SIGCHLD: its word follows within a few ms.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Tags of the descriptors one process's life needs kept.
pub mod tags {
    pub fn ipc(pid: u32) -> String {
        format!("ipc/{pid}")
    }
    pub fn out(pid: u32) -> String {
        format!("out/{pid}")
    }
    pub fn err(pid: u32) -> String {
        format!("err/{pid}")
    }
    /// A cluster app's listening socket, by Node's key for it.
    pub fn listen(app: &str, key: &str) -> String {
        format!("listen/{app}/{key}")
    }
    /// The app and key of a `listen/` tag.
    pub fn parse_listen(tag: &str) -> Option<(&str, &str)> {
        tag.strip_prefix("listen/")?.split_once('/')
    }
}

#[cfg(test)]
mod tests {
    use super::tags;

    #[test]
    fn listen_tags_name_app_and_key() {
        let t = tags::listen("api", "null:3000:4:undefined:0");
        assert_eq!(
            tags::parse_listen(&t),
            Some(("api", "null:3000:4:undefined:0"))
        );
        assert_eq!(tags::parse_listen("out/12"), None);
    }
}
