//! One worker's IPC channel, served by the supervisor: reads the worker's
//! messages, answers `queryServer` with a socket from the app's pool or
//! joins the socket's distributor, hands the worker its connections
//! (`newconn`) and gives back those it refuses or never acknowledges (one
//! handle in flight at a time, as Node's primary does, so each descriptor
//! arrives with its own message), and carries our messages to the worker.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix::sys::socket::{self, ControlMessage, MsgFlags, SockFlag};
use serde_json::Value;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use super::distribute::{Distributor, Handoff, WorkerLoad};
use super::listeners::{Joined, ListenerPool};
use super::message::{self, NodeReport, PathAnswer, WorkerMessage};
use super::steered::SteeredGroup;
use crate::protocol::{Frame, LineFramer};

/// Node's own limit for one IPC message is far larger, but nothing a worker
/// legitimately sends us comes near this.
const MAX_MESSAGE: usize = 16 << 20;

// Node ignores SIGPIPE, but an embedder might not: never let a worker that
// went away kill the supervisor.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: MsgFlags = MsgFlags::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: MsgFlags = MsgFlags::empty();

/// What the slot supervising the worker hears from its channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelEvent {
    Online,
    Listening(String),
    /// `process.send('ready')`.
    Ready,
    ExitedAfterDisconnect,
    /// A `listen()` the supervisor could not satisfy.
    BindFailed {
        address: String,
        errno: i32,
    },
    /// The preload's report on the Node.js runtime.
    Metrics(NodeReport),
    /// The worker closed the channel (it may live on without one).
    Closed,
    /// Any other message the app sent.
    App(Value),
}

/// What the slot asks the channel to send.
#[derive(Debug)]
pub enum Outgoing {
    Message(Value),
    /// A health check of a path for the preload to carry out; its answer
    /// (the `health-result` with the same id) goes to `reply`, straight
    /// from this task, so it arrives even while the slot is busy (in a
    /// reload) and costs no trip through the slot.
    HealthCheck {
        id: u64,
        msg: Value,
        reply: oneshot::Sender<PathAnswer>,
    },
    Disconnect,
    /// The worker is about to be stopped: no new connections from now on.
    StopConnections,
}

/// A descriptor waiting for its turn on the channel.
enum Pending {
    /// A listening socket (shared mode, a steered slot, the overflow
    /// socket), closed here once sent.
    Listener(OwnedFd),
    /// The connection of the `newconn` with this seq, kept until acknowledged.
    Conn(u64),
    /// A connection for `setupWorker` (`sticky:connection`): the worker has
    /// taken it once it acknowledges the handle.
    Sticky(u64),
}

/// The handle sent and not yet acknowledged by NODE_HANDLE_ACK.
#[derive(Clone, Copy)]
enum InFlight {
    Listener,
    Conn(u64),
    Sticky(u64),
}

/// Names a worker in the distributors for the life of its channel.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A connected pair: ours stays in the supervisor, theirs becomes the
/// worker's fd 3. Both close on exec so no other child inherits them.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

pub struct Channel {
    stream: UnixStream,
    pool: Option<Arc<ListenerPool>>,
    events: mpsc::UnboundedSender<ChannelEvent>,
    handles: VecDeque<(Value, Pending)>,
    in_flight: Option<InFlight>,
    seq: u64,
    token: u64,
    load: Arc<WorkerLoad>,
    /// The balanced sockets this worker listens on, by key.
    joined: HashMap<String, Arc<Distributor>>,
    /// The kernel-steered addresses it listens on, by key.
    steered: HashMap<String, Arc<SteeredGroup>>,
    conns_tx: mpsc::UnboundedSender<Handoff>,
    conns_rx: mpsc::UnboundedReceiver<Handoff>,
    /// Connections handed over (or queued to be), by the seq of their
    /// `newconn`, until the worker says whether it took them.
    unacked: HashMap<u64, Handoff>,
    /// What the app's other workers relay to this one.
    relayed: mpsc::UnboundedReceiver<Value>,
    /// Health checks sent and not answered yet, by id.
    checks: HashMap<u64, oneshot::Sender<PathAnswer>>,
}

impl Channel {
    pub fn new(
        ours: OwnedFd,
        pool: Option<Arc<ListenerPool>>,
        events: mpsc::UnboundedSender<ChannelEvent>,
    ) -> io::Result<Self> {
        let std = std::os::unix::net::UnixStream::from(ours);
        std.set_nonblocking(true)?;
        let (conns_tx, conns_rx) = mpsc::unbounded_channel();
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let (relay_tx, relayed) = mpsc::unbounded_channel();
        if let Some(p) = &pool {
            p.relay.join(token, relay_tx);
        }
        Ok(Channel {
            stream: UnixStream::from_std(std)?,
            pool,
            events,
            handles: VecDeque::new(),
            in_flight: None,
            seq: 0,
            token,
            load: Arc::default(),
            joined: HashMap::new(),
            steered: HashMap::new(),
            conns_tx,
            conns_rx,
            unacked: HashMap::new(),
            relayed,
            checks: HashMap::new(),
        })
    }

