//! `pmr metrics`: the Prometheus text the daemon's `/metrics` endpoint serves.

use super::{out, Ctx};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::protocol::Request;
use crate::supervisor::prometheus;

pub(super) fn run(ctx: &Ctx<'_>) -> Result<()> {
    let text = match Client::connect(&ctx.home)? {
        Some(mut c) => match c.request(Request::Metrics)? {
            serde_json::Value::String(s) => s,
            _ => {
                return Err(Error::Protocol(
                    "the daemon answered metrics with something other than text".into(),
                ))
            }
        },
        // No daemon, no app: the families with no samples, like an idle daemon's.
        None => prometheus::render(&[]),
    };
    out(&text);
    Ok(())
}
