//! One client connection: peer check, framing, dispatch of each request in
//! its own task (a long reload does not hold up a `list`), and streaming for
//! subscribers. Nothing a client sends can take the daemon down: bad input
//! gets an error reply.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::error::{Error, Result};
use crate::handler::RequestHandler;
use crate::paths::Home;
use crate::protocol::{
    Answer, Envelope, Frame, Killed, LineFramer, Reply, Request, StreamItem, Subscribed,
    MAX_REQUEST_BYTES, PROTOCOL_VERSION,
};
use crate::supervisor::Supervisor;

pub(super) struct Context {
    pub control: RequestHandler,
    pub kill: Arc<Notify>,
    pub home: Home,
    pub uid: u32,
}

/// Bytes for the writer task, with an optional "written" acknowledgement.
type Outbound = (Vec<u8>, Option<oneshot::Sender<()>>);

/// Stream items a subscriber may have queued before it counts as stalled.
const STREAM_QUEUE: usize = 1024;

pub(super) async fn serve(ctx: Arc<Context>, stream: UnixStream) {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == ctx.uid || cred.uid() == 0 => {}
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                "refused a control connection from another user"
            );
            return;
        }
        Err(e) => {
            tracing::warn!("cannot identify a control client: {e}");
            return;
        }
    }
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<Outbound>(STREAM_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some((bytes, ack)) = out_rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
            if let Some(a) = ack {
                let _ = wr.flush().await;
                let _ = a.send(());
            }
        }
    });

    let mut framer = LineFramer::new(MAX_REQUEST_BYTES);
    let mut buf = vec![0u8; 16 * 1024];
    let mut frames = Vec::new();
    let mut subscribed = false;
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n], &mut frames);
        for f in frames.drain(..) {
            let line = match f {
                Frame::Line(l) => l,
                Frame::Oversized(len) => {
                    let e = Error::Protocol(format!(
                        "request of {len} bytes refused: the limit is {} bytes",
                        MAX_REQUEST_BYTES
                    ));
                    send(&out_tx, &reply(0, Err(e))).await;
                    continue;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let env = match parse(&line) {
                Ok(env) => env,
                Err((id, e)) => {
                    send(&out_tx, &reply(id, Err(e))).await;
                    continue;
                }
            };
            match env.req {
                Request::Subscribe { events, logs } => {
                    if !subscribed {
                        subscribed = true;
                        spawn_stream(&ctx.control.sup, events, logs, out_tx.clone());
                    }
                    send(
                        &out_tx,
                        &reply(
                            env.id,
                            Ok(Answer::Subscribed(Subscribed { subscribed: true })),
                        ),
                    )
                    .await;
                }
                Request::Handoff { binary } => {
                    let result = super::hand_off(&ctx, &binary);
                    let ok = result.is_ok();
                    let (ack, done) = oneshot::channel();
                    let bytes = line_of(&reply(
                        env.id,
                        result.map(|()| Answer::Killed(Killed { killed: true })),
                    ));
                    if out_tx.send((bytes, Some(ack))).await.is_ok() {
                        let _ = done.await;
                    }
                    if ok {
                        // No wind-down: the apps, their sockets and pipes stay
                        // (the keeper holds them) for the daemon that follows.
                        tracing::info!("handing over to {}", binary.display());
                        std::process::exit(0);
                    }
                }
                Request::Kill => {
                    super::wind_down(&ctx).await;
                    let (ack, done) = oneshot::channel();
                    let bytes =
                        line_of(&reply(env.id, Ok(Answer::Killed(Killed { killed: true }))));
                    if out_tx.send((bytes, Some(ack))).await.is_ok() {
                        let _ = done.await;
                    }
                    ctx.kill.notify_one();
                }
                req => {
                    let ctx = ctx.clone();
                    let out = out_tx.clone();
                    tokio::spawn(async move {
                        let result = ctx.control.handle(req).await;
                        send(&out, &reply(env.id, result)).await;
                    });
                }
            }
        }
    }
    drop(out_tx);
    let _ = writer.await;
}

/// Parses a request line; on failure returns the id to answer (0 if unknown).
pub(crate) fn parse(line: &[u8]) -> std::result::Result<Envelope, (u64, Error)> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| (0, Error::Protocol(format!("malformed JSON: {e}"))))?;
    if !v.is_object() {
        return Err((0, Error::Protocol("a request must be a JSON object".into())));
    }
    let id = v.get("id").and_then(Value::as_u64).unwrap_or(0);
    match v.get("v").and_then(Value::as_u64) {
        Some(ver) if ver == PROTOCOL_VERSION as u64 => {}
        Some(ver) => {
            return Err((
                id,
                Error::Protocol(format!(
                    "protocol version {ver} is not supported (this daemon speaks {PROTOCOL_VERSION}); run pmr update or use a matching client"
                )),
            ))
        }
        None => return Err((id, Error::Protocol("missing protocol version field 'v'".into()))),
    }
    if v.get("cmd").and_then(Value::as_str).is_none() {
        return Err((id, Error::Protocol("missing field 'cmd'".into())));
    }
    serde_json::from_value::<Envelope>(v.clone()).map_err(|e| {
        let cmd = v.get("cmd").and_then(Value::as_str).unwrap_or("");
        let msg = if !Request::COMMANDS.contains(&cmd) {
            format!("unknown command '{cmd}'")
        } else {
            format!("bad '{cmd}' request: {e}")
        };
        (id, Error::Protocol(msg))
    })
}

fn reply(id: u64, r: Result<Answer>) -> Reply<Answer> {
    Reply::new(PROTOCOL_VERSION, id, r)
}

fn line_of<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    b.push(b'\n');
    b
}

async fn send(out: &mpsc::Sender<Outbound>, r: &Reply<Answer>) {
    let _ = out.send((line_of(r), None)).await;
}

/// Forwards events and log lines to a subscriber. A subscriber that cannot
/// keep up loses items (and is told how many), never slows the apps.
fn spawn_stream(sup: &Supervisor, events: bool, logs: bool, out: mpsc::Sender<Outbound>) {
    let mut stream = sup.stream(events, logs);
    tokio::spawn(async move {
        let mut dropped: u64 = 0;
        loop {
            let item = tokio::select! {
                // A subscriber that fell behind hears how much it missed as
                // soon as it has room again, even if nothing else comes.
                permit = out.reserve(), if dropped > 0 => match permit {
                    Ok(p) => {
                        p.send((line_of(&StreamItem::Lagged(dropped)), None));
                        dropped = 0;
                        continue;
                    }
                    Err(_) => return,
                },
                item = stream.next() => match item {
                    Some(i) => i,
                    None => return,
                },
            };
            match out.try_send((line_of(&item), None)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
}