    /// A worker adopted from a dead daemon already listens on every
    /// balanced socket of its app, and on a steered slot: it gets their
    /// connections again. `pid` is the worker's (which slots it holds).
    pub fn rejoin(&mut self, pid: u32) {
        let Some(pool) = &self.pool else { return };
        for dist in pool.distributors() {
            dist.join(self.token, self.conns_tx.clone(), self.load.clone());
            self.joined.insert(dist.key().to_owned(), dist);
        }
        let held = super::steered::sockets_of(pid);
        for group in pool.steered_groups() {
            group.rejoin(self.token, self.conns_tx.clone(), self.load.clone(), &held);
            self.steered.insert(group.key().to_owned(), group);
        }
    }

    /// What the app's pool knows this worker by (its sessions, the relay).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The worker's connection figures, for the slot to publish.
    pub fn load(&self) -> Arc<WorkerLoad> {
        self.load.clone()
    }

    /// Serves the channel until the worker closes it or `outgoing` ends.
    pub async fn run(mut self, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
        let mut framer = LineFramer::new(MAX_MESSAGE);
        let mut buf = vec![0u8; 16 * 1024];
        let mut frames = Vec::new();
        loop {
            tokio::select! {
                r = self.stream.read(&mut buf) => {
                    let n = match r {
                        Ok(0) | Err(_) => {
                            let _ = self.events.send(ChannelEvent::Closed);
                            return;
                        }
                        Ok(n) => n,
                    };
                    framer.push(&buf[..n], &mut frames);
                    for f in frames.drain(..) {
                        let Frame::Line(line) = f else {
                            tracing::warn!("dropped an oversized IPC message from a worker");
                            continue;
                        };
                        if self.on_line(&line).await.is_err() {
                            return;
                        }
                    }
                }
                out = outgoing.recv() => {
                    let msg = match out {
                        None => return,
                        Some(Outgoing::Message(v)) => v,
                        Some(Outgoing::HealthCheck { id, msg, reply }) => {
                            // A check whose asker gave up (timed out) is
                            // forgotten: the map stays as small as the
                            // checks in progress.
                            self.checks.retain(|_, r| !r.is_closed());
                            self.checks.insert(id, reply);
                            msg
                        }
                        Some(Outgoing::Disconnect) => { self.seq += 1; message::disconnect(self.seq) }
                        Some(Outgoing::StopConnections) => {
                            self.stop_connections();
                            continue;
                        }
                    };
                    if self.write_all(&message::encode(&msg), None).await.is_err() {
                        return;
                    }
                }
                Some(msg) = self.relayed.recv() => {
                    if self.write_all(&message::encode(&msg), None).await.is_err() {
                        return;
                    }
                }
                Some(h) = self.conns_rx.recv() => {
                    self.seq += 1;
                    let seq = self.seq;
                    let (msg, pending) = match &h.conn.first {
                        Some(first) => (message::sticky_connection(first), Pending::Sticky(seq)),
                        None => (message::newconn(h.from.key(), seq), Pending::Conn(seq)),
                    };
                    self.unacked.insert(seq, h);
                    self.handles.push_back((msg, pending));
                    if self.send_next_handle().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn on_line(&mut self, line: &[u8]) -> io::Result<()> {
        let msg = match message::parse(line) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{e}");
                return Ok(());
            }
        };
        let event = match msg {
            WorkerMessage::QueryServer(q) => {
                self.seq += 1;
                let answer = match &self.pool {
                    Some(pool) => pool.join(&q),
                    None => Err(nix::errno::Errno::ENOTSUP as i32),
                };
                match answer {
                    Ok(Joined::Shared(fd)) => self.give_listener(&q, fd).await?,
                    Ok(Joined::Steered(group)) => {
                        match group.join(self.token, self.conns_tx.clone(), self.load.clone()) {
                            Ok(sockets) => {
                                self.steered.insert(q.key(), group);
                                let event = self.give_listener(&q, sockets.own).await?;
                                if let Some(fd) = sockets.overflow {
                                    self.handles.push_back((
                                        message::overflow_handle(&q.key()),
                                        Pending::Listener(fd),
                                    ));
                                    self.send_next_handle().await?;
                                }
                                event
                            }
                            Err(errno) => self.refuse_listener(&q, errno).await?,
                        }
                    }
                    Ok(Joined::Balanced { dist, sockname }) => {
                        self.write_all(
                            &message::encode(&message::round_robin_reply(&q, sockname, self.seq)),
                            None,
                        )
                        .await?;
                        dist.join(self.token, self.conns_tx.clone(), self.load.clone());
                        self.joined.insert(q.key(), dist);
                        None
                    }
                    Err(errno) => self.refuse_listener(&q, errno).await?,
                }
            }
            WorkerMessage::HandleAck => {
                if let Some(InFlight::Sticky(seq)) = self.in_flight.take() {
                    // Taken: our copy of the descriptor closes here.
                    if let Some(h) = self.unacked.remove(&seq) {
                        self.load.add_accepted();
                        h.from.accepted(self.token);
                    }
                }
                self.send_next_handle().await?;
                None
            }
            WorkerMessage::HandleNack => {
                // The worker could not take the descriptor: a connection
                // goes to another worker (a listener is the worker's loss,
                // and its listen() fails as it would under Node).
                if let Some(InFlight::Conn(seq) | InFlight::Sticky(seq)) = self.in_flight.take() {
                    self.give_back(seq);
                }
                self.send_next_handle().await?;
                None
            }
            WorkerMessage::ConnAck { seq, accepted } => {
                if let Some(h) = self.unacked.remove(&seq) {
                    if accepted {
                        self.load.add_accepted();
                        h.from.accepted(self.token);
                    } else {
                        h.from.returned(self.token, h.conn);
                    }
                }
                None
            }
            WorkerMessage::Conns { opened, closed } => {
                self.load.add_reported(opened, closed);
                None
            }
            WorkerMessage::StickyPrimary { port } => self.serve_sticky(port),
            WorkerMessage::SessionJoined { sid } => {
                if let Some(pool) = &self.pool {
                    pool.sessions.joined(&sid, self.token);
                }
                None
            }
            WorkerMessage::Online => Some(ChannelEvent::Online),
            WorkerMessage::Listening { address } => Some(ChannelEvent::Listening(address)),
            WorkerMessage::ExitedAfterDisconnect => Some(ChannelEvent::ExitedAfterDisconnect),
            WorkerMessage::Metrics(r) => Some(ChannelEvent::Metrics(r)),
            WorkerMessage::HealthResult { id, answer } => {
                if let Some(reply) = self.checks.remove(&id) {
                    let _ = reply.send(answer);
                }
                None
            }
            WorkerMessage::OverflowHeld { key } => {
                if let Some(g) = self.steered.get(&key) {
                    g.hold_overflow(self.token);
                }
                None
            }
            WorkerMessage::Close { key } => {
                if let Some(d) = self.joined.remove(&key) {
                    d.leave(self.token);
                }
                if let Some(g) = self.steered.remove(&key) {
                    g.leave(self.token);
                }
                None
            }
            WorkerMessage::OtherInternal => None,
            WorkerMessage::App(v) if self.session_report(&v) => None,
            WorkerMessage::App(v) if super::relay::is_relayed(&v) => {
                if let Some(pool) = &self.pool {
                    pool.relay.forward(self.token, v);
                }
                None
            }
            WorkerMessage::App(Value::String(s)) if s == "ready" => Some(ChannelEvent::Ready),
            WorkerMessage::App(v) => Some(ChannelEvent::App(v)),
        };
        if let Some(e) = event {
            let _ = self.events.send(e);
        }
        Ok(())
    }

    /// Answers `queryServer` with a listening socket the worker accepts
    /// from itself.
    async fn give_listener(
        &mut self,
        q: &message::ServerQuery,
        fd: OwnedFd,
    ) -> io::Result<Option<ChannelEvent>> {
        self.handles
            .push_back((message::handle_reply(q, self.seq), Pending::Listener(fd)));
        self.send_next_handle().await?;
        Ok(None)
    }

    /// Answers `queryServer` with the errno its `listen()` fails with.
    async fn refuse_listener(
        &mut self,
        q: &message::ServerQuery,
        errno: i32,
    ) -> io::Result<Option<ChannelEvent>> {
        self.write_all(
            &message::encode(&message::error_reply(q, errno, self.seq)),
            None,
        )
        .await?;
        Ok(Some(ChannelEvent::BindFailed {
            address: q.describe(),
            errno,
        }))
    }

    /// `@socket.io/sticky`'s `setupWorker` telling the primary which
    /// Engine.IO sessions this worker holds: kept for routing, not an event.
    fn session_report(&self, v: &Value) -> bool {
        let Some(pool) = &self.pool else {
            return false;
        };
        let sid = v.get("data").and_then(Value::as_str);
        match (v.get("type").and_then(Value::as_str), sid) {
            (Some("sticky:connection"), Some(sid)) => {
                pool.sessions.opened(sid.to_owned(), self.token);
                true
            }
            (Some("sticky:disconnection"), Some(sid)) => {
                pool.sessions.closed(sid);
                true
            }
            _ => false,
        }
    }

    /// The worker's setupWorker takes connections from the socket the
    /// supervisor serves on `port` for the app, from now on.
    fn serve_sticky(&mut self, port: u16) -> Option<ChannelEvent> {
        let pool = self.pool.as_ref()?;
        match pool.join_sticky_primary(port) {
            Ok((dist, address)) => {
                if self.joined.contains_key(dist.key()) {
                    return None;
                }
                dist.join(self.token, self.conns_tx.clone(), self.load.clone());
                self.joined.insert(dist.key().to_owned(), dist);
                Some(ChannelEvent::Listening(address))
            }
            Err(errno) => Some(ChannelEvent::BindFailed {
                address: format!("*:{port} (for setupWorker)"),
                errno,
            }),
        }
    }

    /// A connection this worker will not take goes back to its distributor.
    fn give_back(&mut self, seq: u64) {
        if let Some(h) = self.unacked.remove(&seq) {
            h.from.returned(self.token, h.conn);
        }
    }

    /// Leaves every distributor and gives back the connections not sent
    /// yet; those already sent come back when the worker refuses them.
    fn stop_connections(&mut self) {
        for (_, d) in self.joined.drain() {
            d.leave(self.token);
        }
        for (_, g) in self.steered.drain() {
            g.leave(self.token);
        }
        let queued: Vec<u64> = self
            .handles
            .iter()
            .filter_map(|(_, p)| match p {
                Pending::Conn(seq) | Pending::Sticky(seq) => Some(*seq),
                Pending::Listener(_) => None,
            })
            .collect();
        self.handles
            .retain(|(_, p)| matches!(p, Pending::Listener(_)));
        for seq in queued {
            self.give_back(seq);
        }
        while let Ok(h) = self.conns_rx.try_recv() {
            h.from.returned(self.token, h.conn);
        }
    }

    async fn send_next_handle(&mut self) -> io::Result<()> {
        if self.in_flight.is_some() {
            return Ok(());
        }
        while let Some((msg, pending)) = self.handles.pop_front() {
            let (raw, flight) = match &pending {
                Pending::Listener(fd) => (fd.as_raw_fd(), InFlight::Listener),
                Pending::Conn(seq) | Pending::Sticky(seq) => match self.unacked.get(seq) {
                    Some(h) => (
                        h.conn.socket.as_raw_fd(),
                        match pending {
                            Pending::Sticky(_) => InFlight::Sticky(*seq),
                            _ => InFlight::Conn(*seq),
                        },
                    ),
                    // Given back meanwhile: nothing to send.
                    None => continue,
                },
            };
            self.in_flight = Some(flight);
            // A listener's duplicate closes once sent (with `pending`); a
            // connection stays ours until the worker says it took it.
            return self.write_all(&message::encode(&msg), Some(raw)).await;
        }
        Ok(())
    }

    /// Writes a whole message; a descriptor rides on its first byte.
    async fn write_all(&self, data: &[u8], fd: Option<RawFd>) -> io::Result<()> {
        let mut off = 0;
        let mut fd = fd;
        while off < data.len() {
            let chunk = &data[off..];
            let sent = self
                .stream
                .async_io(Interest::WRITABLE, || {
                    let iov = [IoSlice::new(chunk)];
                    let raw = fd.map(|f| [f]);
                    let cmsgs: Vec<ControlMessage<'_>> = match &raw {
                        Some(r) => vec![ControlMessage::ScmRights(r)],
                        None => Vec::new(),
                    };
                    socket::sendmsg::<()>(self.stream.as_raw_fd(), &iov, &cmsgs, SEND_FLAGS, None)
                        .map_err(io::Error::from)
                })
                .await?;
            fd = None;
            off += sent;
        }
        Ok(())
    }
}

impl Drop for Channel {
    /// The worker is gone (or its channel is): every connection it had not
    /// taken goes to another worker, and its sessions are forgotten.
    fn drop(&mut self) {
        self.stop_connections();
        for (_, h) in self.unacked.drain() {
            h.from.returned(self.token, h.conn);
        }
        if let Some(pool) = &self.pool {
            pool.sessions.forget_worker(self.token);
            pool.relay.leave(self.token);
        }
    }
}
