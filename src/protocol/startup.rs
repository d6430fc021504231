//! What a starting daemon tells the launcher on its status pipe (fd 1), one
//! line each: `notice <text>` lines, then `ready <pid>`, `already-running`
//! (another daemon won the home's lock) or `error <why>`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupLine {
    /// Something the user should hear (e.g. what recovery did).
    Notice(String),
    /// The daemon serves its socket.
    Ready(u32),
    /// Another daemon holds the home: the caller uses that one.
    AlreadyRunning,
    /// The daemon could not start, and why.
    Error(String),
}

impl StartupLine {
    /// Reads one line; None for a line that is none of these (nothing else
    /// is written there, but a stray line must not pass for a verdict).
    pub fn parse(line: &str) -> Option<StartupLine> {
        let line = line.trim();
        if line == "already-running" {
            return Some(StartupLine::AlreadyRunning);
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "notice" => Some(StartupLine::Notice(rest.to_string())),
            "ready" => rest.trim().parse().ok().map(StartupLine::Ready),
            "error" => Some(StartupLine::Error(rest.to_string())),
            _ => None,
        }
    }

    /// Whether the launcher stops reading after this line.
    pub fn is_verdict(&self) -> bool {
        !matches!(self, StartupLine::Notice(_))
    }
}

impl fmt::Display for StartupLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupLine::Notice(n) => write!(f, "notice {n}"),
            StartupLine::Ready(pid) => write!(f, "ready {pid}"),
            StartupLine::AlreadyRunning => f.write_str("already-running"),
            StartupLine::Error(e) => write!(f, "error {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_reads_back_as_written() {
        for l in [
            StartupLine::Notice("the previous daemon died".into()),
            StartupLine::Ready(4242),
            StartupLine::AlreadyRunning,
            StartupLine::Error("PMR_HOME is not set".into()),
        ] {
            assert_eq!(StartupLine::parse(&l.to_string()), Some(l));
        }
    }

    #[test]
    fn the_node_host_spelling_and_strays() {
        // daemon.js writes this line itself, before the addon loads.
        assert_eq!(
            StartupLine::parse("error PMR_HOME is not set\n"),
            Some(StartupLine::Error("PMR_HOME is not set".into()))
        );
        assert_eq!(StartupLine::parse("ready"), None);
        assert_eq!(StartupLine::parse("hello"), None);
        assert!(!StartupLine::Notice(String::new()).is_verdict());
        assert!(StartupLine::AlreadyRunning.is_verdict());
    }
}
