//! `pmr monit`: a full-screen dashboard. Every instance with its status, CPU
//! and memory (and a short history of both), the selected instance's details,
//! and its app's live log lines and pmr events; keys to reload, stop and
//! start. The figures come from `list` every `metrics.interval`; the lines
//! from the daemon's stream, read on a thread of their own.
//!
//! This file runs the loop and talks to the daemon; `model` is what is
//! shown and how it changes, `view` draws it, `terminal` takes over the
//! terminal and gives it back on every way out.

mod model;
mod terminal;
mod view;

use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Ctx;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::model::RecentLines;
use crate::paths::Home;
use crate::protocol::{Request, StreamItem};
use crate::settings::AllSettings;
use crate::supervisor::{Description, InstanceInfo, Report};
use model::{Action, Kind, Monit};
use terminal::{next_input, Input, Screen, TerminalGuard};
use view::View;

/// Past lines asked of the daemon per instance when monit starts.
const PAST_LINES: usize = 50;
/// The longest wait for a key before the screen is looked at again.
const POLL: Duration = Duration::from_millis(100);

pub(super) fn run(ctx: &Ctx<'_>) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Config(
            "pmr monit needs a terminal; for a script or a pipe use pmr list or pmr jlist (or pmr metrics)"
                .into(),
        ));
    }
    let mut client = ctx.running_daemon()?;
    let rows: Vec<InstanceInfo> = client.request_as(Request::List)?;
    let interval = client
        .request_as::<AllSettings>(Request::Get { key: None })
        .map_or(1000, |s| s.metrics_interval)
        .clamp(100, 10_000);
    let mut monit = Monit::default();
    let mut view = View::new(ctx.style.color);
    let ids: Vec<u32> = rows.iter().map(|r| r.id).collect();
    monit.refresh(rows);
    for (app, id, text, kind) in past_lines(&mut client, ids) {
        monit.log(&app, id, text, kind);
    }

    let (tx, rx) = mpsc::channel();
    let stream = Client::connect(&ctx.home)?
        .ok_or_else(|| Error::Daemon("the daemon went away".into()))?
        .subscribe(true, true)?;
    let stream_tx = tx.clone();
    std::thread::Builder::new()
        .name("pmr-monit-stream".into())
        .spawn(move || {
            for item in stream {
                if stream_tx.send(Msg::Stream(item)).is_err() {
                    return;
                }
            }
            let _ = stream_tx.send(Msg::StreamEnded);
        })
        .map_err(|e| Error::io("cannot start monit's stream reader", e))?;

    let guard = TerminalGuard::enter()?;
    let mut term = guard.screen()?;
    let result = event_loop(
        &mut term,
        &mut monit,
        &mut view,
        &mut client,
        &ctx.home,
        &rx,
        &tx,
        Duration::from_millis(interval),
    );
    drop(term);
    drop(guard);
    result
}

/// The recent lines and pmr events of every instance, oldest first, so the
/// log pane does not start empty. Older daemons keep no recent lines: the
/// pane then starts with the events alone.
fn past_lines(client: &mut Client, ids: Vec<u32>) -> Vec<(String, u32, String, Kind)> {
    let mut past: Vec<(u64, String, u32, String, Kind)> = Vec::new();
    if ids.is_empty() {
        return Vec::new();
    }
    if let Ok(recent) = client.request_as::<RecentLines>(Request::RecentLogs {
        ids,
        lines: PAST_LINES,
        out: true,
        err: true,
    }) {
        past.extend(
            recent
                .lines
                .into_iter()
                .map(|l| (l.time, l.app, l.id, l.line, l.stream.into())),
        );
    }
    if let Ok(descs) = client.request_as::<Vec<Description>>(Request::Describe {
        target: vec!["all".into()],
    }) {
        for d in descs {
            past.extend(
                d.history
                    .iter()
                    .map(|e| (e.time, e.app.clone(), e.id, e.describe(), Kind::Event)),
            );
        }
    }
    // Stable: lines of one instance that share a millisecond keep their order.
    past.sort_by_key(|p| p.0);
    past.into_iter()
        .map(|(_, app, id, text, kind)| (app, id, text, kind))
        .collect()
}

