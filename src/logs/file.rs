//! A log file shared by every writer of one path. Each write is one whole
//! chunk of complete lines under a lock, so lines from different instances
//! never interleave. A failing disk never blocks or kills an app: the bytes
//! are counted as dropped and writing resumes when the disk lets it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::is_discard;

#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    file: Option<File>,
    dropped_bytes: u64,
    last_error: Option<String>,
}

impl LogFile {
    fn new(path: PathBuf) -> Self {
        let f = LogFile {
            path,
            state: Mutex::new(State::default()),
        };
        if !f.discards() {
            let mut st = f.lock();
            f.open_into(&mut st);
        }
        f
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn discards(&self) -> bool {
        is_discard(&self.path)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_into(&self, st: &mut State) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => st.file = Some(f),
            Err(e) => {
                let msg = format!("cannot open {}: {e}", self.path.display());
                if st.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!("{msg}");
                }
                st.last_error = Some(msg);
            }
        }
    }

    /// Appends `data` (whole lines) in one write.
    pub fn write(&self, data: &[u8]) {
        if data.is_empty() || self.discards() {
            return;
        }
        let mut st = self.lock();
        if st.file.is_none() {
            self.open_into(&mut st);
        }
        let result = match st.file.as_mut() {
            Some(f) => f.write_all(data),
            None => Err(std::io::Error::other("not open")),
        };
        match result {
            Ok(()) => {
                if st.last_error.take().is_some() {
                    tracing::info!(
                        "writing to {} again ({} bytes dropped so far)",
                        self.path.display(),
                        st.dropped_bytes
                    );
                }
            }
            Err(e) => {
                st.dropped_bytes += data.len() as u64;
                let msg = format!("cannot write {}: {e}", self.path.display());
                if st.last_error.is_none() {
                    tracing::warn!("{msg}; dropping output until it can be written");
                }
                st.last_error = Some(msg);
            }
        }
    }

    /// Reopens the path (after an external tool moved the file).
    pub fn reopen(&self) {
        if self.discards() {
            return;
        }
        let mut st = self.lock();
        st.file = None;
        self.open_into(&mut st);
    }

    /// Empties the file in place.
    pub fn truncate(&self) {
        let st = self.lock();
        if let Some(f) = &st.file {
            let _ = f.set_len(0);
        }
    }

    pub fn dropped_bytes(&self) -> u64 {
        self.lock().dropped_bytes
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }
}

/// Hands out one `LogFile` per path, so instances that share a path (merged
/// logs) share the lock that keeps their lines whole. Files stay open (and
/// keep their drop counters) until their app is deleted.
#[derive(Default)]
pub struct LogFiles {
    open: Mutex<HashMap<PathBuf, Arc<LogFile>>>,
}

impl LogFiles {
    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<LogFile>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, path: &Path) -> Arc<LogFile> {
        self.lock()
            .entry(path.to_path_buf())
            .or_insert_with(|| Arc::new(LogFile::new(path.to_path_buf())))
            .clone()
    }

    /// Bytes dropped for a path, without opening it.
    pub fn dropped_bytes(&self, path: &Path) -> u64 {
        self.lock()
            .get(path)
            .map(|f| f.dropped_bytes())
            .unwrap_or(0)
    }

    /// Closes a path (its app was deleted); writers still holding it finish.
    pub fn forget(&self, path: &Path) {
        self.lock().remove(path);
    }

    pub fn all(&self) -> Vec<Arc<LogFile>> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_path_same_file() {
        let t = tempfile::tempdir().unwrap();
        let files = LogFiles::default();
        let a = files.get(&t.path().join("a.log"));
        let b = files.get(&t.path().join("a.log"));
        assert!(Arc::ptr_eq(&a, &b));
        a.write(b"one\n");
        b.write(b"two\n");
        assert_eq!(
            std::fs::read_to_string(t.path().join("a.log")).unwrap(),
            "one\ntwo\n"
        );
    }

    #[test]
    fn unwritable_path_counts_dropped_bytes_and_recovers() {
        let t = tempfile::tempdir().unwrap();
        let blocker = t.path().join("dir");
        std::fs::write(&blocker, "a file where a directory should be").unwrap();
        let f = LogFile::new(blocker.join("x.log"));
        f.write(b"lost\n");
        assert_eq!(f.dropped_bytes(), 5);
        assert!(f.last_error().is_some());
        std::fs::remove_file(&blocker).unwrap();
        f.write(b"kept\n");
        assert_eq!(
            std::fs::read_to_string(blocker.join("x.log")).unwrap(),
            "kept\n"
        );
        assert!(f.last_error().is_none());
    }

    #[test]
    fn dev_null_discards() {
        let f = LogFile::new(PathBuf::from("/dev/null"));
        f.write(b"x\n");
        assert_eq!(f.dropped_bytes(), 0);
    }
}
