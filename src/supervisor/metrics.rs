//! CPU and memory of every running instance, summed over its whole process
//! tree (children and grandchildren count: an app that leaks through a child
//! is still caught), sampled every `metrics.interval`; and the memory limit
//! rule that replaces an instance which stays over `max_memory_restart`.
//!
//! On Linux one tick is one scan of /proc that reads each process's `stat`
//! once: it alone carries the parent, the process group, the CPU times and
//! the RSS, so the cost depends on the processes of the machine, not on how
//! many instances there are, and no per-instance walk is needed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::slot::SlotCommand;
use super::state::{InstanceState, Status};
use super::Inner;
use crate::settings::Settings;

/// How many samples in a row must be over the limit before the instance is
/// replaced: one sample can catch a short spike (a GC about to run, a big
/// response being built) that the app handles on its own.
const SAMPLES_OVER_LIMIT: u32 = 2;

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

/// The memory limit rule for one instance, as a small state machine fed
/// one sample at a time: it fires when the tree RSS is over the limit at
/// `SAMPLES_OVER_LIMIT` samples in a row of the same process, and at most
/// once per process (its replacement starts from zero).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct MemoryWatch {
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

#[cfg(target_os = "linux")]
mod os {
    use std::fmt::Write as _;
    use std::fs::File;
    use std::io::{self, Read};

    use super::ProcSample;

    /// Parses `/proc/<pid>/stat`. The command name sits in parentheses and
    /// may itself contain spaces and parentheses, so fields are counted
    /// from the last `)`.
    pub(crate) fn parse_stat(text: &[u8], tick_ms: f64, page: u64) -> Option<ProcSample> {
        let open = text.iter().position(|&b| b == b'(')?;
        let close = text.iter().rposition(|&b| b == b')')?;
        let pid = std::str::from_utf8(&text[..open])
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
        let f: Vec<&str> = rest.split_ascii_whitespace().take(22).collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        let ticks = num(11)? + num(12)?;
        Some(ProcSample {
            pid,
            ppid: num(1)? as u32,
            pgid: num(2)? as u32,
            start: num(19)?,
            cpu_ms: (ticks as f64 * tick_ms) as u64,
            rss: num(21)? * page,
        })
    }

    pub(crate) struct Scanner {
        path: String,
        buf: Vec<u8>,
        tick_ms: f64,
        page: u64,
    }

    impl Scanner {
        pub fn new() -> io::Result<Scanner> {
            let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                .ok()
                .flatten()
                .filter(|v| *v > 0)
                .unwrap_or(100);
            let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
                .ok()
                .flatten()
                .filter(|v| *v > 0)
                .unwrap_or(4096);
            Ok(Scanner {
                path: String::with_capacity(32),
                buf: vec![0; 4096],
                tick_ms: 1000.0 / hz as f64,
                page: page as u64,
            })
        }

