//! In a restart of many processes at once (`restart all`, a fork-mode
//! `reload all`), every old process stops before any new one starts, up to
//! a bound. Why: an old process needs a little CPU to run its signal
//! handler and exit (~10 ms for an idle Node.js app), a new one a lot to
//! start (~120 ms on a small machine). When each app starts its new process
//! as soon as its own old one is gone, the herd of start-ups takes the CPU
//! from the old processes that have not exited yet, and their exits (and
//! so the whole operation) drag on: measured with 60 idle apps on 2 cores,
//! 20 old processes exited within 200 ms and the rest over 2.7 s. With the
//! exits first they all take about 0.3 s. No app waits longer than
//! `STOPS_FIRST_WAIT` for the others, so one app with a slow graceful
//! shutdown holds the rest up by that much at most.

use std::time::Duration;

use tokio::sync::watch;

/// The longest an app's new process waits for the other apps' old ones.
pub(super) const STOPS_FIRST_WAIT: Duration = Duration::from_millis(500);

/// The old processes of one operation that have not stopped yet.
pub(crate) struct StopsFirst {
    left: watch::Sender<usize>,
    wait: Duration,
}

impl StopsFirst {
    /// An operation that stops `count` processes (or finds them stopped).
    pub(super) fn new(count: usize, wait: Duration) -> StopsFirst {
        StopsFirst {
            left: watch::Sender::new(count),
            wait,
        }
    }

    /// One old process of the operation is gone (or there was none): waits
    /// until every one is, or `wait` has passed.
    pub(super) async fn stopped(&self) {
        self.left.send_modify(|n| *n = n.saturating_sub(1));
        let mut rx = self.left.subscribe();
        let _ = tokio::time::timeout(self.wait, rx.wait_for(|n| *n == 0)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn new_processes_wait_for_the_last_old_one_but_not_for_ever() {
        let wait = Duration::from_millis(500);
        let stops = Arc::new(StopsFirst::new(3, wait));
        let t0 = Instant::now();
        // One old process stopping; the task ends when its new one may start.
        let stop = || {
            let s = stops.clone();
            tokio::spawn(async move {
                s.stopped().await;
                t0.elapsed()
            })
        };
        let early = stop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = stop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stops.stopped().await;
        // The last stop releases both waiting ones at once.
        assert_eq!(early.await.unwrap(), Duration::from_millis(200));
        assert_eq!(second.await.unwrap(), Duration::from_millis(200));
        assert_eq!(t0.elapsed(), Duration::from_millis(200));

        // One that never stops holds each of the others up by `wait` at most.
        let stuck = StopsFirst::new(2, wait);
        let t1 = Instant::now();
        stuck.stopped().await;
        assert_eq!(t1.elapsed(), wait);
    }
}
