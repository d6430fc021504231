//! Operating-system work on processes: spawning an app in its own process
//! group with an explicit environment, and signalling whole groups.

#[cfg(target_os = "linux")]
pub mod cgroup;
#[cfg(target_os = "linux")]
mod clone_into;
pub mod fds;
pub mod group;
pub mod pidfd;
pub mod priority;
pub mod scope;
pub mod signal;
pub mod spawn;
