//! `pmr logs`: the last lines of each instance (out and err in the order they
//! were written, from the daemon's memory; from the files where it does not
//! reach back far enough), then the live stream from the daemon (app lines
//! and pmr's own supervision events). And `pmr flush`.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};

use super::args::{FlushArgs, LogsArgs};
use super::style::Style;
use super::{info, out, Ctx};
use crate::client::select::LogTarget;
use crate::error::{Error, Result};
use crate::logs::capture::Timestamper;
use crate::logs::tail::last_lines;
use crate::logs::{JsonLine, LogLine, Stream};
use crate::model::RecentLines;
use crate::protocol::{Flushed, Request, StreamItem};
use crate::spec::datefmt::to_strftime;
use crate::supervisor::{Event, InstanceInfo};

/// How lines are printed: plain with the `id|name |` prefix, raw, or JSON.
struct Printer {
    style: Style,
    raw: bool,
    json: bool,
    /// `--timestamp`: the time each line reached pmr, in this format.
    stamper: Option<Timestamper>,
    /// stdout is not a terminal, where red is not there to set stderr lines
    /// apart: they carry `err |` after the prefix instead.
    mark_err: bool,
}

impl Printer {
    fn line(&self, app: &str, id: u32, stream: Stream, time: Option<u64>, text: &str) -> bool {
        let s = &self.style;
        if self.json {
            let iso = Timestamper::new(None);
            let ts = time.map(|t| self.stamper.as_ref().unwrap_or(&iso).at_ms(t));
            let obj = JsonLine {
                timestamp: ts.as_deref(),
                app,
                id,
                instance: None,
                stream: stream.as_str(),
                message: text,
            };
            return out(&String::from_utf8_lossy(&obj.to_line()));
        }
        let prefix = if self.raw {
            String::new()
        } else {
            s.app(app, &format!("{id}|{app:<10}| "))
        };
        let stamp = match (&self.stamper, time) {
            (Some(t), Some(ms)) => s.dim(&format!("{}: ", t.at_ms(ms))),
            _ => String::new(),
        };
        let text = if stream == Stream::Err {
            s.red(text)
        } else {
            text.to_string()
        };
        let mark = if self.mark_err && !self.raw && stream == Stream::Err {
            "err | "
        } else {
            ""
        };
        out(&format!("{prefix}{mark}{stamp}{text}\n"))
    }

    /// A line from a file shown under its own header, which already says
    /// which stream it is (PM2's layout), so it is not marked.
    fn file_line(&self, app: &str, id: u32, stream: Stream, text: &str) -> bool {
        let unmarked = Printer {
            style: self.style,
            raw: self.raw,
            json: self.json,
            stamper: None,
            mark_err: false,
        };
        unmarked.line(app, id, stream, None, text)
    }

    fn event(&self, e: &Event) -> bool {
        if self.json {
            let ts = Timestamper::new(None).at_ms(e.time);
            let msg = e.describe();
            let obj = JsonLine {
                timestamp: Some(&ts),
                app: &e.app,
                id: e.id,
                instance: Some(e.instance),
                stream: "pmr",
                message: &msg,
            };
            return out(&String::from_utf8_lossy(&obj.to_line()));
        }
        let s = &self.style;
        let tag = s.bold(&s.yellow("PMR"));
        out(&format!("{tag} | {}#{}: {}\n", e.app, e.id, e.describe()))
    }

    /// Headers and notices: on stderr for JSON, so stdout stays parseable;
    /// not at all with `--raw`.
    fn note(&self, text: &str) -> bool {
        if self.raw {
            return true;
        }
        if self.json {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
            return true;
        }
        out(&format!("{}\n", self.style.dim(text)))
    }
}

pub(super) fn run(ctx: &Ctx<'_>, a: LogsArgs) -> Result<()> {
    let mut client = ctx.running_daemon()?;
    let all: Vec<InstanceInfo> = client.request_as(Request::List)?;
    let target = a.target.as_deref();
    let follow = LogTarget::parse(target)?.select(&all, target.unwrap_or("all"))?;
    let chosen = &follow.chosen;
    let stamper = match &a.timestamp {
        None => None,
        Some(None) => Some(Timestamper::new(None)),
        Some(Some(f)) => Some(Timestamper::new(Some(
            to_strftime(f).map_err(|e| Error::Config(format!("--timestamp: {e}")))?,
        ))),
    };
    let p = Printer {
        style: ctx.style,
        raw: a.raw,
        json: a.json,
        stamper,
        mark_err: !std::io::stdout().is_terminal(),
    };
    let want_out = !a.err;
    let want_err = !a.out;

    // Subscribe before asking for the past, so that no line falls between
    // the two; lines the past already showed are skipped in the stream.
    let subscription = if a.nostream {
        None
    } else {
        Some(ctx.running_daemon()?.subscribe(true, true)?)
    };
    let mut shown: HashMap<(u32, Stream), u64> = HashMap::new();
    let mut past_events: HashSet<(u32, u64, String)> = HashSet::new();
    if a.lines > 0 && !chosen.is_empty() {
        let recent: RecentLines = client.request_as(Request::RecentLogs {
            ids: chosen.iter().map(|i| i.id).collect(),
            lines: a.lines,
            out: want_out,
            err: want_err,
        })?;
        if !print_past(&p, &a, chosen, &recent, &mut shown)? {
            return Ok(());
        }
        // The subscription came first: events of the past may be in it too.
        past_events = recent
            .events
            .iter()
            .map(|e| (e.id, e.time, e.describe()))
            .collect();
    }
    let Some(subscription) = subscription else {
        return Ok(());
    };
    p.note("following new lines (Ctrl-C to stop)");
    let follows = |app: &str, id: u32| follow.follows(app, id);
    for item in subscription {
        let ok = match item? {
            StreamItem::Log(l) if follows(&l.app, l.id) => {
                let wanted = match l.stream {
                    Stream::Out => want_out,
                    Stream::Err => want_err,
                };
                let seen = shown.get(&(l.id, l.stream)).is_some_and(|&m| l.seq <= m);
                if !wanted || seen {
                    continue;
                }
                p.line(&l.app, l.id, l.stream, Some(l.time), &l.line)
            }
            StreamItem::Event(e) if follows(&e.app, e.id) && !a.raw => {
                if past_events.contains(&(e.id, e.time, e.describe())) {
                    continue;
                }
                p.event(&e)
            }
            StreamItem::Lagged(n) => {
                let msg = format!(
                    "[pmr] this terminal fell behind: {n} lines were skipped here (the log files have them)"
                );
                if a.json {
                    let _ = writeln!(std::io::stderr().lock(), "{msg}");
                    true
                } else {
                    out(&format!("{}\n", ctx.style.yellow(&msg)))
                }
            }
            _ => true,
        };
        if !ok {
            break;
        }
    }
    Ok(())
}

