//! Who may use the dashboard: the token (a random secret in
//! `$PMR_HOME/dashboard.token`, 0600), the session cookie it is exchanged
//! for (HttpOnly, SameSite=Strict), the `Host` check that defeats DNS
//! rebinding and the `Origin` check that defeats cross-site requests.
//! Plain functions over header values; the router applies them.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Bytes of randomness in a token (64 hex characters).
const TOKEN_BYTES: usize = 32;

/// The token in `path`, created (0600) when missing, malformed, or readable
/// by anyone but its owner (then it may have leaked: a new one replaces it).
pub fn load_or_create(path: &Path) -> Result<String> {
    if let Ok(meta) = std::fs::metadata(path) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let token = text.trim();
        if meta.permissions().mode() & 0o077 == 0 && is_well_formed(token) {
            return Ok(token.to_string());
        }
        tracing::warn!(
            "{} was readable by others or malformed: replacing the dashboard token",
            path.display()
        );
        let _ = std::fs::remove_file(path);
    }
    let token = random_token()?;
    let cannot = |e| Error::io(format!("cannot write {}", path.display()), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(cannot)?;
    f.write_all(format!("{token}\n").as_bytes())
        .map_err(cannot)?;
    Ok(token)
}

fn is_well_formed(t: &str) -> bool {
    t.len() == TOKEN_BYTES * 2 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn random_token() -> Result<String> {
    let mut b = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut b).map_err(|e| Error::Io {
        context: format!("cannot make a dashboard token: {e}"),
        source: None,
    })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Compares in time independent of where the first difference is.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The cookie's name carries the port: cookies are not scoped by port, and
/// two homes' dashboards on one machine must not overwrite each other's.
pub fn cookie_name(port: u16) -> String {
    format!("pmr_dashboard_{port}")
}

/// The `Set-Cookie` value that logs a browser in.
pub fn session_cookie(port: u16, token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000{secure}",
        cookie_name(port)
    )
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(header: &str) -> Option<&str> {
    header.strip_prefix("Bearer ").map(str::trim)
}

/// The `token` parameter of a query string.
pub fn query_token(query: &str) -> Option<&str> {
    query.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// A `Host` header the dashboard answers to: a loopback name with its port,
/// or the address it is bound to. Bound to every interface (0.0.0.0), any
/// host with its port (the token still guards it).
pub fn host_allowed(host: Option<&str>, bound: SocketAddr) -> bool {
    let Some(host) = host else { return false };
    let port = bound.port().to_string();
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    if p != port {
        return false;
    }
    let name = name.to_ascii_lowercase();
    let loopback = matches!(name.as_str(), "127.0.0.1" | "localhost" | "[::1]");
    let bound_ip = match bound.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    loopback || name == bound_ip || bound.ip().is_unspecified()
}

/// Whether a state-changing request may go on. A browser always sends
/// `Origin` with a POST: it must be this host (or the host a reverse proxy
/// says it serves). A request without one is not from a page, and passes
/// only with the token itself (`Authorization: Bearer`), not the cookie.
pub fn origin_allowed(
    origin: Option<&str>,
    host: &str,
    forwarded_host: Option<&str>,
    by_bearer: bool,
) -> bool {
    let Some(origin) = origin else {
        return by_bearer;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && (authority.eq_ignore_ascii_case(host)
            || forwarded_host.is_some_and(|f| authority.eq_ignore_ascii_case(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_private_and_kept() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("dashboard.token");
        let a = load_or_create(&p).unwrap();
        assert!(is_well_formed(&a));
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create(&p).unwrap(), a, "kept across restarts");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let b = load_or_create(&p).unwrap();
        assert_ne!(a, b, "a token others could read is replaced");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn secrets_cookies_and_headers() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab"));
        assert_eq!(
            cookie("a=1; pmr_dashboard_80=t0k; b=2", "pmr_dashboard_80"),
            Some("t0k")
        );
        assert_eq!(cookie("pmr_dashboard_81=x", "pmr_dashboard_80"), None);
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(query_token("x=1&token=abc"), Some("abc"));
        let c = session_cookie(80, "t", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
    }

    #[test]
    fn hosts() {
        let lo: SocketAddr = "127.0.0.1:9615".parse().unwrap();
        assert!(host_allowed(Some("127.0.0.1:9615"), lo));
        assert!(host_allowed(Some("localhost:9615"), lo));
        assert!(host_allowed(Some("[::1]:9615"), lo));
        assert!(
            !host_allowed(Some("evil.example:9615"), lo),
            "DNS rebinding"
        );
        assert!(!host_allowed(Some("127.0.0.1:80"), lo));
        assert!(!host_allowed(Some("127.0.0.1"), lo));
        assert!(!host_allowed(None, lo));
        let lan: SocketAddr = "10.1.2.3:9615".parse().unwrap();
        assert!(host_allowed(Some("10.1.2.3:9615"), lan));
        assert!(!host_allowed(Some("evil.example:9615"), lan));
        let all: SocketAddr = "0.0.0.0:9615".parse().unwrap();
        assert!(host_allowed(Some("box.lan:9615"), all));
    }

    #[test]
    fn origins() {
        let h = "127.0.0.1:9615";
        assert!(origin_allowed(
            Some("http://127.0.0.1:9615"),
            h,
            None,
            false
        ));
        assert!(!origin_allowed(Some("http://evil.example"), h, None, false));
        assert!(!origin_allowed(Some("null"), h, None, true));
        assert!(
            !origin_allowed(None, h, None, false),
            "a cookie alone needs an Origin"
        );
        assert!(
            origin_allowed(None, h, None, true),
            "a script with the token"
        );
        assert!(origin_allowed(
            Some("https://dash.example.com"),
            h,
            Some("dash.example.com"),
            false
        ));
    }
}
