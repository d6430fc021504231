//! A blocking client of the daemon's control socket, for the CLI, the
//! launcher that starts a daemon when none is running, and the choices
//! clients make from the daemon's list (`select`).

mod async_client;
mod launch;
pub mod select;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use serde::de::DeserializeOwned;

pub use async_client::AsyncClient;
pub use launch::{connect_or_start, Launcher};

use crate::error::{Error, Result};
use crate::paths::Home;
use crate::protocol::{
    Envelope, Frame, LineFramer, Reply, Request, StreamItem, Subscribed, MAX_REPLY_BYTES,
    PROTOCOL_VERSION,
};

pub struct Client {
    stream: UnixStream,
    framer: LineFramer,
    frames: std::collections::VecDeque<Vec<u8>>,
    next_id: u64,
}

impl Client {
    /// Connects to a running daemon; Ok(None) when none is running.
    pub fn connect(home: &Home) -> Result<Option<Client>> {
        match UnixStream::connect(home.socket()) {
            Ok(stream) => Ok(Some(Client {
                stream,
                framer: LineFramer::new(MAX_REPLY_BYTES),
                frames: Default::default(),
                next_id: 1,
            })),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::Daemon(format!(
                "cannot connect to the daemon at {}: {e}",
                home.socket().display()
            ))),
        }
    }

    fn send(&mut self, req: Request) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Envelope {
            v: PROTOCOL_VERSION,
            id,
            req,
        })
        .map_err(|e| Error::Protocol(format!("cannot encode the request: {e}")))?;
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .map_err(|e| Error::Daemon(format!("the daemon closed the connection: {e}")))?;
        Ok(id)
    }

    /// The next line from the daemon; None at EOF.
    fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(l) = self.frames.pop_front() {
                return Ok(Some(l));
            }
            let n = match self.stream.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Daemon(format!(
                        "reading from the daemon failed: {e}"
                    )))
                }
            };
            let mut out = Vec::new();
            self.framer.push(&buf[..n], &mut out);
            for f in out {
                match f {
                    Frame::Line(l) => self.frames.push_back(l),
                    Frame::Oversized(n) => {
                        return Err(Error::Protocol(format!(
                            "the daemon sent a {n}-byte message, over the limit"
                        )))
                    }
                }
            }
        }
    }

    /// Sends a request and waits for its reply, read as `T`.
    fn call<T: DeserializeOwned>(&mut self, req: Request) -> Result<T> {
        let id = self.send(req)?;
        loop {
            let line = self.next_line()?.ok_or_else(|| {
                Error::Daemon(
                    "the daemon closed the connection before replying (did it crash? see pmr.log)"
                        .into(),
                )
            })?;
            let reply: Reply = serde_json::from_slice(&line)
                .map_err(|e| Error::Protocol(format!("unreadable reply from the daemon: {e}")))?;
            if reply.id != id {
                continue;
            }
            return reply.into_result();
        }
    }

    /// Sends a request and reads its reply as the type that request answers
    /// with (see `protocol::reply`).
    pub fn request_as<T: DeserializeOwned>(&mut self, req: Request) -> Result<T> {
        self.call(req)
    }

    /// Turns the connection into a stream.
    pub fn subscribe(mut self, events: bool, logs: bool) -> Result<Subscription> {
        self.request_as::<Subscribed>(Request::Subscribe { events, logs })?;
        Ok(Subscription { client: self })
    }

    /// Waits until the daemon closes the connection (it does when it exits).
    pub fn wait_closed(mut self) {
        while let Ok(Some(_)) = self.next_line() {}
    }
}

pub struct Subscription {
    client: Client,
}

impl Iterator for Subscription {
    type Item = Result<StreamItem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.client.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            // Replies to the subscribe request itself are not stream items.
            if let Ok(item) = serde_json::from_slice::<StreamItem>(&line) {
                return Some(Ok(item));
            }
        }
    }
}