enum Msg {
    Stream(Result<StreamItem>),
    StreamEnded,
    /// An action finished: what to tell the user, and whether it failed.
    Done(String, bool),
}

// Everything the loop touches, passed in rather than bundled: each is used
// on its own and a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn event_loop(
    term: &mut Screen,
    monit: &mut Monit,
    view: &mut View,
    client: &mut Client,
    home: &Home,
    rx: &mpsc::Receiver<Msg>,
    tx: &mpsc::Sender<Msg>,
    interval: Duration,
) -> Result<()> {
    let io = |e| Error::io("the terminal failed", e);
    let mut next_refresh = Instant::now() + interval;
    let mut dirty = true;
    loop {
        if dirty {
            term.draw(|f| view.draw(f, monit)).map_err(io)?;
            dirty = false;
        }
        let wait = next_refresh
            .saturating_duration_since(Instant::now())
            .min(POLL);
        match next_input(wait)? {
            Some(Input::Key(k)) => {
                match monit.on_key(k) {
                    Some(Action::Quit) => return Ok(()),
                    Some(a) => start_action(a, home, tx, monit),
                    None => {}
                }
                dirty = true;
            }
            Some(Input::Resize) => {
                term.autoresize().map_err(io)?;
                dirty = true;
            }
            None => {}
        }
        while let Ok(m) = rx.try_recv() {
            dirty = true;
            match m {
                Msg::Stream(Ok(StreamItem::Log(l))) => {
                    monit.log(&l.app, l.id, l.line, l.stream.into())
                }
                Msg::Stream(Ok(StreamItem::Event(e))) => {
                    monit.log(&e.app, e.id, e.describe(), Kind::Event)
                }
                Msg::Stream(Ok(StreamItem::Lagged(n))) => monit.notice(
                    format!("{n} log lines skipped (the log files have them)"),
                    true,
                    Instant::now(),
                ),
                Msg::Stream(Err(e)) => monit.notice(e.to_string(), true, Instant::now()),
                Msg::StreamEnded => monit.notice(
                    "the daemon closed the log stream".into(),
                    true,
                    Instant::now(),
                ),
                Msg::Done(text, failed) => monit.notice(text, failed, Instant::now()),
            }
        }
        if Instant::now() >= next_refresh {
            next_refresh = Instant::now() + interval;
            match client.request_as::<Vec<InstanceInfo>>(Request::List) {
                Ok(rows) => monit.refresh(rows),
                Err(e) => {
                    monit.notice(
                        format!("cannot reach the daemon: {e}"),
                        true,
                        Instant::now(),
                    );
                    if let Ok(Some(c)) = Client::connect(home) {
                        *client = c;
                    }
                }
            }
            dirty = true;
        }
        if monit.notice_expired(Instant::now()) {
            dirty = true;
        }
    }
}

/// Runs a reload, stop or start without freezing the screen: on a thread,
/// over a connection of its own, telling the loop how it went.
fn start_action(a: Action, home: &Home, tx: &mpsc::Sender<Msg>, monit: &mut Monit) {
    let (req, doing, done) = match &a {
        Action::Reload(app) => (
            Request::Reload {
                target: vec![app.clone()],
                env: None,
            },
            format!("reloading {app}..."),
            format!("reloaded {app}"),
        ),
        Action::Stop(app) => (
            Request::Stop {
                target: vec![app.clone()],
            },
            format!("stopping {app}..."),
            format!("stopped {app}"),
        ),
        Action::Start(app) => (
            Request::StartExisting {
                target: vec![app.clone()],
            },
            format!("starting {app}..."),
            format!("started {app}"),
        ),
        Action::Quit => return,
    };
    monit.notice(doing, false, Instant::now());
    let home = home.clone();
    let tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("pmr-monit-action".into())
        .spawn(move || {
            let result = Client::connect(&home).and_then(|c| {
                c.ok_or_else(|| Error::Daemon("the daemon went away".into()))?
                    .request_as::<Report>(req)
            });
            let msg = match result {
                Ok(_) => Msg::Done(done, false),
                Err(e) => Msg::Done(e.to_string(), true),
            };
            let _ = tx.send(msg);
        });
    if let Err(e) = spawned {
        monit.notice(format!("cannot run the action: {e}"), true, Instant::now());
    }
}
