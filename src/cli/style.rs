//! Colors, only on a terminal and never with NO_COLOR.

use std::io::IsTerminal;

use crate::supervisor::Status;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Style {
            color: !no_color && !dumb && std::io::stdout().is_terminal(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }

    pub fn status(&self, s: Status) -> String {
        let text = s.as_str();
        match s {
            Status::Online => self.green(text),
            Status::Errored => self.red(text),
            Status::Stopped => self.dim(text),
            Status::Launching | Status::Stopping | Status::WaitingRestart => self.yellow(text),
        }
    }

    /// A stable color per app, so interleaved log lines are easy to tell apart.
    pub fn app(&self, name: &str, s: &str) -> String {
        const PALETTE: [&str; 6] = ["36", "35", "34", "33", "32", "96"];
        let h = name
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        self.paint(PALETTE[h % PALETTE.len()], s)
    }
}
