//! What the CLI prints after sending an operation on apps: the app about to
//! start, the daemon's notices and the instances' errors, then the table.
//! Shared by `pmr start <script>` and the ecosystem-file commands.

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

/// Sends an operation on apps to the daemon, then prints what it reported
/// and the process table.
pub(super) fn send_and_show(ctx: &Ctx<'_>, req: Request) -> Result<()> {
    let mut c = ctx.daemon()?;
    let report: Report = c.request_as(req)?;
    summarize(&report);
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
