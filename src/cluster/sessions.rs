//! Which worker holds which Engine.IO session, as `@socket.io/sticky`'s
//! `setupWorker` reports it: the `sticky` policy routes a session's requests
//! by it, and a reload waits on it for the clients of a replaced worker to
//! come back before it calls the hand-over done.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// One map per app: a worker may listen on several sockets.
#[derive(Default)]
pub struct Sessions {
    owners: Mutex<Owners>,
    /// A session was reported: a request waiting for its session, or a
    /// reload waiting for clients to come back, looks again.
    pub(super) changed: Notify,
}

#[derive(Default)]
struct Owners {
    /// Each live session's worker, and whether its client has joined a
    /// Socket.IO namespace yet (then a broadcast reaches it).
    live: HashMap<String, Session>,
    sessions: Tally,
    joined: Tally,
    /// The preload reports namespace joins (the app's `io` went through
    /// setupWorker in a CommonJS require): a client counts as back once it
    /// has joined, not at its handshake.
    joins_reported: bool,
    /// Sessions that ended or whose worker went: a request naming one is
    /// routed at once (its worker will refuse it and the client starts a
    /// new session) instead of waiting for a report that never comes.
    ended: HashSet<String>,
    /// Some worker of the app reports its sessions (the app uses setupWorker).
    reported: bool,
    /// A wait found no report at all: the app does not use setupWorker, so
    /// later requests do not wait.
    silent: bool,
}

struct Session {
    worker: u64,
    joined: bool,
}

/// Live sessions counted per worker.
#[derive(Default)]
struct Tally {
    total: usize,
    per_worker: HashMap<u64, usize>,
}

impl Tally {
    fn add(&mut self, worker: u64) {
        self.total += 1;
        *self.per_worker.entry(worker).or_default() += 1;
    }

    fn sub(&mut self, worker: u64) {
        if let Some(n) = self.per_worker.get_mut(&worker) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_worker.remove(&worker);
            }
        }
    }

    fn of(&self, worker: u64) -> usize {
        self.per_worker.get(&worker).copied().unwrap_or(0)
    }
}

/// Past this many ended sessions remembered, the memory starts again (a
/// forgotten one costs one bounded wait).
const MAX_ENDED: usize = 65_536;

impl Owners {
    /// Takes a session out of `live` and of the counts.
    fn drop_live(&mut self, sid: &str) {
        if let Some(s) = self.live.remove(sid) {
            self.sessions.sub(s.worker);
            if s.joined {
                self.joined.sub(s.worker);
            }
        }
    }

    fn end(&mut self, sid: String) {
        self.drop_live(&sid);
        if self.ended.len() >= MAX_ENDED {
            self.ended.clear();
        }
        self.ended.insert(sid);
    }

    /// The clients that count: joined ones where joins are reported.
    fn clients(&self) -> &Tally {
        if self.joins_reported {
            &self.joined
        } else {
            &self.sessions
        }
    }
}

