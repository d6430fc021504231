//! pmr core: everything a Node.js process manager needs except the Node-API
//! glue. The binding crate (`binding/`) converts types and errors; the daemon,
//! the CLI and the in-process supervisor all live here and are tested with
//! `cargo test` alone.

pub mod atomic_file;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod daemon;
pub mod dashboard;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod handler;
pub mod health;
pub mod host;
pub mod http;
pub mod keeper;
pub mod logs;
pub mod memory;
pub mod model;
#[cfg(test)]
mod module_graph_test;
pub mod notify;
pub mod paths;
pub mod policy;
pub mod process;
pub mod protocol;
pub mod runtime;
pub mod settings;
pub mod spec;
pub mod supervisor;

pub use error::{Error, Result};

/// Version of the package; the CLI and the daemon compare theirs.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
