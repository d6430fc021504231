//! What an app's `health_check` says: one probe (an HTTP GET, a TCP
//! connect or a command) and its timing, read from an ecosystem entry or
//! from the `--health-*` flags and checked once, so the supervisor only
//! ever sees a valid one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::units::parse_duration_ms;

pub const DEFAULT_INTERVAL_MS: u64 = 5_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
pub const DEFAULT_FAILURES: u32 = 3;
pub const DEFAULT_START_PERIOD_MS: u64 = 0;
/// Checking more often than this costs more than it tells.
pub const MIN_INTERVAL_MS: u64 = 100;

/// The one thing a health check does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// GET a path of the instance's own server (`/healthz`), or a full URL.
    Http(String),
    /// Connect to this port on 127.0.0.1.
    Tcp(u16),
    /// Run this through `sh -c` in the app's directory; exit 0 is healthy.
    Command(String),
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Command(_) => "command",
        }
    }

    /// An HTTP check of a path: it needs the instance's own port, which the
    /// preload opens (see `preload/health.js`).
    pub fn http_path(&self) -> Option<&str> {
        match self {
            Probe::Http(p) if p.starts_with('/') => Some(p),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Probe::Http(p) => format!("GET {p}"),
            Probe::Tcp(port) => format!("TCP connect to port {port}"),
            Probe::Command(c) => format!("command {c}"),
        }
    }
}

/// A resolved health check, with every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Failed checks in a row that make the instance unhealthy.
    pub failures: u32,
    /// After a start, failures during this long do not count.
    pub start_period_ms: u64,
}

/// The keys of `health_check`, for the error that suggests one.
pub const KEYS: &[&str] = &[
    "http",
    "tcp",
    "command",
    "interval",
    "timeout",
    "failures",
    "start_period",
];

/// What the user wrote, before it is checked: the ecosystem object or the
/// `--health-*` flags, both as text or JSON values.
#[derive(Debug, Default, Clone)]
pub struct RawHealth {
    pub http: Option<String>,
    pub tcp: Option<Value>,
    pub command: Option<String>,
    pub interval: Option<Value>,
    pub timeout: Option<Value>,
    pub failures: Option<Value>,
    pub start_period: Option<Value>,
}

impl RawHealth {
    pub fn is_empty(&self) -> bool {
        self.http.is_none()
            && self.tcp.is_none()
            && self.command.is_none()
            && self.interval.is_none()
            && self.timeout.is_none()
            && self.failures.is_none()
            && self.start_period.is_none()
    }
}

/// A problem with one key, named `health_check.<key>` by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> KeyError {
    KeyError {
        key: key.to_string(),
        message: message.into(),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

/// A duration as ecosystem files write them: `'5s'`, `500` (ms). Negative
/// and zero are refused: a check every 0 ms is a busy loop.
pub fn positive_duration(key: &str, v: &Value) -> Result<u64, KeyError> {
    let ms = match v {
        Value::Number(n) => match n.as_f64() {
            Some(ms) if ms.is_finite() && ms > 0.0 => ms.round() as u64,
            _ => return Err(err(key, format!("must be a positive duration, got {n}"))),
        },
        Value::String(s) if s.trim().starts_with('-') => {
            return Err(err(key, format!("must be a positive duration, got '{s}'")))
        }
        Value::String(s) => parse_duration_ms(s).map_err(|e| err(key, e))?,
        other => {
            return Err(err(
                key,
                format!("must be a duration like 5s or 500ms, got {}", shown(other)),
            ))
        }
    };
    if ms == 0 {
        return Err(err(key, "must be more than 0"));
    }
    Ok(ms)
}

fn http_target(v: &str) -> Result<String, KeyError> {
    let v = v.trim();
    if v.starts_with('/') {
        return Ok(v.to_string());
    }
    match super::notify::check_url(v) {
        Ok(_) => Ok(v.to_string()),
        Err(e) => Err(err(
            "http",
            format!("'{v}' is neither a path like /healthz nor a URL: {e}"),
        )),
    }
}

fn port(v: &Value) -> Result<u16, KeyError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(err(
            "tcp",
            format!("must be a port number (1-65535), got {}", shown(v)),
        )),
    }
}

impl RawHealth {
    /// Reads the ecosystem object `health_check: { ... }`; unknown keys are
    /// refused with the closest known one.
    pub fn from_value(v: &Value) -> Result<RawHealth, KeyError> {
        let Value::Object(m) = v else {
            return Err(err(
                "",
                format!(
                    "must be an object like {{ http: '/healthz', interval: '5s' }}, got {}",
                    shown(v)
                ),
            ));
        };
        let mut r = RawHealth::default();
        for (k, val) in m {
            let text = || match val {
                Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                other => Err(err(
                    k,
                    format!("must be a non-empty string, got {}", shown(other)),
                )),
            };
            match k.as_str() {
                "http" => r.http = Some(text()?),
                "command" => r.command = Some(text()?),
                "tcp" => r.tcp = Some(val.clone()),
                "interval" => r.interval = Some(val.clone()),
                "timeout" => r.timeout = Some(val.clone()),
                "failures" => r.failures = Some(val.clone()),
                "start_period" => r.start_period = Some(val.clone()),
                other => {
                    let hint = match super::suggest::closest(other, KEYS.iter().copied()) {
                        Some(s) => format!("unknown key — did you mean {s}?"),
                        None => format!("unknown key (known: {})", KEYS.join(", ")),
                    };
                    return Err(err(other, hint));
                }
            }
        }
        Ok(r)
    }

