//! The daemon's own log, `pmr.log`, kept to a bounded size: past the cap it
//! becomes `pmr.log.1` (replacing the previous one) and a fresh `pmr.log`
//! starts, so a daemon that runs for months beside a crash-looping app never
//! fills the disk with its own lines. Rotation happens between writes, and
//! tracing writes one whole event per write, so no line is ever split.
//! stderr follows the current file, so a panic message lands where the
//! lines around it are.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The size at which `pmr.log` is rotated: with `pmr.log.1`, at most twice
/// this on disk.
pub const DAEMON_LOG_CAP: u64 = 10 << 20;

pub struct OwnLog {
    path: PathBuf,
    file: File,
    written: u64,
    cap: u64,
    follow_stderr: bool,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Where the previous generation goes.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".1");
    path.with_file_name(name)
}

impl OwnLog {
    /// Opens (appending to) the log at `path`; with `follow_stderr`, fd 2
    /// points at whichever file is current.
    pub fn open(path: &Path, cap: u64, follow_stderr: bool) -> io::Result<Self> {
        let file = open_append(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let log = OwnLog {
            path: path.to_path_buf(),
            file,
            written,
            cap,
            follow_stderr,
        };
        log.point_stderr();
        Ok(log)
    }

    fn point_stderr(&self) {
        if self.follow_stderr {
            let _ = nix::unistd::dup2_stderr(&self.file);
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        std::fs::rename(&self.path, rotated_path(&self.path))?;
        self.file = open_append(&self.path)?;
        self.written = 0;
        self.point_stderr();
        Ok(())
    }
}

impl Write for OwnLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.cap && self.rotate().is_err()
        {
            // Rotation failed (a read-only or full disk): keep appending
            // where we are, and try again only a whole cap later.
            self.written = 0;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn rotates_past_the_cap_between_whole_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pmr.log");
        let mut log = OwnLog::open(&path, 100, false).expect("open");
        let all: Vec<String> = (0..30).map(|i| format!("line {i:02} of the log")).collect();
        for l in &all {
            log.write_all(format!("{l}\n").as_bytes()).expect("write");
        }
        let current = lines(&path);
        let previous = lines(&rotated_path(&path));
        assert!(std::fs::metadata(&path).expect("current").len() <= 100);
        assert!(
            std::fs::metadata(rotated_path(&path))
                .expect("previous")
                .len()
                <= 100
        );
        // The two generations are the newest lines, whole and in order.
        let kept: Vec<String> = previous.into_iter().chain(current).collect();
        assert_eq!(kept, all[all.len() - kept.len()..]);
        assert!(kept.len() >= 8);
    }

    #[test]
    fn continues_an_existing_file_and_counts_what_it_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pmr.log");
        std::fs::write(&path, "x".repeat(90) + "\n").expect("seed");
        let mut log = OwnLog::open(&path, 100, false).expect("open");
        log.write_all(b"next line\n").expect("write");
        assert_eq!(lines(&path), vec!["next line"]);
        assert_eq!(lines(&rotated_path(&path)), vec!["x".repeat(90)]);
    }

    #[test]
    fn a_failed_rotation_keeps_logging_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pmr.log");
        let mut log = OwnLog::open(&path, 10, false).expect("open");
        log.write_all(b"first line\n").expect("write");
        // A directory where the rotated file should go: the rename fails.
        std::fs::create_dir(rotated_path(&path)).expect("block");
        log.write_all(b"second line\n").expect("write");
        assert_eq!(lines(&path), vec!["first line", "second line"]);
    }
}
