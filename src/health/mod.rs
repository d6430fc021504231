//! Health checks: whether a running instance still serves. `crate::spec::health` is
//! what the user configures, `state` the pure per-process state machine (and
//! the event-loop watchdog's rule), `check` one probe, `task` its
//! schedule. The slot owns the decision: an unhealthy instance is replaced
//! through the zero-downtime path (see `supervisor/slot/health.rs`).

pub mod check;
pub mod state;
pub mod task;

pub use crate::spec::health::{HealthCheck, Probe};
