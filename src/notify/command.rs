//! Runs a hook command (an alert's `notify.command`, a health check's
//! `command`): `sh -c` in its own process group, with an explicit
//! environment, optional input on stdin, a deadline after which the whole
//! group is killed, and the app's user when the daemon is root and the app
//! has a `uid` (a hook never runs as root for an app that does not).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::spawn::Credentials;

/// What is kept of a hook's output: enough for one line in a log.
const OUTPUT_LIMIT: usize = 4096;

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookExit {
    pub success: bool,
    /// "exit code 1", "killed by SIGKILL".
    pub how: String,
    /// The first line of what it printed (stderr first).
    pub output: String,
}

impl HookExit {
    pub fn describe(&self) -> String {
        if self.output.is_empty() {
            self.how.clone()
        } else {
            format!("{}: {}", self.how, self.output)
        }
    }
}

pub struct Hook<'a> {
    pub command: &'a str,
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub stdin: Option<&'a [u8]>,
    pub credentials: Option<&'a Credentials>,
    pub timeout: Duration,
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

pub async fn run(h: Hook<'_>) -> Result<HookExit, String> {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(h.command)
        .current_dir(h.cwd)
        .env_clear()
        .envs(h.env)
        .stdin(if h.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // Only root can switch users; anyone else runs hooks as themselves.
    if let Some(c) = h.credentials.filter(|_| nix::unistd::geteuid().is_root()) {
        cmd.uid(c.uid).gid(c.gid);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", h.command))?;
    let pgid = child.id();
    if let (Some(input), Some(mut stdin)) = (h.stdin, child.stdin.take()) {
        let input = input.to_vec();
        // A hook that does not read its input must not stall us.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let read = |p: Option<tokio::process::ChildStdout>| async move {
        let mut buf = Vec::new();
        if let Some(p) = p {
            let _ = p.take(OUTPUT_LIMIT as u64).read_to_end(&mut buf).await;
        }
        buf
    };
    let read_err = |p: Option<tokio::process::ChildStderr>| async move {
        let mut buf = Vec::new();
        if let Some(p) = p {
            let _ = p.take(OUTPUT_LIMIT as u64).read_to_end(&mut buf).await;
        }
        buf
    };
    let waited = tokio::time::timeout(h.timeout, async {
        let (o, e, status) = tokio::join!(read(out.take()), read_err(err.take()), child.wait());
        (o, e, status)
    })
    .await;
    match waited {
        Ok((o, e, status)) => {
            let status = status.map_err(|e| format!("cannot wait for {}: {e}", h.command))?;
            let how = match (
                status.code(),
                std::os::unix::process::ExitStatusExt::signal(&status),
            ) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("killed by signal {s}"),
                (None, None) => "ended".into(),
            };
            let mut output = first_line(&e);
            if output.is_empty() {
                output = first_line(&o);
            }
            Ok(HookExit {
                success: status.success(),
                how,
                output,
            })
        }
        Err(_) => {
            if let Some(pg) = pgid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pg as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            Ok(HookExit {
                success: false,
                how: format!("timed out after {} ms", h.timeout.as_millis()),
                output: String::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("X".into(), "42".into()),
        ])
    }

    #[tokio::test]
    async fn input_env_exit_and_timeout() {
        let e = env();
        let hook = |command: &'static str, timeout_ms: u64| Hook {
            command,
            cwd: Path::new("/"),
            env: &e,
            stdin: Some(b"{\"event\":\"crash\"}"),
            credentials: None,
            timeout: Duration::from_millis(timeout_ms),
        };
        let r = run(hook("grep -q crash && echo \"x=$X\"", 5000))
            .await
            .unwrap();
        assert!(r.success, "{r:?}");
        assert_eq!(r.output, "x=42");
        let r = run(hook("echo broken >&2; exit 3", 5000)).await.unwrap();
        assert_eq!(
            (r.success, r.how.as_str(), r.output.as_str()),
            (false, "exit code 3", "broken")
        );
        let t = std::time::Instant::now();
        let r = run(hook("sleep 30", 300)).await.unwrap();
        assert!(!r.success);
        assert!(r.how.starts_with("timed out"), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