        /// Every process of the machine; ones that exit during the scan are
        /// simply missing.
        pub fn scan(&mut self, out: &mut Vec<ProcSample>) -> io::Result<()> {
            out.clear();
            for entry in std::fs::read_dir("/proc")? {
                let Ok(entry) = entry else { continue };
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                self.path.clear();
                let _ = write!(self.path, "/proc/{pid}/stat");
                let Ok(mut f) = File::open(&self.path) else {
                    continue;
                };
                // One read takes the whole file: a stat line is a few hundred
                // bytes (read_to_end would add an fstat and a seek per file).
                let Ok(n) = f.read(&mut self.buf) else {
                    continue;
                };
                if let Some(s) = parse_stat(&self.buf[..n], self.tick_ms, self.page) {
                    out.push(s);
                }
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use std::io;

    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

    use super::ProcSample;

    pub(crate) struct Scanner {
        sys: System,
    }

    impl Scanner {
        pub fn new() -> io::Result<Scanner> {
            let sys = System::new().map_err(|e| io::Error::other(e.to_string()))?;
            Ok(Scanner { sys })
        }

        pub fn scan(&mut self, out: &mut Vec<ProcSample>) -> io::Result<()> {
            out.clear();
            self.sys.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            for (pid, p) in self.sys.processes() {
                let raw = pid.as_u32();
                let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(raw as i32)))
                    .map(|g| g.as_raw() as u32)
                    .unwrap_or(0);
                out.push(ProcSample {
                    pid: raw,
                    ppid: p.parent().map(|x| x.as_u32()).unwrap_or(0),
                    pgid,
                    start: p.start_time(),
                    cpu_ms: p.accumulated_cpu_time(),
                    rss: p.memory(),
                });
            }
            Ok(())
        }
    }
}

/// What the sampler needs of one running instance, taken under the registry lock.
struct Target {
    slot: u32,
    pid: u32,
    limit: Option<u64>,
    state: Arc<Mutex<InstanceState>>,
    tx: mpsc::UnboundedSender<SlotCommand>,
}

/// The state the blocking part of a tick carries from one tick to the next.
struct Sampler {
    scanner: os::Scanner,
    procs: Vec<ProcSample>,
    cpu: CpuTracker,
}

pub(super) fn spawn_sampler(inner: Weak<Inner>, mut settings: watch::Receiver<Settings>) {
    tokio::spawn(async move {
        let scanner = match os::Scanner::new() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("no CPU or memory figures on this system: {e}");
                return;
            }
        };
        let mut sampler = Some(Sampler {
            scanner,
            procs: Vec::new(),
            cpu: CpuTracker::default(),
        });
        let mut watches: HashMap<u32, MemoryWatch> = HashMap::new();
        loop {
            let ms = settings.borrow_and_update().metrics.interval_ms.max(1);
            let period = Duration::from_millis(ms);
            // Ticks fall on multiples of the interval in wall-clock time, as
            // the preload's reports do: one wake-up serves both.
            let to_boundary = Duration::from_millis(ms - crate::clock::now_ms() % ms);
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + to_boundary, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    changed = settings.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if settings.borrow().metrics.interval_ms != period.as_millis() as u64 {
                            break;
                        }
                        continue;
                    }
                }
                let Some(targets) = targets(&inner) else {
                    return;
                };
                let Some(mut s) = sampler.take() else { return };
                let now = Instant::now();
                if targets.is_empty() {
                    s.cpu.reset(now);
                    watches.clear();
                    sampler = Some(s);
                    continue;
                }
                let roots: HashSet<u32> = targets.iter().map(|t| t.pid).collect();
                // Reading /proc is blocking file I/O: off the runtime's workers.
                let joined = tokio::task::spawn_blocking(move || {
                    let usage = match s.scanner.scan(&mut s.procs) {
                        Ok(()) => Ok(s.cpu.usage(&s.procs, &roots, now)),
                        Err(e) => Err(e),
                    };
                    (s, usage)
                })
                .await;
                let Ok((s, usage)) = joined else {
                    tracing::warn!("the metrics sampler stopped");
                    return;
                };
                sampler = Some(s);
                let usage = match usage {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!("cannot read the process table: {e}");
                        continue;
                    }
                };
                watches.retain(|slot, _| targets.iter().any(|t| t.slot == *slot));
                for t in targets {
                    let u = usage.get(&t.pid).copied().unwrap_or_default();
                    let watched = {
                        let mut st = t.state.lock().unwrap_or_else(|e| e.into_inner());
                        if st.pid != Some(t.pid) {
                            continue;
                        }
                        st.cpu = u.cpu;
                        st.memory = u.memory;
                        st.processes = u.processes;
                        matches!(st.status, Status::Online | Status::Launching)
                    };
                    let watch = watches.entry(t.slot).or_default();
                    let limit = t.limit.filter(|_| watched);
                    if watch.sample(t.pid, u.memory, limit) {
                        if let Some(limit) = limit {
                            let _ = t.tx.send(SlotCommand::MemoryLimit {
                                pid: t.pid,
                                memory: u.memory,
                                limit,
                            });
                        }
                    }
                }
            }
        }
    });
}

/// The running instances; None once the supervisor is gone.
fn targets(inner: &Weak<Inner>) -> Option<Vec<Target>> {
    let inner = inner.upgrade()?;
    let reg = inner.registry.lock().unwrap_or_else(|e| e.into_inner());
    Some(
        reg.apps
            .iter()
            .flat_map(|a| a.slots.iter().map(move |s| (a, s)))
            .filter_map(|(a, s)| {
                let pid = s.st().pid?;
                Some(Target {
                    slot: s.id,
                    pid,
                    limit: a.spec.max_memory_restart,
                    state: s.state.clone(),
                    tx: s.tx.clone(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[cfg(target_os = "linux")]
    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = b"4242 (my (weird) app) S 4200 4242 4242 0 -1 4194560 1234 0 0 0 150 50 7 3 20 0 11 0 987654 1108869120 12345 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0\n";
        let s = os::parse_stat(line, 10.0, 4096).unwrap();
        assert_eq!(
            s,
            ProcSample {
                pid: 4242,
                ppid: 4200,
                pgid: 4242,
                start: 987654,
                cpu_ms: 2000,
                rss: 12345 * 4096,
            }
        );
        assert_eq!(os::parse_stat(b"12 (x) S 1 2", 10.0, 4096), None);
        assert_eq!(os::parse_stat(b"garbage", 10.0, 4096), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn scanning_this_machine_finds_this_process() {
        let mut s = os::Scanner::new().unwrap();
        let mut procs = Vec::new();
        s.scan(&mut procs).unwrap();
        let me = procs.iter().find(|p| p.pid == std::process::id()).unwrap();
        assert!(me.rss > 0);
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw() as u32);
    }
}
