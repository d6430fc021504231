//! App output on the runtime's stdout (out lines) and stderr (err lines):
//! prefixed with the app, raw, or as JSON objects.

use std::io::Write;

use tokio::task::JoinHandle;

use crate::logs::Stream as LogStream;
use crate::protocol::StreamItem;
use crate::supervisor::Stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `api|0 | line`, and pmr's own events as `PMR | ...`.
    Prefixed,
    /// The lines exactly as the apps wrote them.
    Raw,
    /// One JSON object per line (app, id, stream, time, line; events too).
    Json,
}

/// One line of the runtime's own, on stderr.
pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "[pmr-runtime] {msg}");
}

pub struct Printer {
    task: JoinHandle<()>,
    end: tokio::sync::oneshot::Sender<()>,
}

impl Printer {
    /// Prints what is already queued, then stops.
    pub async fn finish(self) {
        let _ = self.end.send(());
        let _ = self.task.await;
    }
}

fn print(item: &StreamItem, how: Output) {
    let (to_err, text) = match (item, how) {
        (StreamItem::Log(l), Output::Json) => (l.stream == LogStream::Err, serde_json::to_string(l).unwrap_or_default()),
        (StreamItem::Log(l), Output::Raw) => (l.stream == LogStream::Err, l.line.clone()),
        (StreamItem::Log(l), Output::Prefixed) => (l.stream == LogStream::Err, format!("{}|{} | {}", l.app, l.id, l.line)),
        (StreamItem::Event(_), Output::Raw) => return,
        (StreamItem::Event(e), Output::Json) => (true, serde_json::to_string(e).unwrap_or_default()),
        (StreamItem::Event(e), Output::Prefixed) => (true, format!("PMR | {}|{}: {}", e.app, e.id, e.describe())),
        (StreamItem::Lagged(n), _) => (true, format!("[pmr-runtime] output fell behind: {n} lines skipped here (the log files have them)")),
    };
    let _ = if to_err {
        writeln!(std::io::stderr().lock(), "{text}")
    } else {
        writeln!(std::io::stdout().lock(), "{text}")
    };
}

pub fn spawn(mut stream: Stream, how: Output) -> Printer {
    let (end, mut end_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(i) => print(&i, how),
                    None => return,
                },
                _ = &mut end_rx => {
                    while let Some(i) = stream.try_next() {
                        print(&i, how);
                    }
                    return;
                }
            }
        }
    });
    Printer { task, end }
}
