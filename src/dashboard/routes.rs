//! The dashboard's HTTP routes: the page and its assets, the JSON the page
//! reads (one instance's history, recent logs), the actions it runs, and
//! the guard in front of all of them (Host, token, cookie, Origin).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth;
use super::history::{Crash, Series};
use super::{assets, stream, Core};
use crate::error::Error;
use crate::http::Stopping;
use crate::logs::LogLine;
use crate::model::{Event, InstanceInfo, ScaleTo};

/// What every request of one served dashboard shares.
pub(super) struct Site {
    pub core: Arc<Core>,
    /// The address it is served on (the Host check and the cookie's name).
    pub local: SocketAddr,
    pub stopping: Stopping,
}

pub(super) type Shared = Arc<Site>;

pub(super) fn router(core: Arc<Core>, local: SocketAddr, stopping: Stopping) -> Router {
    let site = Arc::new(Site {
        core,
        local,
        stopping,
    });
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/events", get(stream::events))
        .route("/api/instances/{id}", get(instance))
        .route("/api/logs", get(logs))
        .route("/api/action", post(action))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(middleware::from_fn_with_state(site.clone(), guard))
        .with_state(site)
}

fn refuse(code: StatusCode, why: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Host first (a page on another name never gets an answer, even a 401),
/// then the token: in the URL it is swapped for the cookie, then the
/// cookie or a bearer token; actions also need a matching Origin.
async fn guard(State(site): State<Shared>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let host = header_str(h, header::HOST).unwrap_or_default().to_string();
    if !auth::host_allowed(Some(&host), site.local) {
        return refuse(
            StatusCode::FORBIDDEN,
            "pmr dashboard: wrong Host header (open the address pmr dashboard prints)",
        );
    }
    let token = &site.core.token;
    if let Some(given) = req.uri().query().and_then(auth::query_token) {
        if !auth::same_secret(given, token) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "pmr dashboard: bad token (run pmr dashboard for the current link)",
            );
        }
        let secure =
            header_str(h, header::HeaderName::from_static("x-forwarded-proto")) == Some("https");
        let cookie = auth::session_cookie(site.local.port(), token, secure);
        // The token leaves the address bar (and the history) at once.
        return (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, req.uri().path().to_string()),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response();
    }
    let name = auth::cookie_name(site.local.port());
    let by_cookie = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| auth::cookie(c, &name))
        .any(|c| auth::same_secret(c, token));
    let by_bearer = header_str(h, header::AUTHORIZATION)
        .and_then(auth::bearer)
        .is_some_and(|b| auth::same_secret(b, token));
    if !by_cookie && !by_bearer {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "pmr dashboard: open the link pmr dashboard prints (it carries the token)",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let origin = header_str(h, header::ORIGIN);
        let forwarded = header_str(h, header::HeaderName::from_static("x-forwarded-host"));
        if !auth::origin_allowed(origin, &host, forwarded, by_bearer) {
            return refuse(
                StatusCode::FORBIDDEN,
                "pmr dashboard: cross-origin request refused",
            );
        }
    }
    next.run(req).await
}

/// An error as the page shows it.
#[derive(Serialize)]
struct Failure {
    error: String,
    code: &'static str,
}

fn failure(e: &Error) -> Response {
    let status = match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Config(_) | Error::Protocol(_) => StatusCode::BAD_REQUEST,
        Error::Busy(_) | Error::AlreadyRunning(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        Json(Failure {
            error: e.to_string(),
            code: e.code(),
        }),
    )
        .into_response()
}

/// An event and the line `pmr logs` shows for it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Happened {
    #[serde(flatten)]
    pub event: Event,
    pub text: String,
}

impl From<Event> for Happened {
    fn from(event: Event) -> Self {
        let text = event.describe();
        Happened { event, text }
    }
}

/// One instance's page.
#[derive(Serialize)]
struct Detail {
    info: InstanceInfo,
    events: Vec<Happened>,
    /// The last 15 minutes at 1 s.
    fine: Series,
    /// The last 24 hours at 1 min.
    coarse: Series,
    crashes: Vec<Crash>,
}

async fn instance(State(site): State<Shared>, Path(id): Path<u32>) -> Response {
    let core = &site.core;
    let described = match core.sup.describe(&[id.to_string()]) {
        Ok(d) => d,
        Err(e) => return failure(&e),
    };
    let Some(d) = described.into_iter().find(|d| d.info.id == id) else {
        return failure(&Error::NotFound(format!("no instance with id {id}")));
    };
    let h = core.histories();
    let rings = h.get(id);
    Json(Detail {
        info: d.info,
        events: d.history.into_iter().map(Happened::from).collect(),
        fine: rings.map(|r| r.fine()).unwrap_or_default(),
        coarse: rings.map(|r| r.coarse()).unwrap_or_default(),
        crashes: rings.map(|r| r.crashes()).unwrap_or_default(),
    })
    .into_response()
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default = "default_lines")]
    lines: usize,
}

fn default_lines() -> usize {
    200
}

#[derive(Serialize)]
struct Recent {
    lines: Vec<LogLine>,
    events: Vec<Happened>,
}

/// What the log view starts from: every instance's last lines (what the
/// daemon keeps), then the event stream carries new ones.
async fn logs(State(site): State<Shared>, Query(q): Query<LogsQuery>) -> Json<Recent> {
    let sup = &site.core.sup;
    let ids: Vec<u32> = sup.list().iter().map(|i| i.id).collect();
    let r = sup.recent_logs(&ids, q.lines.min(2000), true, true);
    Json(Recent {
        lines: r.lines,
        events: r.events.into_iter().map(Happened::from).collect(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verb {
    Reload,
    Restart,
    Stop,
    Start,
    Scale,
    Delete,
    Reset,
    Flush,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    action: Verb,
    /// An app name or an instance id, as the CLI takes them.
    target: String,
    /// For scale: `4`, `+1`, `-1`.
    #[serde(default)]
    to: Option<String>,
}

#[derive(Serialize)]
struct Done {
    ok: bool,
    notices: Vec<String>,
    instances: Vec<InstanceInfo>,
}

/// Runs one action to its end; its steps reach the page as events meanwhile.
async fn action(State(site): State<Shared>, Json(a): Json<ActionRequest>) -> Response {
    let sup = &site.core.sup;
    let targets = vec![a.target.clone()];
    tracing::info!("dashboard: {:?} {}", a.action, a.target);
    let report = match a.action {
        Verb::Reload => sup.reload(&targets, None).await,
        Verb::Restart => sup.restart(&targets, None).await,
        Verb::Stop => sup.stop(&targets).await,
        Verb::Start => sup.start_existing(&targets).await,
        Verb::Delete => sup.delete(&targets).await,
        Verb::Reset => sup.reset(&targets).await,
        Verb::Scale => {
            let to = a.to.as_deref().unwrap_or_default();
            match ScaleTo::parse(to) {
                Ok(to) => sup.scale(&a.target, to).await,
                Err(e) => Err(Error::Config(format!("scale: {e}"))),
            }
        }
        Verb::Flush => sup.flush(&targets).map(|files| crate::model::Report {
            instances: Vec::new(),
            notices: files
                .iter()
                .map(|f| format!("emptied {}", f.display()))
                .collect(),
            ..Default::default()
        }),
    };
    // An action on several apps where one failed is shown as failed.
    match report.and_then(crate::model::Report::into_result) {
        Ok(r) => Json(Done {
            ok: true,
            notices: r.notices,
            instances: r.instances,
        })
        .into_response(),
        Err(e) => failure(&e),
    }
}
