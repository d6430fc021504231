//! Turning what the user wrote into something that can run: finding the
//! script, choosing the interpreter, counting instances, merging the
//! environment. Every refusal here happens before anything is registered.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::*;
use crate::error::{Error, Result};

/// `instances` as written: a count (0 and negatives relative to the CPUs) or "max".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Instances {
    Count(i64),
    Max(MaxKeyword),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxKeyword {
    Max,
}

impl Instances {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Instances::Max(MaxKeyword::Max));
        }
        s.trim()
            .parse::<i64>()
            .map(Instances::Count)
            .map_err(|_| format!("'{s}' is not an instance count, use a number, 0, -1 or max"))
    }

    /// `max` and 0 mean one per CPU, a negative n means CPUs minus n, never below 1.
    pub fn count(self, cpus: usize) -> u32 {
        let cpus = cpus.max(1) as i64;
        let n = match self {
            Instances::Max(_) | Instances::Count(0) => cpus,
            Instances::Count(n) if n < 0 => cpus + n,
            Instances::Count(n) => n,
        };
        n.clamp(1, u32::MAX as i64) as u32
    }
}

/// `watch` as written: `true` watches the app's cwd, paths watch those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Watch {
    Enabled(bool),
    Paths(Vec<String>),
}

/// `log_file` as written: a path, or PM2's `true` for `<logs>/<name>.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogFile {
    Enabled(bool),
    Path(String),
}

/// An app as the user wrote it, with PM2's key names. Everything is optional;
/// `resolve` applies the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppConfig {
    pub name: Option<String>,
    pub script: Option<String>,
    pub args: Option<Vec<String>>,
    pub interpreter: Option<String>,
    #[serde(alias = "node_args")]
    pub interpreter_args: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub instances: Option<Instances>,
    pub exec_mode: Option<ExecMode>,
    pub env: Option<BTreeMap<String, String>>,
    pub max_memory_restart: Option<u64>,
    pub max_restarts: Option<u32>,
    pub min_uptime: Option<u64>,
    pub restart_delay: Option<u64>,
    pub exp_backoff_restart_delay: Option<u64>,
    pub autorestart: Option<bool>,
    pub stop_exit_codes: Option<Vec<i32>>,
    pub kill_timeout: Option<u64>,
    pub kill_signal: Option<String>,
    pub listen_timeout: Option<u64>,
    pub wait_ready: Option<bool>,
    pub shutdown_with_message: Option<bool>,
    pub out_file: Option<String>,
    pub error_file: Option<String>,
    pub log_file: Option<LogFile>,
    pub merge_logs: Option<bool>,
    pub time: Option<bool>,
    pub log_date_format: Option<String>,
    pub log_type: Option<String>,
    /// Log rotation overrides: size in bytes (0: off), files kept, gzip,
    /// `daily` or `none`.
    pub max_size: Option<u64>,
    pub retain: Option<u32>,
    pub compress: Option<bool>,
    pub rotate_interval: Option<String>,
    /// PM2's switch to send both streams to /dev/null.
    pub disable_logs: Option<bool>,
    pub instance_var: Option<String>,
    pub increment_var: Option<String>,
    pub namespace: Option<String>,
    pub watch: Option<Watch>,
    pub ignore_watch: Option<Vec<String>>,
    pub watch_delay: Option<u64>,
    pub cron_restart: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    /// Node's `--enable-source-maps` for the app.
    pub source_map_support: Option<bool>,
    /// `health_check: {...}`, checked when it was read.
    #[serde(default)]
    pub health_check: Option<super::health::HealthCheck>,
    /// `max_event_loop_lag`, in milliseconds.
    #[serde(default)]
    pub max_event_loop_lag: Option<u64>,
    /// `notify: {...}`, checked when it was read.
    #[serde(default)]
    pub notify: Option<super::notify::AppNotify>,
    /// `-p/--pid`: the file each instance's pid is written to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    /// `force: true` (`-f`): `pmr start` starts a copy of a running app
    /// under a free name instead of restarting it; only start reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// How a cluster app's connections reach its workers (`round-robin`...).
    pub lb: Option<String>,
}

