//! The process tree of each instance: which processes of one scan belong
//! to which instance (children and grandchildren count, and so does
//! anything left in the instance's process group), and what each tree used
//! since the last scan.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// One process as one tick of the sampler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcSample {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// When it started (ticks since boot on Linux): with the pid, tells a
    /// process from a later one that reused its pid.
    pub start: u64,
    /// User and system CPU time so far, in milliseconds.
    pub cpu_ms: u64,
    /// Resident memory, in bytes.
    pub rss: u64,
}

/// What one instance's process tree used over one sampling interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct TreeUsage {
    /// Percent of one core.
    pub cpu: f64,
    pub memory: u64,
    pub processes: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum Owner {
    Unknown,
    Visiting,
    Known(Option<u32>),
}

/// For each process, the root (an instance's main pid) whose tree it is in:
/// a root itself, a member of a root's process group (each app runs in a
/// group of its own, so a double-forked daemon whose parent is gone still
/// counts), or a descendant of a root. Memoized, so the whole snapshot is
/// walked once.
pub(crate) fn owners(procs: &[ProcSample], roots: &HashSet<u32>) -> Vec<Option<u32>> {
    let index: HashMap<u32, usize> = procs.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
    let mut memo = vec![Owner::Unknown; procs.len()];
    let mut chain = Vec::new();
    for i in 0..procs.len() {
        chain.clear();
        let mut cur = i;
        let found = loop {
            match memo[cur] {
                Owner::Known(r) => break r,
                // A parent loop can only come from pids reused between two
                // reads of one scan; it belongs to no instance.
                Owner::Visiting => break None,
                Owner::Unknown => {}
            }
            let p = &procs[cur];
            chain.push(cur);
            if roots.contains(&p.pid) {
                break Some(p.pid);
            }
            if roots.contains(&p.pgid) {
                break Some(p.pgid);
            }
            memo[cur] = Owner::Visiting;
            match index.get(&p.ppid) {
                Some(&parent) if p.ppid != 0 && p.ppid != p.pid => cur = parent,
                _ => break None,
            }
        };
        for &c in &chain {
            memo[c] = Owner::Known(found);
        }
    }
    memo.into_iter()
        .map(|o| match o {
            Owner::Known(r) => r,
            Owner::Unknown | Owner::Visiting => None,
        })
        .collect()
}

/// Keeps the CPU times of the last tick to turn the next ones into rates.
#[derive(Debug, Default)]
pub(crate) struct CpuTracker {
    /// (pid, start) → CPU ms at the last tick, for processes in some tree.
    last: HashMap<(u32, u64), u64>,
    at: Option<Instant>,
}

impl CpuTracker {
    /// Sums each root's tree. A process not seen at the last tick was born
    /// since (a tree only grows by forking), so all of its CPU time belongs
    /// to this interval.
    pub fn usage(
        &mut self,
        procs: &[ProcSample],
        roots: &HashSet<u32>,
        now: Instant,
    ) -> HashMap<u32, TreeUsage> {
        let owner = owners(procs, roots);
        let elapsed_ms = self
            .at
            .map(|t| now.saturating_duration_since(t).as_secs_f64() * 1000.0);
        let mut usage: HashMap<u32, TreeUsage> = HashMap::new();
        let mut cpu_ms: HashMap<u32, u64> = HashMap::new();
        let mut next = HashMap::with_capacity(self.last.len());
        for (p, root) in procs.iter().zip(owner) {
            let Some(root) = root else { continue };
            let u = usage.entry(root).or_default();
            u.memory += p.rss;
            u.processes += 1;
            let before = self.last.get(&(p.pid, p.start)).copied().unwrap_or(0);
            *cpu_ms.entry(root).or_default() += p.cpu_ms.saturating_sub(before);
            next.insert((p.pid, p.start), p.cpu_ms);
        }
        if let Some(ms) = elapsed_ms.filter(|ms| *ms > 0.0) {
            for (root, used) in cpu_ms {
                if let Some(u) = usage.get_mut(&root) {
                    u.cpu = used as f64 * 100.0 / ms;
                }
            }
        }
        self.last = next;
        self.at = Some(now);
        usage
    }

