//! The supervisor as Node's cluster primary. A worker is a Node process with
//! `NODE_UNIQUE_ID` and an IPC channel on fd 3; each `server.listen()` in it
//! asks us for a socket (`queryServer`), and we answer with a listening
//! socket we bound ourselves, passed by SCM_RIGHTS. We keep that socket while
//! the app runs, so connections wait in the kernel backlog while no worker
//! accepts (crash, restart, reload) instead of being refused. Unless the app
//! asks for `lb: shared`, the supervisor also accepts and hands each
//! connection to a worker by policy (Node's round-robin protocol).

pub mod balance;
pub mod channel;
pub mod distribute;
pub mod listeners;
pub mod message;
pub mod relay;
pub mod reuseport;
pub mod sessions;
pub mod steered;
pub mod sticky;
