//! The messages between the daemon and its keeper: one JSON object per
//! SOCK_SEQPACKET datagram (so no framing, and a partial message cannot
//! exist), with at most one descriptor attached by SCM_RIGHTS.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag};
use serde::{Deserialize, Serialize};

/// No message comes near this; a longer one is cut and fails to parse.
const MAX_DATAGRAM: usize = 8 * 1024;

/// What the daemon tells its keeper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ToKeeper {
    /// Hold the attached descriptor under `tag` (replacing one held there).
    Keep { tag: String },
    /// Close what is held under `tag`; with `ack`, the keeper answers `Forgot`.
    Forget {
        tag: String,
        #[serde(default)]
        ack: bool,
    },
    /// This daemon is about to exit on purpose to be replaced: start this
    /// binary instead of it (`pmr update`).
    Next { binary: PathBuf },
    /// The daemon serves its home: a crash from now on is not a start-up failure.
    Ready,
}

/// What the keeper tells the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ToDaemon {
    /// A descriptor the previous daemon left (sent at start-up, then `End`).
    Fd { tag: String },
    /// Everything held has been sent.
    End,
    /// A process the keeper reaped (an app orphaned by a dead daemon).
    Exit {
        pid: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The descriptor under `tag` is closed.
    Forgot { tag: String },
}

/// The two ends of a keeper link; both close on exec (the daemon's end is
/// made inheritable only in the child that becomes the daemon).
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Sends one message, with `fd` riding on it.
pub fn send<T: Serialize>(sock: RawFd, msg: &T, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let data = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let iov = [IoSlice::new(&data)];
    let raw = fd.map(|f| [f.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage<'_>> = match &raw {
        Some(r) => vec![ControlMessage::ScmRights(r)],
        None => Vec::new(),
    };
    loop {
        match socket::sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one message. `Ok(None)`: the other end is closed.
pub fn recv<T: for<'de> Deserialize<'de>>(sock: RawFd) -> io::Result<Option<(T, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let (len, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match socket::recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => {
                let mut fds = Vec::new();
                for c in m.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(r) = c {
                        // SAFETY: SCM_RIGHTS just installed these descriptors in this process.
                        fds.extend(r.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                    }
                }
                break (m.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if len == 0 {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&buf[..len]).map_err(io::Error::other)?;
    Ok(Some((msg, fds.into_iter().next())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_message_carries_its_descriptor() {
        let (a, b) = pair().unwrap();
        let (mut r, w) = std::io::pipe().unwrap();
        send(
            a.as_raw_fd(),
            &ToKeeper::Keep {
                tag: "out/1".into(),
            },
            Some(w.as_fd()),
        )
        .unwrap();
        let (msg, fd) = recv::<ToKeeper>(b.as_raw_fd()).unwrap().unwrap();
        assert_eq!(
            msg,
            ToKeeper::Keep {
                tag: "out/1".into()
            }
        );
        let mut dup = std::fs::File::from(fd.unwrap());
        drop(w);
        dup.write_all(b"kept").unwrap();
        drop(dup);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "kept");
    }

    #[test]
    fn a_closed_end_reads_as_none() {
        let (a, b) = pair().unwrap();
        send(b.as_raw_fd(), &ToDaemon::End, None).unwrap();
        drop(b);
        let first = recv::<ToDaemon>(a.as_raw_fd()).unwrap().unwrap();
        assert_eq!(first.0, ToDaemon::End);
        assert!(first.1.is_none());
        assert!(recv::<ToDaemon>(a.as_raw_fd()).unwrap().is_none());
    }

    #[test]
    fn the_wire_format_is_tagged_json() {
        let v = serde_json::to_string(&ToDaemon::Exit {
            pid: 7,
            code: Some(0),
            signal: None,
        })
        .unwrap();
        assert_eq!(v, r#"{"op":"exit","pid":7,"code":0,"signal":null}"#);
    }
}
