//! /healthz and /readyz for Kubernetes probes: one GET per connection,
//! answered from the supervisor's list.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::supervisor::{InstanceInfo, Status, Supervisor};

/// Every instance has a running process (restarts in progress fail it).
pub fn healthy(all: &[InstanceInfo]) -> bool {
    !all.is_empty()
        && all.iter().all(|i| {
            matches!(
                i.status,
                Status::Online | Status::Launching | Status::Stopping
            )
        })
}

/// Every instance has become ready (online; wait_ready apps sent 'ready').
pub fn ready(all: &[InstanceInfo]) -> bool {
    !all.is_empty() && all.iter().all(|i| i.status == Status::Online)
}

fn answer(path: &str, all: &[InstanceInfo]) -> (u16, &'static str) {
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
                let (code, body) = answer(path, &sup.list());
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

    fn row(status: Status) -> InstanceInfo {
        serde_json::from_value(serde_json::json!({
            "name": "a", "namespace": "default", "id": 0, "instance": 0, "pid": 1,
            "status": status, "restarts": 0,
            "restart_reasons": {"crash": 0, "memory": 0, "watch": 0, "cron": 0, "user": 0},
            "unstable_restarts": 0, "uptime_ms": 0, "memory": 0, "cpu": 0.0, "mode": "fork",
            "started_at": null, "created_at": 0, "last_exit": null, "errored_reason": null,
            "last_error": null, "listening": [], "logs": {"out": "/o", "err": "/e", "combined": null},
            "log_dropped_bytes": 0
        }))
        .unwrap()
    }

    #[test]
    fn probes() {
        let up = [row(Status::Online), row(Status::Launching)];
        assert!(healthy(&up));
        assert!(!ready(&up));
        assert!(ready(&[row(Status::Online)]));
        assert!(!healthy(&[row(Status::Online), row(Status::Errored)]));
        assert!(!healthy(&[row(Status::WaitingRestart)]));
        assert!(!healthy(&[]));
        assert_eq!(answer("/nope", &up).0, 404);
        assert_eq!(answer("/readyz", &up).0, 503);
    }
}
