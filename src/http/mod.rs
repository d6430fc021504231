//! pmr's one HTTP layer: axum over hyper. An `Endpoint` serves a router on
//! an address that a setting can move or turn off while the daemon runs
//! (the Prometheus endpoint, the dashboard), and `serve` serves one for the
//! life of the process (the runtime's health probes).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// What one client may cost an endpoint. A client on a socket pmr serves
/// must not be able to hold it: connections past the cap wait in the
/// backlog, and one that sends no request head in time is closed.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
}

/// A dashboard page holds one event stream; 64 leaves room for many tabs,
/// scrapers and probes while bounding the daemon's memory per endpoint.
const LIMITS: Limits = Limits {
    max_connections: 64,
    header_timeout: Duration::from_secs(10),
};

/// Tells long responses (the dashboard's event stream) that their endpoint
/// stopped or moved, so they end instead of holding a connection open.
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// Resolves once the endpoint stops serving.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

struct Serving {
    addr: SocketAddr,
    local: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Serving {
    fn end(self) {
        let _ = self.stop.send(true);
        // Aborting drops the listener at once: the port is free when the
        // setting's reply reaches the user.
        self.task.abort();
    }
}

/// What `Endpoint::apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Not serving, and not asked to.
    Off,
    /// Was serving; stopped.
    Stopped(SocketAddr),
    /// Already serving there; nothing changed.
    Unchanged(SocketAddr),
    /// Now serving on this local address (a new one, or moved).
    Serving(SocketAddr),
}

/// A router served on at most one address at a time.
#[derive(Default)]
pub struct Endpoint {
    serving: Mutex<Option<Serving>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let serving = self.serving.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = serving.take() {
            s.end();
        }
    }
}

impl Endpoint {
    /// Serves `make`'s router on `addr`, or stops serving for None. The new
    /// address is bound before the old one is let go, so an address that
    /// cannot be had leaves the endpoint where it was. Must run inside a
    /// tokio runtime.
    pub fn apply(
        &self,
        addr: Option<SocketAddr>,
        make: impl FnOnce(Stopping, SocketAddr) -> Router,
    ) -> std::io::Result<Applied> {
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        let Some(addr) = addr else {
            return Ok(match serving.take() {
                Some(old) => {
                    let at = old.local;
                    old.end();
                    Applied::Stopped(at)
                }
                None => Applied::Off,
            });
        };
        if let Some(cur) = serving.as_ref().filter(|cur| cur.addr == addr) {
            return Ok(Applied::Unchanged(cur.local));
        }
        let listener = match bind(addr) {
            Ok(l) => l,
            // The same port on another address (127.0.0.1 → 0.0.0.0) is
            // held by the old listener itself: let it go first, and take the
            // old address back if the new one still cannot be had.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let Some(old) = serving
                    .take_if(|cur| cur.local.port() == addr.port() && cur.local.ip() != addr.ip())
                else {
                    return Err(e);
                };
                let (was, was_local) = (old.addr, old.local);
                old.end();
                match tokio::task::block_in_place(|| bind_when_free(addr)) {
                    Ok(l) => l,
                    Err(e) => {
                        let back = tokio::task::block_in_place(|| bind_when_free(was_local))?;
                        start(&mut serving, was, back, make)?;
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        start(&mut serving, addr, listener, make)
    }

    /// Where it serves now.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        let serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        serving.as_ref().map(|s| s.local)
    }
}

fn start(
    serving: &mut Option<Serving>,
    addr: SocketAddr,
    listener: TcpListener,
    make: impl FnOnce(Stopping, SocketAddr) -> Router,
) -> std::io::Result<Applied> {
    let local = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let router = make(Stopping(stopped), local);
    let task = tokio::spawn(serve_loop(listener, router, LIMITS));
    if let Some(old) = serving.replace(Serving {
        addr,
        local,
        stop,
        task,
    }) {
        old.end();
    }
    Ok(Applied::Serving(local))
}

/// Binds an address a listener of ours has just let go: the aborted task
/// drops its socket when a worker next polls it, a moment later.
fn bind_when_free(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match bind(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// A listening socket on `addr`, taken synchronously so the caller learns
/// at once whether the address can be had.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

/// Serves `router` on `listener` in a task of its own, until the process ends.
pub fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(serve_loop(listener, router, LIMITS))
}

/// Accepts and serves HTTP/1 connections (with upgrades) within `limits`.
/// axum's own `serve` has neither a connection cap nor a header deadline.
async fn serve_loop(listener: TcpListener, router: Router, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: the client waits
                // in the backlog; try again shortly rather than spin.
                tracing::warn!("HTTP endpoint cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("HTTP connection ended: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn fetch(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn moves_and_stops_freeing_the_old_port() {
        let e = Endpoint::default();
        let app = |_: Stopping, _: SocketAddr| Router::new().route("/", get(|| async { "hi" }));
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let Applied::Serving(first) = e.apply(Some(any), app).unwrap() else {
            panic!("not serving")
        };
        assert!(fetch(first, "/").await.unwrap().ends_with("hi"));
        assert_eq!(e.apply(Some(any), app).unwrap(), Applied::Unchanged(first));
        // A taken address leaves it where it was.
        assert!(e.apply(Some(first), app).is_err());
        assert_eq!(e.local_addr(), Some(first));
        assert_eq!(e.apply(None, app).unwrap(), Applied::Stopped(first));
        tokio::task::yield_now().await;
        assert!(fetch(first, "/").await.is_err());
        assert_eq!(e.apply(None, app).unwrap(), Applied::Off);
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_and_the_cap_makes_others_wait() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            max_connections: 2,
            header_timeout: Duration::from_millis(300),
        };
        let router = Router::new().route("/", get(|| async { "hi" }));
        let task = tokio::spawn(serve_loop(listener, router, limits));
        // Two clients that never send a request hold both places...
        let mut silent = [
            tokio::net::TcpStream::connect(addr).await.unwrap(),
            tokio::net::TcpStream::connect(addr).await.unwrap(),
        ];
        // ...so a third waits in the backlog until the deadline frees them.
        let started = std::time::Instant::now();
        let third = tokio::spawn(async move { fetch(addr, "/").await });
        for s in &mut silent {
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
            assert!(read.is_ok(), "a silent client was not closed");
        }
        let body = third.await.unwrap().unwrap();
        assert!(body.ends_with("hi"), "{body}");
        assert!(started.elapsed() >= Duration::from_millis(250));
        task.abort();
    }
}
