//! The page's live feed, as Server-Sent Events: a `hello` with every
//! instance and its sparkline samples, then events as they happen (each
//! followed by the list they changed), log lines, and each second's
//! figures. Pushed, never polled; a page that falls behind is told how
//! much it missed.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::history::Series;
use super::routes::{Happened, Shared};
use super::Tick;
use crate::model::{InstanceInfo, StreamItem};

/// Items queued for a slow page before its feed waits (and the supervisor's
/// stream lags for it instead of growing).
const QUEUE: usize = 256;
/// Items taken together after an event before the list is sent once.
const BATCH: usize = 64;

#[derive(Deserialize)]
pub(super) struct FeedQuery {
    /// Also stream log lines.
    #[serde(default)]
    logs: bool,
}

#[derive(Serialize)]
struct Hello<'a> {
    instances: &'a [InstanceInfo],
    sparks: HashMap<u32, Series>,
    time: u64,
}

#[derive(Serialize)]
struct List<'a> {
    instances: &'a [InstanceInfo],
}

pub(super) async fn events(
    State(site): State<Shared>,
    Query(q): Query<FeedQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(feed(site, q.logs, tx));
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn sse(name: &str, data: &impl Serialize) -> Option<SseEvent> {
    SseEvent::default().event(name).json_data(data).ok()
}

async fn feed(site: Shared, logs: bool, tx: mpsc::Sender<SseEvent>) {
    let core = site.core.clone();
    let mut stopping = site.stopping.clone();
    // Subscribed before the snapshot, so nothing falls between the two.
    let mut items = core.sup.stream(true, logs);
    let mut ticks = core.ticks.subscribe();
    let send = |e: Option<SseEvent>| {
        let tx = tx.clone();
        async move {
            match e {
                Some(e) => tx.send(e).await.is_ok(),
                None => true,
            }
        }
    };
    let all = core.sup.list();
    let sparks = core.histories().sparks();
    let hello = Hello {
        instances: &all,
        sparks,
        time: crate::clock::now_ms(),
    };
    if !send(sse("hello", &hello)).await {
        return;
    }
    loop {
        let ok = tokio::select! {
            _ = stopping.wait() => return,
            _ = tx.closed() => return,
            item = items.next() => {
                let Some(first) = item else { return };
                let mut changed = false;
                let mut ok = true;
                let mut next = Some(first);
                let mut n = 0;
                while let Some(item) = next.take() {
                    ok = ok && match item {
                        StreamItem::Event(e) => {
                            changed = true;
                            send(sse("event", &Happened::from(e))).await
                        }
                        StreamItem::Log(l) => send(sse("log", &l)).await,
                        StreamItem::Lagged(missed) => send(sse("lagged", &missed)).await,
                    };
                    n += 1;
                    if n < BATCH {
                        next = items.try_next();
                    }
                }
                if changed {
                    ok = ok && send(sse("list", &List { instances: &core.sup.list() })).await;
                }
                ok
            }
            tick = ticks.recv() => match tick {
                Ok(t) => send(sse("tick", &*t as &Tick)).await,
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if !ok {
            return;
        }
    }
}
