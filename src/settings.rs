//! Daemon-wide settings, kept in `$PMR_HOME/config.json` and changed with
//! `pmr set <key> <value>`: defaults for log rotation and the metrics
//! endpoint. Per-app options in an ecosystem file take precedence.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::suggest::closest;
use crate::spec::units::{parse_duration_ms, parse_size};
use crate::spec::RotateInterval;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    pub dashboard: DashboardSettings,
    pub notify: NotifySettings,
    /// `pmr set <app>.<KEY> <value>`: per app, variables it gets in its
    /// environment from its next start (over its own env).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub apps: BTreeMap<String, BTreeMap<String, String>>,
}

/// Where alerts go when an app names no receivers of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// URLs that get pmr's JSON payload.
    pub webhook: Vec<String>,
    /// Slack-compatible incoming-webhook URLs.
    pub slack: Vec<String>,
    /// A local program that gets each alert on stdin.
    pub command: Option<String>,
    /// The alert events sent (None: all of them).
    pub events: Option<Vec<crate::spec::notify::AlertKind>>,
    /// Per app and event, alerts after the first within this long go into one summary.
    pub throttle_ms: u64,
    /// Deadline of each delivery attempt.
    pub timeout_ms: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            webhook: Vec::new(),
            slack: Vec::new(),
            command: None,
            events: None,
            throttle_ms: 60_000,
            timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Rotate a log file before it passes this many bytes (0: never by size).
    pub max_size: u64,
    /// Rotated files kept per log file.
    pub retain: u32,
    /// Gzip rotated files.
    pub compress: bool,
    /// Also rotate on a schedule: daily, or none (`null`).
    pub rotate_interval: Option<RotateInterval>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve Prometheus metrics over HTTP on this port (off when unset).
    pub port: Option<u16>,
    /// Address the metrics endpoint binds.
    pub host: String,
    /// How often CPU and memory are sampled, in milliseconds.
    pub interval_ms: u64,
}

/// The web dashboard (`pmr dashboard`), served by the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardSettings {
    /// Serve the dashboard on this port (off when unset).
    pub port: Option<u16>,
    /// Address the dashboard binds: loopback unless the user says otherwise.
    pub host: String,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            port: None,
            host: "127.0.0.1".into(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            max_size: 10 << 20,
            retain: 10,
            compress: false,
            rotate_interval: None,
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            port: None,
            host: "127.0.0.1".into(),
            interval_ms: 1000,
        }
    }
}

/// Every setting, by the key `pmr set` takes: the answer to `pmr get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllSettings {
    #[serde(rename = "log.max_size")]
    pub log_max_size: u64,
    #[serde(rename = "log.retain")]
    pub log_retain: u32,
    #[serde(rename = "log.compress")]
    pub log_compress: bool,
    #[serde(rename = "log.rotate_interval")]
    pub log_rotate_interval: Option<RotateInterval>,
    #[serde(rename = "metrics.port")]
    pub metrics_port: Option<u16>,
    #[serde(rename = "metrics.host")]
    pub metrics_host: String,
    #[serde(rename = "metrics.interval")]
    pub metrics_interval: u64,
    #[serde(rename = "dashboard.port")]
    pub dashboard_port: Option<u16>,
    #[serde(rename = "dashboard.host")]
    pub dashboard_host: String,
    #[serde(rename = "notify.webhook", default)]
    pub notify_webhook: Vec<String>,
    #[serde(rename = "notify.slack", default)]
    pub notify_slack: Vec<String>,
    #[serde(rename = "notify.command", default)]
    pub notify_command: Option<String>,
    #[serde(rename = "notify.events", default)]
    pub notify_events: Option<Vec<crate::spec::notify::AlertKind>>,
    #[serde(rename = "notify.throttle", default)]
    pub notify_throttle: u64,
    #[serde(rename = "notify.timeout", default)]
    pub notify_timeout: u64,
    /// The per-app values, as `<app>.<KEY>`.
    #[serde(flatten, default)]
    pub apps: BTreeMap<String, String>,
}

