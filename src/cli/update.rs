//! `pmr update`: replaces a running daemon by the installed version. The
//! old daemon saves its list and stops every app; the new one brings them
//! back from that save. The apps are down in between.

use std::time::{Duration, Instant};

use super::{info, show, Ctx};
use crate::error::{Error, Result};
use crate::process::group::pid_alive;
use crate::protocol::{Killed, Pong, Request};
use crate::supervisor::{InstanceInfo, Report};

/// The old daemon has stopped its apps before it answers `kill`; what is
/// left is its own exit, which frees the home's lock.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn run(ctx: &Ctx<'_>) -> Result<()> {
    let Some(mut c) = ctx.existing_daemon()? else {
        info(&format!(
            "no daemon is running for {}: the next command starts the installed version (pmr {})",
            ctx.home.root().display(),
            crate::VERSION
        ));
        return Ok(());
    };
    let old: Pong = c.request_as(Request::Ping)?;
    let saved_apps = super::report_saved(&c.request_as(Request::Save)?);
    info(&format!(
        "stopping the daemon (pid {}, pmr {}) and its apps",
        old.pid, old.version
    ));
    c.request_as::<Killed>(Request::Kill)?;
    c.wait_closed();
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while pid_alive(old.pid) {
        if Instant::now() > deadline {
            return Err(Error::Daemon(format!(
                "the old daemon (pid {}) did not exit within {} s; the saved list is kept: run pmr resurrect once it is gone",
                old.pid,
                EXIT_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