    /// Nothing runs: the next instance starts from a clean slate.
    pub fn reset(&mut self, now: Instant) {
        self.last.clear();
        self.at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn p(pid: u32, ppid: u32, pgid: u32, cpu_ms: u64, rss: u64) -> ProcSample {
        ProcSample {
            pid,
            ppid,
            pgid,
            start: pid as u64,
            cpu_ms,
            rss,
        }
    }

    /// init → daemon(10) → app A (100, its child 101, grandchild 102) and
    /// app B (200); 300 was double-forked out of A's tree but kept A's group;
    /// 400 is someone else's.
    fn machine(cpu: [u64; 6]) -> Vec<ProcSample> {
        vec![
            p(1, 0, 1, 0, 1 << 20),
            p(10, 1, 10, 0, 30 << 20),
            p(102, 101, 100, cpu[2], 300 << 20),
            p(100, 10, 100, cpu[0], 40 << 20),
            p(101, 100, 101, cpu[1], 10 << 20),
            p(200, 10, 200, cpu[3], 50 << 20),
            p(300, 1, 100, cpu[4], 5 << 20),
            p(400, 1, 400, cpu[5], 7 << 20),
        ]
    }

    #[test]
    fn trees_take_descendants_and_group_members() {
        let roots: HashSet<u32> = [100, 200].into();
        let procs = machine([0; 6]);
        let o = owners(&procs, &roots);
        let of = |pid: u32| o[procs.iter().position(|x| x.pid == pid).unwrap()];
        assert_eq!(of(100), Some(100));
        assert_eq!(of(101), Some(100), "a child in a group of its own");
        assert_eq!(of(102), Some(100), "a grandchild listed before its parent");
        assert_eq!(
            of(300),
            Some(100),
            "reparented to init, still in the app's group"
        );
        assert_eq!(of(200), Some(200));
        assert_eq!(of(1), None);
        assert_eq!(of(10), None, "the daemon is nobody's tree");
        assert_eq!(of(400), None);
    }

    #[test]
    fn a_parent_loop_belongs_to_nobody() {
        let procs = vec![p(5, 6, 5, 0, 0), p(6, 5, 6, 0, 0), p(7, 5, 100, 0, 0)];
        let o = owners(&procs, &[100].into());
        assert_eq!(o, vec![None, None, Some(100)]);
    }

    #[test]
    fn memory_and_cpu_are_summed_per_tree() {
        let roots: HashSet<u32> = [100, 200].into();
        let t0 = Instant::now();
        let mut cpu = CpuTracker::default();
        let first = cpu.usage(&machine([1000, 500, 200, 50, 0, 9999]), &roots, t0);
        assert_eq!(first[&100].memory, (40 + 10 + 300 + 5) << 20);
        assert_eq!(first[&100].processes, 4);
        assert_eq!(first[&200].memory, 50 << 20);
        assert_eq!(first[&100].cpu, 0.0, "no rate before a second tick");
        // One second later: A's tree used 300 ms (+100, +50, +150), B 10 ms.
        let second = cpu.usage(
            &machine([1100, 550, 350, 60, 0, 20000]),
            &roots,
            t0 + Duration::from_secs(1),
        );
        assert!((second[&100].cpu - 30.0).abs() < 1e-9, "{:?}", second[&100]);
        assert!((second[&200].cpu - 1.0).abs() < 1e-9);
        assert!(!second.contains_key(&400));
    }

    #[test]
    fn a_new_child_counts_whole_and_a_reused_pid_is_new() {
        let roots: HashSet<u32> = [100].into();
        let t0 = Instant::now();
        let mut cpu = CpuTracker::default();
        cpu.usage(&[p(100, 1, 100, 1000, 0)], &roots, t0);
        let mut child = p(150, 100, 100, 250, 0);
        let u = cpu.usage(
            &[p(100, 1, 100, 1000, 0), child],
            &roots,
            t0 + Duration::from_millis(500),
        );
        assert!((u[&100].cpu - 50.0).abs() < 1e-9, "{:?}", u[&100]);
        // Same pid, later start: another process, whose 100 ms are all new.
        child.start += 1;
        child.cpu_ms = 100;
        let u = cpu.usage(
            &[p(100, 1, 100, 1000, 0), child],
            &roots,
            t0 + Duration::from_millis(1500),
        );
        assert!((u[&100].cpu - 10.0).abs() < 1e-9, "{:?}", u[&100]);
    }
}
