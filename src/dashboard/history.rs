//! The figures the dashboard charts: a bounded ring per instance of CPU,
//! memory, heap and event-loop lag, the last 15 minutes at 1 s and the last
//! 24 hours at 1 min, plus the log lines that preceded each of its last
//! crashes. Memory is fixed per instance: (900 + 1440) samples of 20 bytes
//! = 46 800 bytes, so 50 instances hold 2.3 MB of history; crash records
//! add at most 10 × 10 lines of 240 bytes each.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::logs::LogLine;
use crate::model::{Event, InstanceInfo};

/// The last 15 minutes at one sample a second.
pub const FINE: usize = 15 * 60;
/// The last 24 hours at one sample a minute.
pub const COARSE: usize = 24 * 60;
/// Crashes remembered per instance, and lines kept from before each.
pub const CRASHES: usize = 10;
pub const CRASH_LINES: usize = 10;
/// Longer lines are cut: the record is a reminder, the file has the rest.
const CRASH_LINE_CHARS: usize = 240;
/// Samples a sparkline shows.
pub const SPARK: usize = 60;

/// One instant's figures, packed to 20 bytes (so the ring's cost is known).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the epoch.
    pub t: u32,
    pub cpu: f32,
    pub mem_kib: u32,
    /// `u32::MAX`: not a Node app (or no report yet).
    pub heap_kib: u32,
    /// NaN: not known.
    pub lag_ms: f32,
}

impl Sample {
    pub fn of(i: &InstanceInfo, t: u32) -> Sample {
        let kib = |b: u64| u32::try_from(b / 1024).unwrap_or(u32::MAX - 1);
        Sample {
            t,
            cpu: i.cpu as f32,
            mem_kib: kib(i.memory),
            heap_kib: i.node.map_or(u32::MAX, |n| kib(n.heap_used)),
            lag_ms: i.node.map_or(f32::NAN, |n| n.event_loop_lag_ms as f32),
        }
    }
}

/// The mean of a minute's samples (the worst lag: a spike is the news).
#[derive(Debug, Default, Clone, Copy)]
struct Minute {
    minute: u32,
    n: u32,
    cpu: f64,
    mem: u64,
    heap: u64,
    heap_n: u32,
    lag: Option<f32>,
}

impl Minute {
    fn add(&mut self, s: &Sample) {
        self.n += 1;
        self.cpu += f64::from(s.cpu);
        self.mem += u64::from(s.mem_kib);
        if s.heap_kib != u32::MAX {
            self.heap += u64::from(s.heap_kib);
            self.heap_n += 1;
        }
        if !s.lag_ms.is_nan() {
            self.lag = Some(self.lag.map_or(s.lag_ms, |l| l.max(s.lag_ms)));
        }
    }

    fn sample(&self) -> Sample {
        let n = self.n.max(1);
        Sample {
            t: self.minute * 60,
            cpu: (self.cpu / f64::from(n)) as f32,
            mem_kib: (self.mem / u64::from(n)) as u32,
            heap_kib: if self.heap_n == 0 {
                u32::MAX
            } else {
                (self.heap / u64::from(self.heap_n)) as u32
            },
            lag_ms: self.lag.unwrap_or(f32::NAN),
        }
    }
}

/// The log lines an instance printed just before it crashed.
#[derive(Debug, Clone, Serialize)]
pub struct Crash {
    pub event: Event,
    pub lines: Vec<LogLine>,
}

/// One instance's rings.
#[derive(Debug)]
pub struct Rings {
    fine: VecDeque<Sample>,
    coarse: VecDeque<Sample>,
    minute: Option<Minute>,
    crashes: VecDeque<Crash>,
}

impl Default for Rings {
    fn default() -> Self {
        Rings {
            fine: VecDeque::with_capacity(FINE),
            coarse: VecDeque::with_capacity(COARSE),
            minute: None,
            crashes: VecDeque::new(),
        }
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

impl Rings {
    pub fn push(&mut self, s: Sample) {
        if self.fine.back().is_some_and(|last| last.t >= s.t) {
            return;
        }
        push_bounded(&mut self.fine, s, FINE);
        let minute = s.t / 60;
        match &mut self.minute {
            Some(m) if m.minute == minute => m.add(&s),
            cur => {
                if let Some(done) = cur.take() {
                    push_bounded(&mut self.coarse, done.sample(), COARSE);
                }
                let mut m = Minute {
                    minute,
                    ..Minute::default()
                };
                m.add(&s);
                *cur = Some(m);
            }
        }
    }

    pub fn crashed(&mut self, event: Event, mut lines: Vec<LogLine>) {
        let skip = lines.len().saturating_sub(CRASH_LINES);
        lines.drain(..skip);
        for l in &mut lines {
            if let Some((cut, _)) = l.line.char_indices().nth(CRASH_LINE_CHARS) {
                l.line.truncate(cut);
                l.line.push('…');
            }
        }
        push_bounded(&mut self.crashes, Crash { event, lines }, CRASHES);
    }

    /// The last 15 minutes, one sample a second.
    pub fn fine(&self) -> Series {
        Series::of(1, self.fine.iter())
    }

    /// The last 24 hours, one sample a minute (the minute under way included).
    pub fn coarse(&self) -> Series {
        Series::of(
            60,
            self.coarse
                .iter()
                .chain(self.minute.map(|m| m.sample()).iter()),
        )
    }

    pub fn spark(&self) -> Series {
        let skip = self.fine.len().saturating_sub(SPARK);
        Series::of(1, self.fine.iter().skip(skip))
    }

    pub fn crashes(&self) -> Vec<Crash> {
        self.crashes.iter().cloned().collect()
    }
}

/// Samples as columns, the form a chart draws from (and the smallest JSON).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Series {
    /// Seconds between samples.
    pub step: u32,
    /// Seconds since the epoch.
    pub t: Vec<u32>,
    pub cpu: Vec<f32>,
    /// Bytes.
    pub memory: Vec<u64>,
    pub heap: Vec<Option<u64>>,
    pub lag: Vec<Option<f32>>,
}

impl Series {
    fn of<'a>(step: u32, samples: impl Iterator<Item = &'a Sample>) -> Series {
        let mut s = Series {
            step,
            ..Series::default()
        };
        for x in samples {
            s.t.push(x.t);
            s.cpu.push((x.cpu * 10.0).round() / 10.0);
            s.memory.push(u64::from(x.mem_kib) * 1024);
            s.heap
                .push((x.heap_kib != u32::MAX).then(|| u64::from(x.heap_kib) * 1024));
            s.lag
                .push((!x.lag_ms.is_nan()).then(|| (x.lag_ms * 10.0).round() / 10.0));
        }
        s
    }
}

