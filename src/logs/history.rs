//! The last lines of each instance, both streams, in the order they arrived.
//! Files keep out and err apart and carry no times unless asked to, so
//! `pmr logs --lines N` takes the recent past from here to show out and err
//! interleaved as they happened, and to stream on without a gap or a repeat.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{LogLine, Stream};

/// Lines kept per instance (more when a chunk holds more).
pub const RING_LINES: usize = 1000;
/// And at most this many bytes per instance, whatever the lines' length.
pub const RING_BYTES: usize = 256 * 1024;

/// Orders chunks across every instance and stream: the order of arrival.
static SEQ: AtomicU64 = AtomicU64::new(1);

struct Chunk {
    seq: u64,
    time: u64,
    stream: Stream,
    data: Vec<u8>,
    lines: usize,
}

#[derive(Default)]
struct Ring {
    chunks: VecDeque<Chunk>,
    lines: usize,
    bytes: usize,
    /// Lines were dropped from the front: the ring no longer holds every
    /// line the instance wrote.
    evicted: bool,
}

/// Pieces a chunk splits into: its lines, and an unfinished end (the start
/// of an overlong line) as a piece of its own.
fn pieces(data: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
}

fn count_pieces(data: &[u8]) -> usize {
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(data.last().is_some_and(|&b| b != b'\n'))
}

pub struct History {
    app: String,
    id: u32,
    ring: Mutex<Ring>,
}

/// The last lines of one instance, and how many of each stream there are.
#[derive(Debug)]
pub struct Tail {
    /// In the order they arrived.
    pub lines: Vec<LogLine>,
    pub out: usize,
    pub err: usize,
    /// Older lines of the instance were dropped from memory.
    pub evicted: bool,
}

impl History {
    pub fn new(app: &str, id: u32) -> Self {
        History {
            app: app.to_string(),
            id,
            ring: Mutex::new(Ring::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a chunk of output; returns its place in the order of arrival.
    pub fn push(&self, stream: Stream, time: u64, data: &[u8]) -> u64 {
        let lines = count_pieces(data);
        let mut r = self.lock();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        r.lines += lines;
        r.bytes += data.len();
        r.chunks.push_back(Chunk {
            seq,
            time,
            stream,
            data: data.to_vec(),
            lines,
        });
        while let Some(front) = r.chunks.front() {
            let spare_lines = r.lines - front.lines >= RING_LINES;
            let too_big = r.bytes > RING_BYTES && r.chunks.len() > 1;
            if !spare_lines && !too_big {
                break;
            }
            let (l, b) = (front.lines, front.data.len());
            r.chunks.pop_front();
            r.lines -= l;
            r.bytes -= b;
            r.evicted = true;
        }
        seq
    }

    /// Up to `n` last lines of each wanted stream.
    pub fn tail(&self, n: usize, out: bool, err: bool) -> Tail {
        let r = self.lock();
        let mut counts = [0usize; 2];
        let mut picked: Vec<LogLine> = Vec::new();
        for c in r.chunks.iter().rev() {
            let (wanted, k) = match c.stream {
                Stream::Out => (out, 0),
                Stream::Err => (err, 1),
            };
            if !wanted || counts[k] >= n {
                continue;
            }
            for piece in pieces(&c.data).rev() {
                if counts[k] >= n {
                    break;
                }
                counts[k] += 1;
                picked.push(LogLine {
                    app: self.app.clone(),
                    id: self.id,
                    stream: c.stream,
                    time: c.time,
                    line: String::from_utf8_lossy(piece).into_owned(),
                    seq: c.seq,
                });
            }
        }
        picked.reverse();
        Tail {
            lines: picked,
            out: counts[0],
            err: counts[1],
            evicted: r.evicted,
        }
    }

    /// Forgets everything (`pmr flush`): the files are empty again.
    pub fn clear(&self) {
        *self.lock() = Ring::default();
    }
}

/// One history per instance id.
#[derive(Default)]
pub struct Histories {
    map: Mutex<HashMap<u32, Arc<History>>>,
}

impl Histories {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Arc<History>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn of(&self, app: &str, id: u32) -> Arc<History> {
        self.lock()
            .entry(id)
            .or_insert_with(|| Arc::new(History::new(app, id)))
            .clone()
    }

    pub fn get(&self, id: u32) -> Option<Arc<History>> {
        self.lock().get(&id).cloned()
    }

    pub fn forget(&self, id: u32) {
        self.lock().remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &Tail) -> Vec<String> {
        t.lines
            .iter()
            .map(|l| format!("{:?} {}", l.stream, l.line))
            .collect()
    }

    #[test]
    fn out_and_err_come_back_in_the_order_they_arrived() {
        let h = History::new("a", 0);
        h.push(Stream::Out, 1, b"o1\no2\n");
        h.push(Stream::Err, 2, b"e1\n");
        h.push(Stream::Out, 3, b"o3\n");
        h.push(Stream::Err, 4, b"e2\ne3\n");
        let t = h.tail(3, true, true);
        assert_eq!(
            texts(&t),
            ["Out o1", "Out o2", "Err e1", "Out o3", "Err e2", "Err e3"]
        );
        assert_eq!((t.out, t.err, t.evicted), (3, 3, false));
        let t = h.tail(2, true, true);
        assert_eq!(texts(&t), ["Out o2", "Out o3", "Err e2", "Err e3"]);
        let only_err = h.tail(10, false, true);
        assert_eq!(texts(&only_err), ["Err e1", "Err e2", "Err e3"]);
        assert!(t.lines.windows(2).all(|w| w[0].seq <= w[1].seq));
    }

    #[test]
    fn a_piece_of_an_overlong_line_is_a_line_of_its_own() {
        let h = History::new("a", 0);
        h.push(Stream::Out, 1, b"start of a long");
        h.push(Stream::Out, 1, b" line\nnext\n");
        let t = h.tail(10, true, true);
        assert_eq!(texts(&t), ["Out start of a long", "Out  line", "Out next"]);
    }

    #[test]
    fn memory_stays_bounded_and_says_when_it_dropped_lines() {
        let h = History::new("a", 0);
        for i in 0..RING_LINES + 10 {
            h.push(Stream::Out, 1, format!("{i}\n").as_bytes());
        }
        let t = h.tail(usize::MAX, true, true);
        assert_eq!(t.out, RING_LINES);
        assert!(t.evicted);
        assert_eq!(t.lines.last().unwrap().line, (RING_LINES + 9).to_string());
        let big = vec![b'x'; RING_BYTES / 2];
        for _ in 0..4 {
            h.push(Stream::Err, 2, &big);
        }
        assert!(h.lock().bytes <= RING_BYTES);
        h.clear();
        let t = h.tail(10, true, true);
        assert!(t.lines.is_empty() && !t.evicted);
    }
}
