//! `pmr update`: replaces a running daemon by the installed version. Under
//! a keeper the daemon hands over in place: it exits leaving every app
//! running, the keeper starts the new binary, which adopts the apps (their
//! pids, sockets, pipes and restart counts unchanged). A daemon without a
//! keeper (an older pmr, the Node host) is replaced the old way: it saves
//! its list and stops every app, and the new one brings them back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{info, show, Ctx};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::process::group::pid_alive;
use crate::protocol::{Killed, Pong, Request};
use crate::supervisor::{InstanceInfo, Report};

/// The old daemon has stopped its apps before it answers `kill`; what is
/// left is its own exit, which frees the home's lock.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the new binary may take to say its version.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn run(ctx: &Ctx<'_>, binary: Option<&Path>) -> Result<()> {
    let Some(mut c) = ctx.existing_daemon()? else {
        info(&format!(
            "no daemon is running for {}: the next command starts the installed version (pmr {})",
            ctx.home.root().display(),
            crate::VERSION
        ));
        return Ok(());
    };
    let old: Pong = c.request_as(Request::Ping)?;
    let binary: Option<PathBuf> = match binary {
        Some(b) => Some(b.to_path_buf()),
        None => ctx.host.daemon_binary().filter(|b| b.is_file()),
    };
    let Some(binary) = binary else {
        return stop_and_restart(ctx, c, old);
    };
    let version = probe(&binary)?;
    let before: Vec<InstanceInfo> = c.request_as(Request::List)?;
    match c.request_as::<Killed>(Request::Handoff {
        binary: binary.clone(),
    }) {
        Ok(_) => {}
        Err(Error::Daemon(why)) => {
            info(&format!("{why}: its apps are stopped and started again"));
            let c = ctx.running_daemon()?;
            return stop_and_restart(ctx, c, old);
        }
        Err(e) => return Err(e),
    }
    c.wait_closed();
    wait_gone(old.pid)?;
    // The keeper starts the new daemon; starting one here would race it.
    // Its main thread gone, the old daemon may still hold its socket for
    // an instant (its other threads exiting): a connection it took is
    // reset, so only a ping answered by another pid ends the wait.
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let (mut c, new) = loop {
        if let Some(mut c) = Client::connect(&ctx.home)? {
            if let Ok(p) = c.request_as::<Pong>(Request::Ping) {
                if p.pid != old.pid {
                    break (c, p);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Daemon(format!(
                "no daemon answered within {} s of the handover; the apps still run: see {}",
                EXIT_TIMEOUT.as_secs(),
                ctx.home.daemon_log().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let after: Vec<InstanceInfo> = c.request_as(Request::List)?;
    let running: Vec<&InstanceInfo> = before.iter().filter(|i| i.pid.is_some()).collect();
    let kept = running
        .iter()
        .filter(|b| {
            after
                .iter()
                .any(|a| a.name == b.name && a.pid == b.pid && a.restarts == b.restarts)
        })
        .count();
    let fell_back = new.version != version.trim_start_matches("pmr-daemon ");
    if fell_back {
        show::print_table(ctx, &after);
        return Err(Error::Daemon(format!(
            "{} ({version}) did not start: the keeper went back to the previous binary, daemon pid {} (pmr {}); {kept} of {} app processes kept running, not restarted",
            binary.display(),
            new.pid,
            new.version,
            running.len()
        )));
    }
    info(&format!(
        "updated in place: daemon pid {} (pmr {}) handed over to pid {} (pmr {}, {}); {kept} of {} app process{} kept running, not restarted",
        old.pid,
        old.version,
        new.pid,
        new.version,
        binary.display(),
        running.len(),
        if running.len() == 1 { "" } else { "es" },
    ));
    show::print_table(ctx, &after);
    if kept < running.len() {
        return Err(Error::Daemon(format!(
            "{} app process{} did not survive the handover: see {}",
            running.len() - kept,
            if running.len() - kept == 1 { "" } else { "es" },
            ctx.home.daemon_log().display()
        )));
    }
    Ok(())
}

/// The new binary runs here and says its version; one that does not is
/// never handed the apps.
fn probe(binary: &Path) -> Result<String> {
    let fail = |why: String| {
        Error::Daemon(format!(
            "the new daemon binary {} {why}: the running daemon is left as it is",
            binary.display()
        ))
    };
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run ({e})")))?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not answer --version within {} s",
                    PROBE_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(fail(format!("cannot be waited for ({e})"))),
        }
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    let out = out.trim().to_owned();
    if !status.success() || !out.starts_with("pmr-daemon ") {
        return Err(fail(format!("does not run ({status}, said {out:?})")));
    }
    Ok(out)
}

fn wait_gone(pid: u32) -> Result<()> {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while pid_alive(pid) {
        if Instant::now() > deadline {
            return Err(Error::Daemon(format!(
                "the old daemon (pid {pid}) did not exit within {} s",
                EXIT_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The replacement with downtime, for a daemon that cannot hand over.
fn stop_and_restart(ctx: &Ctx<'_>, mut c: Client, old: Pong) -> Result<()> {
    let saved_apps = super::report_saved(&c.request_as(Request::Save)?);
    info(&format!(
        "stopping the daemon (pid {}, pmr {}) and its apps",
        old.pid, old.version
    ));
    c.request_as::<Killed>(Request::Kill)?;
    c.wait_closed();
    wait_gone(old.pid).map_err(|_| {
        Error::Daemon(format!(
            "the old daemon (pid {}) did not exit within {} s; the saved list is kept: run pmr resurrect once it is gone",
            old.pid,
            EXIT_TIMEOUT.as_secs()
        ))
    })?;
    let mut c = ctx.daemon()?;
    let new: Pong = c.request_as(Request::Ping)?;
    let report: Report = match c.request_as(Request::Resurrect) {
        Ok(r) => r,
        // Nothing was running: nothing to bring back.
        Err(Error::NotFound(_)) if saved_apps == 0 => Report::default(),
        Err(e) => return Err(e),
    };
    for n in &report.notices {
        info(n);
    }
    info(&format!(
        "updated: daemon pid {} runs pmr {} (was {})",
        new.pid, new.version, old.version
    ));
    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
    Ok(())
}
