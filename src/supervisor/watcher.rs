//! `watch`: a task per app that replaces the app's instances when files
//! under its watched paths change — through the reload path, so a cluster
//! app drops no request — once the changes have been quiet for
//! `watch_delay`. Directories are watched one by one (inotify on Linux),
//! skipping ignored ones, so `node_modules` costs no watch at all.

use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{AbortOnDrop, Inner, RestartReason, Supervisor};
use crate::spec::watch::{IgnoreRules, DEFAULT_WATCH_DELAY_MS};
use crate::spec::AppSpec;

/// What a watcher was started with: a change of any of it (a reloaded
/// ecosystem file) needs a new watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WatchKey {
    paths: Vec<PathBuf>,
    ignore: Vec<String>,
    delay_ms: u64,
    cwd: PathBuf,
    /// pmr's own log files: an app writing its output must not restart it.
    excluded: Vec<PathBuf>,
}

impl WatchKey {
    pub fn of(spec: &AppSpec, excluded: Vec<PathBuf>) -> Self {
        WatchKey {
            paths: spec.watch.clone(),
            ignore: spec.ignore_watch.clone(),
            delay_ms: spec.watch_delay_ms.unwrap_or(DEFAULT_WATCH_DELAY_MS),
            cwd: spec.cwd.clone(),
            excluded,
        }
    }
}

/// A running watcher; dropping it stops watching.
pub(super) struct Watching {
    pub key: WatchKey,
    _task: AbortOnDrop,
}

/// Replaces the app once changes have stopped coming for `delay`: an editor
/// saving, or a build writing many files, makes one replacement.
#[derive(Debug)]
pub(super) struct Debounce {
    delay: Duration,
    due: Option<Instant>,
}

impl Debounce {
    pub fn new(delay: Duration) -> Self {
        Debounce { delay, due: None }
    }

    pub fn changed(&mut self, now: Instant) {
        self.due = Some(now + self.delay);
    }

    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// True once, when the quiet time has passed.
    pub fn fire(&mut self, now: Instant) -> bool {
        match self.due {
            Some(d) if now >= d => {
                self.due = None;
                true
            }
            _ => false,
        }
    }
}

/// A watched path: a directory and what is under it, or one file (watched
/// through its directory, so that an editor replacing the file by a rename
/// is seen too).
#[derive(Debug, Clone)]
enum Root {
    Dir(PathBuf),
    File(PathBuf),
}

type NotifyResult = notify::Result<notify::Event>;

struct Watcher {
    notify: notify::RecommendedWatcher,
    roots: Vec<Root>,
    rules: IgnoreRules,
}

/// Why watching failed, in words that say what to do. The inotify limits
/// are per user and low by default; ENOSPC is the kernel's odd way of
/// saying the watch limit is reached.
pub(crate) fn explain(path: &Path, e: &notify::Error) -> String {
    let errno = match &e.kind {
        notify::ErrorKind::Io(io) => io.raw_os_error(),
        _ => None,
    };
    let why = match (&e.kind, errno) {
        (notify::ErrorKind::MaxFilesWatch, _) | (_, Some(libc::ENOSPC)) => {
            "the system's limit of inotify watches is reached: raise it with `sudo sysctl fs.inotify.max_user_watches=524288` (and set fs.inotify.max_user_watches in /etc/sysctl.conf to keep it), or leave big directories out with ignore_watch".to_string()
        }
        (_, Some(libc::EMFILE)) => {
            "the system's limit of inotify instances is reached: raise it with `sudo sysctl fs.inotify.max_user_instances=1024` (and set fs.inotify.max_user_instances in /etc/sysctl.conf to keep it)".to_string()
        }
        (notify::ErrorKind::PathNotFound, _) | (_, Some(libc::ENOENT)) => {
            "no such file or directory".to_string()
        }
        _ => e.to_string(),
    };
    format!("cannot watch {}: {why}", path.display())
}

