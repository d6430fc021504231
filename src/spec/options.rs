//! One app entry of an ecosystem file, read key by key into an `AppConfig`.
//! Every problem is collected (not just the first), each tied to its key and
//! saying what would have been accepted.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::suggest::closest;
use super::units::{parse_duration_ms, parse_size};
use super::{
    cron, datefmt, default_name, validate_name, watch, AppConfig, ExecMode, Instances, KillSignal,
    LogFile, LogType, RotateInterval, Watch,
};

/// A problem with one key of an app entry (or with the entry as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub warning: bool,
    pub key: Option<String>,
    pub message: String,
    /// The option that was probably meant, when the message suggests one.
    pub suggestion: Option<String>,
    /// A key pmr does not know: a warning (PM2 ignores such keys) unless
    /// strict mode makes it an error.
    pub unknown: bool,
}

impl Issue {
    fn error(key: &str, message: impl Into<String>) -> Self {
        Issue {
            warning: false,
            key: Some(key.to_string()),
            message: message.into(),
            suggestion: None,
            unknown: false,
        }
    }
    fn warning(key: &str, message: impl Into<String>) -> Self {
        Issue {
            warning: true,
            ..Issue::error(key, message)
        }
    }
}

/// Every option an app entry may have, under its canonical name.
pub const APP_KEYS: &[&str] = &[
    "name",
    "script",
    "args",
    "interpreter",
    "interpreter_args",
    "cwd",
    "instances",
    "exec_mode",
    "env",
    "max_memory_restart",
    "max_restarts",
    "min_uptime",
    "restart_delay",
    "exp_backoff_restart_delay",
    "autorestart",
    "stop_exit_codes",
    "kill_timeout",
    "kill_signal",
    "listen_timeout",
    "wait_ready",
    "shutdown_with_message",
    "out_file",
    "error_file",
    "log_file",
    "merge_logs",
    "log_date_format",
    "log_type",
    "max_size",
    "retain",
    "compress",
    "rotate_interval",
    "time",
    "disable_logs",
    "watch",
    "ignore_watch",
    "watch_delay",
    "cron_restart",
    "instance_var",
    "increment_var",
    "namespace",
    "uid",
    "gid",
    "port",
    "source_map_support",
    "health_check",
    "max_event_loop_lag",
    "notify",
    "lb",
    "pid_file",
    "force",
];

/// PM2's other spellings of the same options.
const ALIASES: &[(&str, &str)] = &[
    ("exec", "script"),
    ("cmd", "script"),
    ("exec_interpreter", "interpreter"),
    ("node_args", "interpreter_args"),
    ("interpreterArgs", "interpreter_args"),
    ("out", "out_file"),
    ("output", "out_file"),
    ("out_log", "out_file"),
    ("error", "error_file"),
    ("err", "error_file"),
    ("err_file", "error_file"),
    ("err_log", "error_file"),
    ("log", "log_file"),
    ("combine_logs", "merge_logs"),
    ("cron", "cron_restart"),
    ("user", "uid"),
    ("pid", "pid_file"),
];

/// PM2 options that have no meaning in pmr: accepted with a warning so a
/// PM2 file works unchanged, and the user learns they do nothing here.
const IGNORED: &[(&str, &str)] = &[
    ("treekill", "pmr always stops the app's whole process group"),
    (
        "kill_retry_time",
        "pmr sends SIGKILL once kill_timeout has passed",
    ),
    ("watch_options", "these are options of PM2's file watcher"),
    (
        "filter_env",
        "apps get the environment of the pmr call plus their own env",
    ),
    ("append_env_to_name", "app names are used as written"),
    ("name_prefix", "app names are used as written"),
    (
        "disable_source_map_support",
        "source maps are off unless source_map_support is true",
    ),
    ("vizion", "PM2's version-control metadata"),
    ("post_update", "PM2's version-control metadata"),
    ("install_url", "PM2's module installer"),
    ("execute_command", "PM2's internal flag"),
    ("username", "PM2's internal field"),
    ("write", "PM2's internal field"),
    ("windowsHide", "pmr does not run on Windows"),
    ("pmx", "PM2's monitoring agent"),
    ("automation", "PM2's monitoring agent"),
    ("trace", "PM2's monitoring agent"),
    ("disable_trace", "PM2's monitoring agent"),
    ("v8", "PM2's monitoring agent"),
    ("event_loop_inspector", "PM2's monitoring agent"),
    ("deep_monitoring", "PM2's monitoring agent"),
    ("io", "PM2's monitoring agent"),
];

