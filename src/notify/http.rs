//! The one HTTP client of the daemon, for webhooks and HTTP health checks:
//! HTTP/1.1 over hyper, https through rustls (ring, Mozilla's roots built
//! in). Every request has a deadline; answers are read to a bounded size.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as Legacy;
use hyper_util::rt::TokioExecutor;

/// What is kept of an answer's body: enough to show an error message.
const BODY_LIMIT: usize = 64 << 10;
const BODY_SHOWN: usize = 200;

/// A URL that was checked to be http(s) with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(pub Uri);

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        crate::spec::notify::check_url(s).map(Target)
    }
}

/// An HTTP answer: its status and the start of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn describe(&self) -> String {
        if self.body.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {}", self.status, self.body)
        }
    }
}

#[derive(Clone)]
pub struct Client {
    inner: Legacy<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// The daemon's one client (its connection pool and TLS roots are built once, on first use).
    pub fn shared() -> Client {
        static ONE: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
        ONE.get_or_init(Client::new).clone()
    }

    pub fn new() -> Client {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = Legacy::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Client { inner }
    }

    /// `GET url` with `Connection: close` (a check must not pin a
    /// connection inside the app it checks). Plain HTTP (a health check,
    /// every few seconds per instance) goes over a connection of its own,
    /// driven in the caller's task: the pool, its connection task and the
    /// wake-ups between the two cost the daemon more than the request.
    pub async fn get(&self, url: &Uri, timeout: Duration) -> Result<Answer, String> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(url.clone())
            .header("user-agent", concat!("pmr/", env!("CARGO_PKG_VERSION")))
            .header("connection", "close")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        if url.scheme_str() == Some("http") {
            return deadline(timeout, one_shot(req)).await;
        }
        self.send(req, timeout).await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(
        &self,
        url: &Uri,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .header("content-type", "application/json")
            .header("user-agent", concat!("pmr/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.send(req, timeout).await
    }

    async fn send(&self, req: Request<Full<Bytes>>, timeout: Duration) -> Result<Answer, String> {
        deadline(timeout, async {
            let res = self.inner.request(req).await.map_err(|e| error_text(&e))?;
            read_answer(res).await
        })
        .await
    }
}

async fn deadline(
    timeout: Duration,
    exchange: impl std::future::Future<Output = Result<Answer, String>>,
) -> Result<Answer, String> {
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// One request over a connection of its own to the URL's host (plain
/// HTTP), the connection driven beside the request until the answer is in.
async fn one_shot(mut req: Request<Full<Bytes>>) -> Result<Answer, String> {
    let uri = req.uri().clone();
    let host = uri.host().ok_or_else(|| format!("'{uri}' has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    if let Ok(v) = hyper::header::HeaderValue::from_str(&authority) {
        req.headers_mut().insert(hyper::header::HOST, v);
    }
    // Sent in origin form (`/path`), as to any HTTP/1.1 server.
    *req.uri_mut() = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|e| format!("'{uri}': {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let ask = async {
        let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
        read_answer(res).await
    };
    let mut ask = std::pin::pin!(ask);
    let mut conn = std::pin::pin!(conn);
    let mut conn_ended = false;
    loop {
        tokio::select! {
            answer = &mut ask => return answer,
            ended = &mut conn, if !conn_ended => {
                conn_ended = true;
                ended.map_err(|e| e.to_string())?;
            }
        }
    }
}

/// The status and the start of the body, read to a bounded size.
async fn read_answer(res: hyper::Response<hyper::body::Incoming>) -> Result<Answer, String> {
    let status = res.status().as_u16();
    let bytes = Limited::new(res.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| format!("HTTP {status}, then the body failed: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let mut body: String = text.trim().chars().take(BODY_SHOWN).collect();
    if text.trim().chars().count() > BODY_SHOWN {
        body.push('…');
    }
    Ok(Answer { status, body })
}

/// hyper-util's errors say "client error (Connect)"; the cause below says why.
fn error_text(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(Target::parse("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(Target::parse("http://127.0.0.1:9000/hook").is_ok());
        assert!(Target::parse("hooks.slack.com/x").is_err());
        assert!(Target::parse("ftp://x/y")
            .unwrap_err()
            .contains("http or https"));
        assert!(Target::parse("not a url").is_err());
    }

    #[tokio::test]
    async fn get_post_and_a_refused_port() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy")
                    .await
                    .unwrap();
            }
        });
        let c = Client::new();
        let url: Uri = format!("http://127.0.0.1:{port}/x").parse().unwrap();
        let a = c.get(&url, Duration::from_secs(2)).await.unwrap();
        assert_eq!(
            a,
            Answer {
                status: 503,
                body: "busy".into()
            }
        );
        assert!(!a.ok());
        let a = c
            .post_json(&url, b"{}".to_vec(), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(a.status, 503);
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = free.local_addr().unwrap().port();
        drop(free);
        let url: Uri = format!("http://127.0.0.1:{dead}/").parse().unwrap();
        let e = c.get(&url, Duration::from_secs(2)).await.unwrap_err();
        assert!(e.to_lowercase().contains("refused"), "{e}");
    }
}