impl Watcher {
    fn open(
        key: &WatchKey,
        rules: IgnoreRules,
        tx: mpsc::UnboundedSender<NotifyResult>,
    ) -> Result<Self, String> {
        let notify = notify::recommended_watcher(move |res: NotifyResult| {
            let _ = tx.send(res);
        })
        .map_err(|e| explain(&key.cwd, &e))?;
        let mut w = Watcher {
            notify,
            roots: Vec::new(),
            rules,
        };
        for p in &key.paths {
            let meta =
                std::fs::metadata(p).map_err(|e| format!("cannot watch {}: {e}", p.display()))?;
            if meta.is_dir() {
                w.roots.push(Root::Dir(p.clone()));
                w.add_tree(p, p)?;
            } else {
                let dir = p.parent().unwrap_or(Path::new("/"));
                w.watch_one(dir)?;
                w.roots.push(Root::File(p.clone()));
            }
        }
        Ok(w)
    }

    fn watch_one(&mut self, dir: &Path) -> Result<(), String> {
        self.notify
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| explain(dir, &e))
    }

    /// Watches `dir` and every directory under it that is not ignored.
    /// Symbolic links are not followed, so a link loop cannot run away.
    fn add_tree(&mut self, root: &Path, dir: &Path) -> Result<(), String> {
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            if d != root && self.rules.ignores(root, &d) {
                continue;
            }
            match self.watch_one(&d) {
                Ok(()) => {}
                // Gone since it was listed: nothing to watch.
                Err(_) if !d.exists() => continue,
                Err(e) => return Err(e),
            }
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
        Ok(())
    }

    /// The watched directory a change belongs to, if it counts.
    fn counts(&self, path: &Path) -> Option<&Root> {
        self.roots.iter().find(|r| match r {
            Root::Dir(d) => path.starts_with(d) && !self.rules.ignores(d, path),
            Root::File(f) => path == f,
        })
    }
}

/// Starts watching for `app`. The first walk of the tree runs on a
/// blocking thread: a big tree takes a while to list.
pub(super) async fn start(
    sup: Weak<Inner>,
    app: String,
    key: WatchKey,
) -> Result<Watching, String> {
    let rules = IgnoreRules::new(&key.cwd, &key.ignore, key.excluded.clone())?;
    let (tx, rx) = mpsc::unbounded_channel();
    let k = key.clone();
    let watcher = tokio::task::spawn_blocking(move || Watcher::open(&k, rules, tx))
        .await
        .map_err(|e| format!("the watcher could not start: {e}"))??;
    let delay = Duration::from_millis(key.delay_ms);
    let task = tokio::spawn(run(sup, app, watcher, rx, delay));
    Ok(Watching {
        key,
        _task: AbortOnDrop(task),
    })
}

async fn run(
    sup: Weak<Inner>,
    app: String,
    mut watcher: Watcher,
    mut rx: mpsc::UnboundedReceiver<NotifyResult>,
    delay: Duration,
) {
    let mut debounce = Debounce::new(delay);
    let mut changed: Vec<PathBuf> = Vec::new();
    loop {
        let due = debounce.due();
        tokio::select! {
            ev = rx.recv() => match ev {
                None => return,
                Some(Ok(event)) => {
                    if on_event(&mut watcher, &app, &sup, event, &mut changed) {
                        debounce.changed(Instant::now());
                    }
                }
                Some(Err(e)) => {
                    let msg = explain(e.paths.first().map_or(Path::new("?"), |p| p), &e);
                    note_error(&sup, &app, msg);
                }
            },
            _ = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                if !debounce.fire(Instant::now()) {
                    continue;
                }
                let Some(inner) = sup.upgrade() else { return };
                let what = describe_changes(&std::mem::take(&mut changed));
                Supervisor { inner }
                    .replace_app(&app, RestartReason::Watch, what)
                    .await;
            }
        }
    }
}