/// Every key `pmr set` accepts, with what it means.
pub const KEYS: &[(&str, &str)] = &[
    (
        "log.max_size",
        "rotate a log file before it passes this size (e.g. 10M; 0: never)",
    ),
    ("log.retain", "rotated files kept per log file"),
    ("log.compress", "gzip rotated files (true/false)"),
    (
        "log.rotate_interval",
        "also rotate on a schedule: daily, or none",
    ),
    (
        "metrics.port",
        "serve Prometheus metrics on this port (none: off)",
    ),
    ("metrics.host", "address of the metrics endpoint"),
    (
        "metrics.interval",
        "CPU and memory sampling interval (e.g. 1s)",
    ),
    (
        "dashboard.port",
        "serve the web dashboard on this port (none: off; pmr dashboard picks one)",
    ),
    ("dashboard.host", "address of the web dashboard"),
    (
        "notify.webhook",
        "URLs that get each alert as JSON, comma-separated (none: off)",
    ),
    (
        "notify.slack",
        "Slack-compatible webhook URLs, comma-separated (none: off)",
    ),
    (
        "notify.command",
        "a command that gets each alert as JSON on stdin (none: off)",
    ),
    (
        "notify.events",
        "alert events sent, comma-separated (all: every one)",
    ),
    (
        "notify.throttle",
        "per app and event, alerts within this long go into one summary (e.g. 1m)",
    ),
    (
        "notify.timeout",
        "deadline of each alert delivery (e.g. 5s)",
    ),
];

/// The setting a key names. PM2 users set rotation through the
/// pm2-logrotate module (`pm2 set pm2-logrotate:max_size 10M`); those keys
/// name pmr's own settings, and the module's others are refused by name.
fn canonical_key(key: &str) -> Result<String> {
    let Some(k) = key.strip_prefix("pm2-logrotate:") else {
        return Ok(key.to_string());
    };
    let ours = match k {
        "max_size" => "log.max_size",
        "retain" => "log.retain",
        "compress" => "log.compress",
        "rotateInterval" => "log.rotate_interval",
        _ => {
            return Err(Error::Config(format!(
                "{key} has no pmr counterpart; pmr's rotation settings are log.max_size, log.retain, log.compress and log.rotate_interval"
            )))
        }
    };
    Ok(ours.to_string())
}

/// PM2's rotateInterval is a cron pattern; its default, midnight every day,
/// is pmr's `daily`.
fn is_daily(v: &str) -> bool {
    let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
    v == "daily" || v == "0 0 * * *"
}

fn parse_bool(v: &str) -> std::result::Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

fn is_none(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "none" | "off" | "null" | ""
    )
}

impl Settings {
    /// Reads the file; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Settings> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Config(format!(
                    "{}: {e} (fix it, or delete it to go back to the defaults)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    /// Writes the file atomically (0600: it lives next to the socket).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Config(format!("cannot encode the settings: {e}")))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    }

