//! The memory limit rule: an instance whose process tree stays over
//! `max_memory_restart` is replaced. A small state machine fed one sample
//! at a time, free of processes and clocks, like the restart policy.

/// How many samples in a row must be over the limit before the instance is
/// replaced: one sample can catch a short spike (a GC about to run, a big
/// response being built) that the app handles on its own.
const SAMPLES_OVER_LIMIT: u32 = 2;

/// The memory limit rule for one instance, as a small state machine fed
/// one sample at a time: it fires when the tree RSS is over the limit at
/// `SAMPLES_OVER_LIMIT` samples in a row of the same process, and at most
/// once per process (its replacement starts from zero).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryWatch {
    pid: Option<u32>,
    over: u32,
    fired: bool,
}

impl MemoryWatch {
    /// True when the instance must be replaced now.
    pub fn sample(&mut self, pid: u32, memory: u64, limit: Option<u64>) -> bool {
        if self.pid != Some(pid) {
            *self = MemoryWatch {
                pid: Some(pid),
                ..MemoryWatch::default()
            };
        }
        match limit {
            Some(limit) if memory > limit => self.over += 1,
            _ => self.over = 0,
        }
        if self.fired || self.over < SAMPLES_OVER_LIMIT {
            return false;
        }
        self.fired = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_rule_needs_two_samples_in_a_row_of_one_process() {
        let mb = |n: u64| n << 20;
        let limit = Some(mb(300));
        let mut w = MemoryWatch::default();
        assert!(!w.sample(1, mb(412), limit), "one sample over is a spike");
        assert!(!w.sample(1, mb(200), limit), "back under: start again");
        assert!(!w.sample(1, mb(412), limit));
        assert!(w.sample(1, mb(420), limit), "two in a row: replace");
        assert!(!w.sample(1, mb(430), limit), "once per process");
        assert!(!w.sample(1, mb(430), limit));
        // The replacement starts from zero.
        assert!(!w.sample(2, mb(412), limit));
        assert!(w.sample(2, mb(412), limit));
        // A new process does not inherit the count of the old one.
        let mut w = MemoryWatch::default();
        assert!(!w.sample(3, mb(400), limit));
        assert!(!w.sample(4, mb(400), limit));
        assert!(w.sample(4, mb(400), limit));
        // Exactly at the limit is not over it; no limit never fires.
        let mut w = MemoryWatch::default();
        assert!(!w.sample(5, mb(300), limit));
        assert!(!w.sample(5, mb(300), limit));
        assert!(!w.sample(5, mb(900), None));
        assert!(!w.sample(5, mb(900), None));
    }
}