/// What a request naming a session should do now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    Owner(u64),
    /// Not reported yet, and a report is worth waiting for.
    Wait,
    /// No report will come: route by the other hints.
    Unknown,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, Owners> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn opened(&self, sid: String, worker: u64) {
        {
            let mut o = self.lock();
            o.reported = true;
            // Reported again (by another worker, say): counted once.
            o.drop_live(&sid);
            o.ended.remove(&sid);
            o.live.insert(
                sid,
                Session {
                    worker,
                    joined: false,
                },
            );
            o.sessions.add(worker);
        }
        self.changed.notify_waiters();
    }

    /// The session's client joined a Socket.IO namespace (the preload's
    /// report, which follows the session's own on the same channel).
    pub fn joined(&self, sid: &str, worker: u64) {
        {
            let mut o = self.lock();
            o.joins_reported = true;
            match o.live.get_mut(sid) {
                Some(s) if s.worker == worker && !s.joined => s.joined = true,
                _ => return,
            }
            o.joined.add(worker);
        }
        self.changed.notify_waiters();
    }

    pub fn closed(&self, sid: &str) {
        let mut o = self.lock();
        if o.live.contains_key(sid) {
            o.end(sid.to_owned());
        }
    }

    /// A worker went: its sessions went with it.
    pub fn forget_worker(&self, worker: u64) {
        let mut o = self.lock();
        let gone: Vec<String> = o
            .live
            .iter()
            .filter(|(_, s)| s.worker == worker)
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in gone {
            o.end(sid);
        }
    }

    /// The app's clients (sessions, or joined ones where joins are
    /// reported), and how many of them `worker` holds.
    pub fn count(&self, worker: u64) -> (usize, usize) {
        let o = self.lock();
        let c = o.clients();
        (c.total, c.of(worker))
    }

    /// Waits until workers other than `gone` hold at least `want` clients
    /// (the clients of a replaced worker have come back to the others), or
    /// until `bound` has passed. True when they do.
    pub async fn back_elsewhere(&self, gone: u64, want: usize, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            // Registered before looking, so a report in between still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (all, held) = self.count(gone);
            if all - held >= want {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    pub(super) fn lookup(&self, sid: &str) -> Lookup {
        let o = self.lock();
        match o.live.get(sid) {
            Some(s) => Lookup::Owner(s.worker),
            None if o.ended.contains(sid) || (o.silent && !o.reported) => Lookup::Unknown,
            None => Lookup::Wait,
        }
    }

    /// A wait ended without the session's report.
    pub(super) fn waited_in_vain(&self) {
        let mut o = self.lock();
        if !o.reported {
            o.silent = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_session_is_waited_for_until_reported_then_owned() {
        let s = Sessions::default();
        // Before any report: worth waiting for (the first client's report
        // may trail its next request).
        assert_eq!(s.lookup("a"), Lookup::Wait);
        s.opened("a".into(), 7);
        assert_eq!(s.lookup("a"), Lookup::Owner(7));
        assert_eq!(s.lookup("b"), Lookup::Wait);
    }

    #[test]
    fn ended_sessions_and_gone_workers_are_not_waited_for() {
        let s = Sessions::default();
        s.opened("a".into(), 1);
        s.opened("b".into(), 2);
        s.closed("a");
        assert_eq!(s.lookup("a"), Lookup::Unknown);
        s.forget_worker(2);
        assert_eq!(s.lookup("b"), Lookup::Unknown);
        // A session id seen again (a new report) is owned again.
        s.opened("b".into(), 3);
        assert_eq!(s.lookup("b"), Lookup::Owner(3));
    }

    #[test]
    fn an_app_that_never_reports_stops_waiting_after_one_wait() {
        let s = Sessions::default();
        s.waited_in_vain();
        assert_eq!(s.lookup("x"), Lookup::Unknown);
        // Once it reports, unknown sessions are worth a wait again.
        s.opened("y".into(), 1);
        assert_eq!(s.lookup("x"), Lookup::Wait);
    }

    #[test]
    fn sessions_are_counted_per_worker() {
        let s = Sessions::default();
        s.opened("a".into(), 1);
        s.opened("b".into(), 1);
        s.opened("c".into(), 2);
        assert_eq!(s.count(1), (3, 2));
        // Reported again by another worker: moved, not counted twice.
        s.opened("b".into(), 2);
        assert_eq!(s.count(1), (3, 1));
        assert_eq!(s.count(2), (3, 2));
        s.closed("c");
        s.closed("c");
        assert_eq!(s.count(2), (2, 1));
        s.forget_worker(1);
        assert_eq!(s.count(1), (1, 0));
        assert_eq!(s.count(2), (1, 1));
    }

    #[test]
    fn where_joins_are_reported_a_client_counts_once_it_joined() {
        let s = Sessions::default();
        s.opened("a".into(), 1);
        s.opened("b".into(), 1);
        assert_eq!(s.count(1), (2, 2), "no join reported yet: sessions count");
        s.joined("a", 1);
        assert_eq!(s.count(1), (1, 1), "only the joined client counts now");
        // A join from another worker than the session's, or a second one,
        // or of an unknown session, changes nothing.
        s.joined("b", 2);
        s.joined("a", 1);
        s.joined("zz", 1);
        assert_eq!(s.count(1), (1, 1));
        s.closed("a");
        assert_eq!(s.count(1), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_waits_for_the_sessions_to_come_back_elsewhere() {
        let s = Arc::new(Sessions::default());
        s.opened("a".into(), 1);
        s.opened("b".into(), 1);
        s.opened("c".into(), 2);
        // Worker 1 is replaced: 3 sessions before, 1 of them elsewhere.
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.back_elsewhere(1, 3, Duration::from_secs(3)).await }
        });
        tokio::task::yield_now().await;
        s.forget_worker(1);
        s.opened("d".into(), 3);
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "one of the two clients is still away"
        );
        s.opened("e".into(), 2);
        assert!(waiter.await.unwrap_or(false), "both came back");

        // Clients that never come back: the wait ends at its bound.
        let started = Instant::now();
        assert!(!s.back_elsewhere(2, 10, Duration::from_secs(3)).await);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
