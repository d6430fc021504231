//! What the CLI prints after sending an operation on apps: the app about to
//! start, the daemon's notices and the instances' errors, then the table.
//! Shared by `pmr start <script>` and the ecosystem-file commands.

use super::settle::settle;
use super::{info, show, Ctx};
use crate::error::Result;
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
    let verdict = if wait {
        settle(&mut c, &report, &specs)?
    } else {
        Ok(())
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
    Ok(())
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
