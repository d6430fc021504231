//! What the CLI prints after sending an operation on apps: the app about to
//! start, the daemon's notices and the instances' errors, then the table.
//! Shared by `pmr start <script>` and the ecosystem-file commands.

use super::settle::settle;
use super::{info, show, Ctx};
use crate::error::{Error, Result};
use crate::protocol::Request;
use crate::spec::AppSpec;
use crate::supervisor::{InstanceInfo, Report};

pub(super) fn announce(spec: &AppSpec) {
    info(&format!(
        "starting {} as {} ({} mode, {} instance{})",
        spec.script.display(),
        spec.name,
        spec.exec_mode.as_str(),
        spec.instances,
        if spec.instances == 1 { "" } else { "s" }
    ));
}

/// Starts apps, then (with `wait`) sees them through their first moments
/// (`settle`), and prints what the daemon reported and the process table;
/// an instance that exited too soon fails it after the table.
pub(super) fn start_and_show(ctx: &Ctx<'_>, apps: Vec<AppSpec>, wait: bool) -> Result<()> {
    let mut c = ctx.daemon()?;
    let specs = if wait { apps.clone() } else { Vec::new() };
    let report: Report = c.request_as(Request::Start { apps })?;
    summarize(&report);
    // An app that could not start fails the command; the others are still
    // seen through their first moments.
    let verdict = match (verdict(&report), wait) {
        (Err(e), _) => {
            settle(&mut c, &report, &specs)?.ok();
            Err(e)
        }
        (Ok(()), true) => settle(&mut c, &report, &specs)?,
        (Ok(()), false) => Ok(()),
    };
    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
    verdict
}

/// Sends a reload or restart of apps that ran before (`before`) or not,
/// then prints what the daemon reported, the line saying what was
/// `verb`ed (as for apps named on the command line), and the table. The
/// daemon's notices already say which apps were started instead.
pub(super) fn reapply_and_show(
    ctx: &Ctx<'_>,
    req: Request,
    before: &[String],
    verb: &str,
) -> Result<()> {
    let mut c = ctx.daemon()?;
    let report: Report = c.request_as(req)?;
    summarize(&report);
    let mut names: Vec<&str> = Vec::new();
    for i in &report.instances {
        if before.contains(&i.name) && super::really(verb, i) && !names.contains(&i.name.as_str()) {
            names.push(&i.name);
        }
    }
    if !names.is_empty() {
        info(&format!("{verb} {}", names.join(", ")));
    }
    show::print_table(ctx, &c.request_as::<Vec<InstanceInfo>>(Request::List)?);
    verdict(&report)
}

/// The command's verdict from an operation's report: `Err` when any app
/// failed (so the CLI exits non-zero), with its message naming every
/// failure. With several failures, each also gets a line of its own first.
pub(super) fn verdict(report: &Report) -> Result<()> {
    let Some(e) = &report.error else {
        return Ok(());
    };
    let failed: Vec<_> = report.apps.iter().filter(|a| !a.ok).collect();
    if failed.len() > 1 {
        info(&format!(
            "{} of {} apps failed:",
            failed.len(),
            report.apps.len()
        ));
        for a in failed {
            let why = a.error.as_ref().map_or("failed", |e| e.message.as_str());
            info(&format!("  {}: {why}", a.app));
        }
    }
    Err(Error::from_wire(e.clone()))
}

/// What the daemon had to say about an operation, and the errors of the
/// instances it touched.
pub(super) fn summarize(report: &Report) {
    for n in &report.notices {
        info(n);
    }
    for i in &report.instances {
        if let Some(e) = &i.last_error {
            info(&format!("{} (id {}): {e}", i.name, i.id));
        }
    }
}
