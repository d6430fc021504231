//! The published model: the types the supervisor hands out and every
//! boundary carries unchanged (the control protocol, the JS API, the CLI,
//! `index.d.ts`). They depend only on the layers below the supervisor (the
//! app definition, log paths), so the protocol and the supervisor can both
//! use them without depending on each other.

pub mod event;
pub mod instance;
pub mod operation;
pub mod pm2;
pub mod stream;

pub use event::{Event, EventKind, ReloadStep};
pub use instance::{
    short_size, Connections, Description, ExitRecord, InstanceInfo, MemoryExceeded, NodeMetrics,
    RestartCounts, RestartReason, Status,
};
pub use instance::{HealthInfo, HealthStatus};
pub use operation::{AppOutcome, Report, ScaleTo};
pub use stream::{RecentLines, StreamItem};
