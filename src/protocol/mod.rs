//! The control protocol between clients (CLI, JS API) and the daemon:
//! newline-delimited JSON over a Unix socket, one request per line, replies
//! carrying the request's id, and event/log streams for subscribers.

pub mod framing;
pub mod message;
pub mod reply;
pub mod startup;

pub use framing::{Frame, LineFramer};
pub use message::*;
pub use reply::*;

/// Bumped when a change would make an older peer misread a message.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest request the daemon accepts (a start of many apps with their
/// environments stays far below it).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Largest reply a client accepts (a list of thousands of instances).
pub const MAX_REPLY_BYTES: usize = 256 << 20;