/// Every instance's rings, by instance id.
#[derive(Debug, Default)]
pub struct Histories {
    by_id: HashMap<u32, Rings>,
}

impl Histories {
    /// Adds a sample of every running instance and forgets deleted ones.
    pub fn record(&mut self, all: &[InstanceInfo], t: u32) {
        self.by_id.retain(|id, _| all.iter().any(|i| i.id == *id));
        for i in all.iter().filter(|i| i.pid.is_some()) {
            self.by_id.entry(i.id).or_default().push(Sample::of(i, t));
        }
    }

    pub fn get(&self, id: u32) -> Option<&Rings> {
        self.by_id.get(&id)
    }

    pub fn crashed(&mut self, event: Event, lines: Vec<LogLine>) {
        self.by_id
            .entry(event.id)
            .or_default()
            .crashed(event, lines);
    }

    /// Every instance's sparkline samples.
    pub fn sparks(&self) -> HashMap<u32, Series> {
        self.by_id.iter().map(|(id, r)| (*id, r.spark())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: u32, cpu: f32, lag: f32) -> Sample {
        Sample {
            t,
            cpu,
            mem_kib: 1000 + t,
            heap_kib: u32::MAX,
            lag_ms: lag,
        }
    }

    #[test]
    fn a_sample_is_20_bytes_so_the_cost_is_as_stated() {
        assert_eq!(std::mem::size_of::<Sample>(), 20);
        assert_eq!((FINE + COARSE) * 20, 46_800);
    }

    #[test]
    fn rings_stay_bounded_and_minutes_are_averaged() {
        let mut r = Rings::default();
        let start = 1_000_020; // 1_000_020 / 60 is a whole minute
        for t in 0..(FINE as u32 * 2) {
            r.push(s(
                start + t,
                (t % 60) as f32,
                if t % 60 == 7 { 50.0 } else { 1.0 },
            ));
        }
        let fine = r.fine();
        assert_eq!(fine.t.len(), FINE);
        assert_eq!(*fine.t.last().unwrap(), start + FINE as u32 * 2 - 1);
        let coarse = r.coarse();
        assert_eq!(coarse.step, 60);
        assert_eq!(coarse.t.len(), 30, "29 whole minutes and the one under way");
        assert_eq!(coarse.cpu[0], 29.5, "the mean of 0..60");
        assert_eq!(coarse.lag[0], Some(50.0), "the worst lag of the minute");
        assert_eq!(coarse.heap[0], None);
        // Out-of-order or repeated samples are dropped.
        r.push(s(start, 1.0, 1.0));
        assert_eq!(r.fine().t.len(), FINE);
        for m in 0..(COARSE as u32 + 10) {
            r.push(s(start + FINE as u32 * 2 + m * 60, 1.0, 1.0));
        }
        assert_eq!(r.coarse().t.len(), COARSE + 1);
        assert_eq!(r.spark().t.len(), SPARK);
    }

    #[test]
    fn crash_records_are_bounded() {
        let mut r = Rings::default();
        let ev = Event {
            app: "a".into(),
            id: 0,
            instance: 0,
            pid: Some(1),
            time: 0,
            kind: crate::model::EventKind::Stop,
        };
        let line = |n: usize| LogLine {
            app: "a".into(),
            id: 0,
            stream: crate::logs::Stream::Err,
            time: 0,
            line: "x".repeat(n),
            seq: 0,
        };
        for _ in 0..CRASHES + 3 {
            r.crashed(ev.clone(), (0..20).map(|_| line(1000)).collect());
        }
        let c = r.crashes();
        assert_eq!(c.len(), CRASHES);
        assert_eq!(c[0].lines.len(), CRASH_LINES);
        assert_eq!(c[0].lines[0].line.chars().count(), CRASH_LINE_CHARS + 1);
    }
}
