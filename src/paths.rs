//! The layout of a pmr home (`PMR_HOME`, default `~/.pmr`). Other tools rely
//! on these names (see the contracts in DESIGN.md), so they live in one place.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Unix socket paths are limited to 108 bytes on Linux (104 on macOS).
const MAX_SOCKET_PATH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// `PMR_HOME`, else `$HOME/.pmr`.
    pub fn from_env() -> Result<Self> {
        if let Some(h) = std::env::var_os("PMR_HOME").filter(|h| !h.is_empty()) {
            let p = PathBuf::from(h);
            let p = if p.is_absolute() {
                p
            } else {
                std::env::current_dir()
                    .map_err(|e| Error::io("cannot read the current directory", e))?
                    .join(p)
            };
            return Ok(Home::new(p));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(Home::new(PathBuf::from(h).join(".pmr"))),
            None => Err(Error::Config(
                "neither PMR_HOME nor HOME is set: cannot choose a pmr home".into(),
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn socket(&self) -> PathBuf {
        self.root.join("pmr.sock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("pmr.pid")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("pmr.lock")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("pmr.log")
    }
    /// What the daemon runs, for the next one if it dies.
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// The saved process list (`pmr save`).
    pub fn dump_file(&self) -> PathBuf {
        self.root.join("dump.json")
    }
    /// Daemon-wide settings (`pmr set`).
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Creates the home (0700) and its log directory. Refuses a home that
    /// belongs to someone else or that others may write to: whoever can write
    /// there can plant a socket or a log symlink.
    pub fn ensure(&self) -> Result<()> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        b.create(&self.root)
            .map_err(|e| Error::io(format!("cannot create {}", self.root.display()), e))?;
        let meta = std::fs::metadata(&self.root)
            .map_err(|e| Error::io(format!("cannot stat {}", self.root.display()), e))?;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me && me != 0 {
            return Err(Error::Config(format!(
                "{} belongs to uid {}, not to you (uid {me}); set PMR_HOME to a directory of yours",
                self.root.display(),
                meta.uid()
            )));
        }
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(Error::Config(format!(
                "{} is writable by group or others (mode {:o}); run: chmod 700 {}",
                self.root.display(),
                meta.permissions().mode() & 0o777,
                self.root.display()
            )));
        }
        b.create(self.log_dir())
            .map_err(|e| Error::io(format!("cannot create {}", self.log_dir().display()), e))?;
        let sock = self.socket();
        if sock.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::Config(format!(
                "PMR_HOME path is too long for a Unix socket ({} bytes, at most {MAX_SOCKET_PATH}): {}",
                sock.as_os_str().len(),
                sock.display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_creates_private_home_with_logs() {
        let t = tempfile::tempdir().unwrap();
        let home = Home::new(t.path().join("h"));
        home.ensure().unwrap();
        let mode = std::fs::metadata(home.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(home.log_dir().is_dir());
    }

    #[test]
    fn ensure_refuses_world_writable_home() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("h");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Home::new(&root).ensure().unwrap_err();
        assert!(
            err.to_string().contains("writable by group or others"),
            "{err}"
        );
    }

    #[test]
    fn ensure_refuses_too_long_socket_path() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("x".repeat(120));
        let err = Home::new(&root).ensure().unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
    }
}
