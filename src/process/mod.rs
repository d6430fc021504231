//! Operating-system work on processes: spawning an app in its own process
//! group with an explicit environment, and signalling whole groups.

pub mod fds;
pub mod group;
pub mod signal;
pub mod spawn;
