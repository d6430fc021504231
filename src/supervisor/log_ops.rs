//! Operations on the instances' logs: recent lines from memory, emptying
//! files (`pmr flush`), reopening them after external rotation, and
//! forgetting the files and histories of removed instances.

use std::path::PathBuf;

use super::registry::SlotHandle;
use super::Supervisor;
use crate::error::{Error, Result};
use crate::logs::{is_discard, LogPaths};
use crate::model::RecentLines;

impl Supervisor {
    /// The last `n` lines of each wanted stream of the instances `ids`, in
    /// the order they arrived, for the instances whose recent past is in
    /// memory; the others are named, for the caller to read their files.
    pub fn recent_logs(&self, ids: &[u32], n: usize, out: bool, err: bool) -> RecentLines {
        let mut recent = RecentLines::default();
        let slots: Vec<(u32, LogPaths)> = {
            let reg = self.reg();
            reg.apps
                .iter()
                .flat_map(|a| a.slots.iter())
                .filter(|s| ids.contains(&s.id))
                .map(|s| {
                    let st = s.st();
                    let skip = st.history.len().saturating_sub(n);
                    recent.events.extend(st.history.iter().skip(skip).cloned());
                    (s.id, s.paths.clone())
                })
                .collect()
        };
        let shared = &self.inner.shared;
        // A file that held lines before this daemon wrote to it has lines
        // no history has.
        let fresh = |p: &std::path::Path| match shared.files.find(p) {
            Some(f) => !f.preexisting(),
            None => std::fs::metadata(p).map_or(true, |m| m.len() == 0),
        };
        for (id, paths) in slots {
            let tail = shared.histories.get(id).map(|h| h.tail(n, out, err));
            let (lines, have_out, have_err, evicted) = match tail {
                Some(t) => (t.lines, t.out, t.err, t.evicted),
                None => (Vec::new(), 0, 0, false),
            };
            let enough = |wanted: bool, have: usize, path: &std::path::Path| {
                !wanted || have >= n || (!evicted && fresh(path))
            };
            if enough(out, have_out, &paths.out) && enough(err, have_err, &paths.err) {
                recent.lines.extend(lines);
            } else {
                recent.from_files.push(id);
            }
        }
        recent.lines.sort_by_key(|l| l.seq);
        recent.events.sort_by_key(|e| e.time);
        recent
    }

    /// Empties the log files of the selected apps (all of them when
    /// `targets` is empty) in place, and forgets their recent lines.
    /// Returns the files emptied.
    pub fn flush(&self, targets: &[String]) -> Result<Vec<PathBuf>> {
        let slots: Vec<(u32, LogPaths)> = {
            let reg = self.reg();
            let sel = if targets.is_empty() {
                None
            } else {
                Some(reg.select(targets)?)
            };
            let chosen = |app: &str, id: u32| {
                sel.as_ref().is_none_or(|sel| {
                    sel.iter()
                        .any(|x| x.app == app && x.ids.as_ref().is_none_or(|ids| ids.contains(&id)))
                })
            };
            reg.apps
                .iter()
                .flat_map(|a| a.slots.iter().map(move |s| (a, s)))
                .filter(|(a, s)| chosen(&a.spec.name, s.id))
                .map(|(_, s)| (s.id, s.paths.clone()))
                .collect()
        };
        let mut done: Vec<PathBuf> = Vec::new();
        let mut first_err = None;
        for (id, paths) in slots {
            for p in [Some(&paths.out), Some(&paths.err), paths.combined.as_ref()]
                .into_iter()
                .flatten()
            {
                if done.contains(p) || is_discard(p) {
                    continue;
                }
                match self.inner.shared.files.truncate(p) {
                    Ok(()) => done.push(p.clone()),
                    Err(e) => {
                        first_err
                            .get_or_insert(Error::io(format!("cannot empty {}", p.display()), e));
                    }
                }
            }
            if let Some(h) = self.inner.shared.histories.get(id) {
                h.clear();
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// Asks every log file to reopen its path (after external rotation).
    pub fn reopen_logs(&self) {
        for f in self.inner.shared.files.all() {
            f.reopen();
        }
    }

    pub(super) fn forget_logs(&self, slots: &[SlotHandle]) {
        let still_used: Vec<PathBuf> = {
            let reg = self.reg();
            reg.apps
                .iter()
                .flat_map(|a| a.slots.iter())
                .flat_map(|s| [s.paths.out.clone(), s.paths.err.clone()])
                .collect()
        };
        for s in slots {
            self.inner.shared.histories.forget(s.id);
            for p in [&s.paths.out, &s.paths.err]
                .into_iter()
                .chain(s.paths.combined.as_ref())
            {
                if !still_used.contains(p) {
                    self.inner.shared.files.forget(p);
                }
            }
        }
    }
}
