//! /healthz and /readyz for Kubernetes probes, answered from the
//! supervisor's list over pmr's HTTP layer (`crate::http`).

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::spec::ExecMode;
use crate::supervisor::{Status, Supervisor};

/// Every instance has a running process (restarts in progress fail it).
pub fn healthy(all: &[Status]) -> bool {
    !all.is_empty()
        && all
            .iter()
            .all(|s| matches!(s, Status::Online | Status::Launching | Status::Stopping))
}

/// One instance as the probes see it.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub status: Status,
    /// A cluster worker, which serves once it listens.
    pub cluster: bool,
    pub listening: bool,
    /// Online long enough that a worker that would listen would have.
    pub past_listen_timeout: bool,
    /// The app's health check passed (or it has none): `crate::health::ready`.
    pub health_ready: bool,
}

/// Every instance has become ready: online (wait_ready apps sent 'ready'),
/// and cluster workers listening — unless a worker has been up longer than
/// listen_timeout without listening, i.e. it never will (a queue consumer).
pub fn ready(all: &[Probe]) -> bool {
    !all.is_empty()
        && all.iter().all(|p| {
            p.status == Status::Online
                && p.health_ready
                && (!p.cluster || p.listening || p.past_listen_timeout)
        })
}

fn answer(path: &str, all: &[Probe]) -> (u16, &'static str) {
    let statuses: Vec<Status> = all.iter().map(|p| p.status).collect();
    let ok = match path {
        "/healthz" => healthy(&statuses),
        "/readyz" => ready(all),
        _ => return (404, "not found\n"),
    };
    if ok {
        (200, "ok\n")
    } else {
        (503, "not yet\n")
    }
}

fn probes(sup: &Supervisor) -> Vec<Probe> {
    let specs = sup.saved_apps();
    sup.list()
        .into_iter()
        .map(|i| {
            let timeout = specs
                .iter()
                .find(|a| a.spec.name == i.name)
                .map(|a| a.spec.listen_timeout_ms)
                .unwrap_or(crate::spec::DEFAULT_LISTEN_TIMEOUT_MS);
            Probe {
                status: i.status,
                cluster: i.mode == ExecMode::Cluster,
                listening: !i.listening.is_empty(),
                past_listen_timeout: i.uptime_ms > timeout,
                health_ready: crate::health::ready(&i),
            }
        })
        .collect()
}

/// `/healthz` and `/readyz` on pmr's HTTP layer; 404 elsewhere.
pub fn router(sup: Supervisor) -> Router {
    let probe = |path: &'static str, sup: Supervisor| {
        get(move || {
            let sup = sup.clone();
            async move {
                let (code, body) = answer(path, &probes(&sup));
                (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body)
            }
        })
    };
    Router::new()
        .route("/healthz", probe("/healthz", sup.clone()))
        .route("/readyz", probe("/readyz", sup))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
}

pub async fn serve(sup: Supervisor, host: &str, port: u16) -> Result<()> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|e| Error::io(format!("cannot serve health checks on {host}:{port}"), e))?;
    crate::http::serve(listener, router(sup));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn p(status: Status, cluster: bool, listening: bool, late: bool) -> Probe {
        Probe {
            status,
            cluster,
            listening,
            past_listen_timeout: late,
            health_ready: true,
        }
    }

    #[test]
    fn probes() {
        assert!(healthy(&[Online, Launching]));
        assert!(!healthy(&[Online, Errored]));
        assert!(!healthy(&[WaitingRestart]));
        assert!(!healthy(&[]));
        assert!(ready(&[p(Online, false, false, false)]));
        assert!(
            !ready(&[p(Online, true, false, false)]),
            "a worker not listening yet"
        );
        assert!(ready(&[p(Online, true, true, false)]));
        assert!(
            ready(&[p(Online, true, false, true)]),
            "a worker that never listens"
        );
        assert!(!ready(&[p(Launching, false, false, true)]));
        assert_eq!(answer("/nope", &[]).0, 404);
        assert_eq!(
            answer("/healthz", &[p(Launching, true, false, false)]).0,
            200
        );
        assert_eq!(
            answer("/readyz", &[p(Launching, true, false, false)]).0,
            503
        );
    }
}
