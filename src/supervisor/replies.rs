//! Waiting for the replies of several slots asked at once. One rule for
//! every operation: wait for every slot, then report the first error. Every
//! slot asked carries the command out whatever the others answer, so an
//! operation that returns early would leave the rest half-done and unseen;
//! the first error is the one the user's command ran into first (slots are
//! asked in instance order).

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// What a slot's reply means to the operation that waits for it.
pub(super) trait SlotReply: Sized {
    /// `Err(_)` for a slot whose task ended before it replied.
    fn outcome(reply: std::result::Result<Self, oneshot::error::RecvError>) -> Result<()>;
}

impl SlotReply for Result<()> {
    fn outcome(reply: std::result::Result<Self, oneshot::error::RecvError>) -> Result<()> {
        flatten(reply)
    }
}

/// Commands that cannot fail (stop, shutdown, reset): a slot whose task
/// already ended has nothing left to stop or reset.
impl SlotReply for () {
    fn outcome(_: std::result::Result<Self, oneshot::error::RecvError>) -> Result<()> {
        Ok(())
    }
}

/// Waits for every reply, in order, and returns the first error.
pub(super) async fn gather<T: SlotReply>(
    pending: impl IntoIterator<Item = oneshot::Receiver<T>>,
) -> Result<()> {
    let mut first_err = None;
    for p in pending {
        if let Err(e) = T::outcome(p.await) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// One slot's reply to a command that can fail.
pub(super) fn flatten(r: std::result::Result<Result<()>, oneshot::error::RecvError>) -> Result<()> {
    r.map_err(|_| Error::Daemon("an instance task ended unexpectedly".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn every_reply_is_awaited_and_the_first_error_wins() {
        let (a, ra) = oneshot::channel::<Result<()>>();
        let (b, rb) = oneshot::channel::<Result<()>>();
        let (c, rc) = oneshot::channel::<Result<()>>();
        let (d, rd) = oneshot::channel::<Result<()>>();
        a.send(Ok(())).unwrap();
        b.send(Err(Error::NotFound("first".into()))).unwrap();
        drop(c);
        // The last slot replies only once the others' replies were read:
        // returning at the first error would not see it.
        let replied = Arc::new(AtomicBool::new(false));
        let flag = replied.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            flag.store(true, Ordering::SeqCst);
            d.send(Err(Error::NotFound("last".into()))).unwrap();
        });
        let e = gather([ra, rb, rc, rd]).await.unwrap_err();
        assert_eq!(e.to_string(), Error::NotFound("first".into()).to_string());
        assert!(replied.load(Ordering::SeqCst), "the last reply was awaited");
        assert!(gather(Vec::<oneshot::Receiver<Result<()>>>::new())
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn an_ended_slot_fails_a_command_that_can_fail_only() {
        let (tx, rx) = oneshot::channel::<Result<()>>();
        drop(tx);
        assert_eq!(gather([rx]).await.unwrap_err().code(), "PMR_DAEMON");
        let (tx, rx) = oneshot::channel::<()>();
        drop(tx);
        assert!(gather([rx]).await.is_ok());
    }
}
