//! One worker's IPC channel, served by the supervisor: reads the worker's
//! messages, answers `queryServer` with a socket from the app's pool (one
//! handle in flight at a time, as Node's primary does, so each descriptor
//! arrives with its own message), and carries our messages to the worker.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use nix::sys::socket::{self, ControlMessage, MsgFlags, SockFlag};
use serde_json::Value;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::listeners::ListenerPool;
use super::message::{self, NodeReport, WorkerMessage};
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
    /// The preload's private health-check port (None: no HTTP server yet).
    HealthPort(Option<u16>),
    /// The worker closed the channel (it may live on without one).
    Closed,
    /// Any other message the app sent.
    App(Value),
}

/// What the slot asks the channel to send.
#[derive(Debug)]
pub enum Outgoing {
    Message(Value),
    Disconnect,
}

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
    handles: VecDeque<(Value, OwnedFd)>,
    handle_in_flight: bool,
    seq: u64,
}

impl Channel {
    pub fn new(
        ours: OwnedFd,
        pool: Option<Arc<ListenerPool>>,
        events: mpsc::UnboundedSender<ChannelEvent>,
    ) -> io::Result<Self> {
        let std = std::os::unix::net::UnixStream::from(ours);
        std.set_nonblocking(true)?;
        Ok(Channel {
            stream: UnixStream::from_std(std)?,
            pool,
            events,
            handles: VecDeque::new(),
            handle_in_flight: false,
            seq: 0,
        })
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
                        Some(Outgoing::Disconnect) => { self.seq += 1; message::disconnect(self.seq) }
                    };
                    if self.write_all(&message::encode(&msg), None).await.is_err() {
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
                    Some(pool) => pool.get_or_bind(&q),
                    None => Err(nix::errno::Errno::ENOTSUP as i32),
                };
                match answer {
                    Ok(fd) => {
                        self.handles
                            .push_back((message::handle_reply(&q, self.seq), fd));
                        self.send_next_handle().await?;
                        None
                    }
                    Err(errno) => {
                        self.write_all(
                            &message::encode(&message::error_reply(&q, errno, self.seq)),
                            None,
                        )
                        .await?;
                        Some(ChannelEvent::BindFailed {
                            address: q.describe(),
                            errno,
                        })
                    }
                }
            }
            WorkerMessage::HandleAck | WorkerMessage::HandleNack => {
                self.handle_in_flight = false;
                self.send_next_handle().await?;
                None
            }
            WorkerMessage::Online => Some(ChannelEvent::Online),
            WorkerMessage::Listening { address } => Some(ChannelEvent::Listening(address)),
            WorkerMessage::ExitedAfterDisconnect => Some(ChannelEvent::ExitedAfterDisconnect),
            WorkerMessage::Metrics(r) => Some(ChannelEvent::Metrics(r)),
            WorkerMessage::HealthPort(p) => Some(ChannelEvent::HealthPort(p)),
            WorkerMessage::Close { .. } | WorkerMessage::OtherInternal => None,
            WorkerMessage::App(Value::String(s)) if s == "ready" => Some(ChannelEvent::Ready),
            WorkerMessage::App(v) => Some(ChannelEvent::App(v)),
        };
        if let Some(e) = event {
            let _ = self.events.send(e);
        }
        Ok(())
    }

    async fn send_next_handle(&mut self) -> io::Result<()> {
        if self.handle_in_flight {
            return Ok(());
        }
        if let Some((msg, fd)) = self.handles.pop_front() {
            self.handle_in_flight = true;
            self.write_all(&message::encode(&msg), Some(fd)).await?;
        }
        Ok(())
    }

    /// Writes a whole message; a descriptor rides on its first byte.
    async fn write_all(&self, data: &[u8], fd: Option<OwnedFd>) -> io::Result<()> {
        let mut off = 0;
        let mut fd = fd;
        while off < data.len() {
            let chunk = &data[off..];
            let sent = self
                .stream
                .async_io(Interest::WRITABLE, || {
                    let iov = [IoSlice::new(chunk)];
                    let raw = fd.as_ref().map(|f| [f.as_raw_fd()]);
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
