//! Reading one output pipe of one process until EOF, writing whole lines.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::broadcast;

use chrono::TimeZone;

use super::file::LogFile;
use super::history::History;
use super::{JsonLine, LogLine, Stream};
use crate::spec::LogSpec;

const READ_CHUNK: usize = 64 * 1024;

/// How long an unfinished line waits for its end before it is written as
/// it is: long next to the gap between two writes of one line, short for
/// a person waiting to see `process.stderr.write('x')` in the file.
pub const PARTIAL_LINE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// A line longer than this is written in pieces as it arrives, so memory
/// stays bounded whatever an app prints. Well above a pipe's 64 KiB, so
/// that long lines (a stack trace as one JSON object) still land whole.
pub const MAX_PENDING_LINE: usize = 1024 * 1024;

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

    /// The unfinished end as it is (no newline added): written when the
    /// app has been quiet for a while, so a prompt or a progress dot that
    /// ends without a newline still reaches the file.
    pub fn take_partial(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty()
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

    pub fn now(&self) -> String {
        self.render(chrono::Local::now())
    }

    /// The time `ms` (milliseconds since the epoch) in the format.
    pub fn at_ms(&self, ms: u64) -> String {
        let t = i64::try_from(ms)
            .ok()
            .and_then(|ms| chrono::Local.timestamp_millis_opt(ms).single())
            .unwrap_or_else(chrono::Local::now);
        self.render(t)
    }

    /// A format chrono cannot render falls back to ISO 8601 (chrono's
    /// `to_string` would panic on it).
    fn render(&self, t: chrono::DateTime<chrono::Local>) -> String {
        use std::fmt::Write;
        const ISO: &str = "%Y-%m-%dT%H:%M:%S%.3f%:z";
        let mut out = String::new();
        if let Some(f) = &self.format {
            if write!(out, "{}", t.format(f)).is_ok() {
                return out;
            }
            out.clear();
        }
        let _ = write!(out, "{}", t.format(ISO));
        out
    }
}

/// How lines go into the files.
#[derive(Debug, Clone)]
pub enum Format {
    /// As the app wrote them.
    Plain,
    /// Each line after a timestamp (`time`, `log_date_format`).
    Stamped(Timestamper),
    /// One JSON object per line (`log_type: 'json'`).
    Json(Timestamper),
}

impl Format {
    pub fn of(spec: &LogSpec) -> Format {
        let stamper = || Timestamper::new(spec.log_date_format.clone());
        if spec.log_type == Some(crate::spec::LogType::Json) {
            Format::Json(stamper())
        } else if spec.time {
            Format::Stamped(stamper())
        } else {
            Format::Plain
        }
    }
}

pub struct Target {
    pub app: String,
    pub id: u32,
    pub instance: u32,
    pub stream: Stream,
    pub file: Arc<LogFile>,
    pub combined: Option<Arc<LogFile>>,
    pub format: Format,
    pub history: Arc<History>,
    pub tap: broadcast::Sender<LogLine>,
}

fn lines_of(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    chunk.split_inclusive(|&b| b == b'\n')
}

impl Target {
    fn write(&self, data: &[u8]) {
        self.file.write(data);
        if let Some(c) = &self.combined {
            c.write(data);
        }
    }

    fn emit(&self, chunk: &[u8], mid_line: &mut bool) {
        if chunk.is_empty() {
            return;
        }
        let now_ms = crate::clock::now_ms();
        let seq = self.history.push(self.stream, now_ms, chunk);
        if self.tap.receiver_count() > 0 {
            for line in lines_of(chunk) {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
                let _ = self.tap.send(LogLine {
                    app: self.app.clone(),
                    id: self.id,
                    stream: self.stream,
                    time: now_ms,
                    line: text.into_owned(),
                    seq,
                });
            }
        }
        match &self.format {
            Format::Plain => self.write(chunk),
            Format::Stamped(t) => {
                let stamp = t.now();
                let mut out = Vec::with_capacity(chunk.len() + 64);
                let mut at_start = !*mid_line;
                for line in lines_of(chunk) {
                    if at_start {
                        out.extend_from_slice(stamp.as_bytes());
                        out.extend_from_slice(b": ");
                    }
                    out.extend_from_slice(line);
                    at_start = line.last() == Some(&b'\n');
                }
                self.write(&out);
            }
            Format::Json(t) => {
                let stamp = t.now();
                let mut out = Vec::with_capacity(chunk.len() * 2);
                for line in lines_of(chunk) {
                    let message = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
                    out.extend_from_slice(
                        &JsonLine {
                            timestamp: Some(&stamp),
                            app: &self.app,
                            id: self.id,
                            instance: Some(self.instance),
                            stream: self.stream.as_str(),
                            message: &message,
                        }
                        .to_line(),
                    );
                }
                self.write(&out);
            }
        }
        *mid_line = chunk.last() != Some(&b'\n');
    }
}

