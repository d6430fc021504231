//! What a subscriber of the supervisor receives, in-process or over a
//! subscribed connection: events and log lines in arrival order.

use serde::{Deserialize, Serialize};

use super::event::Event;
use crate::logs::LogLine;

/// What a subscribed connection receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamItem {
    Event(Event),
    Log(LogLine),
    /// The subscriber fell behind and this many items were skipped for it.
    Lagged(u64),
}
