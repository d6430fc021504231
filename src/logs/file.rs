//! A log file shared by every writer of one path. Each write is one whole
//! chunk of complete lines under a lock, so lines from different instances
//! never interleave, and rotation happens between two writes, so no line is
//! split, lost or repeated. A failing disk never blocks or kills an app: the
//! bytes are counted as dropped and writing resumes when the disk lets it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::is_discard;
use super::rotate::{self, Housekeeper, Job, Policy};
use crate::clock::now_ms;
use crate::settings::LogSettings;
use crate::spec::LogSpec;

/// After a rename fails, how long before rotation is tried again.
const ROTATE_RETRY_MS: u64 = 10_000;

pub struct LogFile {
    path: PathBuf,
    state: Mutex<State>,
    housekeeper: Arc<Housekeeper>,
}

struct State {
    file: Option<File>,
    /// Bytes in the file as far as this writer knows.
    size: u64,
    /// The file held lines when it was opened: lines no history has.
    preexisting: bool,
    /// The last write ended a line (rotating here splits none).
    at_line_start: bool,
    /// A failed write left part of a line that could not be removed: the
    /// next write ends it first, so the lines after it stay whole.
    broken_line: bool,
    /// When the local day of the file's last write ends (daily rotation).
    day_ends_ms: u64,
    rotate_retry_ms: u64,
    /// The second of the last rotation and its rank within that second:
    /// the next name in the same second ranks after it even when pruning
    /// has freed lower ranks.
    last_rotation: Option<(i64, u32)>,
    /// The app's own rotation options, kept to re-apply new settings.
    overrides: LogSpec,
    policy: Policy,
    dropped_bytes: u64,
    dropped_before_error: u64,
    last_error: Option<String>,
}

impl LogFile {
    fn new(path: PathBuf, policy: Policy, overrides: LogSpec, hk: Arc<Housekeeper>) -> Self {
        let f = LogFile {
            path,
            state: Mutex::new(State {
                file: None,
                size: 0,
                preexisting: false,
                at_line_start: true,
                broken_line: false,
                day_ends_ms: u64::MAX,
                rotate_retry_ms: 0,
                last_rotation: None,
                overrides,
                policy,
                dropped_bytes: 0,
                dropped_before_error: 0,
                last_error: None,
            }),
            housekeeper: hk,
        };
        if !f.discards() {
            let mut st = f.lock();
            f.open_into(&mut st);
            st.preexisting = st.size > 0;
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
        // Never through a symlink: a root daemon appending an app's output
        // wherever a link planted by that app's user points would let the
        // app write into any file.
        match OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
        {
            Ok(f) => {
                let meta = f.metadata().ok();
                st.size = meta.as_ref().map_or(0, |m| m.len());
                let last_write = meta
                    .filter(|m| m.len() > 0)
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or_else(now_ms, |d| d.as_millis() as u64);
                st.day_ends_ms = rotate::day_end_ms(last_write);
                st.at_line_start = true;
                st.file = Some(f);
            }
            Err(e) => {
                let msg = format!("cannot open {}: {e}", self.path.display());
                if st.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!("{msg}");
                }
                st.last_error = Some(msg);
            }
        }
    }

