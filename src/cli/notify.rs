//! `pmr notify test`: a test alert to every receiver, each answer printed.

use super::{outln, style::Style, Ctx};
use crate::error::{Error, Result};
use crate::notify::NotifyAnswer;
use crate::protocol::Request;

pub(super) fn test(ctx: &Ctx<'_>) -> Result<()> {
    let answers: Vec<NotifyAnswer> = ctx.daemon()?.request_as(Request::NotifyTest)?;
    if answers.is_empty() {
        return Err(Error::Config(
            "no alert receivers: pmr set notify.webhook <url> (or notify.slack, notify.command), or give an app notify: { ... }".into(),
        ));
    }
    let style = Style::detect();
    for a in &answers {
        let mark = if a.ok {
            style.green("ok    ")
        } else {
            style.red("failed")
        };
        outln(&format!("{mark} {}: {}", a.receiver, a.answer));
    }
    let failed = answers.iter().filter(|a| !a.ok).count();
    if failed > 0 {
        return Err(Error::Config(format!(
            "{failed} of {} alert receivers did not take the test alert (see above)",
            answers.len()
        )));
    }
    Ok(())
}