    /// Checks every value and applies the defaults.
    pub fn resolve(&self) -> Result<HealthCheck, KeyError> {
        let probes = [
            self.http
                .as_deref()
                .map(http_target)
                .map(|r| r.map(Probe::Http)),
            self.tcp.as_ref().map(port).map(|r| r.map(Probe::Tcp)),
            self.command.clone().map(|c| Ok(Probe::Command(c))),
        ];
        let mut given: Vec<Probe> = Vec::new();
        for p in probes.into_iter().flatten() {
            given.push(p?);
        }
        let probe =
            match given.len() {
                1 => given.remove(0),
                0 => return Err(err(
                    "",
                    "needs one of http (a path like /healthz or a URL), tcp (a port) or command",
                )),
                _ => {
                    return Err(err(
                        "",
                        "has more than one of http, tcp and command; keep one",
                    ))
                }
            };
        let dur = |key: &str, v: &Option<Value>, default: u64| match v {
            Some(v) => positive_duration(key, v),
            None => Ok(default),
        };
        let interval_ms = dur("interval", &self.interval, DEFAULT_INTERVAL_MS)?;
        if interval_ms < MIN_INTERVAL_MS {
            return Err(err(
                "interval",
                format!("must be at least {MIN_INTERVAL_MS}ms, got {interval_ms}ms"),
            ));
        }
        let timeout_ms = dur("timeout", &self.timeout, DEFAULT_TIMEOUT_MS)?;
        let start_period_ms = match &self.start_period {
            // 0 is a valid start period: failures count from the start.
            Some(Value::Number(n)) if n.as_f64() == Some(0.0) => 0,
            Some(Value::String(s)) if s.trim() == "0" => 0,
            other => dur("start_period", other, DEFAULT_START_PERIOD_MS)?,
        };
        let failures = match &self.failures {
            None => DEFAULT_FAILURES,
            Some(v) => {
                let n = match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                match n {
                    Some(n) if (1..=1000).contains(&n) => n as u32,
                    _ => {
                        return Err(err(
                            "failures",
                            format!("must be a whole number from 1 to 1000, got {}", shown(v)),
                        ))
                    }
                }
            }
        };
        Ok(HealthCheck {
            probe,
            interval_ms,
            timeout_ms,
            failures,
            start_period_ms,
        })
    }
}

/// `max_event_loop_lag`: a duration of at least 100 ms (the preload's
/// figures are not finer than that).
pub fn max_lag(v: &Value) -> Result<u64, String> {
    let ms = positive_duration("", v).map_err(|e| e.message)?;
    if ms < 100 {
        return Err(format!("must be at least 100ms, got {ms}ms"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(v: Value) -> Result<HealthCheck, KeyError> {
        RawHealth::from_value(&v)?.resolve()
    }

    #[test]
    fn defaults_and_the_issue_spelling() {
        let h = resolve(json!({"http": "/healthz"})).unwrap();
        assert_eq!(h.probe, Probe::Http("/healthz".into()));
        assert_eq!(
            (h.interval_ms, h.timeout_ms, h.failures, h.start_period_ms),
            (5000, 2000, 3, 0)
        );
        let h = resolve(json!({"tcp": 3000, "interval": "1s", "timeout": 300, "failures": 2, "start_period": "10s"}))
            .unwrap();
        assert_eq!(h.probe, Probe::Tcp(3000));
        assert_eq!(
            (h.interval_ms, h.timeout_ms, h.failures, h.start_period_ms),
            (1000, 300, 2, 10_000)
        );
        let h = resolve(json!({"http": "http://127.0.0.1:3000/healthz"})).unwrap();
        assert_eq!(h.probe.http_path(), None);
        assert_eq!(
            resolve(json!({"command": "./check.sh"}))
                .unwrap()
                .probe
                .kind(),
            "command"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let key = |v: Value| resolve(v).unwrap_err();
        let e = key(json!({"http": "/h", "interval": "-5s"}));
        assert_eq!(e.key, "interval");
        assert!(e.message.contains("positive"), "{}", e.message);
        assert_eq!(key(json!({"http": "/h", "interval": -5})).key, "interval");
        assert_eq!(key(json!({"http": "/h", "timeout": "soon"})).key, "timeout");
        assert_eq!(key(json!({"http": "/h", "failures": 0})).key, "failures");
        assert_eq!(key(json!({"tcp": 70000})).key, "tcp");
        let e = key(json!({"http": "htp:/x"}));
        assert_eq!(e.key, "http");
        let e = key(json!({"http": "/h", "intervall": "5s"}));
        assert!(e.message.contains("did you mean interval"), "{}", e.message);
        assert!(key(json!({})).message.contains("needs one of"));
        assert!(key(json!({"http": "/h", "tcp": 1}))
            .message
            .contains("more than one"));
        assert_eq!(
            key(json!({"http": "/h", "interval": "10ms"})).key,
            "interval"
        );
    }

    #[test]
    fn lag_limits() {
        assert_eq!(max_lag(&json!("3s")), Ok(3000));
        assert!(max_lag(&json!(50)).is_err());
        assert!(max_lag(&json!("-1s")).is_err());
    }
}
