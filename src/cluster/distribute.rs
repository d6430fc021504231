//! One listening socket of a balanced cluster app: the accept loop, the
//! workers that listen on it, and the connections waiting for one of them.
//! The supervisor accepts only while some worker can take a connection, so
//! during a crash or a hand-over connections wait in the kernel backlog;
//! each one goes to a worker's IPC channel (Node's `newconn`), and one that
//! a worker refuses or never acknowledges comes back here for another.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, Notify};

use super::balance::{client_hash, Balancer, Candidate, Hint, Policy};
use super::sessions::{Lookup, Sessions};
use super::sticky;

/// An accepted connection on its way to a worker.
pub struct Conn {
    pub socket: Socket,
    hint: Hint,
    /// On a sticky-primary socket: the first bytes, read (consumed) here to
    /// route them, which the worker's `setupWorker` replays into its server.
    pub first: Option<Vec<u8>>,
}

/// What a worker's channel receives: the connection and where to return it.
pub struct Handoff {
    pub conn: Conn,
    pub from: Arc<Distributor>,
}

/// One worker's connection figures, shared by every socket it listens on
/// and read by `describe`, `jlist`, monit and the metrics.
///
/// Two counts of the connections it began with: those it acknowledged
/// here, known at once, and those its preload reports in batches, which
/// trail but also include the ones it accepted itself (a kernel-steered
/// socket). Each is a count of the same growing set, so the larger is the
/// better figure.
#[derive(Debug, Default)]
pub struct WorkerLoad {
    acked: AtomicU64,
    reported: AtomicU64,
    closed: AtomicU64,
}

impl WorkerLoad {
    pub fn accepted(&self) -> u64 {
        self.acked
            .load(Ordering::Relaxed)
            .max(self.reported.load(Ordering::Relaxed))
    }

    pub fn open(&self) -> u64 {
        self.accepted()
            .saturating_sub(self.closed.load(Ordering::Relaxed))
    }

    pub fn add_accepted(&self) {
        self.acked.fetch_add(1, Ordering::Relaxed);
    }

    /// The preload's batched counts of connections that began and ended.
    pub fn add_reported(&self, opened: u64, closed: u64) {
        self.reported.fetch_add(opened, Ordering::Relaxed);
        self.closed.fetch_add(closed, Ordering::Relaxed);
    }
}

struct Member {
    tx: mpsc::UnboundedSender<Handoff>,
    load: Arc<WorkerLoad>,
    pending: u32,
}

#[derive(Default)]
struct State {
    members: BTreeMap<u64, Member>,
    held: VecDeque<Conn>,
    balancer: Balancer,
}

pub struct Distributor {
    /// The listen key (Node's), which each `newconn` names.
    key: String,
    policy: Policy,
    sessions: Arc<Sessions>,
    state: Mutex<State>,
    /// Capacity may have come back: the accept loop looks again.
    wake: Notify,
    /// Sticky connections whose first bytes are being read.
    peeking: AtomicUsize,
    /// The supervisor serves this socket in place of workers that never
    /// listen (`@socket.io/sticky`'s setupMaster contract): it reads each
    /// connection's first bytes and sends them with the connection.
    primary: bool,
}