/// Copies `pipe` to the target until EOF; the unfinished last line is kept.
pub async fn capture<R: AsyncRead + Unpin>(mut pipe: R, target: Target) {
    let mut splitter = LineSplitter::default();
    let mut mid_line = false;
    loop {
        // Waits for output holding one byte, not a buffer: a read buffer
        // held through the wait was 64 KiB of heap per pipe of every
        // process, and after a restart of many apps the old and the new
        // pipes' buffers left the heap that much higher for good.
        let mut first = [0u8; 1];
        let read = if splitter.has_partial() {
            match tokio::time::timeout(PARTIAL_LINE_WAIT, pipe.read(&mut first)).await {
                Ok(r) => r,
                Err(_) => {
                    target.emit(&splitter.take_partial(), &mut mid_line);
                    continue;
                }
            }
        } else {
            pipe.read(&mut first).await
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        // Reserved, not zeroed: a read fills only what it reads, so the
        // pages of an app that prints little are never touched.
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        buf.push(first[0]);
        // The rest of what is there now, without waiting for more.
        let eof = match read_ready(&mut pipe, &mut buf) {
            Some(Ok(0)) => true,
            Some(Err(e)) => e.kind() != std::io::ErrorKind::Interrupted,
            _ => false,
        };
        let split = splitter.push(&buf);
        drop(buf);
        target.emit(&split.lines, &mut mid_line);
        target.emit(&split.overflow, &mut mid_line);
        if eof {
            break;
        }
    }
    if let Some(rest) = splitter.finish() {
        target.emit(&rest, &mut mid_line);
    }
}

/// One read into `buf`'s spare room if the pipe has something now; None
/// when it has nothing yet (the next wait registers for it).
fn read_ready<R: AsyncRead + Unpin>(
    pipe: &mut R,
    buf: &mut Vec<u8>,
) -> Option<std::io::Result<usize>> {
    use std::future::Future;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let read = std::pin::pin!(pipe.read_buf(buf));
    match read.poll(&mut cx) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
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

    #[tokio::test]
    async fn an_unfinished_line_reaches_the_file_after_a_pause() {
        let t = tempfile::tempdir().unwrap();
        let (target, _rx) = target(t.path(), Format::Plain);
        let (mut w, r) = tokio::io::duplex(64);
        let task = tokio::spawn(capture(r, target));
        tokio::io::AsyncWriteExt::write_all(&mut w, b"ready? ")
            .await
            .unwrap();
        tokio::time::sleep(PARTIAL_LINE_WAIT * 2).await;
        // The file is written by another thread's writer: wait for it.
        let path = t.path().join("o.log");
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(text, "ready? ");
        tokio::io::AsyncWriteExt::write_all(&mut w, b"yes\n")
            .await
            .unwrap();
        drop(w);
        task.await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "ready? yes\n");
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

    fn target(dir: &std::path::Path, format: Format) -> (Target, broadcast::Receiver<LogLine>) {
        let files = super::super::file::LogFiles::default();
        let (tap, rx) = broadcast::channel(16);
        let target = Target {
            app: "a".into(),
            id: 7,
            instance: 1,
            stream: Stream::Err,
            file: files.get(&dir.join("o.log"), &LogSpec::default()),
            combined: Some(files.get(&dir.join("all.log"), &LogSpec::default())),
            format,
            history: Arc::new(History::new("a", 7)),
            tap,
        };
        (target, rx)
    }

    #[tokio::test]
    async fn capture_writes_whole_lines_with_timestamps() {
        let t = tempfile::tempdir().unwrap();
        let (target, mut rx) = target(
            t.path(),
            Format::Stamped(Timestamper::new(Some("T".into()))),
        );
        let history = target.history.clone();
        let input: &[u8] = b"one\ntwo\nthr";
        capture(input, target).await;
        let text = std::fs::read_to_string(t.path().join("o.log")).unwrap();
        assert_eq!(text, "T: one\nT: two\nT: thr\n");
        assert_eq!(
            std::fs::read_to_string(t.path().join("all.log")).unwrap(),
            text
        );
        let first = rx.recv().await.unwrap();
        assert_eq!((first.line.as_str(), first.stream), ("one", Stream::Err));
        let recent: Vec<String> = history
            .tail(5, true, true)
            .lines
            .into_iter()
            .map(|l| l.line)
            .collect();
        assert_eq!(recent, ["one", "two", "thr"]);
    }

    #[tokio::test]
    async fn json_lines_parse_and_carry_the_fields() {
        let t = tempfile::tempdir().unwrap();
        let (target, _rx) = target(t.path(), Format::Json(Timestamper::new(None)));
        let input: &[u8] = b"say \"hi\"\n\xff bytes\n";
        capture(input, target).await;
        let text = std::fs::read_to_string(t.path().join("o.log")).unwrap();
        let objs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["message"], "say \"hi\"");
        assert_eq!(objs[0]["app"], "a");
        assert_eq!(objs[0]["id"], 7);
        assert_eq!(objs[0]["instance"], 1);
        assert_eq!(objs[0]["stream"], "err");
        assert!(objs[0]["timestamp"].as_str().unwrap().contains('T'));
        assert_eq!(objs[1]["message"], "\u{fffd} bytes");
    }
}