/// The CPUs of this machine, the usual `ResolveContext::cpus`.
pub fn host_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Where and on whose behalf an app is resolved.
pub struct ResolveContext<'a> {
    /// Relative `script` and `cwd` resolve against this directory (the
    /// caller's working directory, or the ecosystem file's directory).
    pub base_dir: &'a Path,
    /// The environment of the CLI call or API caller.
    pub caller_env: &'a BTreeMap<String, String>,
    /// The `node` that runs pmr; `.js` apps run with it.
    pub node: &'a Path,
    /// The CPU count `instances: max` and negative instance counts are
    /// taken from.
    pub cpus: usize,
    /// The home's log directory, for PM2's `log_file: true`.
    pub log_dir: &'a Path,
}

/// A resolved app and what the user should be told about how it was resolved.
#[derive(Debug)]
pub struct Resolved {
    pub spec: AppSpec,
    pub notices: Vec<String>,
}

/// Variables that describe the caller's own place in a process tree; passing
/// them on would make an app believe it is a cluster worker of someone else.
const INHERITED_ENV_BLOCKLIST: &[&str] = &[
    "NODE_UNIQUE_ID",
    "NODE_CHANNEL_FD",
    "NODE_CHANNEL_SERIALIZATION_MODE",
    "pm_id",
    "PMR_ID",
    "PMR_APP_NAME",
];

