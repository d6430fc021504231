//! `pmr metrics`: the Prometheus text the daemon's `/metrics` endpoint serves.

use super::{out, Ctx};
use crate::client::Client;
use crate::error::Result;
use crate::protocol::Request;
use crate::supervisor::prometheus;

pub(super) fn run(ctx: &Ctx<'_>) -> Result<()> {
    let text = match Client::connect(&ctx.home)? {
        Some(mut c) => c.request_as::<String>(Request::Metrics)?,
        // No daemon, no app: the families with no samples, like an idle daemon's.
        None => prometheus::render(&[]),
    };
    out(&text);
    Ok(())
}
