//! What the keeper does when its daemon exits: a plain decision, so every
//! case is tested without processes.

use std::time::{Duration, Instant};

/// A daemon that stayed up this long was not crash-looping: its next crash
/// is respawned at once again. Short on purpose: every crash of a daemon
/// that served is an outage of the control plane (at most one respawn a
/// second is no load), while a crash loop dies within its start-up.
const STABLE_AFTER: Duration = Duration::from_secs(1);
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(10);

/// How the daemon ended, as the keeper saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exit code 0: `pmr kill`, a termination signal handled, or another
    /// daemon already served the home.
    Clean,
    /// A non-zero exit code or a signal (kill -9, the OOM killer, a panic).
    Crashed,
}

/// What the keeper does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Start a daemon (after this delay) with this binary.
    Spawn { delay: Duration, binary: Binary },
    /// Exit: nothing is to be kept.
    Exit,
}

/// Which binary the next daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// The one that ran until now.
    Current,
    /// The one `pmr update` asked for (on probation until it says ready).
    Candidate,
    /// The candidate failed before it was ready: back to the old one.
    Previous,
}

/// The keeper's memory of its daemons.
#[derive(Debug, Default)]
pub struct Respawn {
    /// Crashes in a row, each within `STABLE_AFTER` of its start.
    streak: u32,
}

/// What the keeper knows about the daemon that just ended.
#[derive(Debug, Clone, Copy)]
pub struct Exited {
    pub ended: Ended,
    pub started: Instant,
    pub now: Instant,
    /// It said ready before it ended.
    pub was_ready: bool,
    /// It ran a candidate binary.
    pub was_candidate: bool,
    /// It asked to be replaced by a candidate (`pmr update`).
    pub handing_off: bool,
    /// A termination signal reached the keeper.
    pub stopping: bool,
    /// Some daemon of this keeper has been ready (the first start is over).
    pub ever_ready: bool,
}

impl Respawn {
    pub fn decide(&mut self, e: Exited) -> Next {
        if e.stopping {
            return Next::Exit;
        }
        if e.handing_off {
            self.streak = 0;
            return Next::Spawn {
                delay: Duration::ZERO,
                binary: Binary::Candidate,
            };
        }
        if e.was_candidate && !e.was_ready {
            return Next::Spawn {
                delay: Duration::ZERO,
                binary: Binary::Previous,
            };
        }
        // The first daemon's own start-up failure is the launcher's to report.
        if !e.ever_ready {
            return Next::Exit;
        }
        if e.ended == Ended::Clean {
            return Next::Exit;
        }
        if e.now.saturating_duration_since(e.started) >= STABLE_AFTER {
            self.streak = 0;
        }
        let delay = match self.streak {
            0 => Duration::ZERO,
            n => FIRST_DELAY
                .saturating_mul(1 << (n - 1).min(10))
                .min(MAX_DELAY),
        };
        self.streak += 1;
        Next::Spawn {
            delay,
            binary: Binary::Current,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(after: Duration) -> Exited {
        let started = Instant::now();
        Exited {
            ended: Ended::Crashed,
            started,
            now: started + after,
            was_ready: true,
            was_candidate: false,
            handing_off: false,
            stopping: false,
            ever_ready: true,
        }
    }

    fn delay(n: Next) -> Duration {
        match n {
            Next::Spawn { delay, .. } => delay,
            Next::Exit => panic!("expected a respawn"),
        }
    }

    #[test]
    fn a_crash_is_respawned_at_once_then_with_growing_delays() {
        let mut r = Respawn::default();
        let short = Duration::from_millis(200);
        assert_eq!(delay(r.decide(crash(short))), Duration::ZERO);
        assert_eq!(delay(r.decide(crash(short))), Duration::from_millis(250));
        assert_eq!(delay(r.decide(crash(short))), Duration::from_millis(500));
        for _ in 0..20 {
            r.decide(crash(short));
        }
        assert_eq!(delay(r.decide(crash(short))), MAX_DELAY);
        // A daemon that ran a while resets the streak.
        assert_eq!(delay(r.decide(crash(STABLE_AFTER))), Duration::ZERO);
    }

    #[test]
    fn a_clean_exit_or_a_stop_ends_the_keeper() {
        let mut r = Respawn::default();
        let clean = Exited {
            ended: Ended::Clean,
            ..crash(Duration::ZERO)
        };
        assert_eq!(r.decide(clean), Next::Exit);
        let stopping = Exited {
            stopping: true,
            ..crash(Duration::ZERO)
        };
        assert_eq!(r.decide(stopping), Next::Exit);
        let never_ready = Exited {
            ever_ready: false,
            was_ready: false,
            ..crash(Duration::ZERO)
        };
        assert_eq!(r.decide(never_ready), Next::Exit);
    }

    #[test]
    fn an_update_tries_the_candidate_and_falls_back_when_it_fails() {
        let mut r = Respawn::default();
        let handoff = Exited {
            ended: Ended::Clean,
            handing_off: true,
            ..crash(Duration::ZERO)
        };
        assert_eq!(
            r.decide(handoff),
            Next::Spawn {
                delay: Duration::ZERO,
                binary: Binary::Candidate
            }
        );
        let failed = Exited {
            was_candidate: true,
            was_ready: false,
            ..crash(Duration::ZERO)
        };
        assert_eq!(
            r.decide(failed),
            Next::Spawn {
                delay: Duration::ZERO,
                binary: Binary::Previous
            }
        );
    }
}
