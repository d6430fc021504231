//! Pure decisions, free of processes and clocks: tested as state machines.

pub mod memory;
pub mod restart;
