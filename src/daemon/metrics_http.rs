//! The Prometheus endpoint: `GET /metrics` on `metrics.host:metrics.port`,
//! off while the port is unset, moved or stopped the moment the setting
//! changes. A scraper sends one small request per connection, so a minimal
//! HTTP/1.1 responder is all this needs: it reads the request head, answers,
//! and closes.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::settings::MetricsSettings;
use crate::supervisor::{prometheus, Supervisor};

/// Requests larger than this are refused (a scraper's is a few hundred bytes).
const MAX_HEAD: usize = 8 * 1024;
/// Connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 32;
/// A client must have sent its request and read the answer within this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

struct Serving {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

pub(super) struct MetricsEndpoint {
    sup: Supervisor,
    serving: Mutex<Option<Serving>>,
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        let serving = self.serving.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = serving.take() {
            s.task.abort();
        }
    }
}

impl MetricsEndpoint {
    pub fn new(sup: Supervisor) -> Self {
        MetricsEndpoint {
            sup,
            serving: Mutex::new(None),
        }
    }

    /// Serves where the settings say (or stops serving). The new address is
    /// bound before the old one is let go, so a port that cannot be had
    /// leaves the endpoint where it was and the error tells why. Must run
    /// inside the daemon's runtime.
    pub fn apply(&self, s: &MetricsSettings) -> Result<Option<String>> {
        let wanted = match s.port {
            None => None,
            Some(port) => {
                let ip: IpAddr = s.host.parse().map_err(|_| {
                    Error::Config(format!("metrics.host: '{}' is not an IP address", s.host))
                })?;
                Some(SocketAddr::new(ip, port))
            }
        };
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        let Some(addr) = wanted else {
            if let Some(old) = serving.take() {
                old.task.abort();
                tracing::info!("metrics endpoint on {} stopped", old.addr);
                return Ok(Some("the metrics endpoint is off".into()));
            }
            return Ok(None);
        };
        if let Some(cur) = serving.as_ref().filter(|cur| cur.addr == addr) {
            return Ok(Some(url(cur.addr)));
        }
        let cannot = |e: std::io::Error| {
            Error::Config(format!("metrics.port: cannot serve metrics on {addr}: {e}"))
        };
        let std = std::net::TcpListener::bind(addr).map_err(cannot)?;
        std.set_nonblocking(true).map_err(cannot)?;
        let listener = TcpListener::from_std(std).map_err(cannot)?;
        let local = listener.local_addr().map_err(cannot)?;
        let task = tokio::spawn(serve(listener, self.sup.clone()));
        if let Some(old) = serving.replace(Serving { addr, task }) {
            old.task.abort();
        }
        tracing::info!("serving Prometheus metrics on {}", url(local));
        Ok(Some(url(local)))
    }
}

fn url(addr: SocketAddr) -> String {
    format!("Prometheus metrics at http://{addr}/metrics")
}

async fn serve(listener: TcpListener, sup: Supervisor) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let sup = sup.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &sup)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, sup: &Supervisor) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head_complete(&head) || head.len() > MAX_HEAD {
            break;
        }
    }
    let reply = respond(&head, || prometheus::render(&sup.list()));
    stream.write_all(&reply).await?;
    stream.shutdown().await
}

fn head_complete(b: &[u8]) -> bool {
    b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n")
}

/// The whole HTTP response to a request head.
fn respond(head: &[u8], metrics: impl FnOnce() -> String) -> Vec<u8> {
    if !head_complete(head) {
        return response(
            "431 Request Header Fields Too Large",
            "text/plain",
            "request too large\n",
            true,
            &[],
        );
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return response("400 Bad Request", "text/plain", "bad request\n", true, &[]);
    };
    if !version.starts_with("HTTP/1.") {
        return response("400 Bad Request", "text/plain", "bad request\n", true, &[]);
    }
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        return response(
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n",
            true,
            &[("Allow", "GET, HEAD")],
        );
    }
    match target.split('?').next().unwrap_or_default() {
        "/metrics" => response(
            "200 OK",
            prometheus::CONTENT_TYPE,
            &metrics(),
            with_body,
            &[],
        ),
        "/" => response(
            "200 OK",
            "text/plain",
            "pmr: Prometheus metrics are at /metrics\n",
            with_body,
            &[],
        ),
        _ => response(
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n",
            with_body,
            &[],
        ),
    }
}

fn response(
    status: &str,
    content_type: &str,
    body: &str,
    with_body: bool,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if with_body {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(head: &str) -> String {
        String::from_utf8(respond(head.as_bytes(), || "pmr_up 1\n".into())).unwrap()
    }

    #[test]
    fn answers_metrics_and_little_else() {
        let ok = text("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(ok.contains("Content-Length: 9\r\n"));
        assert!(ok.ends_with("\r\n\r\npmr_up 1\n"));
        assert!(text("GET /metrics?x=1 HTTP/1.0\n\n").starts_with("HTTP/1.1 200 OK"));
        let head = text("HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.contains("Content-Length: 9\r\n") && head.ends_with("\r\n\r\n"));
        assert!(text("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = text("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD\r\n"));
        assert!(text("garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(text("GET /metrics SPDY/3\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(text("GET /metrics HTTP/1.1\r\nHost: x").starts_with("HTTP/1.1 431"));
    }
}