#[cfg(test)]
type KeyPairs = &'static [(&'static str, &'static str)];

/// The keys this module knows, for the test that keeps the README's
/// ecosystem reference in step with them: canonical keys, PM2's other
/// spellings (alias, canonical), and PM2 options ignored (key, why).
#[cfg(test)]
pub(crate) fn known_keys() -> (&'static [&'static str], KeyPairs, KeyPairs) {
    (APP_KEYS, ALIASES, IGNORED)
}

/// An app entry as read: the config (with `env_<name>` merged in and a name
/// derived from the script when none is given), the `env_*` names it
/// defines, and its problems.
#[derive(Debug)]
pub(crate) struct ParsedApp {
    pub config: AppConfig,
    pub env_names: Vec<String>,
    pub issues: Vec<Issue>,
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("must be a string, got {}", shown(other))),
    }
}

fn non_empty(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s)
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("must be true or false, got {}", shown(v)))
}

/// A whole number; PM2 reads numbers written as strings too
/// (`"max_restarts": "50"`).
fn whole(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("must be {what}, got {n}")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("must be {what}, got {}", shown(v))),
        other => Err(format!("must be {what}, got {}", shown(other))),
    }
}

/// Where a log file rotates: a size of at least 1K, or 0 / false for never
/// by size (an external logrotate, say).
fn rotation_size(v: &Value) -> Result<u64, String> {
    let off = match v {
        Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.trim() == "0",
        _ => false,
    };
    if off {
        return Ok(0);
    }
    let b = size(v).map_err(|e| format!("{e}, or 0 to turn rotation by size off"))?;
    if b < 1024 {
        return Err(format!(
            "{} is too small to rotate at (a new file for every write); use at least 1K, or 0 to turn rotation by size off",
            shown(v)
        ));
    }
    Ok(b)
}

fn rotate_interval(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if s.parse::<RotateInterval>().is_ok() => Ok(s.clone()),
        Value::Bool(false) => Ok(RotateInterval::None.to_string()),
        other => Err(format!("must be 'daily' or 'none', got {}", shown(other))),
    }
}

fn duration(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(ms) if ms >= 0.0 && ms.is_finite() => Ok(ms.round() as u64),
            _ => Err(format!("must not be negative, got {n}")),
        },
        Value::String(s) => parse_duration_ms(s),
        other => Err(format!(
            "must be a duration like 500ms, 10s, 2m or a number of milliseconds, got {}",
            shown(other)
        )),
    }
}

fn size(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(b) if b >= 1.0 && b.is_finite() => Ok(b as u64),
            _ => Err(format!("must be a positive number of bytes, got {n}")),
        },
        Value::String(s) => parse_size(s),
        other => Err(format!(
            "must be a size like 300M or 1G, or a number of bytes, got {}",
            shown(other)
        )),
    }
}

/// Arguments as PM2 takes them: one string split like a shell would, or a
/// list (numbers allowed, as in `args: ['--port', 3000]`).
fn arg_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => {
            shell_words::split(s).map_err(|e| format!("cannot split '{s}' into arguments: {e}"))
        }
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("list items must be strings, got {}", shown(other))),
            })
            .collect(),
        other => Err(format!(
            "must be a string or a list of strings, got {}",
            shown(other)
        )),
    }
}

fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items.iter().map(string).collect(),
        other => Err(format!(
            "must be a string or a list of strings, got {}",
            shown(other)
        )),
    }
}

