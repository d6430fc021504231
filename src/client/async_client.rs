//! An asynchronous client of the daemon for the JS API: requests from many
//! callers share one connection (replies are matched by id), and the same
//! connection can carry a subscription to events and log lines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::launch::{connect_or_start, Launcher};
use crate::error::{Error, Result};
use crate::paths::Home;
use crate::protocol::{
    Envelope, Frame, LineFramer, Reply, Request, StreamItem, Subscribed, MAX_REPLY_BYTES,
    PROTOCOL_VERSION,
};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;
type Items = Arc<Mutex<Option<mpsc::UnboundedSender<StreamItem>>>>;

pub struct AsyncClient {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    items: Items,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
}

impl Drop for AsyncClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl AsyncClient {
    /// Connects to the home's daemon, starting it first if `launcher` is given.
    pub async fn connect(home: &Home, launcher: Option<Launcher>) -> Result<AsyncClient> {
        let path = home.socket();
        if let Some(l) = launcher {
            let home = home.clone();
            // The launcher blocks while the daemon starts: not on a runtime thread.
            tokio::task::spawn_blocking(move || connect_or_start(&home, &l).map(drop))
                .await
                .map_err(|e| Error::Daemon(format!("starting the daemon failed: {e}")))??;
        }
        let stream = UnixStream::connect(&path).await.map_err(|e| {
            Error::Daemon(format!(
                "cannot connect to the daemon at {}: {e}",
                path.display()
            ))
        })?;
        let (rd, wr) = stream.into_split();
        let pending: Pending = Arc::default();
        let items: Items = Arc::default();
        let reader = tokio::spawn(read_loop(rd, pending.clone(), items.clone()));
        Ok(AsyncClient {
            writer: tokio::sync::Mutex::new(wr),
            pending,
            items,
            next_id: AtomicU64::new(1),
            reader,
        })
    }

    /// Sends a request and reads its reply as the type that request answers
    /// with (see `protocol::reply`); `serde_json::Value` passes it on as is.
    pub async fn request<T: DeserializeOwned>(&self, req: Request) -> Result<T> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut line = serde_json::to_vec(&Envelope {
            v: PROTOCOL_VERSION,
            id,
            req,
        })
        .map_err(|e| Error::Protocol(format!("cannot encode the request: {e}")))?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let written = self.writer.lock().await.write_all(&line).await;
        if let Err(e) = written {
            lock(&self.pending).remove(&id);
            return Err(Error::Daemon(format!(
                "the daemon closed the connection: {e}"
            )));
        }
        let reply = rx.await.map_err(|_| {
            Error::Daemon("the daemon closed the connection before replying".into())
        })?;
        reply.into_result()
    }

    /// Events and log lines from now on; one subscription per client.
    pub async fn subscribe(&self) -> Result<mpsc::UnboundedReceiver<StreamItem>> {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&self.items) = Some(tx);
        self.request::<Subscribed>(Request::Subscribe {
            events: true,
            logs: true,
        })
        .await?;
        Ok(rx)
    }

    /// Ends the subscription and the connection.
    pub async fn close(&self) {
        lock(&self.items).take();
        self.reader.abort();
        let _ = self.writer.lock().await.shutdown().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn read_loop(mut rd: tokio::net::unix::OwnedReadHalf, pending: Pending, items: Items) {
    let mut framer = LineFramer::new(MAX_REPLY_BYTES);
    let mut buf = vec![0u8; 64 * 1024];
    let mut frames = Vec::new();
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n], &mut frames);
        for f in frames.drain(..) {
            let Frame::Line(line) = f else { continue };
            if let Ok(reply) = serde_json::from_slice::<Reply>(&line) {
                if let Some(tx) = lock(&pending).remove(&reply.id) {
                    let _ = tx.send(reply);
                }
                continue;
            }
            if let Ok(item) = serde_json::from_slice::<StreamItem>(&line) {
                if let Some(tx) = lock(&items).as_ref() {
                    let _ = tx.send(item);
                }
            }
        }
    }
    // Waiting callers learn that the daemon went away.
    lock(&pending).clear();
    lock(&items).take();
}
