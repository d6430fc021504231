//! Typed errors. Every error has a stable `code` that survives the control
//! socket and the Node-API boundary, so scripts can branch on it.

use serde::{Deserialize, Serialize};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No app or instance matches the target.
    #[error("{0}")]
    NotFound(String),
    /// An app option or config file is invalid.
    #[error("{0}")]
    Config(String),
    /// The daemon cannot be reached or started.
    #[error("{0}")]
    Daemon(String),
    /// Something did not happen within its time limit.
    #[error("{0}")]
    Timeout(String),
    /// An app with that name is already running.
    #[error("{0}")]
    AlreadyRunning(String),
    /// A malformed or unknown control message.
    #[error("{0}")]
    Protocol(String),
    /// A process could not be started.
    #[error("{0}")]
    Spawn(String),
    /// Another operation on the same app is in progress.
    #[error("{0}")]
    Busy(String),
    /// A reload could not replace an instance; the old one keeps serving.
    #[error("{0}")]
    Reload(String),
    /// An OS call failed. `source` is None for one reported by the daemon,
    /// whose message already holds the OS's words.
    #[error("{}", io_message(.context, .source.as_ref()))]
    Io {
        context: String,
        #[source]
        source: Option<std::io::Error>,
    },
}

fn io_message(context: &str, source: Option<&std::io::Error>) -> String {
    match source {
        Some(s) => format!("{context}: {s}"),
        None => context.to_string(),
    }
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "PMR_NOT_FOUND",
            Error::Config(_) => "PMR_CONFIG",
            Error::Daemon(_) => "PMR_DAEMON",
            Error::Timeout(_) => "PMR_TIMEOUT",
            Error::AlreadyRunning(_) => "PMR_ALREADY_RUNNING",
            Error::Protocol(_) => "PMR_PROTOCOL",
            Error::Spawn(_) => "PMR_SPAWN",
            Error::Busy(_) => "PMR_BUSY",
            Error::Reload(_) => "PMR_RELOAD",
            Error::Io { .. } => "PMR_IO",
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source: Some(source),
        }
    }

    /// Rebuilds an error received over the control socket.
    pub fn from_wire(body: ErrorBody) -> Self {
        let m = body.message;
        match body.code.as_str() {
            "PMR_NOT_FOUND" => Error::NotFound(m),
            "PMR_CONFIG" => Error::Config(m),
            "PMR_TIMEOUT" => Error::Timeout(m),
            "PMR_ALREADY_RUNNING" => Error::AlreadyRunning(m),
            "PMR_PROTOCOL" => Error::Protocol(m),
            "PMR_SPAWN" => Error::Spawn(m),
            "PMR_BUSY" => Error::Busy(m),
            "PMR_RELOAD" => Error::Reload(m),
            "PMR_IO" => Error::Io {
                context: m,
                source: None,
            },
            _ => Error::Daemon(m),
        }
    }

    /// The same kind of error with its message rewritten: the code is what
    /// callers branch on, so it stays.
    pub fn with_message(self, f: impl FnOnce(String) -> String) -> Self {
        let mut wire = self.to_wire();
        wire.message = f(wire.message);
        Error::from_wire(wire)
    }

    pub fn to_wire(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().to_string(),
            message: self.to_string(),
        }
    }
}

/// The error as it travels in a control reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_keeps_code_and_message() {
        let errors = [
            Error::NotFound("no app named api".into()),
            Error::Config("bad".into()),
            Error::AlreadyRunning("api is running".into()),
            Error::io("cannot open log", std::io::Error::other("disk full")),
        ];
        for e in errors {
            let wire = e.to_wire();
            let back = Error::from_wire(wire.clone());
            assert_eq!(back.code(), e.code());
            assert_eq!(back.to_wire(), wire);
        }
    }

    #[test]
    fn an_io_error_from_the_daemon_says_the_os_words_once() {
        let sent = Error::io("cannot open log", std::io::Error::other("disk full"));
        let back = Error::from_wire(sent.to_wire());
        assert_eq!(back.code(), "PMR_IO");
        assert_eq!(back.to_string(), "cannot open log: disk full");
        assert_eq!(
            Error::from_wire(back.to_wire()).to_string(),
            back.to_string()
        );
    }

    #[test]
    fn with_message_keeps_the_kind() {
        let e = Error::Spawn("cannot start a".into()).with_message(|m| format!("{m}; more"));
        assert_eq!(e.code(), "PMR_SPAWN");
        assert_eq!(e.to_string(), "cannot start a; more");
        let e = Error::Daemon("down".into()).with_message(|m| m + "!");
        assert_eq!(e.code(), "PMR_DAEMON");
    }

    #[test]
    fn unknown_code_becomes_daemon_error() {
        let e = Error::from_wire(ErrorBody {
            code: "WHAT".into(),
            message: "x".into(),
        });
        assert_eq!(e.code(), "PMR_DAEMON");
    }
}