/// How long and how much of a sticky connection's first request is read
/// before it is routed anyway (by the normal policy).
const PEEK_TIME: Duration = Duration::from_millis(1000);
const PEEK_MAX: usize = 4096;
/// Beyond this many connections being peeked at once, new ones are routed
/// without reading (a flood of silent clients costs nothing more).
const MAX_PEEKING: usize = 1024;
/// Time to wait for a partial request line to grow: peeking does not
/// consume, so readiness alone would fire again at once.
const PEEK_RETRY: Duration = Duration::from_millis(5);
/// How long a request may wait for its session's report: far beyond the
/// microseconds it normally trails the handshake's answer, so that only a
/// session no worker holds pays it.
const SESSION_WAIT: Duration = Duration::from_millis(1000);
/// What a sticky-primary connection may send first, and how long it may
/// take (setupMaster waits for ever; a silent client here costs a task and a
/// descriptor, so it is bounded like an HTTP request head).
const FIRST_MAX: usize = 64 * 1024;
const FIRST_TIME: Duration = Duration::from_secs(10);
/// Out of descriptors (EMFILE): back off rather than spin on accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Distributor {
    pub fn new(key: String, policy: Policy, sessions: Arc<Sessions>) -> Arc<Self> {
        Arc::new(Distributor {
            key,
            policy,
            sessions,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            peeking: AtomicUsize::new(0),
            primary: false,
        })
    }

    /// A socket served as `@socket.io/sticky`'s setupMaster serves it: by
    /// session, the first bytes sent along (`sticky:connection`).
    pub fn new_sticky_primary(key: String, sessions: Arc<Sessions>) -> Arc<Self> {
        Arc::new(Distributor {
            key,
            policy: Policy::Sticky,
            sessions,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            peeking: AtomicUsize::new(0),
            primary: true,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change below leaves the state whole before it can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Starts accepting on `listener` (non-blocking, listening).
    pub fn spawn(
        self: &Arc<Self>,
        listener: Socket,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let fd = watch(listener).map_err(|e| e.into_parts().1)?;
        Ok(tokio::spawn(self.clone().accept_loop(fd)))
    }

    /// A worker listens on this socket from now on.
    pub fn join(
        self: &Arc<Self>,
        token: u64,
        tx: mpsc::UnboundedSender<Handoff>,
        load: Arc<WorkerLoad>,
    ) {
        self.lock_and(|st| {
            st.members.insert(
                token,
                Member {
                    tx,
                    load,
                    pending: 0,
                },
            );
        });
    }

    /// The worker closed its server, is stopping, or is gone: no more
    /// connections for it. Those it has not acknowledged come back through
    /// `returned`.
    pub fn leave(self: &Arc<Self>, token: u64) {
        self.lock_and(|st| {
            st.members.remove(&token);
        });
    }

    /// The worker took a connection.
    pub fn accepted(self: &Arc<Self>, token: u64) {
        self.lock_and(|st| {
            if let Some(m) = st.members.get_mut(&token) {
                m.pending = m.pending.saturating_sub(1);
            }
        });
    }

    /// A connection the worker refused, or never acknowledged before it went.
    pub fn returned(self: &Arc<Self>, token: u64, conn: Conn) {
        self.lock_and(|st| {
            if let Some(m) = st.members.get_mut(&token) {
                m.pending = m.pending.saturating_sub(1);
            }
            // It has waited longest: first in line.
            st.held.push_front(conn);
        });
    }

    fn submit(self: &Arc<Self>, conn: Conn) {
        self.lock_and(|st| st.held.push_back(conn));
    }

    /// Applies a change, hands out what waits, and wakes the accept loop.
    fn lock_and<R>(self: &Arc<Self>, change: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let r = change(&mut st);
        self.dispatch(&mut st);
        drop(st);
        self.wake.notify_one();
        r
    }

    fn dispatch(self: &Arc<Self>, st: &mut State) {
        while let Some(conn) = st.held.pop_front() {
            let candidates: Vec<Candidate> = st
                .members
                .iter()
                .map(|(t, m)| Candidate {
                    token: *t,
                    open: m.load.open(),
                    pending: m.pending,
                })
                .collect();
            let Some(token) = st.balancer.pick(self.policy, &candidates, conn.hint) else {
                st.held.push_front(conn);
                return;
            };
            let Some(m) = st.members.get_mut(&token) else {
                st.held.push_front(conn);
                return;
            };
            m.pending += 1;
            let handoff = Handoff {
                conn,
                from: self.clone(),
            };
            if let Err(mpsc::error::SendError(h)) = m.tx.send(handoff) {
                // Its channel ended without leaving: it is gone.
                st.members.remove(&token);
                st.held.push_front(h.conn);
            }
        }
    }

    /// Accept only while the connection would go to a worker at once.
    fn can_accept(&self) -> bool {
        let st = self.lock();
        st.held.is_empty()
            && st
                .members
                .values()
                .any(|m| m.pending < super::balance::MAX_PENDING)
    }

    async fn accept_loop(self: Arc<Self>, listener: AsyncFd<Socket>) {
        loop {
            if !self.can_accept() {
                self.wake.notified().await;
                continue;
            }
            let mut ready = match listener.readable().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("the accept loop stopped: {e}");
                    return;
                }
            };
            // Take what the backlog holds while workers can take it.
            while self.can_accept() {
                match ready.try_io(|l| accept_nonblocking(l.get_ref())) {
                    Ok(Ok(socket)) => self.arrived(socket),
                    Ok(Err(e)) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        break;
                    }
                    Err(_would_block) => break,
                }
            }
        }
    }

    fn arrived(self: &Arc<Self>, socket: Socket) {
        if self.policy != Policy::Sticky {
            return self.submit(Conn {
                socket,
                hint: Hint::default(),
                first: None,
            });
        }
        let ip = socket
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.ip());
        if self.peeking.fetch_add(1, Ordering::Relaxed) >= MAX_PEEKING {
            self.peeking.fetch_sub(1, Ordering::Relaxed);
            if self.primary {
                // The worker needs the first bytes, which cannot be read for
                // this one now: shed it (the client retries) rather than
                // hold more silent clients.
                tracing::warn!("too many connections sending nothing yet: closed one");
                return;
            }
            return self.submit(Conn {
                socket,
                hint: Hint::default(),
                first: None,
            });
        }
        let me = self.clone();
        tokio::spawn(async move {
            let conn = if me.primary {
                me.read_first(socket, ip).await
            } else {
                let (socket, hint) = me.sticky_hint(socket, ip).await;
                Some(Conn {
                    socket,
                    hint,
                    first: None,
                })
            };
            me.peeking.fetch_sub(1, Ordering::Relaxed);
            if let Some(conn) = conn {
                me.submit(conn);
            }
        });
    }

    /// Reads (consuming) what the client sent first, bounded in size and
    /// time, as setupMaster's `socket.once('data')` does; None when the
    /// client closes or stays silent (the connection is then closed).
    async fn read_first(&self, socket: Socket, ip: Option<IpAddr>) -> Option<Conn> {
        let fd = match watch(socket) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!("cannot watch a sticky connection: {}", e.into_parts().1);
                return None;
            }
        };
        let mut buf = vec![0u8; FIRST_MAX];
        let read = tokio::time::timeout(FIRST_TIME, async {
            loop {
                let mut ready = fd.readable().await.ok()?;
                match ready.try_io(|s| {
                    nix::sys::socket::recv(
                        std::os::fd::AsRawFd::as_raw_fd(s.get_ref()),
                        &mut buf,
                        nix::sys::socket::MsgFlags::empty(),
                    )
                    .map_err(std::io::Error::from)
                }) {
                    Ok(Ok(0)) | Ok(Err(_)) => return None,
                    Ok(Ok(n)) => return Some(n),
                    Err(_would_block) => continue,
                }
            }
        })
        .await;
        let socket = fd.into_inner();
        let Ok(Some(n)) = read else {
            return None;
        };
        buf.truncate(n);
        let hint = self.hint_for(sticky::route(&buf), ip).await;
        Some(Conn {
            socket,
            hint,
            first: Some(buf),
        })
    }

    /// Reads (without consuming) the start of the first request, bounded in
    /// size and time, and says where the client belongs.
    async fn sticky_hint(&self, socket: Socket, ip: Option<IpAddr>) -> (Socket, Hint) {
        let fd = match watch(socket) {
            Ok(fd) => fd,
            Err(e) => {
                let (socket, e) = e.into_parts();
                tracing::warn!("cannot watch a sticky connection: {e}");
                return (socket, Hint::default());
            }
        };
        let route = tokio::time::timeout(PEEK_TIME, first_line(&fd)).await;
        let socket = fd.into_inner();
        // Nothing usable in time: the normal policy.
        let route = route.unwrap_or(sticky::Route::Unreadable);
        (socket, self.hint_for(route, ip).await)
    }

    async fn hint_for(&self, route: sticky::Route, ip: Option<IpAddr>) -> Hint {
        let by_client = Hint {
            owner: None,
            client: ip.as_ref().map(client_hash),
        };
        match route {
            sticky::Route::Session(sid) => Hint {
                owner: self.session_owner(&sid).await,
                ..by_client
            },
            // A new Engine.IO client: wherever the load says (setupWorker
            // then reports which worker holds its session).
            sticky::Route::Handshake => Hint::default(),
            sticky::Route::Other => by_client,
            // Nothing usable in bounds: the normal policy.
            sticky::Route::Incomplete | sticky::Route::Unreadable => Hint::default(),
        }
    }

    /// The worker holding a session. The worker reports a new session over
    /// its IPC channel just after it answers the handshake, so the client's
    /// next request may arrive first (more so on a loaded machine): wait for
    /// the report, woken by it, up to a bound, then fall back to the
    /// client's address.
    async fn session_owner(&self, sid: &str) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + SESSION_WAIT;
        loop {
            // Registered before looking, so a report in between still wakes us.
            let changed = self.sessions.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.sessions.lookup(sid) {
                Lookup::Owner(w) => return Some(w),
                Lookup::Unknown => return None,
                Lookup::Wait => {}
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::debug!(sid, "no worker reported this session in time");
                self.sessions.waited_in_vain();
                return None;
            }
        }
    }
}

