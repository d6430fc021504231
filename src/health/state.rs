//! The health of one process as its checks report it: `starting` until a
//! first check passes, `healthy`, or `unhealthy` after `failures` failed
//! checks in a row (failures inside the start period do not count, as in
//! Docker's `--start-period`). A pure state machine: results in, a verdict
//! out. The event-loop watchdog's rule is here too.

use crate::model::HealthStatus;

/// What a check result means for the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Keep,
    /// Unhealthy: replace the process.
    Replace,
}

/// The memory of one process's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    failures_allowed: u32,
    start_period_ms: u64,
    pub status: HealthStatus,
    pub consecutive_failures: u32,
    /// A check has passed since the process started.
    pub ever_passed: bool,
}

impl Tracker {
    pub fn new(failures_allowed: u32, start_period_ms: u64) -> Self {
        Tracker {
            failures_allowed: failures_allowed.max(1),
            start_period_ms,
            status: HealthStatus::Starting,
            consecutive_failures: 0,
            ever_passed: false,
        }
    }

    /// One check's result, `since_start_ms` after the process started.
    pub fn on_result(&mut self, since_start_ms: u64, passed: bool) -> Verdict {
        if passed {
            self.consecutive_failures = 0;
            self.ever_passed = true;
            self.status = HealthStatus::Healthy;
            return Verdict::Keep;
        }
        // A process still starting may fail its checks: until one passes
        // or the start period ends, they do not count.
        if !self.ever_passed && since_start_ms < self.start_period_ms {
            return Verdict::Keep;
        }
        self.consecutive_failures += 1;
        if self.consecutive_failures >= self.failures_allowed {
            self.status = HealthStatus::Unhealthy;
            return Verdict::Replace;
        }
        Verdict::Keep
    }
}

/// The event-loop watchdog: the loop has been blocked for longer than the
/// limit. `lag_ms` is the preload's figure, which grows while its reports
/// are overdue; before a first report, the time since the start beyond one
/// report interval (a loop blocked from its first line never reports).
pub fn loop_blocked(
    lag_ms: Option<f64>,
    since_start_ms: u64,
    interval_ms: u64,
    limit_ms: u64,
) -> bool {
    let lag = match lag_ms {
        Some(l) => l,
        None => since_start_ms.saturating_sub(interval_ms) as f64,
    };
    lag > limit_ms as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_make_it_unhealthy() {
        let mut t = Tracker::new(3, 0);
        assert_eq!(t.status, HealthStatus::Starting);
        assert_eq!(t.on_result(10, true), Verdict::Keep);
        assert_eq!(t.status, HealthStatus::Healthy);
        assert_eq!(t.on_result(20, false), Verdict::Keep);
        assert_eq!(t.on_result(30, false), Verdict::Keep);
        assert_eq!(t.consecutive_failures, 2);
        assert_eq!(t.on_result(40, false), Verdict::Replace);
        assert_eq!(t.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn a_flapping_check_never_reaches_the_threshold() {
        let mut t = Tracker::new(2, 0);
        for i in 0..20 {
            assert_eq!(t.on_result(i, i % 2 == 0), Verdict::Keep, "check {i}");
        }
        assert!(t.consecutive_failures <= 1);
    }

    #[test]
    fn the_start_period_forgives_until_a_pass() {
        let mut t = Tracker::new(1, 10_000);
        assert_eq!(t.on_result(1_000, false), Verdict::Keep);
        assert_eq!(t.on_result(9_000, false), Verdict::Keep);
        assert_eq!(t.status, HealthStatus::Starting);
        assert_eq!(t.consecutive_failures, 0);
        assert_eq!(t.on_result(10_000, false), Verdict::Replace);

        // Once a check passed the start period is over.
        let mut t = Tracker::new(1, 10_000);
        t.on_result(500, true);
        assert_eq!(t.on_result(1_000, false), Verdict::Replace);
    }

    #[test]
    fn the_watchdog() {
        assert!(!loop_blocked(Some(50.0), 60_000, 1000, 3000));
        assert!(loop_blocked(Some(3500.0), 60_000, 1000, 3000));
        // Never reported: blocked from the start.
        assert!(!loop_blocked(None, 3500, 1000, 3000));
        assert!(loop_blocked(None, 4100, 1000, 3000));
    }
}