    /// Sets one dotted key from its text form, checking the value. Returns
    /// the key's own name (a pm2-logrotate key names one of ours).
    pub fn set(&mut self, key: &str, value: &str) -> Result<String> {
        if let Some(k) = AppKey::parse(key)? {
            let shown = k.to_string();
            self.apps
                .entry(k.app)
                .or_default()
                .insert(k.var, value.to_string());
            return Ok(shown);
        }
        let key = canonical_key(key)?;
        let bad = |msg: String| Error::Config(format!("{key}: {msg}"));
        match key.as_str() {
            "log.max_size" => {
                self.log.max_size = if is_none(value) || value.trim() == "0" {
                    0
                } else {
                    let b = parse_size(value).map_err(bad)?;
                    if b < 1024 {
                        return Err(bad(format!(
                            "'{value}' is too small to rotate at (a new file for every write); use at least 1K, or 0 to turn rotation by size off"
                        )));
                    }
                    b
                }
            }
            "log.retain" => {
                self.log.retain = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("'{value}' is not a number of files")))?
            }
            "log.compress" => self.log.compress = parse_bool(value).map_err(bad)?,
            "log.rotate_interval" => {
                self.log.rotate_interval = match value.trim() {
                    v if is_none(v) => None,
                    v if is_daily(v) => Some(RotateInterval::Daily),
                    other => {
                        return Err(bad(format!(
                            "'{other}' is not daily (PM2's '0 0 * * *') or none"
                        )))
                    }
                }
            }
            "metrics.port" => {
                self.metrics.port = if is_none(value) {
                    None
                } else {
                    Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| bad(format!("'{value}' is not a port number")))?,
                    )
                }
            }
            "metrics.host" => {
                let v = value.trim();
                v.parse::<std::net::IpAddr>()
                    .map_err(|_| bad(format!("'{v}' is not an IP address")))?;
                self.metrics.host = v.to_string();
            }
            "metrics.interval" => {
                let ms = parse_duration_ms(value).map_err(bad)?;
                if ms < 100 {
                    return Err(bad(
                        "sampling more often than every 100ms is not useful".into()
                    ));
                }
                self.metrics.interval_ms = ms;
            }
            "dashboard.port" => {
                self.dashboard.port = if is_none(value) {
                    None
                } else {
                    Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| bad(format!("'{value}' is not a port number")))?,
                    )
                }
            }
            "dashboard.host" => {
                let v = value.trim();
                v.parse::<std::net::IpAddr>()
                    .map_err(|_| bad(format!("'{v}' is not an IP address")))?;
                self.dashboard.host = v.to_string();
            }
            "notify.webhook" | "notify.slack" => {
                let urls = if is_none(value) {
                    Vec::new()
                } else {
                    crate::spec::notify::urls(&Value::String(value.to_string())).map_err(bad)?
                };
                if key == "notify.webhook" {
                    self.notify.webhook = urls;
                } else {
                    self.notify.slack = urls;
                }
            }
            "notify.command" => {
                self.notify.command = (!is_none(value)).then(|| value.trim().to_string())
            }
            "notify.events" => {
                self.notify.events = match value.trim() {
                    "all" | "" => None,
                    v => Some(crate::spec::notify::events(&Value::String(v.into())).map_err(bad)?),
                }
            }
            "notify.throttle" | "notify.timeout" => {
                if value.trim().starts_with('-') {
                    return Err(bad(format!(
                        "'{value}' is negative; give a duration like 1m"
                    )));
                }
                let ms = parse_duration_ms(value).map_err(bad)?;
                if key == "notify.throttle" {
                    self.notify.throttle_ms = ms;
                } else if ms < 100 {
                    return Err(bad("a delivery needs at least 100ms".into()));
                } else {
                    self.notify.timeout_ms = ms;
                }
            }
            _ => return Err(unknown_key(&key)),
        }
        Ok(key)
    }

    /// The value of one key, or of all of them.
    /// Every setting under the key `pmr set` takes.
    pub fn all(&self) -> AllSettings {
        AllSettings {
            log_max_size: self.log.max_size,
            log_retain: self.log.retain,
            log_compress: self.log.compress,
            log_rotate_interval: self.log.rotate_interval,
            metrics_port: self.metrics.port,
            metrics_host: self.metrics.host.clone(),
            metrics_interval: self.metrics.interval_ms,
            dashboard_port: self.dashboard.port,
            dashboard_host: self.dashboard.host.clone(),
            notify_webhook: self.notify.webhook.clone(),
            notify_slack: self.notify.slack.clone(),
            notify_command: self.notify.command.clone(),
            notify_events: self.notify.events.clone(),
            notify_throttle: self.notify.throttle_ms,
            notify_timeout: self.notify.timeout_ms,
            apps: self
                .apps
                .iter()
                .flat_map(|(app, vars)| {
                    vars.iter()
                        .map(move |(k, v)| (format!("{app}.{k}"), v.clone()))
                })
                .collect(),
        }
    }

    /// One setting's value, as `all()` spells it.
    pub fn get(&self, key: &str) -> Result<Value> {
        if let Some(k) = AppKey::parse(key)? {
            return match self.apps.get(&k.app).and_then(|v| v.get(&k.var)) {
                Some(v) => Ok(Value::String(v.clone())),
                None => Err(Error::NotFound(format!(
                    "{k} is not set (pmr set {k} <value> sets it)"
                ))),
            };
        }
        let k = canonical_key(key)?;
        let all = serde_json::to_value(self.all())
            .map_err(|e| Error::Protocol(format!("cannot encode the settings: {e}")))?;
        all.get(&k).cloned().ok_or_else(|| unknown_key(&k))
    }
}

