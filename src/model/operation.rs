//! What operations take and return across every boundary (socket, JS API,
//! CLI): a scale target, and the report of an operation.

use serde::{Deserialize, Serialize};

use super::instance::InstanceInfo;
use crate::error::{Error, ErrorBody, Result};

/// Scale to a number of instances, or by a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleTo {
    Exactly(u32),
    By(i64),
}

impl ScaleTo {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim();
        let bad = || format!("'{s}' is not an instance count: use 4, +2 or -1");
        if t.starts_with('+') || t.starts_with('-') {
            t.parse::<i64>().map(ScaleTo::By).map_err(|_| bad())
        } else {
            t.parse::<u32>().map(ScaleTo::Exactly).map_err(|_| bad())
        }
    }

    pub fn apply(self, current: u32) -> u32 {
        match self {
            ScaleTo::Exactly(n) => n,
            ScaleTo::By(d) => (current as i64 + d).clamp(0, u32::MAX as i64) as u32,
        }
    }
}

/// The result of an operation: the instances it touched, and anything the
/// user should be told about how it went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub instances: Vec<InstanceInfo>,
    pub notices: Vec<String>,
    /// How it went for each app it worked on, in the order they were named.
    #[serde(default)]
    pub apps: Vec<AppOutcome>,
    /// Set when any app failed: the first failure's code, and a message
    /// naming every failure and the apps the operation went through on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Report {
    /// The report, or its error when some app failed (for callers that
    /// only want all-or-nothing, such as the dashboard's buttons).
    pub fn into_result(self) -> Result<Report> {
        match self.error {
            Some(e) => Err(Error::from_wire(e)),
            None => Ok(self),
        }
    }
}

/// One app's outcome in an operation on several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppOutcome {
    pub app: String,
    /// Whether the operation did what it was asked on this app.
    pub ok: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}
