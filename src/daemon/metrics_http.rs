//! The Prometheus endpoint: `GET /metrics` on `metrics.host:metrics.port`,
//! off while the port is unset, moved or stopped the moment the setting
//! changes. Served by pmr's HTTP layer (`crate::http`).

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::error::{Error, Result};
use crate::http::{Applied, Endpoint};
use crate::settings::MetricsSettings;
use crate::supervisor::{prometheus, Supervisor};

pub(super) struct MetricsEndpoint {
    sup: Supervisor,
    endpoint: Endpoint,
}

impl MetricsEndpoint {
    pub fn new(sup: Supervisor) -> Self {
        MetricsEndpoint {
            sup,
            endpoint: Endpoint::default(),
        }
    }

    /// Serves where the settings say (or stops serving). A port that cannot
    /// be had leaves the endpoint where it was and the error tells why. Must
    /// run inside the daemon's runtime.
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
        let sup = self.sup.clone();
        let applied = self
            .endpoint
            .apply(wanted, move |_, _| router(sup))
            .map_err(|e| {
                let addr = wanted.map(|a| a.to_string()).unwrap_or_default();
                Error::Config(format!("metrics.port: cannot serve metrics on {addr}: {e}"))
            })?;
        Ok(match applied {
            Applied::Off => None,
            Applied::Stopped(at) => {
                tracing::info!("metrics endpoint on {at} stopped");
                Some("the metrics endpoint is off".into())
            }
            Applied::Unchanged(at) => Some(url(at)),
            Applied::Serving(at) => {
                tracing::info!("serving Prometheus metrics on {}", url(at));
                Some(url(at))
            }
        })
    }
}

fn url(addr: SocketAddr) -> String {
    format!("Prometheus metrics at http://{addr}/metrics")
}

/// `/metrics`, a pointer to it at `/`, 404 elsewhere (GET and HEAD only:
/// axum answers other methods 405 with `Allow`).
fn router(sup: Supervisor) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let sup = sup.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
                        prometheus::render(&sup.list()),
                    )
                }
            }),
        )
        .route(
            "/",
            get(|| async { "pmr: Prometheus metrics are at /metrics\n" }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /metrics\n").into_response() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use crate::supervisor::SupervisorConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn raw(addr: SocketAddr, req: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.to_ascii_lowercase()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_metrics_and_little_else() {
        let t = tempfile::tempdir().unwrap();
        let sup = Supervisor::new(SupervisorConfig {
            log_dir: t.path().into(),
            node_preload: None,
            settings: Settings::default(),
        });
        let m = MetricsEndpoint::new(sup);
        let note = m
            .apply(&MetricsSettings {
                port: Some(0),
                ..MetricsSettings::default()
            })
            .unwrap()
            .unwrap();
        let addr = m.endpoint.local_addr().unwrap();
        assert_eq!(note, format!("Prometheus metrics at http://{addr}/metrics"));
        let close = "Host: x\r\nConnection: close\r\n\r\n";
        let ok = raw(addr, &format!("GET /metrics HTTP/1.1\r\n{close}")).await;
        assert!(ok.starts_with("http/1.1 200 ok\r\n"), "{ok}");
        assert!(ok.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(ok.contains("pmr_up"), "{ok}");
        let head = raw(addr, &format!("HEAD /metrics HTTP/1.1\r\n{close}")).await;
        assert!(
            head.starts_with("http/1.1 200") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(raw(addr, &format!("GET /nope HTTP/1.1\r\n{close}"))
            .await
            .starts_with("http/1.1 404"));
        let post = raw(addr, &format!("POST /metrics HTTP/1.1\r\n{close}")).await;
        assert!(
            post.starts_with("http/1.1 405") && post.contains("allow: get,head"),
            "{post}"
        );
        assert!(raw(addr, "garbage\r\n\r\n")
            .await
            .starts_with("http/1.1 400"));
        let off = m.apply(&MetricsSettings::default()).unwrap();
        assert_eq!(off.as_deref(), Some("the metrics endpoint is off"));
    }
}