/// A key's default in the text form `pmr set` takes (`pmr unset`).
pub fn default_text(key: &str) -> Result<String> {
    Ok(match Settings::default().get(key)? {
        Value::Null => "none".into(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// `pmr multiset "k1 v1 k2 v2"`: the pairs, each checked as `pmr set`
/// would, so that a bad one sets none.
pub fn parse_multiset(text: &str) -> Result<Vec<(String, String)>> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(Error::Config(format!(
            "multiset takes key value pairs, e.g. pmr multiset \"log.retain 30 log.compress true\"; got {} word{}",
            words.len(),
            if words.len() == 1 { "" } else { "s" }
        )));
    }
    let mut check = Settings::default();
    words
        .chunks(2)
        .map(|kv| {
            check.set(kv[0], kv[1])?;
            Ok((kv[0].to_string(), kv[1].to_string()))
        })
        .collect()
}

/// A per-app key, `<app>.<KEY>` (or PM2's `<app>:<KEY>`): any key whose
/// first part is not one of pmr's sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey {
    pub app: String,
    /// An environment variable name.
    pub var: String,
}

/// The sections of pmr's own settings (and PM2's module of them).
const SECTIONS: &[&str] = &["log", "metrics", "dashboard", "notify", "pm2-logrotate"];

impl AppKey {
    /// None for a key of pmr's own settings; an error for a per-app key
    /// whose variable is not a valid environment variable name.
    pub fn parse(key: &str) -> Result<Option<AppKey>> {
        let Some(at) = key.rfind(['.', ':']) else {
            return Ok(None);
        };
        let (app, var) = (&key[..at], &key[at + 1..]);
        if SECTIONS.contains(&app) || app.is_empty() {
            return Ok(None);
        }
        let valid = var
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::Config(format!(
                "{key}: per-app settings are <app>.<VARIABLE>, and '{var}' is not an environment variable name (letters, digits and _)"
            )));
        }
        Ok(Some(AppKey {
            app: app.to_string(),
            var: var.to_string(),
        }))
    }

    /// The refusal for a key naming no app pmr knows: most likely a typo of
    /// one of pmr's own settings.
    pub fn unknown_app(&self, key: &str) -> Error {
        let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        let hint = match closest(key, known.iter().copied()) {
            Some(k) => format!(" — did you mean {k}?"),
            None => String::new(),
        };
        Error::Config(format!(
            "unknown setting '{key}'{hint} (a per-app setting is <app>.<VARIABLE>, and no app is named {})",
            self.app
        ))
    }
}

impl std::fmt::Display for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.app, self.var)
    }
}

impl Settings {
    /// `pmr unset <app>.<KEY>`: whether it was set.
    pub fn unset_app(&mut self, k: &AppKey) -> bool {
        let Some(vars) = self.apps.get_mut(&k.app) else {
            return false;
        };
        let had = vars.remove(&k.var).is_some();
        if vars.is_empty() {
            self.apps.remove(&k.app);
        }
        had
    }
}

