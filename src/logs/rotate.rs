//! Built-in rotation. A file is renamed aside and a new one opened under the
//! writer's lock, between two whole lines, so no line is lost, duplicated or
//! split (copy-then-truncate, PM2's way, loses what is written in between).
//! Compressing and pruning rotated files happens on a thread of its own,
//! never on the path that reads the apps' pipes.
//!
//! Rotated files are named after the moment of rotation, in UTC so that the
//! names sort in time order across daylight-saving changes:
//! `api-out.log` becomes `api-out__2026-11-24_22-18-02Z.log` (`.log.gz` when
//! compressed), and a second rotation within the same second
//! `api-out__2026-11-24_22-18-02Z-1.log`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, OnceLock};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::settings::LogSettings;
use crate::spec::{LogSpec, RotateInterval};

const STAMP: &str = "%Y-%m-%d_%H-%M-%S";
const DAY_MS: u64 = 24 * 3600 * 1000;

/// How an app's files rotate: the daemon-wide settings with the app's own
/// overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Rotate before a write would take the file past this many bytes (0: never by size).
    pub max_size: u64,
    /// Rotated files kept per log file.
    pub retain: u32,
    pub compress: bool,
    /// Also rotate at the first write of a new (local) day.
    pub daily: bool,
}

impl Policy {
    pub fn new(defaults: &LogSettings, app: &LogSpec) -> Policy {
        let interval = app.rotate_interval.or(defaults.rotate_interval);
        Policy {
            max_size: app.max_size.unwrap_or(defaults.max_size),
            retain: app.retain.unwrap_or(defaults.retain),
            compress: app.compress.unwrap_or(defaults.compress),
            daily: interval == Some(RotateInterval::Daily),
        }
    }

    /// Whether a file of `size` bytes is rotated before `incoming` more bytes
    /// are written to it at `now_ms`. An empty file never is.
    pub fn due(&self, size: u64, incoming: u64, now_ms: u64, day_ends_ms: u64) -> bool {
        size > 0
            && ((self.max_size > 0 && size + incoming > self.max_size)
                || (self.daily && now_ms >= day_ends_ms))
    }
}

/// `base` split into the stem and extension rotated names are built from.
fn parts(base: &Path) -> (String, Option<String>) {
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = base.extension().map(|e| e.to_string_lossy().into_owned());
    (stem, ext)
}

/// The name `base` gets when rotated at `at`; `n` > 0 tells apart rotations
/// within the same second.
pub fn rotated_name(base: &Path, at: DateTime<Utc>, n: u32) -> PathBuf {
    let (stem, ext) = parts(base);
    let mut name = format!("{stem}__{}Z", at.format(STAMP));
    if n > 0 {
        name.push_str(&format!("-{n}"));
    }
    if let Some(ext) = ext {
        name.push('.');
        name.push_str(&ext);
    }
    base.with_file_name(name)
}

/// What a rotated file's name says: when it was rotated, its rank within
/// that second, and whether it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rotated {
    pub at: NaiveDateTime,
    pub n: u32,
    pub gz: bool,
}

/// Reads a file name in `base`'s directory as one of `base`'s rotated
/// files; anything else (other apps' files, half-written archives) is None.
pub fn parse_rotated(base: &Path, name: &str) -> Option<Rotated> {
    let (stem, ext) = parts(base);
    let (rest, gz) = match name.strip_suffix(".gz") {
        Some(r) => (r, true),
        None => (name, false),
    };
    let rest = match &ext {
        Some(e) => rest.strip_suffix(e.as_str())?.strip_suffix('.')?,
        None => rest,
    };
    let middle = rest.strip_prefix(stem.as_str())?.strip_prefix("__")?;
    let (stamp, tail) = middle.split_once('Z')?;
    let at = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?;
    let n = match tail {
        "" => 0,
        t => {
            let digits = t.strip_prefix('-')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
    };
    Some(Rotated { at, n, gz })
}

/// The rotated files of `base` (among `names`) to delete so that the newest
/// `retain` remain. A file caught between its plain and compressed form
/// counts once.
pub fn to_prune<'a>(base: &Path, names: &[&'a str], retain: u32) -> Vec<&'a str> {
    let found: Vec<(&str, (NaiveDateTime, u32))> = names
        .iter()
        .filter_map(|n| parse_rotated(base, n).map(|r| (*n, (r.at, r.n))))
        .collect();
    let mut keys: Vec<(NaiveDateTime, u32)> = found.iter().map(|(_, k)| *k).collect();
    keys.sort_unstable_by(|a, b| b.cmp(a));
    keys.dedup();
    let keep: HashSet<(NaiveDateTime, u32)> = keys.into_iter().take(retain as usize).collect();
    found
        .into_iter()
        .filter(|(_, k)| !keep.contains(k))
        .map(|(n, _)| n)
        .collect()
}

