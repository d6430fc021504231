//! What an app or the daemon says about alerts, as written down and checked
//! (`notify: {...}` in an ecosystem file, `pmr set notify.*`): the alert
//! kinds, receiver URLs, events and the rate-limit window. Delivering them
//! is `crate::notify`'s job.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::suggest::closest;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The process exited without being asked to.
    Crash,
    /// Too many unstable restarts in a row: pmr stopped restarting it.
    Errored,
    /// Replaced for staying over `max_memory_restart`.
    Memory,
    /// Replaced for failing its health check or blocking its event loop.
    Health,
    /// A reload (or a replacement through it) failed; the old process serves on.
    ReloadFailed,
    /// The pmr daemon started again after one that did not exit cleanly.
    Daemon,
    /// `pmr notify test`.
    Test,
}

/// Every kind a user can ask for, by the name they write.
pub const EVENT_NAMES: &[&str] = &[
    "crash",
    "errored",
    "memory",
    "health",
    "reload_failed",
    "daemon",
];

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Crash => "crash",
            AlertKind::Errored => "errored",
            AlertKind::Memory => "memory",
            AlertKind::Health => "health",
            AlertKind::ReloadFailed => "reload_failed",
            AlertKind::Daemon => "daemon",
            AlertKind::Test => "test",
        }
    }
}

impl FromStr for AlertKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "crash" => AlertKind::Crash,
            "errored" => AlertKind::Errored,
            "memory" => AlertKind::Memory,
            "health" => AlertKind::Health,
            "reload_failed" => AlertKind::ReloadFailed,
            "daemon" => AlertKind::Daemon,
            other => {
                let hint = match closest(other, EVENT_NAMES.iter().copied()) {
                    Some(k) => format!(" — did you mean {k}?"),
                    None => format!(" (known: {})", EVENT_NAMES.join(", ")),
                };
                return Err(format!("'{other}' is not an alert event{hint}"));
            }
        })
    }
}

/// An http(s) URL with a host, or why not.
pub fn check_url(s: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = s.trim().parse().map_err(|_| "not a URL".to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("the scheme must be http or https, not {other}")),
        None => return Err("not a URL (it needs http:// or https://)".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(uri)
}

fn list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        Value::Array(a) => a
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!("list items must be {what}, got {other}")),
            })
            .collect(),
        other => Err(format!(
            "must be {what}, comma-separated or a list, got {other}"
        )),
    }
}

/// URLs as `pmr set notify.webhook` and the ecosystem file take them: one,
/// several comma-separated, or a list.
pub fn urls(v: &Value) -> Result<Vec<String>, String> {
    list(v, "URLs")?
        .into_iter()
        .map(|u| {
            check_url(&u)
                .map(|_| u.clone())
                .map_err(|e| format!("'{u}' is not a URL: {e}"))
        })
        .collect()
}

pub fn events(v: &Value) -> Result<Vec<AlertKind>, String> {
    let mut out: Vec<AlertKind> = list(v, "event names")?
        .iter()
        .map(|n| n.parse())
        .collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// A window like `'1m'` or milliseconds; not negative.
fn duration(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("must be a duration like 1m or 30s, got {n}")),
        Value::String(s) if !s.trim().starts_with('-') => super::units::parse_duration_ms(s),
        other => Err(format!("must be a duration like 1m or 30s, got {other}")),
    }
}

/// An app's own `notify: {...}`: its receivers replace the daemon-wide
/// ones for this app, its `events` and `throttle` the daemon-wide ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppNotify {
    #[serde(default)]
    pub webhook: Vec<String>,
    #[serde(default)]
    pub slack: Vec<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<AlertKind>>,
    /// Alerts of one kind for this app after the first, within this long,
    /// are summed up in one summary.
    #[serde(default)]
    pub throttle_ms: Option<u64>,
}

pub const APP_KEYS: &[&str] = &["webhook", "slack", "command", "events", "throttle"];

impl AppNotify {
    pub fn has_receivers(&self) -> bool {
        !self.webhook.is_empty() || !self.slack.is_empty() || self.command.is_some()
    }

    /// Reads `notify: {...}`; the error names the key inside it (empty for
    /// the object as a whole).
    pub fn from_value(v: &Value) -> Result<AppNotify, (String, String)> {
        let Value::Object(m) = v else {
            return Err((
                String::new(),
                format!("must be an object like {{ slack: 'https://hooks.slack.com/...', events: ['crash'] }}, got {v}"),
            ));
        };
        let mut n = AppNotify::default();
        for (k, val) in m {
            let e = |msg: String| (k.clone(), msg);
            match k.as_str() {
                "webhook" => n.webhook = urls(val).map_err(e)?,
                "slack" => n.slack = urls(val).map_err(e)?,
                "command" => match val {
                    Value::String(s) if !s.trim().is_empty() => n.command = Some(s.clone()),
                    other => return Err(e(format!("must be a command line, got {other}"))),
                },
                "events" => n.events = Some(events(val).map_err(e)?),
                "throttle" => n.throttle_ms = Some(duration(val).map_err(e)?),
                other => {
                    let hint = match closest(other, APP_KEYS.iter().copied()) {
                        Some(s) => format!("unknown key — did you mean {s}?"),
                        None => format!("unknown key (known: {})", APP_KEYS.join(", ")),
                    };
                    return Err(e(hint));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_and_urls() {
        assert_eq!(
            events(&json!("crash, errored")).unwrap(),
            vec![AlertKind::Crash, AlertKind::Errored]
        );
        let e = events(&json!(["crash", "crashed"])).unwrap_err();
        assert!(e.contains("did you mean crash"), "{e}");
        assert_eq!(urls(&json!("http://a/x, https://b/y")).unwrap().len(), 2);
        assert!(urls(&json!("hooks.slack.com/x"))
            .unwrap_err()
            .contains("is not a URL"));
        assert!(check_url("ftp://x/y")
            .unwrap_err()
            .contains("http or https"));
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn an_apps_notify() {
        let n = AppNotify::from_value(&json!({"slack": "https://hooks.slack.com/services/T/B/C", "events": ["crash"], "throttle": "5m"})).unwrap();
        assert!(n.has_receivers());
        assert_eq!(n.throttle_ms, Some(300_000));
        let (k, m) = AppNotify::from_value(&json!({"webhok": "http://x/"})).unwrap_err();
        assert_eq!(k, "webhok");
        assert!(m.contains("did you mean webhook"), "{m}");
        let (k, _) = AppNotify::from_value(&json!({"events": ["boom"]})).unwrap_err();
        assert_eq!(k, "events");
        let (k, _) = AppNotify::from_value(&json!({"throttle": "-1m"})).unwrap_err();
        assert_eq!(k, "throttle");
    }
}
