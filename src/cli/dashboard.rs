//! `pmr dashboard`: makes the daemon serve the web dashboard (a free
//! loopback port the first time, kept in `dashboard.port`), prints the
//! link with its token, and opens it in the browser.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::args::DashboardArgs;
use super::{info, outln, Ctx};
use crate::error::{Error, Result};
use crate::protocol::{Request, SettingChanged};
use crate::settings::AllSettings;

/// Tries at a free port: another program can take one between our look and
/// the daemon's bind.
const FREE_PORT_TRIES: usize = 3;

pub(super) fn run(ctx: &Ctx<'_>, a: DashboardArgs) -> Result<()> {
    let mut c = ctx.daemon()?;
    let all: AllSettings = c.request_as(Request::Get { key: None })?;
    let mut set = |key: &str, value: String| -> Result<SettingChanged> {
        c.request_as(Request::Set {
            key: key.into(),
            value,
        })
    };
    let host: IpAddr = match &a.host {
        Some(h) => h.trim().parse().map_err(|_| {
            Error::Config(format!(
                "--host: '{h}' is not an IP address (e.g. 127.0.0.1)"
            ))
        })?,
        None => all
            .dashboard_host
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    };
    if host.to_string() != all.dashboard_host {
        set("dashboard.host", host.to_string())?;
    }
    let port = match (a.port, all.dashboard_port) {
        (Some(p), current) => {
            if current != Some(p) {
                set("dashboard.port", p.to_string())?;
            }
            p
        }
        (None, Some(p)) => p,
        (None, None) => {
            let mut last = None;
            let mut chosen = None;
            for _ in 0..FREE_PORT_TRIES {
                let p = free_port(host)?;
                match set("dashboard.port", p.to_string()) {
                    Ok(_) => {
                        chosen = Some(p);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match (chosen, last) {
                (Some(p), _) => p,
                (None, Some(e)) => return Err(e),
                (None, None) => return Err(Error::Config("no free port".into())),
            }
        }
    };
    let token = read_token(&ctx.home.root().join("dashboard.token"))?;
    let shown = if host.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host
    };
    let link = format!("http://{}/?token={token}", SocketAddr::new(shown, port));
    if let Some(w) = crate::dashboard::exposure_warning(SocketAddr::new(host, port)) {
        if a.host.is_some() {
            info(&w);
        }
    }
    info("dashboard (the link carries its token: keep it to yourself):");
    outln(&link);
    if host.is_loopback() {
        info(&format!(
            "from another machine: ssh -L {port}:127.0.0.1:{port} <this host>, then open the link there"
        ));
    }
    if !a.no_open {
        match open_browser(&link) {
            Ok(()) => info("opened in your browser"),
            Err(why) => info(&format!("not opened: {why}; open the link yourself")),
        }
    }
    Ok(())
}

/// A port nobody listens on now.
fn free_port(host: IpAddr) -> Result<u16> {
    let l = std::net::TcpListener::bind(SocketAddr::new(host, 0))
        .map_err(|e| Error::io(format!("cannot find a free port on {host}"), e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("cannot find a free port", e))
}

fn read_token(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
}

/// The desktop's opener, found on PATH.
fn opener() -> Option<PathBuf> {
    let name = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn open_browser(link: &str) -> std::result::Result<(), String> {
    let graphical = cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if !graphical {
        return Err("no graphical session here (DISPLAY is unset)".into());
    }
    let Some(opener) = opener() else {
        return Err("xdg-open is not installed".into());
    };
    std::process::Command::new(&opener)
        .arg(link)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("{} failed: {e}", opener.display()))
}