/// The rotated files of `base` on disk, oldest first.
pub fn rotated_files(base: &Path) -> Vec<PathBuf> {
    let Some(dir) = base.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(Rotated, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((parse_rotated(base, &name)?, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// When the local day that contains `at_ms` ends (where a daily rotation
/// is due), in milliseconds since the epoch.
pub fn day_end_ms(at_ms: u64) -> u64 {
    day_end(&chrono::Local, at_ms).unwrap_or(at_ms + DAY_MS)
}

fn day_end<Tz: TimeZone>(tz: &Tz, at_ms: u64) -> Option<u64> {
    let at = tz
        .timestamp_millis_opt(i64::try_from(at_ms).ok()?)
        .single()?;
    let next = at.date_naive().succ_opt()?.and_hms_opt(0, 0, 0)?;
    // Where a clock change skips midnight, the day ends when the clock resumes.
    let end = tz.from_local_datetime(&next).earliest().or_else(|| {
        tz.from_local_datetime(&(next + chrono::Duration::hours(1)))
            .earliest()
    })?;
    u64::try_from(end.timestamp_millis()).ok()
}

/// Work left after a rotation: compress the rotated file, prune old ones.
#[derive(Debug)]
pub(crate) enum Job {
    Rotated {
        base: PathBuf,
        rotated: PathBuf,
        compress: bool,
        retain: u32,
    },
    /// Answers once every earlier job is done.
    #[cfg(test)]
    Barrier(mpsc::SyncSender<()>),
}

/// Runs rotation jobs one after another on a thread started at the first
/// rotation: compressing can take seconds, and the writer must not wait.
#[derive(Default)]
pub(crate) struct Housekeeper {
    tx: OnceLock<Option<mpsc::Sender<Job>>>,
}

impl Housekeeper {
    pub fn submit(&self, job: Job) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("pmr-log-rotate".into())
                .spawn(move || rx.into_iter().for_each(run));
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(
                        "cannot start the log rotation thread ({e}); compressing inline"
                    );
                    None
                }
            }
        });
        match tx {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    run(job);
                }
            }
            None => run(job),
        }
    }
}

fn run(job: Job) {
    match job {
        Job::Rotated {
            base,
            rotated,
            compress,
            retain,
        } => {
            if compress {
                if let Err(e) = gzip(&rotated) {
                    tracing::warn!("cannot compress {}: {e}; kept it as is", rotated.display());
                }
            }
            prune(&base, retain);
        }
        #[cfg(test)]
        Job::Barrier(done) => {
            let _ = done.send(());
        }
    }
}