/// Accepts one connection, non-blocking and close-on-exec from the start
/// (one syscall, where `accept` and then `set_nonblocking` took three). The
/// flag belongs to the open file, which the worker shares: libuv expects a
/// non-blocking socket and does not set it on one it receives, and peeking
/// needs it too.
fn accept_nonblocking(listener: &Socket) -> std::io::Result<Socket> {
    let fd = nix::sys::socket::accept4(
        listener,
        nix::sys::socket::SockFlag::SOCK_NONBLOCK | nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    Ok(Socket::from(fd))
}

/// Registers a socket we own with the reactor.
fn watch(socket: Socket) -> Result<AsyncFd<Socket>, tokio::io::unix::AsyncFdRegisterError<Socket>> {
    // SAFETY: the AsyncFd takes the socket by value, so its descriptor stays
    // open and names the same open file until the AsyncFd is dropped or
    // gives the socket back with `into_inner`.
    unsafe { AsyncFd::register(socket) }
}

/// Peeks until the request line is complete, the bound is reached, or the
/// client closes; never consumes a byte (the worker reads the request).
async fn first_line(fd: &AsyncFd<Socket>) -> sticky::Route {
    let mut buf = vec![0u8; PEEK_MAX];
    loop {
        let n = loop {
            let mut ready = match fd.readable().await {
                Ok(r) => r,
                Err(_) => return sticky::Route::Unreadable,
            };
            let peeked = ready.try_io(|s| {
                nix::sys::socket::recv(
                    std::os::fd::AsRawFd::as_raw_fd(s.get_ref()),
                    &mut buf,
                    nix::sys::socket::MsgFlags::MSG_PEEK,
                )
                .map_err(std::io::Error::from)
            });
            match peeked {
                Ok(Ok(n)) => break n,
                Ok(Err(_)) => return sticky::Route::Unreadable,
                Err(_would_block) => continue,
            }
        };
        if n == 0 {
            return sticky::Route::Unreadable;
        }
        match sticky::route(&buf[..n]) {
            sticky::Route::Incomplete if n < PEEK_MAX => tokio::time::sleep(PEEK_RETRY).await,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_report_wakes_the_waiting_request() {
        let d = Distributor::new("k".into(), Policy::Sticky, Arc::default());
        let sessions = d.sessions.clone();
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { d.session_owner("late").await }
        });
        tokio::task::yield_now().await;
        sessions.opened("late".into(), 9);
        let got = tokio::time::timeout(Duration::from_millis(500), waiter).await;
        assert!(matches!(got, Ok(Ok(Some(9)))), "{got:?}");
    }
}
