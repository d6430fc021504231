//! The web dashboard (`pmr dashboard`): a page served by the daemon (or
//! `pmr-runtime`) that shows every instance live, charts its history, tails
//! the logs and runs actions. Off until `dashboard.port` is set: then a
//! recorder samples every instance each second into bounded rings
//! (`history`), and the page is served on pmr's HTTP layer behind the
//! token (`auth`). This file holds the endpoint that follows the settings
//! and the recorder; `routes` and `stream` answer the requests.

mod assets;
pub mod auth;
pub mod history;
mod routes;
mod stream;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::http::{Applied, Endpoint};
use crate::model::{EventKind, InstanceInfo};
use crate::settings::DashboardSettings;
use crate::supervisor::Supervisor;
use history::Histories;

/// How often every instance's figures are recorded (the fine ring's step).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// The pipes may still hold a crashed process's last lines when its exit
/// is seen: the crash record takes the lines this much later.
const CRASH_LINES_AFTER: Duration = Duration::from_millis(200);

/// Where the token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// The daemon's: a file in its home, kept across restarts.
    File(PathBuf),
    /// Given by the caller (the runtime: from its environment, or made up at start).
    Given(String),
}

/// Every instance's figures at one instant: what the page's live rows and
/// sparklines take each second.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// Milliseconds since the epoch.
    pub time: u64,
    pub figures: Vec<Figure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub id: u32,
    pub cpu: f64,
    pub memory: u64,
    pub heap: Option<u64>,
    pub lag: Option<f64>,
    pub uptime_ms: u64,
}

impl Tick {
    fn of(all: &[InstanceInfo], time: u64) -> Tick {
        let figures = all
            .iter()
            .filter(|i| i.pid.is_some())
            .map(|i| Figure {
                id: i.id,
                cpu: (i.cpu * 10.0).round() / 10.0,
                memory: i.memory,
                heap: i.node.map(|n| n.heap_used),
                lag: i.node.map(|n| (n.event_loop_lag_ms * 10.0).round() / 10.0),
                uptime_ms: i.uptime_ms,
            })
            .collect();
        Tick { time, figures }
    }
}

/// What a dashboard that is on holds: the recorder and its history.
pub(crate) struct Core {
    pub sup: Supervisor,
    pub token: String,
    pub histories: Arc<Mutex<Histories>>,
    pub ticks: broadcast::Sender<Arc<Tick>>,
    recorder: JoinHandle<()>,
}

impl Drop for Core {
    fn drop(&mut self) {
        self.recorder.abort();
    }
}

impl Core {
    fn start(sup: Supervisor, token: String) -> Core {
        let histories = Arc::new(Mutex::new(Histories::default()));
        let (ticks, _) = broadcast::channel(8);
        let recorder = tokio::spawn(record(sup.clone(), histories.clone(), ticks.clone()));
        Core {
            sup,
            token,
            histories,
            ticks,
            recorder,
        }
    }

