//! `lb`: how a cluster app's connections reach its workers, as users write
//! it (the decision itself is in `crate::cluster::balance`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How the connections of a cluster app reach its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalance {
    /// Each worker in turn (Node's and PM2's default).
    #[default]
    RoundRobin,
    /// The worker with the fewest open connections.
    LeastConnections,
    /// The same client to the same worker: by Engine.IO session id, else by
    /// client address; the least-connections choice when neither applies.
    Sticky,
    /// No distribution: every worker accepts from the one socket itself.
    Shared,
}

impl LoadBalance {
    pub const NAMES: [&'static str; 4] = ["round-robin", "least-connections", "sticky", "shared"];

    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalance::RoundRobin => "round-robin",
            LoadBalance::LeastConnections => "least-connections",
            LoadBalance::Sticky => "sticky",
            LoadBalance::Shared => "shared",
        }
    }
}

impl fmt::Display for LoadBalance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoadBalance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "round-robin" => Ok(LoadBalance::RoundRobin),
            "least-connections" => Ok(LoadBalance::LeastConnections),
            "sticky" => Ok(LoadBalance::Sticky),
            "shared" => Ok(LoadBalance::Shared),
            other => Err(format!(
                "'{other}' is not a balancing policy (one of {})",
                LoadBalance::NAMES.join(", ")
            )),
        }
    }
}
