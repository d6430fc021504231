//! The per-app rate limit: the first alert of a kind for an app goes out at
//! once; the ones after it within the window are counted, and when the
//! window ends one summary says how many there were (and a new window
//! starts with it). A crash loop of a thousand restarts is one alert and a
//! summary a window, not a thousand. Pure: times are passed in.

use std::collections::HashMap;

use super::spec::AlertKind;

type Key = (String, AlertKind);

#[derive(Debug)]
struct Window<T> {
    until_ms: u64,
    held: u32,
    /// The last alert held back: the summary says what it was.
    last: Option<T>,
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
                        until_ms: now_ms.saturating_add(window_ms),
                        held: 0,
                        last: None,
                    },
                );
                Some(item)
            }
        }
    }

    /// Windows that ended by `now_ms`: a summary (how many were held, the
    /// last one) for each that held any. A window with a summary goes on
    /// for another `window_ms`, so a loop that keeps going sends one
    /// message a window.
    pub fn due(&mut self, now_ms: u64, window_of: impl Fn(&T) -> u64) -> Vec<(u32, T)> {
        let mut out = Vec::new();
        self.windows.retain(|_, w| {
            if now_ms < w.until_ms {
                return true;
            }
            match w.last.take() {
                Some(last) => {
                    w.until_ms = now_ms.saturating_add(window_of(&last));
                    out.push((w.held, last));
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
        assert_eq!(summaries, vec![(999, 999)]);
        // The window after the summary held nothing: it closes quietly.
        assert!(t.due(120_000, |_: &u32| 60_000).is_empty());
        assert_eq!(t.next_due(), None);
        assert!(t
            .admit("api", AlertKind::Crash, 0, 130_000, 60_000)
            .is_some());
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