/// Prints the last lines; false once stdout is gone.
fn print_past(
    p: &Printer,
    a: &LogsArgs,
    chosen: &[&InstanceInfo],
    recent: &RecentLines,
    shown: &mut HashMap<(u32, Stream), u64>,
) -> Result<bool> {
    let files_of = |i: &InstanceInfo| {
        let mut v = Vec::new();
        if !a.err {
            v.push((i.logs.out.clone(), Stream::Out));
        }
        if !a.out {
            v.push((i.logs.err.clone(), Stream::Err));
        }
        v
    };
    // Instances whose past goes back further than the daemon: their files,
    // one after the other (nothing says how out and err interleave).
    let mut read = Vec::new();
    for i in chosen.iter().filter(|i| recent.from_files.contains(&i.id)) {
        for (path, stream) in files_of(i) {
            if read.contains(&path) {
                continue;
            }
            let lines = last_lines(&path, a.lines)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            p.note(&format!("{} last {} lines:", path.display(), a.lines));
            for l in lines {
                if !p.file_line(&i.name, i.id, stream, &l) {
                    return Ok(false);
                }
            }
            read.push(path);
        }
        if !print_events(p, recent.events.iter().filter(|e| e.id == i.id)) {
            return Ok(false);
        }
    }
    let mut paths: Vec<String> = Vec::new();
    for i in chosen.iter().filter(|i| !recent.from_files.contains(&i.id)) {
        for (path, _) in files_of(i) {
            let shown = path.display().to_string();
            if !paths.contains(&shown) {
                paths.push(shown);
            }
        }
    }
    if !paths.is_empty() {
        p.note(&format!(
            "last {} lines of each of {}, in the order they were written:",
            a.lines,
            paths.join(", ")
        ));
    }
    let lines = per_file(&recent.lines, chosen, a.lines);
    // pmr's own lines go where they happened among the app's: by time,
    // after the app's lines of the same millisecond (an exit is seen after
    // what the process wrote before it). Those older than an instance's
    // oldest line shown are outside the past being shown.
    let mut oldest: HashMap<u32, u64> = HashMap::new();
    for l in &lines {
        oldest.entry(l.id).or_insert(l.time);
    }
    let mut events = recent
        .events
        .iter()
        .filter(|e| !recent.from_files.contains(&e.id))
        .filter(|e| oldest.get(&e.id).is_none_or(|&t| e.time >= t))
        .peekable();
    for l in lines {
        let before = std::iter::from_fn(|| events.next_if(|e| e.time < l.time));
        if !print_events(p, before) {
            return Ok(false);
        }
        let m = shown.entry((l.id, l.stream)).or_default();
        *m = (*m).max(l.seq);
        if !p.line(&l.app, l.id, l.stream, Some(l.time), &l.line) {
            return Ok(false);
        }
    }
    Ok(print_events(p, events))
}

/// pmr's own lines of the past; `--raw` is the app's output only, as in the
/// live stream. False once stdout is gone.
fn print_events<'a>(p: &Printer, events: impl Iterator<Item = &'a Event>) -> bool {
    if p.raw {
        return true;
    }
    for e in events {
        if !p.event(e) {
            return false;
        }
    }
    true
}

/// The daemon keeps `n` lines per stream of each instance; instances that
/// share a file (`merge_logs`) would show more than `n` of it. Keeps the
/// last `n` of each file, in order, so `--lines N` means N per file.
fn per_file<'a>(lines: &'a [LogLine], chosen: &[&InstanceInfo], n: usize) -> Vec<&'a LogLine> {
    let file_of = |l: &LogLine| {
        chosen
            .iter()
            .find(|i| i.id == l.id)
            .map(|i| match l.stream {
                Stream::Out => i.logs.out.clone(),
                Stream::Err => i.logs.err.clone(),
            })
    };
    let mut left: HashMap<Option<std::path::PathBuf>, usize> = HashMap::new();
    let mut kept: Vec<&LogLine> = lines
        .iter()
        .rev()
        .filter(|l| {
            let k = left.entry(file_of(l)).or_insert(n);
            let keep = *k > 0;
            *k = k.saturating_sub(1);
            keep
        })
        .collect();
    kept.reverse();
    kept
}

pub(super) fn flush(ctx: &Ctx<'_>, a: FlushArgs) -> Result<()> {
    let r: Flushed = ctx
        .running_daemon()?
        .request_as(Request::Flush { target: a.targets })?;
    if r.flushed.is_empty() {
        info("no log file to empty");
    }
    for f in r.flushed {
        info(&format!("emptied {}", f.display()));
    }
    Ok(())
}
