//! The per-app rate limit: the first alert of a kind for an app goes out at
//! once; the ones after it within the window are counted, and when the
//! window ends one summary says how many there were (and a new window
//! starts with it, twice as long as the one before, up to
//! `MAX_STRETCH` times the setting). A crash loop of a thousand restarts
//! is one alert and a handful of summaries, not a thousand, and a loop
//! that goes on all night does not page someone every minute. Pure: times
//! are passed in.

use std::collections::HashMap;

use super::spec::AlertKind;

type Key = (String, AlertKind);

/// The longest window, as a multiple of the configured one (a 1 min
/// throttle: summaries at most every 64 min while a loop goes on).
const MAX_STRETCH: u64 = 64;

#[derive(Debug)]
struct Window<T> {
    from_ms: u64,
    until_ms: u64,
    held: u32,
    /// The last alert held back: the summary says what it was.
    last: Option<T>,
    /// How many times the next window is as long as the setting.
    stretch: u64,
}

#[derive(Debug)]
pub struct Throttle<T> {
    windows: HashMap<Key, Window<T>>,
}

impl<T> Default for Throttle<T> {
    fn default() -> Self {
        Throttle {
            windows: HashMap::new(),
        }
    }
}

impl<T> Throttle<T> {
    /// An alert of `kind` for `app` at `now_ms`: true when it goes out now;
    /// otherwise it is kept for the window's summary.
    pub fn admit(
        &mut self,
        app: &str,
        kind: AlertKind,
        item: T,
        now_ms: u64,
        window_ms: u64,
    ) -> Option<T> {
        let key = (app.to_string(), kind);
        match self.windows.get_mut(&key) {
            // An ended window whose summary is not out yet still holds this one.
            Some(w) if now_ms < w.until_ms || w.last.is_some() => {
                w.held += 1;
                w.last = Some(item);
                None
            }
            _ => {
                self.windows.insert(
                    key,
                    Window {
                        from_ms: now_ms,
                        until_ms: now_ms.saturating_add(window_ms),
                        held: 0,
                        last: None,
                        stretch: 1,
                    },
                );
                Some(item)
            }
        }
    }

    /// Windows that ended by `now_ms`: a summary (how many were held, over
    /// how many ms, the last one) for each that held any. A window with a summary goes on,
    /// twice as long as the last one, so a loop that keeps going sends
    /// fewer and fewer messages; a window that held nothing closes.
    pub fn due(&mut self, now_ms: u64, window_of: impl Fn(&T) -> u64) -> Vec<(u32, u64, T)> {
        let mut out = Vec::new();
        self.windows.retain(|_, w| {
            if now_ms < w.until_ms {
                return true;
            }
            match w.last.take() {
                Some(last) => {
                    let span = now_ms.saturating_sub(w.from_ms);
                    w.stretch = (w.stretch * 2).min(MAX_STRETCH);
                    w.from_ms = now_ms;
                    w.until_ms = now_ms.saturating_add(window_of(&last).saturating_mul(w.stretch));
                    out.push((w.held, span, last));
                    w.held = 0;
                    true
                }
                None => false,
            }
        });
        out
    }

    /// When the next window ends, if any is open.
    pub fn next_due(&self) -> Option<u64> {
        self.windows.values().map(|w| w.until_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_crashes_make_a_handful_of_messages() {
        let mut t: Throttle<u32> = Throttle::default();
        let mut sent = 0;
        let mut summaries = Vec::new();
        // 1000 crashes, one every 20 ms (20 s), a 60 s window.
        for i in 0..1000u32 {
            let now = u64::from(i) * 20;
            if t.admit("api", AlertKind::Crash, i, now, 60_000).is_some() {
                sent += 1;
            }
            summaries.extend(t.due(now, |_: &u32| 60_000));
        }
        summaries.extend(t.due(60_000, |_: &u32| 60_000));
        assert_eq!(sent, 1);
        assert_eq!(summaries, vec![(999, 60_000, 999)]);
        // The window after the summary (twice as long) held nothing: it
        // closes quietly.
        assert!(t.due(120_000, |_: &u32| 60_000).is_empty());
        assert_eq!(t.next_due(), Some(180_000));
        assert!(t.due(180_000, |_: &u32| 60_000).is_empty());
        assert_eq!(t.next_due(), None);
        assert!(t
            .admit("api", AlertKind::Crash, 0, 190_000, 60_000)
            .is_some());
    }

    #[test]
    fn a_loop_that_goes_on_gets_ever_longer_windows() {
        let mut t: Throttle<u32> = Throttle::default();
        let mut at = Vec::new();
        // 1000 crashes, one every 390 ms (390 s, as measured here), a 30 s window.
        for i in 0..1000u32 {
            let now = u64::from(i) * 390;
            if t.admit("api", AlertKind::Crash, i, now, 30_000).is_some() {
                at.push(now);
            }
            at.extend(t.due(now, |_: &u32| 30_000).into_iter().map(|_| now));
        }
        for s in (390_000..1_000_000).step_by(1000) {
            at.extend(t.due(s, |_: &u32| 30_000).into_iter().map(|_| s));
        }
        // The alert, then summaries 30 s, 60 s, 120 s and 240 s apart (the
        // last one seen at the next whole second after the loop).
        assert_eq!(at, vec![0, 30_030, 90_090, 210_210, 451_000]);
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn the_stretch_is_bounded() {
        let mut t: Throttle<()> = Throttle::default();
        assert!(t.admit("api", AlertKind::Crash, (), 0, 1000).is_some());
        let mut now = 0;
        for _ in 0..20 {
            assert!(t.admit("api", AlertKind::Crash, (), now, 1000).is_none());
            now = t.next_due().unwrap_or(now);
            assert_eq!(t.due(now, |_| 1000).len(), 1);
        }
        assert_eq!(t.next_due(), Some(now + 1000 * MAX_STRETCH));
    }

    #[test]
    fn kinds_and_apps_are_limited_apart() {
        let mut t: Throttle<()> = Throttle::default();
        assert!(t.admit("api", AlertKind::Crash, (), 0, 1000).is_some());
        assert!(t.admit("api", AlertKind::Errored, (), 1, 1000).is_some());
        assert!(t.admit("web", AlertKind::Crash, (), 2, 1000).is_some());
        assert!(t.admit("api", AlertKind::Crash, (), 3, 1000).is_none());
        assert_eq!(t.next_due(), Some(1000));
    }
}
