//! What a subscriber of the supervisor receives, in-process or over a
//! subscribed connection: events and log lines in arrival order; and the
//! recent past of both that `pmr logs --lines N` asks for.

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

/// What `pmr logs --lines N` gets from the daemon.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecentLines {
    /// The last lines of each wanted stream, of every instance whose recent
    /// past the daemon holds, in the order they arrived.
    pub lines: Vec<LogLine>,
    /// Instances whose last lines only their files have (they go back to
    /// before this daemon, or further than it remembers).
    pub from_files: Vec<u32>,
    /// pmr's own lines about these instances (exits, restarts, `errored`),
    /// the last `N` of each, oldest first: part of an app's past as much as
    /// its output, and in no file of the app.
    #[serde(default)]
    pub events: Vec<Event>,
}
