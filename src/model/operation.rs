//! What operations take and return across every boundary (socket, JS API,
//! CLI): a scale target, and the report of an operation.

use serde::{Deserialize, Serialize};

use super::instance::InstanceInfo;

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
}
