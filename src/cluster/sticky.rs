//! What the first bytes of a connection say about where it belongs, for the
//! `sticky` policy: the Engine.IO session id in an HTTP request line (the
//! `sid` query parameter, as `@socket.io/sticky` reads it), a handshake, or
//! another protocol. Pure: the bytes come from a bounded `MSG_PEEK`.

/// Where the peeked bytes point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An Engine.IO request of this session.
    Session(String),
    /// An Engine.IO request without a session: a new client.
    Handshake,
    /// Anything else that was read whole (another HTTP request, another
    /// protocol): routed by the client's address.
    Other,
    /// The request line has not ended within what was read.
    Incomplete,
    /// The client closed or the socket failed before saying anything.
    Unreadable,
}

/// Longest session id taken (Engine.IO's are 20 characters).
const MAX_SID: usize = 64;

/// What an Engine.IO session id may be (base64url characters, bounded).
pub fn is_session_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= MAX_SID
        && v.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

pub fn route(bytes: &[u8]) -> Route {
    let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
        return Route::Incomplete;
    };
    let line = &bytes[..end];
    // `GET /socket.io/?EIO=4&transport=polling&sid=... HTTP/1.1`
    let mut parts = line.split(|b| *b == b' ');
    let (Some(_method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::Other;
    };
    if !version.starts_with(b"HTTP/") {
        return Route::Other;
    }
    let Some(q) = target.iter().position(|b| *b == b'?') else {
        return Route::Other;
    };
    let mut eio = false;
    let mut sid = None;
    for pair in target[q + 1..].split(|b| *b == b'&') {
        if let Some(v) = pair.strip_prefix(b"EIO=") {
            eio = !v.is_empty();
        } else if let Some(v) = pair.strip_prefix(b"sid=") {
            sid = is_session_id(v).then(|| String::from_utf8_lossy(v).into_owned());
        }
    }
    match (eio, sid) {
        (true, Some(s)) => Route::Session(s),
        (true, None) => Route::Handshake,
        _ => Route::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_requests_by_session() {
        let r = route(b"GET /socket.io/?EIO=4&transport=polling&t=Pab&sid=Zx-_0123456789abcdeF HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(r, Route::Session("Zx-_0123456789abcdeF".into()));
        let ws = route(b"GET /socket.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1\r\n");
        assert_eq!(ws, Route::Session("abc".into()));
        let hs = route(b"GET /socket.io/?EIO=4&transport=polling&t=P1 HTTP/1.1\r\n");
        assert_eq!(hs, Route::Handshake);
    }

    #[test]
    fn other_requests_and_protocols() {
        assert_eq!(route(b"GET /api?sid=abc HTTP/1.1\r\n"), Route::Other);
        assert_eq!(route(b"GET / HTTP/1.1\r\n"), Route::Other);
        assert_eq!(route(b"\x16\x03\x01\x02\x00\x01\n"), Route::Other);
        assert_eq!(route(b"PING\r\n"), Route::Other);
    }

    #[test]
    fn hostile_input_is_never_a_session() {
        assert_eq!(route(b"GET /socket.io/?EIO=4&sid=abc"), Route::Incomplete);
        assert_eq!(route(&[b'A'; 4096]), Route::Incomplete);
        assert_eq!(route(b""), Route::Incomplete);
        let long = format!("GET /socket.io/?EIO=4&sid={} HTTP/1.1\r\n", "a".repeat(65));
        assert_eq!(route(long.as_bytes()), Route::Handshake);
        assert_eq!(
            route(b"GET /socket.io/?EIO=4&sid=a%00b HTTP/1.1\r\n"),
            Route::Handshake
        );
    }
}
