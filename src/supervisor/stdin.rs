//! The write end of each instance's stdin pipe (`pmr send <id> <line>`,
//! PM2's `sendLineToStdin`). Lines wait in a small bounded queue that a
//! task writes out, so a request never waits on an app that does not read
//! its stdin: once the queue is full, a send is refused instead.

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use super::slot::SlotCommand;
use super::{Report, Supervisor};
use crate::error::{Error, Result};

/// Lines queued for an app that reads slowly, on top of what the pipe
/// itself holds (64 KiB on Linux).
pub(crate) const QUEUED_LINES: usize = 64;

/// Why a line was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdinRefusal {
    /// The app has not read the lines already queued.
    Full,
    /// The app closed its stdin (or has none, like a fake child).
    Closed,
}

/// The daemon's end of one process's stdin.
pub(crate) struct StdinPipe {
    lines: mpsc::Sender<Vec<u8>>,
    writer: JoinHandle<()>,
}

impl Drop for StdinPipe {
    /// A writer blocked on a pipe that a grandchild still holds open must
    /// not outlive the process it was for.
    fn drop(&mut self) {
        self.writer.abort();
    }
}

impl StdinPipe {
    pub fn new<W: AsyncWrite + Unpin + Send + 'static>(pipe: W) -> Self {
        let (lines, rx) = mpsc::channel(QUEUED_LINES);
        StdinPipe {
            lines,
            writer: tokio::spawn(write_lines(pipe, rx)),
        }
    }

    /// Queues `line`, with a newline added unless it ends with one. Never waits.
    pub fn send_line(&self, line: &str) -> std::result::Result<(), StdinRefusal> {
        let mut bytes = line.as_bytes().to_vec();
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        self.lines.try_send(bytes).map_err(|e| match e {
            TrySendError::Full(_) => StdinRefusal::Full,
            TrySendError::Closed(_) => StdinRefusal::Closed,
        })
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(mut pipe: W, mut lines: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = lines.recv().await {
        // EPIPE: the app closed its stdin or exited; later sends say so.
        if pipe.write_all(&line).await.is_err() || pipe.flush().await.is_err() {
            return;
        }
    }
}

/// The error a refused line is answered with, naming the instance.
pub(crate) fn refusal_error(app: &str, id: u32, r: StdinRefusal) -> Error {
    match r {
        StdinRefusal::Full => Error::Busy(format!(
            "stdin of app {app} (id {id}) is full: it has not read the last {QUEUED_LINES} lines sent; nothing was sent"
        )),
        StdinRefusal::Closed => Error::NotFound(format!(
            "stdin of app {app} (id {id}) is closed: the app closed it or stopped reading; nothing was sent"
        )),
    }
}

impl Supervisor {
    /// `pmr send <id|name> <line>`: the line on the stdin of each selected
    /// running instance. All or nothing: a refusal (a full or closed stdin)
    /// is the answer, not a note inside a report that says it was sent.
    pub async fn send_line(&self, target: &str, line: String) -> Result<Report> {
        self.each_selected(&[target.to_string()], "written to", move |_, slots| {
            let line = line.clone();
            async move {
                let pending: Vec<_> = slots
                    .iter()
                    .map(|s| {
                        let line = line.clone();
                        s.0.ask(|reply| SlotCommand::Stdin { line, reply })
                    })
                    .collect();
                super::replies::gather(pending).await
            }
        })
        .await?
        .into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn lines_arrive_in_order_with_a_newline_each() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let pipe = StdinPipe::new(ours);
        pipe.send_line("one").unwrap();
        pipe.send_line("two\n").unwrap();
        let mut buf = vec![0u8; 8];
        theirs.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, b"one\ntwo\n");
    }

    #[tokio::test]
    async fn a_reader_that_never_reads_gets_full_not_a_wait() {
        // A 16-byte pipe: the writer blocks on the first lines, the queue fills.
        let (ours, mut theirs) = tokio::io::duplex(16);
        let pipe = StdinPipe::new(ours);
        let mut sent = 0;
        let refused = loop {
            match pipe.send_line("a line of text") {
                Ok(()) => sent += 1,
                Err(r) => break r,
            }
            assert!(sent <= QUEUED_LINES + 4, "never refused");
            tokio::task::yield_now().await;
        };
        assert_eq!(refused, StdinRefusal::Full);
        // Reading drains what was queued, in order, and sends work again.
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < sent * 15 {
            let n = theirs.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"a line of text\n".repeat(sent));
        assert!(pipe.send_line("more").is_ok());
    }

    #[tokio::test]
    async fn a_closed_reader_is_closed() {
        let (ours, theirs) = tokio::io::duplex(16);
        let pipe = StdinPipe::new(ours);
        drop(theirs);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match pipe.send_line("x") {
                Err(StdinRefusal::Closed) => break,
                _ if tokio::time::Instant::now() > deadline => panic!("never closed"),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        let e = refusal_error("api", 3, StdinRefusal::Full);
        assert_eq!(e.code(), "PMR_BUSY");
        assert!(e.to_string().starts_with("stdin of app api (id 3) is full"));
    }
}