    pub fn histories(&self) -> std::sync::MutexGuard<'_, Histories> {
        self.histories.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Samples every instance each second into the rings (and tells the open
/// pages), and keeps the lines before each crash.
async fn record(
    sup: Supervisor,
    histories: Arc<Mutex<Histories>>,
    ticks: broadcast::Sender<Arc<Tick>>,
) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut events = sup.subscribe_events();
    loop {
        tokio::select! {
            _ = every.tick() => {
                let all = sup.list();
                let now = now_ms();
                let t = u32::try_from(now / 1000).unwrap_or(u32::MAX);
                histories.lock().unwrap_or_else(|e| e.into_inner()).record(&all, t);
                if ticks.receiver_count() > 0 {
                    let _ = ticks.send(Arc::new(Tick::of(&all, now)));
                }
            }
            ev = events.recv() => match ev {
                Ok(e) if matches!(e.kind, EventKind::Exit { expected: false, .. }) => {
                    let (sup, histories) = (sup.clone(), histories.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(CRASH_LINES_AFTER).await;
                        let lines = sup
                            .recent_logs(&[e.id], history::CRASH_LINES, true, true)
                            .lines;
                        histories.lock().unwrap_or_else(|e| e.into_inner()).crashed(e, lines);
                    });
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// The dashboard of a daemon or runtime: serves where the settings say,
/// records while it is on, and costs nothing while it is off.
pub struct DashboardEndpoint {
    sup: Supervisor,
    token: TokenSource,
    endpoint: Endpoint,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    applied: Option<DashboardSettings>,
    core: Option<Arc<Core>>,
}

impl DashboardEndpoint {
    pub fn new(sup: Supervisor, token: TokenSource) -> Self {
        DashboardEndpoint {
            sup,
            token,
            endpoint: Endpoint::default(),
            state: Mutex::new(State::default()),
        }
    }

    fn token(&self) -> Result<String> {
        match &self.token {
            TokenSource::File(p) => auth::load_or_create(p),
            TokenSource::Given(t) => Ok(t.clone()),
        }
    }

    /// Serves where the settings say, or stops. Says what changed (None
    /// when nothing did). Must run inside a tokio runtime.
    pub fn apply(&self, s: &DashboardSettings) -> Result<Option<String>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.applied.as_ref() == Some(s) {
            return Ok(None);
        }
        let ip: IpAddr = s.host.parse().map_err(|_| {
            Error::Config(format!("dashboard.host: '{}' is not an IP address", s.host))
        })?;
        let Some(port) = s.port else {
            let was = self
                .endpoint
                .apply(None, |_, _| axum::Router::new())
                .map_err(|e| Error::io("cannot stop the dashboard", e))?;
            st.core = None;
            st.applied = Some(s.clone());
            return Ok(match was {
                Applied::Stopped(at) => {
                    tracing::info!("dashboard on {at} stopped");
                    Some("the dashboard is off".into())
                }
                _ => None,
            });
        };
        let addr = SocketAddr::new(ip, port);
        let core = match &st.core {
            Some(c) => c.clone(),
            None => Arc::new(Core::start(self.sup.clone(), self.token()?)),
        };
        let for_routes = core.clone();
        let applied = self
            .endpoint
            .apply(Some(addr), move |stopping, local| {
                routes::router(for_routes, local, stopping)
            })
            .map_err(|e| {
                Error::Config(format!(
                    "dashboard.port: cannot serve the dashboard on {addr}: {e}"
                ))
            })?;
        st.core = Some(core);
        st.applied = Some(s.clone());
        let at = match applied {
            Applied::Serving(at) | Applied::Unchanged(at) => at,
            Applied::Off | Applied::Stopped(_) => return Ok(None),
        };
        tracing::info!("serving the dashboard on http://{at}/");
        let mut note = format!("dashboard at http://{at}/ (pmr dashboard opens it)");
        if let Some(w) = exposure_warning(at) {
            tracing::warn!("{w}");
            note = format!("{note}\n{w}");
        }
        Ok(Some(note))
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr()
    }
}

/// What binding beyond loopback exposes, said once when it is set.
pub fn exposure_warning(at: SocketAddr) -> Option<String> {
    if at.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "warning: the dashboard on {at} is reachable from other machines: anyone who can reach it can try the token, and plain HTTP carries the token, the cookie, your apps' logs and their actions unencrypted; prefer ssh -L or a reverse proxy with TLS (README: Dashboard)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_address_beyond_loopback_warns() {
        assert!(exposure_warning("127.0.0.1:9615".parse().unwrap()).is_none());
        assert!(exposure_warning("[::1]:9615".parse().unwrap()).is_none());
        let w = exposure_warning("0.0.0.0:9615".parse().unwrap()).unwrap();
        assert!(
            w.contains("reachable from other machines") && w.contains("ssh -L"),
            "{w}"
        );
    }
}