/// Whether the event is a change that counts. A directory created under a
/// watched one is watched from now on.
fn on_event(
    w: &mut Watcher,
    app: &str,
    sup: &Weak<Inner>,
    event: notify::Event,
    changed: &mut Vec<PathBuf>,
) -> bool {
    use notify::EventKind as K;
    if event.need_rescan() {
        // The kernel's queue overflowed: something changed, no telling what.
        return true;
    }
    if matches!(event.kind, K::Access(_) | K::Other) {
        return false;
    }
    let mut counts = false;
    for path in &event.paths {
        let Some(root) = w.counts(path).cloned() else {
            continue;
        };
        counts = true;
        if changed.len() < 3 && !changed.contains(path) {
            changed.push(path.clone());
        }
        if let (K::Create(_), Root::Dir(r)) = (&event.kind, &root) {
            if path.is_dir() {
                if let Err(e) = w.add_tree(r, path) {
                    note_error(sup, app, e);
                }
            }
        }
    }
    counts
}

fn describe_changes(paths: &[PathBuf]) -> String {
    match paths {
        [] => "files changed".into(),
        [one] => format!("{} changed", one.display()),
        [first, ..] => format!("{} and more changed", first.display()),
    }
}

fn note_error(sup: &Weak<Inner>, app: &str, msg: String) {
    tracing::warn!(app, "{msg}");
    if let Some(inner) = sup.upgrade() {
        Supervisor { inner }.watch_failed(app, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_fires_once_after_the_last_change() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(1000));
        assert_eq!(d.due(), None);
        assert!(!d.fire(t0 + ms(5000)), "nothing changed");
        d.changed(t0);
        d.changed(t0 + ms(600));
        assert_eq!(d.due(), Some(t0 + ms(1600)));
        assert!(!d.fire(t0 + ms(1000)), "a later change pushed it back");
        assert!(d.fire(t0 + ms(1600)));
        assert!(!d.fire(t0 + ms(1700)), "once");
        assert_eq!(d.due(), None);
    }

    #[test]
    fn errors_say_which_limit_to_raise() {
        let p = Path::new("/srv/app");
        let full = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        let m = explain(p, &full);
        assert!(m.starts_with("cannot watch /srv/app: "), "{m}");
        assert!(m.contains("fs.inotify.max_user_watches"), "{m}");
        let enospc = notify::Error::io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(explain(p, &enospc).contains("fs.inotify.max_user_watches"));
        let emfile = notify::Error::io(std::io::Error::from_raw_os_error(libc::EMFILE));
        assert!(explain(p, &emfile).contains("fs.inotify.max_user_instances"));
        let gone = notify::Error::path_not_found();
        assert!(explain(p, &gone).ends_with("no such file or directory"));
    }

    fn key(dir: &Path, paths: Vec<PathBuf>, ignore: &[&str]) -> WatchKey {
        WatchKey {
            paths,
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            delay_ms: 100,
            cwd: dir.to_path_buf(),
            excluded: vec![dir.join("logs")],
        }
    }

    #[test]
    fn which_paths_count() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["src", "node_modules/x", ".git", "logs", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("server.js"), "").unwrap();
        let k = key(d, vec![d.to_path_buf()], &["tmp"]);
        let rules = IgnoreRules::new(d, &k.ignore, k.excluded.clone()).unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let w = Watcher::open(&k, rules, tx).unwrap();
        assert!(w.counts(&d.join("server.js")).is_some());
        assert!(w.counts(&d.join("src/a.js")).is_some());
        for ignored in [
            "node_modules/x/a.js",
            ".git/HEAD",
            "logs/api-out.log",
            "tmp/a",
        ] {
            assert!(w.counts(&d.join(ignored)).is_none(), "{ignored}");
        }

        let file = d.join("server.js");
        let k = key(d, vec![file.clone()], &[]);
        let rules = IgnoreRules::new(d, &k.ignore, k.excluded.clone()).unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let w = Watcher::open(&k, rules, tx).unwrap();
        assert!(w.counts(&file).is_some());
        assert!(w.counts(&d.join("src/a.js")).is_none(), "only the file");

        let k = key(d, vec![d.join("missing")], &[]);
        let rules = IgnoreRules::new(d, &k.ignore, k.excluded.clone()).unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let e = Watcher::open(&k, rules, tx).err().unwrap();
        assert!(
            e.starts_with(&format!("cannot watch {}", d.join("missing").display())),
            "{e}"
        );
    }
}