pub(crate) fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `file` → `file.gz`, through a temporary name that pruning ignores, so a
/// reader never sees half an archive.
fn gzip(file: &Path) -> std::io::Result<()> {
    let gz = with_suffix(file, ".gz");
    let tmp = with_suffix(file, ".gz.tmp");
    let write = || -> std::io::Result<()> {
        let mut input = File::open(file)?;
        let out = BufWriter::new(File::create(&tmp)?);
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        std::io::copy(&mut input, &mut enc)?;
        enc.finish()?.flush()?;
        std::fs::rename(&tmp, &gz)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::remove_file(file)
}

fn prune(base: &Path, retain: u32) {
    let Some(dir) = base.parent() else { return };
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(e) => {
            tracing::warn!("cannot list {} to prune old logs: {e}", dir.display());
            return;
        }
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for name in to_prune(base, &refs, retain) {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove old log {name}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
    }

    #[test]
    fn names_carry_the_utc_time_and_a_rank_within_the_second() {
        let base = Path::new("/l/api-out.log");
        let t = at("2026-11-24 22:18:02");
        assert_eq!(
            rotated_name(base, t, 0),
            PathBuf::from("/l/api-out__2026-11-24_22-18-02Z.log")
        );
        assert_eq!(
            rotated_name(base, t, 3),
            PathBuf::from("/l/api-out__2026-11-24_22-18-02Z-3.log")
        );
        assert_eq!(
            rotated_name(Path::new("/l/app"), t, 0),
            PathBuf::from("/l/app__2026-11-24_22-18-02Z")
        );
    }

    #[test]
    fn parsing_reads_back_what_naming_writes_and_nothing_else() {
        let base = Path::new("/l/api-out.log");
        let t = at("2026-11-24 22:18:02");
        for n in [0, 1, 12] {
            let name = rotated_name(base, t, n);
            let name = name.file_name().unwrap().to_str().unwrap();
            let r = parse_rotated(base, name).unwrap();
            assert_eq!((r.at, r.n, r.gz), (t.naive_utc(), n, false));
            let gz = format!("{name}.gz");
            assert!(parse_rotated(base, &gz).unwrap().gz);
        }
        for other in [
            "api-out.log",
            "api-out-0__2026-11-24_22-18-02Z.log",
            "api-out__2026-11-24_22-18-02Z.log.gz.tmp",
            "api-out__2026-11-24_22-18-02.log",
            "api-out__2026-11-24_22-18-02Z-.log",
            "api-out__2026-11-24_22-18-02Z-x.log",
            "api-out__2026-13-24_22-18-02Z.log",
            "api-error__2026-11-24_22-18-02Z.log",
            "api-out__2026-11-24_22-18-02Z.txt",
        ] {
            assert_eq!(parse_rotated(base, other), None, "{other}");
        }
        let bare = Path::new("/l/app");
        assert!(parse_rotated(bare, "app__2026-11-24_22-18-02Z").is_some());
        assert!(parse_rotated(bare, "app__2026-11-24_22-18-02Z.gz").is_some());
    }

    #[test]
    fn pruning_keeps_the_newest_and_counts_half_compressed_files_once() {
        let base = Path::new("/l/a.log");
        let names = [
            "a__2026-01-01_00-00-00Z.log.gz",
            "a__2026-01-01_00-00-00Z-1.log.gz",
            "a__2026-01-01_00-00-00Z-2.log",
            "a__2026-01-01_00-00-00Z-2.log.gz",
            "a__2026-01-02_00-00-00Z.log",
            "a.log",
            "b__2026-01-01_00-00-00Z.log",
        ];
        let mut gone = to_prune(base, &names, 2);
        gone.sort();
        assert_eq!(
            gone,
            vec![
                "a__2026-01-01_00-00-00Z-1.log.gz",
                "a__2026-01-01_00-00-00Z.log.gz"
            ]
        );
        assert_eq!(to_prune(base, &names, 0).len(), 5);
        assert!(to_prune(base, &names, 10).is_empty());
    }

    #[test]
    fn rotation_is_due_past_the_size_or_the_day_and_never_for_an_empty_file() {
        let p = Policy {
            max_size: 100,
            retain: 3,
            compress: false,
            daily: false,
        };
        assert!(!p.due(60, 40, 0, u64::MAX));
        assert!(p.due(60, 41, 0, u64::MAX));
        assert!(
            !p.due(0, 1000, 0, u64::MAX),
            "a big first write stays whole"
        );
        let daily = Policy {
            max_size: 0,
            daily: true,
            ..p
        };
        assert!(!daily.due(1 << 40, 1, 10, 11));
        assert!(daily.due(1, 1, 11, 11));
        assert!(!daily.due(0, 1, 11, 11));
    }

    #[test]
    fn app_options_override_the_settings() {
        let defaults = LogSettings::default();
        let p = Policy::new(&defaults, &LogSpec::default());
        assert_eq!(
            p,
            Policy {
                max_size: 10 << 20,
                retain: 10,
                compress: false,
                daily: false
            }
        );
        let app = LogSpec {
            max_size: Some(0),
            retain: Some(2),
            compress: Some(true),
            rotate_interval: Some(RotateInterval::Daily),
            ..LogSpec::default()
        };
        let p = Policy::new(&defaults, &app);
        assert_eq!(
            (p.max_size, p.retain, p.compress, p.daily),
            (0, 2, true, true)
        );
        let daily_default = LogSettings {
            rotate_interval: Some(RotateInterval::Daily),
            ..LogSettings::default()
        };
        let off = LogSpec {
            rotate_interval: Some(RotateInterval::None),
            ..LogSpec::default()
        };
        assert!(!Policy::new(&daily_default, &off).daily);
        assert!(Policy::new(&daily_default, &LogSpec::default()).daily);
    }

    #[test]
    fn a_day_ends_at_the_next_local_midnight() {
        let plus2 = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        // 2026-11-24 22:18:02 UTC is 2026-11-25 00:18:02 at +02:00.
        let t = at("2026-11-24 22:18:02").timestamp_millis() as u64;
        let end = day_end(&plus2, t).unwrap();
        assert_eq!(end, at("2026-11-25 22:00:00").timestamp_millis() as u64);
        assert_eq!(
            day_end(&Utc, t).unwrap(),
            at("2026-11-25 00:00:00").timestamp_millis() as u64
        );
        assert!(day_end_ms(t) > t);
    }

    #[test]
    fn gzip_replaces_the_file_and_pruning_removes_the_oldest() {
        use std::io::Read;
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("a.log");
        let mut names = Vec::new();
        for n in 0..4 {
            let p = rotated_name(&base, at("2026-01-01 00:00:00"), n);
            std::fs::write(&p, format!("line {n}\n")).unwrap();
            names.push(p);
        }
        run(Job::Rotated {
            base: base.clone(),
            rotated: names[3].clone(),
            compress: true,
            retain: 2,
        });
        let left = rotated_files(&base);
        assert_eq!(left, vec![names[2].clone(), with_suffix(&names[3], ".gz")]);
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&left[1]).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "line 3\n");
    }
}