/// The part of a caller's environment an app inherits.
pub(crate) fn inherited_env(caller_env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    caller_env
        .iter()
        .filter(|(k, _)| !INHERITED_ENV_BLOCKLIST.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn is_node_script(script: &str) -> bool {
    let ext = Path::new(script)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    matches!(ext, "js" | "cjs" | "mjs")
}

fn is_node_interpreter(p: &Path) -> bool {
    matches!(
        p.file_name().and_then(|n| n.to_str()),
        Some("node" | "nodejs")
    )
}

/// `PATH` lookup of an executable.
fn which(program: &str, path_var: Option<&str>) -> Option<PathBuf> {
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .map(|dir| dir.join(program))
        .find(|p| is_executable_file(p))
}

/// Whether a file starts with a `#!` line that runs node
/// (`#!/usr/bin/env node`, `#!/usr/bin/node --flag`).
fn runs_with_node(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(p)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let first = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    first.starts_with(b"#!")
        && String::from_utf8_lossy(&first[2..])
            .split_whitespace()
            .take(2)
            .any(|w| {
                matches!(
                    Path::new(w).file_name().and_then(|f| f.to_str()),
                    Some("node" | "nodejs")
                )
            })
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `p` against `base`, with a leading `~/` meaning the caller's home (PM2
/// users write log paths that way).
fn absolute_in(base: &Path, p: &str, home: Option<&str>) -> PathBuf {
    if let (Some(rest), Some(h)) = (p.strip_prefix("~/"), home) {
        return Path::new(h).join(rest);
    }
    absolute(base, p)
}

/// `p` against `base`, with `.` and `..` resolved by the text alone (as
/// Node's path.resolve does), so that `describe` and log paths read well.
fn absolute(base: &Path, p: &str) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in base.join(p).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A user or group given by name must exist; a number is taken as it is.
fn check_account(key: &str, v: &str) -> Result<()> {
    if v.parse::<u32>().is_ok() {
        return Ok(());
    }
    let found = if key == "uid" {
        nix::unistd::User::from_name(v).map(|u| u.is_some())
    } else {
        nix::unistd::Group::from_name(v).map(|g| g.is_some())
    };
    match found {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Config(format!(
            "{key}: no {} named '{v}' on this machine",
            if key == "uid" { "user" } else { "group" }
        ))),
        Err(e) => Err(Error::Config(format!("{key}: cannot look up '{v}': {e}"))),
    }
}

/// The name an app gets when none is given: the script's file name without
/// its extension (`server.js` → `server`, `npm` → `npm`).
pub fn default_name(script: &str) -> String {
    let p = Path::new(script);
    p.file_stem()
        .or_else(|| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "app".to_string())
}

impl AppConfig {
    pub fn resolve(&self, ctx: &ResolveContext<'_>) -> Result<Resolved> {
        let mut notices = Vec::new();
        let script_arg = self
            .script
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::Config("no script given: pmr start <script|command>".into()))?;

        let home = ctx.caller_env.get("HOME").map(String::as_str);
        let cwd = match &self.cwd {
            Some(c) => absolute_in(ctx.base_dir, c, home),
            None => ctx.base_dir.to_path_buf(),
        };
        if !cwd.is_dir() {
            return Err(Error::Config(format!(
                "cwd {} does not exist or is not a directory",
                cwd.display()
            )));
        }

        // PM2 runs a command line with spaces through bash -c (`pmr start
        // "cc hello.c && ./a.out"`); a file whose name has spaces stays a file.
        let shell_line = self.interpreter.is_none()
            && script_arg.trim().contains(char::is_whitespace)
            && !absolute_in(&cwd, script_arg, home).exists();
        let name = match &self.name {
            Some(n) if !n.trim().is_empty() => n.trim().to_string(),
            Some(_) => return Err(Error::Config("name must not be empty".into())),
            None => {
                let first = script_arg.split_whitespace().next().unwrap_or(script_arg);
                let n = default_name(if shell_line { first } else { script_arg });
                notices.push(format!("no --name given: the app is named '{n}'"));
                n
            }
        };
        validate_name(&name)?;

        let app_env = self.env.clone().unwrap_or_default();
        let mut env = inherited_env(ctx.caller_env);
        env.extend(app_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let path_var = env.get("PATH").map(String::as_str);

        let interpreter: Option<PathBuf> = match self.interpreter.as_deref() {
            _ if shell_line => None,
            Some("none") => None,
            Some(i) if i == "node" || i == "nodejs" => Some(ctx.node.to_path_buf()),
            Some(i) if i.contains('/') => {
                let p = absolute(&cwd, i);
                if !is_executable_file(&p) {
                    return Err(Error::Config(format!(
                        "interpreter {} not found or not executable",
                        p.display()
                    )));
                }
                Some(p)
            }
            Some(i) => Some(
                which(i, path_var)
                    .ok_or_else(|| Error::Config(format!("interpreter '{i}' not found in PATH")))?,
            ),
            None => match Path::new(script_arg).extension().and_then(|e| e.to_str()) {
                Some("js" | "cjs" | "mjs") => Some(ctx.node.to_path_buf()),
                Some("sh") => Some(which("bash", path_var).unwrap_or_else(|| "/bin/sh".into())),
                Some("py") => Some(which("python3", path_var).ok_or_else(|| {
                    Error::Config(format!(
                        "{script_arg} needs python3, which is not in PATH; pass --interpreter"
                    ))
                })?),
                _ => None,
            },
        };

        let mut interpreter = interpreter;
        let mut shell_args = Vec::new();
        let candidate = absolute_in(&cwd, script_arg, home);
        let script = if shell_line {
            shell_args = vec!["-c".to_string(), script_arg.trim().to_string()];
            which("bash", path_var).unwrap_or_else(|| "/bin/sh".into())
        } else if candidate.exists() {
            if interpreter.is_none()
                && self.interpreter.is_none()
                && candidate.is_file()
                && candidate.extension().is_none()
                && (runs_with_node(&candidate) || !is_executable_file(&candidate))
            {
                // A package bin (`#!/usr/bin/env node`, e.g. next's
                // dist/bin/next) is a Node.js app, so it can be clustered;
                // PM2 also runs an extension-less plain file with node.
                interpreter = Some(ctx.node.to_path_buf());
            }
            if !candidate.is_file() {
                return Err(Error::Config(format!(
                    "script {} is not a file",
                    candidate.display()
                )));
            }
            if interpreter.is_none() && !is_executable_file(&candidate) {
                return Err(Error::Config(format!(
                    "script {} is not executable (chmod +x it, or pass --interpreter)",
                    candidate.display()
                )));
            }
            candidate
        } else if interpreter.is_none() && !script_arg.contains('/') {
            which(script_arg, path_var).ok_or_else(|| {
                Error::Config(format!(
                    "script not found: {script_arg} (neither {} nor a command in PATH)",
                    candidate.display()
                ))
            })?
        } else {
            return Err(Error::Config(format!(
                "script not found: {}",
                candidate.display()
            )));
        };

        let node = interpreter.as_deref().is_some_and(is_node_interpreter)
            || interpreter.as_deref() == Some(ctx.node);

        let instances = self.instances.map(|i| i.count(ctx.cpus)).unwrap_or(1);
        if !node && instances > 1 {
            notices.push(format!(
                "{name}: {instances} instances of {}, which is not a Node.js app, run in fork mode and cannot share a port: give each its own (e.g. --increment-var PORT)",
                script.display()
            ));
        }
        let exec_mode = match (self.exec_mode, self.instances) {
            (Some(ExecMode::Cluster), _) if !node => {
                return Err(Error::Config(format!(
                    "cluster mode needs a Node.js app, and {} does not run under node; use exec_mode fork (each instance then needs its own port)",
                    script.display()
                )))
            }
            (Some(m), _) => m,
            (None, Some(_)) if node => {
                if instances > 1 {
                    notices.push(format!(
                        "{instances} instances of a Node.js app: running in cluster mode (all instances share the app's ports)"
                    ));
                }
                ExecMode::Cluster
            }
            (None, _) => ExecMode::Fork,
        };

        // The signal's own message names it ('SIGNOPE' is not a signal name).
        let kill_signal: KillSignal = match &self.kill_signal {
            Some(s) => s.parse().map_err(Error::Config)?,
            None => KillSignal::default(),
        };

        for (key, v) in [("uid", &self.uid), ("gid", &self.gid)] {
            if let Some(v) = v {
                check_account(key, v)?;
            }
        }

        let mut interpreter_args = self.interpreter_args.clone().unwrap_or_default();
        // As PM2 does, a source map beside the script turns source maps on
        // (`source_map_support: false` / --disable-source-map-support: not).
        let map_beside = {
            let mut m = script.clone().into_os_string();
            m.push(".map");
            PathBuf::from(m)
        };
        let auto_maps = self.source_map_support.is_none() && map_beside.is_file();
        if node
            && (self.source_map_support == Some(true) || auto_maps)
            && !interpreter_args.iter().any(|a| a == "--enable-source-maps")
        {
            if auto_maps {
                notices.push(format!(
                    "{name}: {} is there, so the app runs with --enable-source-maps (--disable-source-map-support to not)",
                    map_beside.display()
                ));
            }
            interpreter_args.push("--enable-source-maps".into());
        }

        let log_path = |p: &Option<String>| p.as_deref().map(|p| absolute_in(&cwd, p, home));
        let discard = self.disable_logs == Some(true);
        let logs = LogSpec {
            out_file: if discard {
                Some("/dev/null".into())
            } else {
                log_path(&self.out_file)
            },
            error_file: if discard {
                Some("/dev/null".into())
            } else {
                log_path(&self.error_file)
            },
            log_file: match &self.log_file {
                _ if discard => None,
                None | Some(LogFile::Enabled(false)) => None,
                Some(LogFile::Enabled(true)) => Some(ctx.log_dir.join(format!("{name}.log"))),
                Some(LogFile::Path(p)) => Some(absolute_in(&cwd, p, home)),
            },
            merge_logs: self.merge_logs.unwrap_or(false),
            time: self.time.unwrap_or(false),
            log_date_format: self
                .log_date_format
                .as_deref()
                .map(datefmt::to_strftime)
                .transpose()
                .map_err(|e| Error::Config(format!("log_date_format: {e}")))?,
            log_type: typed("log_type", &self.log_type)?,
            max_size: self.max_size,
            retain: self.retain,
            compress: self.compress,
            rotate_interval: typed("rotate_interval", &self.rotate_interval)?,
        };
        let ignore_watch = self.ignore_watch.clone().unwrap_or_default();
        super::watch::check_ignore(&ignore_watch)
            .map_err(|e| Error::Config(format!("ignore_watch: {e}")))?;
        let watch = match &self.watch {
            None | Some(Watch::Enabled(false)) => Vec::new(),
            Some(Watch::Enabled(true)) => vec![cwd.clone()],
            Some(Watch::Paths(ps)) => ps.iter().map(|p| absolute_in(&cwd, p, home)).collect(),
        };
        let pid_file = self.pid_file.as_deref().map(|p| absolute_in(&cwd, p, home));
        let spec = AppSpec {
            name,
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            script,
            args: shell_args
                .into_iter()
                .chain(self.args.clone().unwrap_or_default())
                .collect(),
            interpreter,
            interpreter_args,
            node,
            cwd,
            env,
            app_env,
            instances,
            instances_max: matches!(
                self.instances,
                Some(Instances::Max(_) | Instances::Count(0))
            ),
            exec_mode,
            autorestart: self.autorestart.unwrap_or(true),
            max_restarts: self.max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS),
            min_uptime_ms: self.min_uptime.unwrap_or(DEFAULT_MIN_UPTIME_MS),
            restart_delay_ms: self.restart_delay.unwrap_or(0),
            exp_backoff_restart_delay_ms: self.exp_backoff_restart_delay,
            stop_exit_codes: self.stop_exit_codes.clone().unwrap_or_default(),
            kill_timeout_ms: self.kill_timeout.unwrap_or(DEFAULT_KILL_TIMEOUT_MS),
            kill_signal,
            listen_timeout_ms: self.listen_timeout.unwrap_or(DEFAULT_LISTEN_TIMEOUT_MS),
            wait_ready: self.wait_ready.unwrap_or(false),
            shutdown_with_message: self.shutdown_with_message.unwrap_or(false),
            max_memory_restart: self.max_memory_restart,
            instance_var: self
                .instance_var
                .clone()
                .unwrap_or_else(|| DEFAULT_INSTANCE_VAR.into()),
            increment_var: self.increment_var.clone(),
            logs,
            watch,
            ignore_watch,
            watch_delay_ms: self.watch_delay,
            cron_restart: self.cron_restart.clone(),
            uid: self.uid.clone(),
            gid: self.gid.clone(),
            health_check: self.health_check.clone(),
            max_event_loop_lag_ms: self.max_event_loop_lag,
            notify: self.notify.clone(),
            pid_file,
            lb: typed("lb", &self.lb)?.unwrap_or_default(),
        };
        Ok(Resolved { spec, notices })
    }
}

/// The daemon's own check of a spec it receives: a client may be buggy or
/// the files may have gone since the client resolved them.
pub fn check_runnable(spec: &AppSpec) -> Result<()> {
    validate_name(&spec.name)?;
    if !spec.cwd.is_dir() {
        return Err(Error::Config(format!(
            "{}: cwd {} does not exist or is not a directory",
            spec.name,
            spec.cwd.display()
        )));
    }
    if !spec.script.is_file() {
        return Err(Error::Config(format!(
            "{}: script not found: {}",
            spec.name,
            spec.script.display()
        )));
    }
    if let Some(i) = &spec.interpreter {
        if !is_executable_file(i) {
            return Err(Error::Config(format!(
                "{}: interpreter {} not found or not executable",
                spec.name,
                i.display()
            )));
        }
    } else if !is_executable_file(&spec.script) {
        return Err(Error::Config(format!(
            "{}: {} is not executable",
            spec.name,
            spec.script.display()
        )));
    }
    if spec.instances == 0 {
        return Err(Error::Config(format!(
            "{}: instances must be at least 1",
            spec.name
        )));
    }
    Ok(())
}

/// An option written as a word, parsed into its type where the spec is built.
fn typed<T: std::str::FromStr<Err = String>>(key: &str, v: &Option<String>) -> Result<Option<T>> {
    v.as_deref()
        .map(|s| s.parse().map_err(|e| Error::Config(format!("{key}: {e}"))))
        .transpose()
}

/// Names become file names and CLI targets: no path separators, no
/// whitespace, not a number (that would read as an id), not `all`.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Config(format!("invalid app name '{name}': {why}")));
    if name.contains('/') || name.contains('\0') {
        return bad("it must not contain '/'");
    }
    if name.chars().any(char::is_whitespace) {
        return bad("it must not contain whitespace");
    }
    if name == "all" || name.starts_with('-') || name == "." || name == ".." {
        return bad("it is reserved");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        env: BTreeMap<String, String>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.js"), "").unwrap();
        std::fs::write(dir.path().join("job.sh"), "echo hi").unwrap();
        std::fs::write(dir.path().join("data.txt"), "x").unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            format!("{}:/usr/bin:/bin", bin.display()),
        );
        env.insert("NODE_UNIQUE_ID".to_string(), "7".to_string());
        env.insert("HOME".to_string(), "/root".to_string());
        Fixture { dir, env }
    }

    fn resolve(f: &Fixture, c: AppConfig) -> Result<Resolved> {
        c.resolve(&ResolveContext {
            base_dir: f.dir.path(),
            caller_env: &f.env,
            node: Path::new("/opt/node/bin/node"),
            cpus: 4,
            log_dir: Path::new("/home/pmr/logs"),
        })
    }

    fn cfg(script: &str) -> AppConfig {
        AppConfig {
            script: Some(script.into()),
            ..Default::default()
        }
    }

    #[test]
    fn js_runs_with_callers_node_and_gets_default_name() {
        let f = fixture();
        let r = resolve(&f, cfg("server.js")).unwrap();
        assert_eq!(r.spec.name, "server");
        assert_eq!(
            r.spec.interpreter.as_deref(),
            Some(Path::new("/opt/node/bin/node"))
        );
        assert!(r.spec.node);
        assert_eq!(r.spec.exec_mode, ExecMode::Fork);
        assert_eq!(r.spec.script, f.dir.path().join("server.js"));
        assert!(r.notices[0].contains("named 'server'"));
        assert!(!r.spec.env.contains_key("NODE_UNIQUE_ID"));
        assert_eq!(r.spec.env["HOME"], "/root");
    }

    #[test]
    fn commands_are_found_in_path() {
        let f = fixture();
        let r = resolve(&f, cfg("tool")).unwrap();
        assert_eq!(r.spec.script, f.dir.path().join("bin/tool"));
        assert!(r.spec.interpreter.is_none());
        assert!(!r.spec.node);
    }

    #[test]
    fn shell_scripts_run_with_bash() {
        let f = fixture();
        let r = resolve(&f, cfg("job.sh")).unwrap();
        let interp = r.spec.interpreter.unwrap();
        assert!(interp.ends_with("bash") || interp.ends_with("sh"));
    }

    #[test]
    fn refusals_name_the_problem() {
        let f = fixture();
        let e = resolve(&f, cfg("missing.js")).unwrap_err();
        assert!(e.to_string().starts_with("script not found:"), "{e}");
        let e = resolve(&f, cfg("nosuchcommand")).unwrap_err();
        assert!(e.to_string().contains("nor a command in PATH"), "{e}");
        let e = resolve(&f, cfg("data.txt")).unwrap_err();
        assert!(e.to_string().contains("not executable"), "{e}");
        let mut c = cfg("server.js");
        c.cwd = Some("nope".into());
        let e = resolve(&f, c).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let mut c = cfg("server.js");
        c.kill_signal = Some("SIGNOPE".into());
        assert!(resolve(&f, c).is_err());
    }

    #[test]
    fn instances_choose_cluster_for_node_only() {
        let f = fixture();
        let mut c = cfg("server.js");
        c.instances = Some(Instances::parse("max").unwrap());
        let r = resolve(&f, c).unwrap();
        assert_eq!((r.spec.instances, r.spec.exec_mode), (4, ExecMode::Cluster));
        assert!(r.notices.iter().any(|n| n.contains("cluster mode")));

        let mut c = cfg("tool");
        c.instances = Some(Instances::Count(3));
        let r = resolve(&f, c).unwrap();
        assert_eq!((r.spec.instances, r.spec.exec_mode), (3, ExecMode::Fork));

        let mut c = cfg("tool");
        c.exec_mode = Some(ExecMode::Cluster);
        assert!(resolve(&f, c).is_err());
    }

    #[test]
    fn instance_counts() {
        assert_eq!(Instances::parse("max").unwrap().count(8), 8);
        assert_eq!(Instances::Count(0).count(8), 8);
        assert_eq!(Instances::Count(-1).count(8), 7);
        assert_eq!(Instances::Count(-20).count(8), 1);
        assert_eq!(Instances::Count(3).count(8), 3);
        assert!(Instances::parse("lots").is_err());
    }

    #[test]
    fn app_env_overrides_caller_env() {
        let f = fixture();
        let mut c = cfg("server.js");
        c.env = Some(BTreeMap::from([("HOME".to_string(), "/srv".to_string())]));
        let r = resolve(&f, c).unwrap();
        assert_eq!(r.spec.env["HOME"], "/srv");
    }

    #[test]
    fn pm2_log_watch_and_source_map_options() {
        let f = fixture();
        let mut c = cfg("server.js");
        c.name = Some("api".into());
        c.log_file = Some(LogFile::Enabled(true));
        c.out_file = Some("~/out.log".into());
        c.watch = Some(Watch::Enabled(true));
        c.source_map_support = Some(true);
        let s = resolve(&f, c).unwrap().spec;
        assert_eq!(
            s.logs.log_file.as_deref(),
            Some(Path::new("/home/pmr/logs/api.log"))
        );
        assert_eq!(s.logs.out_file.as_deref(), Some(Path::new("/root/out.log")));
        assert_eq!(s.watch, vec![f.dir.path().to_path_buf()]);
        assert_eq!(s.interpreter_args, vec!["--enable-source-maps".to_string()]);

        let mut c = cfg("server.js");
        c.disable_logs = Some(true);
        c.out_file = Some("out.log".into());
        c.watch = Some(Watch::Paths(vec!["src".into()]));
        let s = resolve(&f, c).unwrap().spec;
        assert_eq!(s.logs.out_file.as_deref(), Some(Path::new("/dev/null")));
        assert_eq!(s.logs.error_file.as_deref(), Some(Path::new("/dev/null")));
        assert_eq!(s.watch, vec![f.dir.path().join("src")]);
    }

    #[test]
    fn relative_paths_are_made_absolute_and_clean() {
        assert_eq!(
            absolute(Path::new("/srv/app/config"), "../dist/./server.js"),
            PathBuf::from("/srv/app/dist/server.js")
        );
        assert_eq!(
            absolute(Path::new("/srv"), "/opt/x.js"),
            PathBuf::from("/opt/x.js")
        );
        assert_eq!(absolute(Path::new("/"), "../x"), PathBuf::from("/x"));
    }

    #[test]
    fn unknown_users_and_groups_are_refused() {
        let f = fixture();
        let mut c = cfg("server.js");
        c.uid = Some("root".into());
        c.gid = Some("0".into());
        assert!(resolve(&f, c).is_ok());
        let mut c = cfg("server.js");
        c.uid = Some("no-such-user-pmr".into());
        let e = resolve(&f, c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "uid: no user named 'no-such-user-pmr' on this machine"
        );
    }

    #[test]
    fn names() {
        assert!(validate_name("api").is_ok());
        assert!(validate_name("api-v2.1").is_ok());
        // PM2 files name apps 2024 too; an id of that number wins as a target.
        assert!(validate_name("12").is_ok());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("all").is_err());
        assert_eq!(default_name("/x/server.js"), "server");
        assert_eq!(default_name("npm"), "npm");
    }
}
