//! /healthz and /readyz for Kubernetes probes: one GET per connection,
//! answered from the supervisor's list.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::supervisor::{Status, Supervisor};

/// Every instance has a running process (restarts in progress fail it).
pub fn healthy(all: &[Status]) -> bool {
    !all.is_empty()
        && all
            .iter()
            .all(|s| matches!(s, Status::Online | Status::Launching | Status::Stopping))
}

/// Every instance has become ready (online; wait_ready apps sent 'ready').
pub fn ready(all: &[Status]) -> bool {
    !all.is_empty() && all.iter().all(|s| *s == Status::Online)
}

fn answer(path: &str, all: &[Status]) -> (u16, &'static str) {
    let ok = match path {
        "/healthz" => healthy(all),
        "/readyz" => ready(all),
        _ => return (404, "not found\n"),
    };
    if ok {
        (200, "ok\n")
    } else {
        (503, "not yet\n")
    }
}

pub async fn serve(sup: Supervisor, host: &str, port: u16) -> Result<()> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|e| Error::io(format!("cannot serve health checks on {host}:{port}"), e))?;
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let sup = sup.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    conn.read(&mut buf),
                )
                .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let statuses: Vec<Status> = sup.list().iter().map(|i| i.status).collect();
                let (code, body) = answer(path, &statuses);
                let reason = match code {
                    200 => "OK",
                    404 => "Not Found",
                    _ => "Service Unavailable",
                };
                let reply = format!(
                    "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn probes() {
        assert!(healthy(&[Online, Launching]));
        assert!(!ready(&[Online, Launching]));
        assert!(ready(&[Online]));
        assert!(!healthy(&[Online, Errored]));
        assert!(!healthy(&[WaitingRestart]));
        assert!(!healthy(&[]));
        assert_eq!(answer("/nope", &[Online]).0, 404);
        assert_eq!(answer("/readyz", &[Launching]).0, 503);
        assert_eq!(answer("/healthz", &[Launching]).0, 200);
    }
}