    /// Renames the file aside and opens a new one. The caller holds the lock,
    /// so no write lands in between.
    fn rotate(&self, st: &mut State, now: u64) {
        let at = chrono::DateTime::from_timestamp_millis(now as i64).unwrap_or_default();
        let first = match st.last_rotation {
            Some((secs, n)) if secs == at.timestamp() => n + 1,
            _ => 0,
        };
        let Some((rank, target)) = (first..first + 1000)
            .map(|n| (n, rotate::rotated_name(&self.path, at, n)))
            .find(|(_, p)| !p.exists() && !rotate::with_suffix(p, ".gz").exists())
        else {
            st.rotate_retry_ms = now + ROTATE_RETRY_MS;
            return;
        };
        match std::fs::rename(&self.path, &target) {
            Ok(()) => {}
            // Moved or deleted behind our back: whatever the old handle
            // points to is gone from the directory, so start a new file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                st.file = None;
                self.open_into(st);
                return;
            }
            Err(e) => {
                tracing::warn!(
                    "cannot rotate {}: {e}; writing on and trying again in {} s",
                    self.path.display(),
                    ROTATE_RETRY_MS / 1000
                );
                st.rotate_retry_ms = now + ROTATE_RETRY_MS;
                return;
            }
        }
        st.last_rotation = Some((at.timestamp(), rank));
        st.file = None;
        self.open_into(st);
        st.preexisting = false;
        st.day_ends_ms = rotate::day_end_ms(now);
        self.housekeeper.submit(Job::Rotated {
            base: self.path.clone(),
            rotated: target,
            compress: st.policy.compress,
            retain: st.policy.retain,
        });
    }

    /// Appends `data` (whole lines): in one write, or in a few when it
    /// straddles `max_size`, cut between lines, the file rotated in between.
    pub fn write(&self, data: &[u8]) {
        if data.is_empty() || self.discards() {
            return;
        }
        let mut st = self.lock();
        if st.file.is_none() {
            self.open_into(&mut st);
        }
        let mut rest = data;
        while !rest.is_empty() {
            let now = now_ms();
            if st.size == 0 {
                // A daily file holds the lines of the day its first line is written.
                st.day_ends_ms = rotate::day_end_ms(now);
            }
            let first_line = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| p + 1);
            if st.at_line_start
                && now >= st.rotate_retry_ms
                && st.file.is_some()
                && st
                    .policy
                    .due(st.size, first_line as u64, now, st.day_ends_ms)
            {
                self.rotate(&mut st, now);
            }
            let take = fit(st.policy.max_size, st.size, rest).max(first_line);
            let (piece, after) = rest.split_at(take);
            self.write_piece(&mut st, piece);
            rest = after;
        }
    }

    fn write_piece(&self, st: &mut State, data: &[u8]) {
        if st.broken_line && append(st, b"\n").is_ok() {
            st.broken_line = false;
        }
        match append(st, data) {
            Ok(()) => {
                st.at_line_start = data.last() == Some(&b'\n');
                if st.last_error.take().is_some() {
                    tracing::info!(
                        "writing to {} again after dropping {} bytes ({} in all)",
                        self.path.display(),
                        st.dropped_bytes - st.dropped_before_error,
                        st.dropped_bytes
                    );
                }
            }
            Err(e) => {
                if st.last_error.is_none() {
                    st.dropped_before_error = st.dropped_bytes;
                    tracing::warn!(
                        "cannot write {}: {e}; dropping output until it can be written",
                        self.path.display()
                    );
                }
                st.dropped_bytes += data.len() as u64;
                st.last_error = Some(format!("cannot write {}: {e}", self.path.display()));
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
        st.preexisting = st.size > 0;
    }

    /// Empties the file in place: writers keep their handle, and appending
    /// goes on from the start.
    pub fn truncate(&self) -> std::io::Result<()> {
        if self.discards() {
            return Ok(());
        }
        let mut st = self.lock();
        if st.file.is_none() {
            self.open_into(&mut st);
        }
        let Some(f) = &st.file else {
            return Err(std::io::Error::other(
                st.last_error.clone().unwrap_or_else(|| "not open".into()),
            ));
        };
        f.set_len(0)?;
        st.size = 0;
        st.preexisting = false;
        st.at_line_start = true;
        st.broken_line = false;
        Ok(())
    }

    /// The file held lines this daemon did not write (before it started).
    pub fn preexisting(&self) -> bool {
        self.lock().preexisting
    }

    pub fn dropped_bytes(&self) -> u64 {
        self.lock().dropped_bytes
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    fn apply(&self, defaults: &LogSettings, overrides: Option<&LogSpec>) {
        let mut st = self.lock();
        if let Some(o) = overrides {
            st.overrides = o.clone();
        }
        st.policy = Policy::new(defaults, &st.overrides);
    }
}

/// How much of `data` goes into a file of `size` bytes before it passes
/// `max_size`: all of it, or the whole lines that fit (possibly none).
fn fit(max_size: u64, size: u64, data: &[u8]) -> usize {
    if max_size == 0 || size + data.len() as u64 <= max_size {
        return data.len();
    }
    let room = max_size.saturating_sub(size).min(data.len() as u64) as usize;
    data[..room]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1)
}

/// Writes all of `data` or none of it: a write the disk refuses halfway is
/// cut back off, so no half line stays in the file.
fn append(st: &mut State, data: &[u8]) -> std::io::Result<()> {
    let Some(f) = st.file.as_mut() else {
        return Err(std::io::Error::other("not open"));
    };
    let mut done = 0;
    let result = loop {
        if done == data.len() {
            break Ok(());
        }
        match f.write(&data[done..]) {
            Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    match result {
        Ok(()) => st.size += data.len() as u64,
        Err(_) if done > 0 => {
            let cut = f
                .metadata()
                .and_then(|m| f.set_len(m.len().saturating_sub(done as u64)));
            if cut.is_err() {
                st.size += done as u64;
                st.broken_line = true;
            }
        }
        Err(_) => {}
    }
    result
}

/// Hands out one `LogFile` per path, so instances that share a path (merged
/// logs) share the lock that keeps their lines whole. Files stay open (and
/// keep their drop counters) until their app is deleted.
pub struct LogFiles {
    open: Mutex<HashMap<PathBuf, Arc<LogFile>>>,
    defaults: Mutex<LogSettings>,
    housekeeper: Arc<Housekeeper>,
}

impl Default for LogFiles {
    fn default() -> Self {
        LogFiles::new(LogSettings::default())
    }
}

impl LogFiles {
    pub fn new(defaults: LogSettings) -> Self {
        LogFiles {
            open: Mutex::new(HashMap::new()),
            defaults: Mutex::new(defaults),
            housekeeper: Arc::new(Housekeeper::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<LogFile>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn defaults(&self) -> LogSettings {
        self.defaults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The file for `path`, rotating as the app's log options say (the last
    /// app to ask decides, for a path shared by several).
    pub fn get(&self, path: &Path, app: &LogSpec) -> Arc<LogFile> {
        let defaults = self.defaults();
        let f = self
            .lock()
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                Arc::new(LogFile::new(
                    path.to_path_buf(),
                    Policy::new(&defaults, app),
                    app.clone(),
                    self.housekeeper.clone(),
                ))
            })
            .clone();
        f.apply(&defaults, Some(app));
        f
    }

    /// New daemon-wide settings: every open file rotates by them from now on
    /// (where its app does not say otherwise).
    pub fn set_defaults(&self, defaults: &LogSettings) {
        *self.defaults.lock().unwrap_or_else(|e| e.into_inner()) = defaults.clone();
        for f in self.all() {
            f.apply(defaults, None);
        }
    }

    /// The open file of a path, if any.
    pub fn find(&self, path: &Path) -> Option<Arc<LogFile>> {
        self.lock().get(path).cloned()
    }

    /// Bytes dropped for a path, without opening it.
    pub fn dropped_bytes(&self, path: &Path) -> u64 {
        self.find(path).map(|f| f.dropped_bytes()).unwrap_or(0)
    }

    /// Empties a path in place, through its writer when it has one.
    pub fn truncate(&self, path: &Path) -> std::io::Result<()> {
        if is_discard(path) {
            return Ok(());
        }
        match self.find(path) {
            Some(f) => f.truncate(),
            None => match OpenOptions::new().write(true).open(path) {
                Ok(f) => f.set_len(0),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
        }
    }

    /// Closes a path (its app was deleted); writers still holding it finish.
    pub fn forget(&self, path: &Path) {
        self.lock().remove(path);
    }

    pub fn all(&self) -> Vec<Arc<LogFile>> {
        self.lock().values().cloned().collect()
    }

    /// Waits until the rotation thread has done everything asked so far.
    #[cfg(test)]
    pub fn settle(&self) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.housekeeper.submit(Job::Barrier(tx));
        let _ = rx.recv();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LogSpec {
        LogSpec::default()
    }

    fn rotating(max_size: u64, retain: u32, compress: bool) -> LogSpec {
        LogSpec {
            max_size: Some(max_size),
            retain: Some(retain),
            compress: Some(compress),
            ..LogSpec::default()
        }
    }

    #[test]
    fn a_write_is_cut_between_lines_to_fit() {
        assert_eq!(fit(0, 100, b"abc\n"), 4);
        assert_eq!(fit(10, 0, b"abc\ndef\n"), 8);
        assert_eq!(fit(10, 3, b"abc\ndef\n"), 4);
        assert_eq!(fit(10, 9, b"abc\ndef\n"), 0);
        assert_eq!(fit(10, 0, b"a long line\n"), 0);
    }

    #[test]
    fn same_path_same_file() {
        let t = tempfile::tempdir().unwrap();
        let files = LogFiles::default();
        let a = files.get(&t.path().join("a.log"), &spec());
        let b = files.get(&t.path().join("a.log"), &spec());
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
        let files = LogFiles::default();
        let f = files.get(&blocker.join("x.log"), &spec());
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
        let files = LogFiles::default();
        let f = files.get(Path::new("/dev/null"), &spec());
        f.write(b"x\n");
        assert_eq!(f.dropped_bytes(), 0);
        assert!(f.truncate().is_ok());
    }

    fn all_lines(base: &Path) -> Vec<String> {
        use std::io::Read;
        let mut text = String::new();
        for p in rotate::rotated_files(base) {
            if p.extension().is_some_and(|e| e == "gz") {
                flate2::read::GzDecoder::new(File::open(&p).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
            } else {
                text.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
        text.push_str(&std::fs::read_to_string(base).unwrap());
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn rotation_keeps_every_line_once_and_in_order() {
        for compress in [false, true] {
            let t = tempfile::tempdir().unwrap();
            let base = t.path().join("a.log");
            let files = LogFiles::default();
            let f = files.get(&base, &rotating(100, 1000, compress));
            for i in 0..100 {
                f.write(format!("line {i:04}\n").as_bytes());
            }
            let many: String = (100..200).map(|i| format!("line {i:04}\n")).collect();
            f.write(many.as_bytes());
            files.settle();
            let rotated = rotate::rotated_files(&base);
            assert_eq!(rotated.len(), 19, "{rotated:?}");
            assert!(rotated
                .iter()
                .all(|p| p.extension().is_some_and(|e| e == "gz") == compress));
            let want: Vec<String> = (0..200).map(|i| format!("line {i:04}")).collect();
            assert_eq!(all_lines(&base), want);
            for p in rotated {
                let len = std::fs::metadata(&p).unwrap().len();
                assert!(compress || len <= 100, "{} has {len} bytes", p.display());
            }
        }
    }

    #[test]
    fn retain_prunes_the_oldest_and_settings_apply_live() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("a.log");
        let files = LogFiles::default();
        let f = files.get(&base, &spec());
        for i in 0..100 {
            f.write(format!("line {i:04}\n").as_bytes());
        }
        assert!(rotate::rotated_files(&base).is_empty());
        files.set_defaults(&LogSettings {
            max_size: 50,
            retain: 3,
            ..LogSettings::default()
        });
        for i in 100..200 {
            f.write(format!("line {i:04}\n").as_bytes());
        }
        files.settle();
        let rotated = rotate::rotated_files(&base);
        assert_eq!(rotated.len(), 3, "{rotated:?}");
        let lines = all_lines(&base);
        assert_eq!(lines.last().unwrap(), "line 0199");
        let first: u32 = lines[0][5..].parse().unwrap();
        let want: Vec<String> = (first..200).map(|i| format!("line {i:04}")).collect();
        assert_eq!(lines, want, "the newest files are the ones kept");
    }

    #[test]
    fn a_rank_freed_by_pruning_is_not_reused_within_the_second() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("a.log");
        let files = LogFiles::default();
        let f = files.get(&base, &rotating(10, 1, false));
        for i in 0..20 {
            f.write(format!("line {i:04}\n").as_bytes());
            files.settle();
        }
        assert_eq!(all_lines(&base), ["line 0018", "line 0019"]);
    }

    #[test]
    fn daily_rotation_at_the_first_write_of_a_new_day() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("a.log");
        let files = LogFiles::default();
        let daily = LogSpec {
            rotate_interval: Some(crate::spec::RotateInterval::Daily),
            ..LogSpec::default()
        };
        let f = files.get(&base, &daily);
        f.lock().day_ends_ms = 0;
        f.write(b"first of a new file\n");
        assert!(
            f.lock().day_ends_ms > now_ms(),
            "an empty file starts a new day"
        );
        f.write(b"same day\n");
        assert!(rotate::rotated_files(&base).is_empty());
        f.lock().day_ends_ms = 0;
        f.write(b"next day\n");
        files.settle();
        let rotated = rotate::rotated_files(&base);
        assert_eq!(rotated.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&rotated[0]).unwrap(),
            "first of a new file\nsame day\n"
        );
        assert_eq!(std::fs::read_to_string(&base).unwrap(), "next day\n");
    }

    #[test]
    fn a_line_in_pieces_is_not_split_by_rotation() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("a.log");
        let files = LogFiles::default();
        let f = files.get(&base, &rotating(10, 100, false));
        f.write(b"first\n");
        f.write(b"a long line in ");
        f.write(b"three ");
        f.write(b"pieces\n");
        f.write(b"after\n");
        files.settle();
        assert_eq!(
            all_lines(&base),
            ["first", "a long line in three pieces", "after"]
        );
        assert_eq!(rotate::rotated_files(&base).len(), 2);
    }

    #[test]
    fn truncate_empties_in_place_and_writing_goes_on_from_the_start() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("a.log");
        std::fs::write(&base, "from before\n").unwrap();
        let files = LogFiles::default();
        let f = files.get(&base, &spec());
        assert!(f.preexisting());
        f.write(b"one\n");
        files.truncate(&base).unwrap();
        assert!(!f.preexisting());
        f.write(b"two\n");
        assert_eq!(std::fs::read_to_string(&base).unwrap(), "two\n");
        let other = t.path().join("b.log");
        std::fs::write(&other, "x\n").unwrap();
        files.truncate(&other).unwrap();
        assert_eq!(std::fs::read(&other).unwrap(), b"");
        files.truncate(&t.path().join("missing.log")).unwrap();
    }

    #[test]
    fn a_file_deleted_behind_our_back_is_recreated_at_rotation() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("a.log");
        let files = LogFiles::default();
        let f = files.get(&base, &rotating(10, 100, false));
        f.write(b"0123456789\n");
        std::fs::remove_file(&base).unwrap();
        f.write(b"again\n");
        assert_eq!(std::fs::read_to_string(&base).unwrap(), "again\n");
    }
}