fn instances(v: &Value) -> Result<Instances, String> {
    let bad = |got: String| {
        format!("must be a number, 'max', 0 (one per CPU) or -N (CPUs minus N), got {got}")
    };
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(Instances::Count)
            .ok_or_else(|| bad(n.to_string())),
        Value::String(s) => Instances::parse(s).map_err(|_| bad(shown(v))),
        other => Err(bad(shown(other))),
    }
}

fn exec_mode(v: &Value) -> Result<ExecMode, String> {
    match string(v)?.as_str() {
        "fork" | "fork_mode" => Ok(ExecMode::Fork),
        "cluster" | "cluster_mode" => Ok(ExecMode::Cluster),
        _ => Err(format!(
            "{} is not an exec_mode, use 'fork' or 'cluster'",
            shown(v)
        )),
    }
}

/// Environment values are strings to the app; PM2 files write numbers and
/// booleans too (`PORT: 3000`), and objects or lists, which PM2 passes as
/// their JSON text (`null` included).
fn env_map(key: &str, v: &Value, issues: &mut Vec<Issue>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Value::Object(m) = v else {
        issues.push(Issue::error(
            key,
            format!(
                "must be an object of variables, e.g. {{ NODE_ENV: 'production' }}, got {}",
                shown(v)
            ),
        ));
        return out;
    };
    for (k, val) in m {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            issues.push(Issue::error(
                &format!("{key}.{k}"),
                "is not a valid variable name",
            ));
            continue;
        }
        match val {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            other => {
                out.insert(k.clone(), other.to_string());
            }
        }
    }
    out
}

fn var_name(v: &Value) -> Result<String, String> {
    let s = non_empty(v)?;
    if s.contains('=') || s.contains('\0') || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "{} is not a valid environment variable name",
            shown(v)
        ));
    }
    Ok(s)
}

fn account(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
        other => Err(format!("must be a name or a number, got {}", shown(other))),
    }
}

fn port(v: &Value) -> Result<String, String> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(p) if (1..=65535).contains(&p) => Ok(p.to_string()),
        _ => Err(format!("must be a port number (1-65535), got {}", shown(v))),
    }
}

fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map(|(_, c)| *c)
        .unwrap_or(key)
}

fn unknown_key(key: &str) -> Issue {
    let known = APP_KEYS
        .iter()
        .chain(ALIASES.iter().map(|(a, _)| a))
        .copied();
    let suggestion = closest(key, known).map(canonical);
    let message = match suggestion {
        Some(k) => format!("unknown option — did you mean {k}?"),
        None if key.starts_with("env") => {
            "unknown option — environments are written env_<name>, e.g. env_production".into()
        }
        None => "unknown option (see the ecosystem reference in pmr's README)".into(),
    };
    Issue {
        suggestion: suggestion.map(str::to_string),
        unknown: true,
        warning: true,
        ..Issue::error(key, message)
    }
}

fn is_node_script(c: &AppConfig) -> bool {
    let by_interpreter = match c.interpreter.as_deref() {
        None => true,
        Some(i) => matches!(
            std::path::Path::new(i).file_name().and_then(|n| n.to_str()),
            Some("node" | "nodejs")
        ),
    };
    by_interpreter && c.script.as_deref().is_some_and(super::is_node_script)
}

