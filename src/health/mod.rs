//! Health checks: whether a running instance still serves. `crate::spec::health` is
//! what the user configures, `state` the pure per-process state machine (and
//! the event-loop watchdog's rule), `check` one probe, `task` its
//! schedule. The slot owns the decision: an unhealthy instance is replaced
//! through the zero-downtime path (see `supervisor/slot/health.rs`).

pub mod check;
pub mod state;
pub mod task;

pub use crate::spec::health::{HealthCheck, Probe};

use crate::model::{HealthStatus, InstanceInfo};

/// Readiness as health checks see it, for reload and `pmr-runtime`'s
/// `/readyz`: an instance with a health check is ready once a check has
/// passed; one without is ready as far as checks go.
pub fn ready(i: &InstanceInfo) -> bool {
    i.health
        .as_ref()
        .is_none_or(|h| h.check == "event_loop" || h.status == HealthStatus::Healthy)
}