fn unknown_key(key: &str) -> Error {
    let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
    let hint = match closest(key, known.iter().copied()) {
        Some(k) => format!(" — did you mean {k}?"),
        None => format!(" (known: {})", known.join(", ")),
    };
    Error::Config(format!("unknown setting '{key}'{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_persist() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("config.json");
        let mut s = Settings::load(&path).unwrap();
        assert_eq!(s, Settings::default());
        s.set("log.max_size", "50M").unwrap();
        s.set("log.compress", "true").unwrap();
        s.set("metrics.port", "9209").unwrap();
        s.set("metrics.interval", "2s").unwrap();
        s.save(&path).unwrap();
        let back = Settings::load(&path).unwrap();
        assert_eq!(back.log.max_size, 50 << 20);
        assert!(back.log.compress);
        assert_eq!(back.get("metrics.port").unwrap(), 9209);
        assert_eq!(back.get("metrics.interval").unwrap(), 2000);
        let mut b = back;
        b.set("metrics.port", "none").unwrap();
        assert_eq!(b.metrics.port, None);
    }

    #[test]
    fn unset_gives_the_default_multiset_checks_every_pair() {
        assert_eq!(default_text("log.max_size").unwrap(), "10485760");
        assert_eq!(default_text("metrics.port").unwrap(), "none");
        assert_eq!(default_text("pm2-logrotate:retain").unwrap(), "10");
        let mut s = Settings::default();
        s.set("log.max_size", "50M").unwrap();
        s.set("log.max_size", &default_text("log.max_size").unwrap())
            .unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(
            parse_multiset("log.retain 30  log.compress true").unwrap(),
            [
                ("log.retain".to_string(), "30".to_string()),
                ("log.compress".to_string(), "true".to_string())
            ]
        );
        assert!(parse_multiset("log.retain").is_err());
        let e = parse_multiset("log.retain 3 log.retian 4").unwrap_err();
        assert!(e.to_string().contains("did you mean log.retain?"), "{e}");
    }

    #[test]
    fn bad_values_and_keys_are_explained() {
        let mut s = Settings::default();
        let e = s.set("log.max_size", "1GB").unwrap_err().to_string();
        assert!(e.starts_with("log.max_size: '1GB' is not a size"), "{e}");
        let e = s.set("log.max_sise", "1G").unwrap_err().to_string();
        assert!(e.contains("did you mean log.max_size?"), "{e}");
        assert!(s.set("metrics.host", "localhost!").is_err());
        assert!(s.set("log.rotate_interval", "hourly").is_err());
        let e = s.set("log.max_size", "100").unwrap_err().to_string();
        assert!(e.contains("too small to rotate at"), "{e}");
        s.set("log.max_size", "0").unwrap();
        assert_eq!(s.log.max_size, 0, "0 turns rotation by size off");
    }

    #[test]
    fn pm2_logrotate_keys_name_our_settings() {
        let mut s = Settings::default();
        s.set("pm2-logrotate:max_size", "20M").unwrap();
        s.set("pm2-logrotate:retain", "30").unwrap();
        s.set("pm2-logrotate:compress", "true").unwrap();
        s.set("pm2-logrotate:rotateInterval", "0  0 * * *").unwrap();
        assert_eq!(s.log.max_size, 20 << 20);
        assert_eq!(s.log.retain, 30);
        assert!(s.log.compress);
        assert_eq!(
            s.log.rotate_interval.map(|r| r.to_string()).as_deref(),
            Some("daily")
        );
        assert_eq!(s.get("pm2-logrotate:retain").unwrap(), 30);
        assert_eq!(s.set("pm2-logrotate:retain", "30").unwrap(), "log.retain");
        let refused = [
            (
                "pm2-logrotate:rotateInterval",
                "0 * * * *",
                "log.rotate_interval: '0 * * * *' is not daily",
            ),
            (
                "pm2-logrotate:workerInterval",
                "30",
                "pm2-logrotate:workerInterval has no pmr counterpart",
            ),
        ];
        for (k, v, msg) in refused {
            let e = s.set(k, v).unwrap_err().to_string();
            assert!(e.starts_with(msg), "{e}");
        }
    }

    #[test]
    fn notify_receivers_events_and_refusals() {
        let mut s = Settings::default();
        s.set(
            "notify.webhook",
            "http://127.0.0.1:9/a, https://example.com/b",
        )
        .unwrap();
        assert_eq!(s.notify.webhook.len(), 2);
        s.set("notify.webhook", "none").unwrap();
        assert!(s.notify.webhook.is_empty());
        let e = s
            .set("notify.slack", "hooks.slack.com/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("notify.slack: 'hooks.slack.com/x' is not a URL"),
            "{e}"
        );
        let e = s
            .set("notify.events", "crash,boom")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("notify.events: 'boom' is not an alert event"),
            "{e}"
        );
        let e = s.set("notify.throttle", "-5s").unwrap_err().to_string();
        assert!(e.starts_with("notify.throttle:"), "{e}");
        s.set("notify.events", "crash,errored").unwrap();
        assert_eq!(
            s.get("notify.events").unwrap(),
            serde_json::json!(["crash", "errored"])
        );
        s.set("notify.throttle", "2s").unwrap();
        assert_eq!(s.notify.throttle_ms, 2000);
    }

    #[test]
    fn a_corrupt_file_names_itself() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("config.json");
        std::fs::write(&path, "{ nope").unwrap();
        let e = Settings::load(&path).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}