/// Reads one app entry; `env` is the `--env` name, whose `env_<name>` is
/// merged over `env`.
pub(crate) fn parse_app(obj: &Map<String, Value>, env: Option<&str>) -> ParsedApp {
    let mut c = AppConfig::default();
    let mut issues = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut base_env = None;
    let mut envs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut port_env = None;

    for (key, v) in obj {
        let key = key.as_str();
        let canon = canonical(key);
        if let Some((_, reason)) = IGNORED.iter().find(|(k, _)| *k == key) {
            issues.push(Issue::warning(
                key,
                format!("PM2 option ignored by pmr: {reason}"),
            ));
            continue;
        }
        if let Some(first) = seen.insert(canon, key) {
            issues.push(Issue::error(
                key,
                format!("the same option as {first}; keep one of them"),
            ));
            continue;
        }
        let r: Result<(), String> = (|| {
            match canon {
                "name" => {
                    // PM2 takes `name: 42` as the name "42".
                    let n = match v {
                        Value::Number(n) => n.to_string(),
                        other => non_empty(other)?,
                    };
                    validate_name(n.trim()).map_err(|e| e.to_string())?;
                    c.name = Some(n.trim().to_string());
                }
                "script" => c.script = Some(non_empty(v)?),
                "args" => c.args = Some(arg_list(v)?),
                "interpreter" => c.interpreter = Some(non_empty(v)?),
                "interpreter_args" => c.interpreter_args = Some(arg_list(v)?),
                "cwd" => c.cwd = Some(non_empty(v)?),
                "instances" => c.instances = Some(instances(v)?),
                "exec_mode" => c.exec_mode = Some(exec_mode(v)?),
                "env" => base_env = Some(env_map(key, v, &mut issues)),
                k if k.starts_with("env_") && k.len() > 4 => {
                    envs.insert(k[4..].to_string(), env_map(key, v, &mut issues));
                }
                "max_memory_restart" => c.max_memory_restart = Some(size(v)?),
                "max_restarts" => {
                    let n = whole(v, "a whole number, 0 or more")?;
                    c.max_restarts = Some(
                        u32::try_from(n)
                            .map_err(|_| format!("must be a whole number, 0 or more, got {n}"))?,
                    );
                }
                "min_uptime" => c.min_uptime = Some(duration(v)?),
                "restart_delay" => c.restart_delay = Some(duration(v)?),
                "exp_backoff_restart_delay" => c.exp_backoff_restart_delay = Some(duration(v)?),
                "kill_timeout" => c.kill_timeout = Some(duration(v)?),
                "listen_timeout" => c.listen_timeout = Some(duration(v)?),
                "watch_delay" => c.watch_delay = Some(duration(v)?),
                "autorestart" => c.autorestart = Some(boolean(v)?),
                "wait_ready" => c.wait_ready = Some(boolean(v)?),
                "shutdown_with_message" => c.shutdown_with_message = Some(boolean(v)?),
                "merge_logs" => c.merge_logs = Some(boolean(v)?),
                "time" => c.time = Some(boolean(v)?),
                "disable_logs" => c.disable_logs = Some(boolean(v)?),
                "source_map_support" => c.source_map_support = Some(boolean(v)?),
                "pid_file" => c.pid_file = Some(non_empty(v)?),
                "force" => c.force = Some(boolean(v)?),
                "stop_exit_codes" => {
                    let items = match v {
                        Value::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    };
                    let codes = items
                        .iter()
                        .map(|i| {
                            whole(i, "an exit code or a list of them, e.g. [0, 3]").and_then(|n| {
                                i32::try_from(n).map_err(|_| format!("{n} is not an exit code"))
                            })
                        })
                        .collect::<Result<Vec<i32>, String>>()?;
                    c.stop_exit_codes = Some(codes);
                }
                "kill_signal" => {
                    let s = non_empty(v)?;
                    s.parse::<KillSignal>()?;
                    c.kill_signal = Some(s);
                }
                "out_file" => c.out_file = Some(non_empty(v)?),
                "error_file" => c.error_file = Some(non_empty(v)?),
                "log_file" => {
                    c.log_file = Some(match v {
                        Value::Bool(b) => LogFile::Enabled(*b),
                        other => LogFile::Path(non_empty(other).map_err(|_| {
                            format!("must be a path or true, got {}", shown(other))
                        })?),
                    })
                }
                "log_date_format" => {
                    let f = non_empty(v)?;
                    datefmt::to_strftime(&f)?;
                    c.log_date_format = Some(f);
                }
                "log_type" => {
                    let t = string(v)?;
                    t.parse::<LogType>()?;
                    c.log_type = Some(t);
                }
                "max_size" => c.max_size = Some(rotation_size(v)?),
                "retain" => {
                    let n = whole(v, "a number of files, 0 or more")?;
                    c.retain =
                        Some(u32::try_from(n).map_err(|_| {
                            format!("must be a number of files, 0 or more, got {n}")
                        })?);
                }
                "compress" => c.compress = Some(boolean(v)?),
                "rotate_interval" => c.rotate_interval = Some(rotate_interval(v)?),
                "watch" => {
                    c.watch = Some(match v {
                        Value::Bool(b) => Watch::Enabled(*b),
                        other => Watch::Paths(string_list(other).map_err(|_| {
                            format!(
                                "must be true, false, a path or a list of paths, got {}",
                                shown(other)
                            )
                        })?),
                    })
                }
                "ignore_watch" => {
                    let patterns = string_list(v)?;
                    watch::check_ignore(&patterns)?;
                    c.ignore_watch = Some(patterns);
                }
                "cron_restart" => {
                    let s = non_empty(v)?;
                    cron::check_cron(&s)?;
                    c.cron_restart = Some(s);
                }
                "lb" => {
                    let s = string(v)?;
                    s.parse::<crate::spec::LoadBalance>()?;
                    c.lb = Some(s);
                }
                "instance_var" => c.instance_var = Some(var_name(v)?),
                "increment_var" => c.increment_var = Some(var_name(v)?),
                "namespace" => {
                    let ns = non_empty(v)?;
                    if ns.chars().any(char::is_whitespace) || ns == "all" {
                        return Err(format!(
                            "{} is not a usable namespace (no whitespace, not 'all')",
                            shown(v)
                        ));
                    }
                    c.namespace = Some(ns);
                }
                "uid" => c.uid = Some(account(v)?),
                "gid" => c.gid = Some(account(v)?),
                "port" => port_env = Some(port(v)?),
                "health_check" => {
                    let checked =
                        super::health::RawHealth::from_value(v).and_then(|raw| raw.resolve());
                    match checked {
                        Ok(h) => c.health_check = Some(h),
                        Err(e) if e.key.is_empty() => return Err(e.message),
                        Err(e) => {
                            issues.push(Issue::error(&format!("health_check.{}", e.key), e.message))
                        }
                    }
                }
                "max_event_loop_lag" => c.max_event_loop_lag = Some(super::health::max_lag(v)?),
                "notify" => match super::notify::AppNotify::from_value(v) {
                    Ok(n) => c.notify = Some(n),
                    Err((k, m)) if k.is_empty() => return Err(m),
                    Err((k, m)) => issues.push(Issue::error(&format!("notify.{k}"), m)),
                },
                _ => {
                    issues.push(unknown_key(key));
                }
            }
            Ok(())
        })();
        if let Err(message) = r {
            issues.push(Issue::error(key, message));
        }
    }

    let mut merged = base_env.unwrap_or_default();
    if let Some(extra) = env.and_then(|e| envs.get(e)) {
        merged.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(p) = port_env {
        merged.insert("PORT".into(), p);
    }
    if !merged.is_empty() {
        c.env = Some(merged);
    }

    if c.log_date_format.is_some() && c.time.is_none() {
        c.time = Some(true);
    }
    match &c.script {
        None if !seen.contains_key("script") => issues.push(Issue::error(
            "script",
            "missing: the file or command to run, e.g. script: 'server.js'",
        )),
        Some(s) if c.name.is_none() => c.name = Some(default_name(s)),
        _ => {}
    }

    let several = match c.instances {
        Some(Instances::Max(_)) => Some("'max'".to_string()),
        Some(Instances::Count(n)) if n <= 0 || n > 1 => Some(n.to_string()),
        _ => None,
    };
    if let (Some(n), Some(ExecMode::Fork)) = (several, c.exec_mode) {
        if is_node_script(&c) {
            issues.push(Issue::warning(
                "instances",
                format!(
                    "{n} with exec_mode 'fork' starts several processes that each listen on the app's port: all but one will fail with EADDRINUSE if it is a server; use exec_mode 'cluster' to share the port"
                ),
            ));
        }
    }

    ParsedApp {
        config: c,
        env_names: envs.into_keys().collect(),
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, env: Option<&str>) -> ParsedApp {
        match v {
            Value::Object(m) => parse_app(&m, env),
            _ => unreachable!("tests pass objects"),
        }
    }

    fn messages(p: &ParsedApp) -> Vec<String> {
        p.issues
            .iter()
            .map(|i| format!("{}: {}", i.key.as_deref().unwrap_or("-"), i.message))
            .collect()
    }

    #[test]
    fn a_full_pm2_entry_reads_without_problems() {
        let p = parse(
            json!({
                "name": "api", "script": "dist/server.js", "args": "--port 3000 --verbose",
                "node_args": ["--max-old-space-size=4096"], "cwd": "/srv/api",
                "instances": "max", "exec_mode": "cluster_mode",
                "env": {"NODE_ENV": "development", "PORT": 3000, "DEBUG": false},
                "env_production": {"NODE_ENV": "production"},
                "max_memory_restart": "1G", "max_restarts": 5, "min_uptime": "10s",
                "restart_delay": 250, "exp_backoff_restart_delay": 100, "autorestart": true,
                "stop_exit_codes": [0, 3], "kill_timeout": 5000, "kill_signal": "SIGTERM",
                "listen_timeout": "8s", "wait_ready": true, "shutdown_with_message": false,
                "out_file": "~/logs/out.log", "error": "./err.log", "log": true,
                "combine_logs": true, "log_date_format": "%H:%M", "log_type": "json",
                "watch": ["src"], "ignore_watch": "node_modules", "watch_delay": 1000,
                "cron_restart": "0 3 * * *", "instance_var": "INSTANCE_ID",
                "increment_var": "PORT", "namespace": "web", "uid": "www-data", "gid": 33,
                "source_map_support": true
            }),
            Some("production"),
        );
        assert_eq!(messages(&p), Vec::<String>::new());
        let c = &p.config;
        assert_eq!(
            c.args.as_deref(),
            Some(&["--port".to_string(), "3000".into(), "--verbose".into()][..])
        );
        assert_eq!(
            c.interpreter_args,
            Some(vec!["--max-old-space-size=4096".to_string()])
        );
        assert_eq!(c.exec_mode, Some(ExecMode::Cluster));
        assert_eq!(c.max_memory_restart, Some(1 << 30));
        assert_eq!(c.min_uptime, Some(10_000));
        assert_eq!(c.listen_timeout, Some(8_000));
        assert_eq!(c.stop_exit_codes, Some(vec![0, 3]));
        assert_eq!(c.error_file.as_deref(), Some("./err.log"));
        assert_eq!(c.log_file, Some(LogFile::Enabled(true)));
        assert_eq!(c.merge_logs, Some(true));
        assert_eq!(c.time, Some(true), "a date format implies time");
        assert_eq!(c.watch, Some(Watch::Paths(vec!["src".into()])));
        assert_eq!(c.ignore_watch, Some(vec!["node_modules".to_string()]));
        assert_eq!(c.gid.as_deref(), Some("33"));
        let env = c.env.as_ref().unwrap();
        assert_eq!(
            env["NODE_ENV"], "production",
            "env_production wins over env"
        );
        assert_eq!(env["PORT"], "3000");
        assert_eq!(env["DEBUG"], "false");
        assert_eq!(p.env_names, vec!["production".to_string()]);
    }

    #[test]
    fn env_without_the_selected_name_is_the_base_env() {
        let p = parse(
            json!({"script": "a.js", "env": {"A": "1"}, "env_production": {"A": "2"}, "port": 8080}),
            None,
        );
        let env = p.config.env.unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["PORT"], "8080");
        assert_eq!(p.config.name.as_deref(), Some("a"), "name from the script");
    }

    #[test]
    fn unknown_keys_get_the_closest_known_one() {
        let p = parse(
            json!({"script": "a.js", "max_memmory_restart": "1G", "instance": 2, "zzz": 1}),
            None,
        );
        let m = messages(&p);
        assert!(
            m.contains(
                &"max_memmory_restart: unknown option — did you mean max_memory_restart?"
                    .to_string()
            ),
            "{m:?}"
        );
        assert!(
            m.contains(&"instance: unknown option — did you mean instances?".to_string()),
            "{m:?}"
        );
        assert!(
            m.iter().any(|x| x.starts_with("zzz: unknown option (see")),
            "{m:?}"
        );
        let p = parse(json!({"script": "a.js", "nodeArgs": "--x"}), None);
        assert_eq!(
            messages(&p),
            vec!["nodeArgs: unknown option — did you mean interpreter_args?"]
        );
    }

    #[test]
    fn unknown_keys_are_warnings_marked_unknown() {
        let p = parse(json!({"script": "a.js", "junk": 1, "treekill": true}), None);
        let junk = p
            .issues
            .iter()
            .find(|i| i.key.as_deref() == Some("junk"))
            .unwrap();
        assert!(junk.warning && junk.unknown, "{junk:?}");
        let ignored = p
            .issues
            .iter()
            .find(|i| i.key.as_deref() == Some("treekill"))
            .unwrap();
        assert!(
            ignored.warning && !ignored.unknown,
            "a known PM2 option is not unknown"
        );
    }

    #[test]
    fn pm2_spellings_numbers_as_strings_and_env_objects() {
        let p = parse(
            json!({
                "cmd": "a.js", "name": 2024, "max_restarts": "50", "retain": " 3 ",
                "stop_exit_codes": ["0", 3], "min_uptime": "5000", "max_memory_restart": "1048576",
                "instances": "2", "kill_timeout": "3000",
                "env": {"N": 1.5, "B": true, "O": {"a": [1, "x"]}, "L": [1, 2], "Z": null}
            }),
            None,
        );
        assert_eq!(messages(&p), Vec::<String>::new());
        let c = &p.config;
        assert_eq!(c.script.as_deref(), Some("a.js"));
        assert_eq!(c.name.as_deref(), Some("2024"));
        assert_eq!(c.max_restarts, Some(50));
        assert_eq!(c.retain, Some(3));
        assert_eq!(c.stop_exit_codes, Some(vec![0, 3]));
        assert_eq!(c.min_uptime, Some(5000));
        assert_eq!(c.max_memory_restart, Some(1 << 20));
        assert_eq!(c.instances, Some(Instances::Count(2)));
        assert_eq!(c.kill_timeout, Some(3000));
        let env = c.env.as_ref().unwrap();
        assert_eq!(env["N"], "1.5");
        assert_eq!(env["B"], "true");
        assert_eq!(
            env["O"], r#"{"a":[1,"x"]}"#,
            "objects as JSON, as PM2 passes them"
        );
        assert_eq!(env["L"], "[1,2]");
        assert_eq!(env["Z"], "null");
        let p = parse(json!({"script": "a.js", "max_restarts": "lots"}), None);
        assert_eq!(
            messages(&p),
            vec!["max_restarts: must be a whole number, 0 or more, got 'lots'"]
        );
    }

    #[test]
    fn wrong_types_and_units_say_what_works() {
        let p = parse(
            json!({
                "script": "a.js", "max_memory_restart": "1GB", "min_uptime": "10 parsecs",
                "autorestart": "yes", "instances": "lots", "exec_mode": "threads",
                "max_restarts": -1, "kill_signal": "SIGNOPE",
                "cron_restart": "0 25 * * *", "log_type": "xml", "stop_exit_codes": "zero",
                "log_date_format": "%Y %Q", "ignore_watch": ["*.log", "src/["]
            }),
            None,
        );
        let m = messages(&p);
        for want in [
            "max_memory_restart: '1GB' is not a size, use 1G or 1024M",
            "min_uptime: '10 parsecs' is not a duration",
            "autorestart: must be true or false, got 'yes'",
            "instances: must be a number, 'max'",
            "exec_mode: 'threads' is not an exec_mode, use 'fork' or 'cluster'",
            "max_restarts: must be a whole number, 0 or more, got -1",
            "kill_signal: 'SIGNOPE' is not a signal name",
            "cron_restart: '0 25 * * *' is not a cron pattern: hour '25'",
            "log_type: 'xml' is not a log type",
            "stop_exit_codes: must be an exit code or a list of them",
            "log_date_format: '%Y %Q' is not a date format",
            "ignore_watch: 'src/[' is not a glob pattern",
        ] {
            assert!(m.iter().any(|x| x.starts_with(want)), "{want}\n{m:#?}");
        }
        assert_eq!(m.len(), 12, "{m:#?}");
    }

    #[test]
    fn rotation_options() {
        let p = parse(
            json!({"script": "a.js", "max_size": "50M", "retain": 3, "compress": true, "rotate_interval": "daily"}),
            None,
        );
        assert_eq!(messages(&p), Vec::<String>::new());
        let c = &p.config;
        assert_eq!(c.max_size, Some(50 << 20));
        assert_eq!(c.retain, Some(3));
        assert_eq!(c.compress, Some(true));
        assert_eq!(c.rotate_interval.as_deref(), Some("daily"));
        for off in [json!(0), json!(false), json!("0")] {
            let p = parse(json!({"script": "a.js", "max_size": off}), None);
            assert_eq!(p.config.max_size, Some(0), "{off}");
        }
        let p = parse(
            json!({"script": "a.js", "max_size": "10", "retain": -2, "compress": "yes", "rotate_interval": "hourly", "max_sise": "1M"}),
            None,
        );
        let m = messages(&p);
        for want in [
            "max_size: '10' is too small to rotate at",
            "retain: must be a number of files, 0 or more, got -2",
            "compress: must be true or false, got 'yes'",
            "rotate_interval: must be 'daily' or 'none', got 'hourly'",
            "max_sise: unknown option — did you mean max_size?",
        ] {
            assert!(m.iter().any(|x| x.starts_with(want)), "{want}\n{m:#?}");
        }
        let p = parse(json!({"script": "a.js", "max_size": "1GB"}), None);
        assert!(
            messages(&p)[0].ends_with("use 1G or 1024M, or 0 to turn rotation by size off"),
            "{:?}",
            messages(&p)
        );
    }

    #[test]
    fn missing_script_and_aliases_given_twice() {
        let p = parse(
            json!({"name": "w", "node_args": "-x", "interpreter_args": "-y"}),
            None,
        );
        let m = messages(&p);
        assert!(
            m.contains(
                &"script: missing: the file or command to run, e.g. script: 'server.js'"
                    .to_string()
            ),
            "{m:?}"
        );
        assert!(m.iter().any(|x| x.contains("the same option as")), "{m:?}");
    }

    #[test]
    fn pm2_only_options_warn_and_are_ignored() {
        let p = parse(
            json!({"script": "a.js", "vizion": false, "treekill": false}),
            None,
        );
        assert!(p.issues.iter().all(|i| i.warning), "{:?}", p.issues);
        assert_eq!(p.issues.len(), 2);
    }

    #[test]
    fn several_fork_instances_of_a_node_server_warn() {
        let p = parse(
            json!({"script": "server.js", "instances": "max", "exec_mode": "fork"}),
            None,
        );
        assert_eq!(p.issues.len(), 1);
        assert!(p.issues[0].warning);
        assert!(
            p.issues[0]
                .message
                .starts_with("'max' with exec_mode 'fork'"),
            "{:?}",
            p.issues
        );
        for quiet in [
            json!({"script": "server.js", "instances": "max", "exec_mode": "cluster"}),
            json!({"script": "server.js", "instances": 1, "exec_mode": "fork"}),
            json!({"script": "worker.py", "instances": 4, "exec_mode": "fork"}),
        ] {
            assert!(parse(quiet, None).issues.is_empty());
        }
    }
}
