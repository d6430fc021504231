//! Event and log streams: subscribing to what the supervisor publishes,
//! and the merged stream `pmr logs` and the runtime follow.

use tokio::sync::broadcast;

use super::{Event, StreamItem, Supervisor};
use crate::logs::LogLine;

impl Supervisor {
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.inner.shared.events.subscribe()
    }

    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.inner.shared.logs.subscribe()
    }

    /// Events and/or log lines, merged in arrival order.
    pub fn stream(&self, events: bool, logs: bool) -> Stream {
        Stream {
            events: events.then(|| self.subscribe_events()),
            logs: logs.then(|| self.subscribe_logs()),
        }
    }
}

/// A subscriber's view of the supervisor: what `pmr logs` follows.
pub struct Stream {
    events: Option<broadcast::Receiver<Event>>,
    logs: Option<broadcast::Receiver<LogLine>>,
}

impl Stream {
    /// An item already waiting, without waiting for one.
    pub fn try_next(&mut self) -> Option<StreamItem> {
        use broadcast::error::TryRecvError;
        for rx in [&mut self.events].into_iter().flatten() {
            match rx.try_recv() {
                Ok(e) => return Some(StreamItem::Event(e)),
                Err(TryRecvError::Lagged(n)) => return Some(StreamItem::Lagged(n)),
                Err(_) => {}
            }
        }
        for rx in [&mut self.logs].into_iter().flatten() {
            match rx.try_recv() {
                Ok(l) => return Some(StreamItem::Log(l)),
                Err(TryRecvError::Lagged(n)) => return Some(StreamItem::Lagged(n)),
                Err(_) => {}
            }
        }
        None
    }

    /// The next item; None once the supervisor is gone. A subscriber that
    /// fell behind is told how many items it missed instead of slowing anyone.
    pub async fn next(&mut self) -> Option<StreamItem> {
        use broadcast::error::RecvError;
        async fn recv<T: Clone>(
            rx: &mut Option<broadcast::Receiver<T>>,
        ) -> std::result::Result<T, RecvError> {
            match rx {
                Some(r) => r.recv().await,
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            r = recv(&mut self.events) => match r {
                Ok(e) => Some(StreamItem::Event(e)),
                Err(RecvError::Lagged(n)) => Some(StreamItem::Lagged(n)),
                Err(RecvError::Closed) => None,
            },
            r = recv(&mut self.logs) => match r {
                Ok(l) => Some(StreamItem::Log(l)),
                Err(RecvError::Lagged(n)) => Some(StreamItem::Lagged(n)),
                Err(RecvError::Closed) => None,
            },
        }
    }
}
