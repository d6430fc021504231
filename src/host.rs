//! What the host process forwards to a daemon or a foreground runtime that
//! runs inside it: the signals it receives (Node's handlers in the addon,
//! tokio's in the `pmr-daemon` binary), as messages on a channel.

use tokio::sync::mpsc;

/// A signal the host received, as the daemon or runtime acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostSignal {
    /// SIGINT/SIGTERM: stop every app gracefully, then exit.
    Shutdown,
    /// SIGHUP/SIGUSR2: reopen log files.
    ReopenLogs,
}

/// Where the host sends `HostSignal`s.
pub type HostSignalSender = mpsc::UnboundedSender<HostSignal>;
