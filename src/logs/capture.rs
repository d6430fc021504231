//! Reading one output pipe of one process until EOF, writing whole lines.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::broadcast;

use super::file::LogFile;
use super::{LogLine, Stream};

const READ_CHUNK: usize = 64 * 1024;

/// A line longer than this is written in pieces as it arrives, so memory
/// stays bounded whatever an app prints.
pub const MAX_PENDING_LINE: usize = 64 * 1024;

/// Splits a byte stream into complete lines, holding back the unfinished end.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

/// What one chunk of input produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// Complete lines, newlines included (possibly prefixed by the end of a
    /// line whose start was already written as an overlong piece).
    pub lines: Vec<u8>,
    /// The start of an overlong line, to be written as is.
    pub overflow: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, chunk: &[u8]) -> Split {
        let mut split = Split {
            lines: Vec::new(),
            overflow: Vec::new(),
        };
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                let mut lines = std::mem::take(&mut self.pending);
                lines.extend_from_slice(&chunk[..=last]);
                split.lines = lines;
                self.pending.extend_from_slice(&chunk[last + 1..]);
            }
            None => self.pending.extend_from_slice(chunk),
        }
        if self.pending.len() > MAX_PENDING_LINE {
            split.overflow = std::mem::take(&mut self.pending);
        }
        split
    }

    /// The unfinished last line at EOF, newline added.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            return None;
        }
        let mut rest = std::mem::take(&mut self.pending);
        rest.push(b'\n');
        Some(rest)
    }
}

/// Renders the `--time` prefix.
#[derive(Debug, Clone)]
pub struct Timestamper {
    format: Option<String>,
}

impl Timestamper {
    pub fn new(format: Option<String>) -> Self {
        Timestamper { format }
    }

    /// The current time in the format; a format chrono cannot render falls
    /// back to ISO 8601 (chrono's `to_string` would panic on it).
    pub fn now(&self) -> String {
        use std::fmt::Write;
        const ISO: &str = "%Y-%m-%dT%H:%M:%S%.3f%:z";
        let now = chrono::Local::now();
        let mut out = String::new();
        if let Some(f) = &self.format {
            if write!(out, "{}", now.format(f)).is_ok() {
                return out;
            }
            out.clear();
        }
        let _ = write!(out, "{}", now.format(ISO));
        out
    }
}

pub struct Target {
    pub app: String,
    pub id: u32,
    pub stream: Stream,
    pub file: Arc<LogFile>,
    pub combined: Option<Arc<LogFile>>,
    pub timestamps: Option<Timestamper>,
    pub tap: broadcast::Sender<LogLine>,
}

impl Target {
    fn write(&self, data: &[u8]) {
        self.file.write(data);
        if let Some(c) = &self.combined {
            c.write(data);
        }
    }

    fn emit(&self, lines: &[u8], mid_line: &mut bool) {
        if lines.is_empty() {
            return;
        }
        let tapping = self.tap.receiver_count() > 0;
        if self.timestamps.is_none() && !tapping {
            self.write(lines);
            *mid_line = lines.last() != Some(&b'\n');
            return;
        }
        let stamp = self.timestamps.as_ref().map(|t| t.now());
        let now_ms = crate::supervisor::now_ms();
        let mut out = Vec::with_capacity(lines.len() + 64);
        for line in lines.split_inclusive(|&b| b == b'\n') {
            if let Some(s) = &stamp {
                if !*mid_line {
                    out.extend_from_slice(s.as_bytes());
                    out.extend_from_slice(b": ");
                }
            }
            out.extend_from_slice(line);
            let complete = line.last() == Some(&b'\n');
            if tapping {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
                let _ = self.tap.send(LogLine {
                    app: self.app.clone(),
                    id: self.id,
                    stream: self.stream,
                    time: now_ms,
                    line: text.into_owned(),
                });
            }
            *mid_line = !complete;
        }
        self.write(&out);
    }
}

/// Copies `pipe` to the target until EOF; the unfinished last line is kept.
pub async fn capture<R: AsyncRead + Unpin>(mut pipe: R, target: Target) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut splitter = LineSplitter::default();
    let mut mid_line = false;
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let split = splitter.push(&buf[..n]);
        target.emit(&split.lines, &mut mid_line);
        target.emit(&split.overflow, &mut mid_line);
    }
    if let Some(rest) = splitter.finish() {
        target.emit(&rest, &mut mid_line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_partial_lines() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"hel").lines, b"");
        assert_eq!(s.push(b"lo\nwor").lines, b"hello\n");
        assert_eq!(s.push(b"ld\n").lines, b"world\n");
        assert_eq!(s.finish(), None);
        s.push(b"tail");
        assert_eq!(s.finish(), Some(b"tail\n".to_vec()));
    }

    #[test]
    fn overlong_lines_are_released_in_bounded_pieces() {
        let mut s = LineSplitter::default();
        let big = vec![b'x'; MAX_PENDING_LINE + 1];
        let split = s.push(&big);
        assert_eq!(split.overflow.len(), MAX_PENDING_LINE + 1);
        assert!(s.pending.is_empty());
        assert_eq!(s.push(b"end\n").lines, b"end\n");
    }

    #[test]
    fn a_bad_date_format_falls_back_instead_of_panicking() {
        let t = Timestamper::new(Some("%Q %Y".into()));
        assert!(t.now().contains('T'), "{}", t.now());
    }

    #[tokio::test]
    async fn capture_writes_whole_lines_with_timestamps() {
        let t = tempfile::tempdir().unwrap();
        let files = super::super::file::LogFiles::default();
        let (tap, mut rx) = broadcast::channel(16);
        let target = Target {
            app: "a".into(),
            id: 0,
            stream: Stream::Out,
            file: files.get(&t.path().join("o.log")),
            combined: None,
            timestamps: Some(Timestamper::new(Some("T".into()))),
            tap,
        };
        let input: &[u8] = b"one\ntwo\nthr";
        capture(input, target).await;
        let text = std::fs::read_to_string(t.path().join("o.log")).unwrap();
        assert_eq!(text, "T: one\nT: two\nT: thr\n");
        assert_eq!(rx.recv().await.unwrap().line, "one");
    }
}
