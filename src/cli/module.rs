//! `pmr install|uninstall <module>`: PM2 grows through npm modules; pmr
//! builds in what the common ones do. A PM2 user's setup script that runs
//! `pm2 install pm2-logrotate` gets, under pmr, exactly what it asked for
//! (rotation on) instead of an unknown command.

use super::args::ModuleArgs;
use super::{info, Ctx};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::protocol::{Request, SettingChanged};
use crate::settings::{AllSettings, LogSettings};
use crate::spec::units::format_bytes;
use crate::spec::RotateInterval;

const LOGROTATE: &str = "pm2-logrotate";

/// `pm2-logrotate@3.0.0` is still pm2-logrotate.
fn module_name(m: &str) -> &str {
    match m.rfind('@') {
        Some(i) if i > 0 => &m[..i],
        _ => m,
    }
}

fn not_a_module(m: &str) -> Error {
    let hint = match m {
        "pm2-server-monit" => "system and app metrics are built in: pmr monit, pmr metrics (Prometheus)",
        "pm2-auto-pull" | "pm2-webshell" => "pmr has no counterpart for it",
        _ => "built in instead: log rotation (pmr set log.max_size ...), metrics (pmr metrics, metrics.port), a dashboard (pmr monit)",
    };
    Error::Config(format!(
        "pmr has no module system: {m} cannot be installed; {hint}"
    ))
}

fn set(c: &mut Client, key: &str, value: &str) -> Result<()> {
    c.request_as::<SettingChanged>(Request::Set {
        key: key.into(),
        value: value.into(),
    })
    .map(drop)
}

/// Whether any rotation is on, and the rotation settings as one line.
fn rotation(c: &mut Client) -> Result<(bool, String)> {
    let all: AllSettings = c.request_as(Request::Get { key: None })?;
    let size = all.log_max_size;
    let interval = all.log_rotate_interval;
    let summary = format!(
        "log.max_size = {}, log.retain = {}, log.compress = {}, log.rotate_interval = {}",
        if size == 0 {
            "0 (off)".into()
        } else {
            format_bytes(size)
        },
        all.log_retain,
        all.log_compress,
        interval.unwrap_or(RotateInterval::None)
    );
    Ok((size > 0 || interval == Some(RotateInterval::Daily), summary))
}

pub(super) fn install(ctx: &Ctx<'_>, a: ModuleArgs) -> Result<()> {
    let m = module_name(&a.module);
    if m != LOGROTATE {
        return Err(not_a_module(m));
    }
    let mut c = ctx.daemon()?;
    let (on, mut summary) = rotation(&mut c)?;
    if !on {
        // Turned off (uninstall, or log.max_size 0): on again at
        // pm2-logrotate's own default, which is pmr's.
        set(
            &mut c,
            "log.max_size",
            &LogSettings::default().max_size.to_string(),
        )?;
        summary = rotation(&mut c)?.1;
    }
    info(&format!(
        "{LOGROTATE}: log rotation is built into pmr, nothing to install; it is on: {summary}"
    ));
    info("change it with pmr set log.max_size 50M (pmr set pm2-logrotate:max_size 50M works too)");
    Ok(())
}

pub(super) fn uninstall(ctx: &Ctx<'_>, a: ModuleArgs) -> Result<()> {
    let m = module_name(&a.module);
    if m != LOGROTATE {
        return Err(Error::NotFound(format!(
            "{m} is not installed: pmr has no module system"
        )));
    }
    let mut c = ctx.daemon()?;
    set(&mut c, "log.max_size", "0")?;
    set(&mut c, "log.rotate_interval", "none")?;
    let (_, summary) = rotation(&mut c)?;
    info(&format!(
        "{LOGROTATE}: pmr's built-in log rotation is off: {summary}; pmr install {LOGROTATE} turns it back on"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_scopes_name_the_module() {
        assert_eq!(module_name("pm2-logrotate@3.0.0"), "pm2-logrotate");
        assert_eq!(module_name("pm2-logrotate"), "pm2-logrotate");
        assert_eq!(module_name("@scope/mod@1"), "@scope/mod");
        assert_eq!(module_name("@scope/mod"), "@scope/mod");
    }

    #[test]
    fn other_modules_are_refused_with_what_pmr_has() {
        let e = not_a_module("pm2-server-monit").to_string();
        assert!(e.contains("pmr monit"), "{e}");
        assert_eq!(not_a_module("x").code(), "PMR_CONFIG");
    }
}
