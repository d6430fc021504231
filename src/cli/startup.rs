//! `pmr startup` / `pmr unstartup`: a systemd unit that starts the daemon
//! and resurrects the saved apps at boot, and stops them gracefully at
//! shutdown.

use std::path::{Path, PathBuf};

use super::args::StartupArgs;
use super::{info, outln, Ctx};
use crate::error::{Error, Result};

/// What a unit needs to know; all paths absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitParams {
    pub user: String,
    pub home: PathBuf,
    pub pmr_home: PathBuf,
    pub node: PathBuf,
    pub pmr: PathBuf,
    /// A system unit (runs as `user`) rather than a `systemctl --user` one.
    pub system: bool,
    /// The unit's PATH (see [`unit_path`]).
    pub path: String,
    /// `--service-name`: the unit's name instead of pmr's default.
    pub service_name: Option<String>,
}

impl UnitParams {
    pub fn unit_name(&self) -> String {
        if let Some(n) = &self.service_name {
            return if n.ends_with(".service") {
                n.clone()
            } else {
                format!("{n}.service")
            };
        }
        if self.system {
            format!("pmr-{}.service", self.user)
        } else {
            "pmr.service".into()
        }
    }
}

/// The unit text. Type=forking: `pmr resurrect` starts the detached daemon
/// and exits; systemd follows the daemon through its pid file.
pub fn render_unit(p: &UnitParams) -> String {
    let run = |cmd: &str| format!("{} {} {cmd}", p.node.display(), p.pmr.display());
    let mut u = String::new();
    u.push_str("[Unit]\n");
    u.push_str(&format!("Description=pmr process manager for {}\n", p.user));
    u.push_str("After=network.target\n\n");
    u.push_str("[Service]\n");
    u.push_str("Type=forking\n");
    if p.system {
        u.push_str(&format!("User={}\n", p.user));
    }
    u.push_str(&format!("Environment=PMR_HOME={}\n", p.pmr_home.display()));
    u.push_str(&format!("Environment=HOME={}\n", p.home.display()));
    u.push_str(&format!("Environment=PATH={}\n", p.path));
    u.push_str(&format!(
        "PIDFile={}\n",
        p.pmr_home.join("pmr.pid").display()
    ));
    u.push_str(&format!("ExecStart={}\n", run("resurrect")));
    u.push_str(&format!("ExecReload={}\n", run("reload all")));
    u.push_str(&format!("ExecStop={}\n", run("kill")));
    u.push_str("Restart=on-failure\n");
    // pmr kill stops every app within its kill_timeout; leave it room.
    u.push_str("TimeoutStopSec=120\n");
    u.push_str("LimitNOFILE=infinity\n\n");
    u.push_str("[Install]\n");
    u.push_str(if p.system {
        "WantedBy=multi-user.target\n"
    } else {
        "WantedBy=default.target\n"
    });
    u
}

/// Directories every unit's PATH ends with, as a login shell has them.
const SYSTEM_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The PATH the apps get at boot: node's directory first, then the PATH of
/// the user running `pmr startup` (nvm, volta and asdf installs put their
/// shims there, and apps spawn `npm`, `yarn`... by name), then the system
/// directories; each directory once, relative entries dropped (they would
/// resolve against systemd's working directory).
pub fn unit_path(node: &Path, user_path: Option<&std::ffi::OsStr>) -> String {
    let mut dirs: Vec<String> = Vec::new();
    let mut add = |d: &str| {
        if d.starts_with('/') && !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_string());
        }
    };
    if let Some(dir) = node.parent().and_then(Path::to_str) {
        add(dir);
    }
    if let Some(path) = user_path {
        for d in std::env::split_paths(path) {
            if let Some(d) = d.to_str() {
                add(d.trim_end_matches('/'));
            }
        }
    }
    for d in SYSTEM_PATH {
        add(d);
    }
    dirs.join(":")
}

/// Whether this machine was booted with systemd (what `sd_booted()` checks):
/// in a container without it, a unit would never run.
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Where the unit goes: `PMR_SYSTEMD_DIR` if set (packaging, tests), else
/// the system or the user unit directory.
fn unit_dir(p: &UnitParams) -> PathBuf {
    if let Some(d) = std::env::var_os("PMR_SYSTEMD_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if p.system {
        PathBuf::from("/etc/systemd/system")
    } else {
        p.home.join(".config/systemd/user")
    }
}

fn params(ctx: &Ctx<'_>, a: &StartupArgs) -> Result<UnitParams> {
    if let Some(n) = &a.service_name {
        if n.is_empty() || n.contains('/') || n.chars().any(char::is_whitespace) {
            return Err(Error::Config(format!(
                "--service-name '{n}': a unit name has no '/' or spaces, e.g. --service-name myapp"
            )));
        }
    }
    if let Some(init) = &a.init {
        if init != "systemd" {
            return Err(Error::Config(format!(
                "'{init}' is not supported: pmr writes systemd units (pmr startup systemd)"
            )));
        }
    }
    let me = nix::unistd::geteuid();
    let root = me.is_root();
    let user = match &a.user {
        Some(name) => nix::unistd::User::from_name(name)
            .map_err(|e| Error::Config(format!("cannot look up user {name}: {e}")))?
            .ok_or_else(|| Error::Config(format!("no user named {name}")))?,
        None => nix::unistd::User::from_uid(me)
            .map_err(|e| Error::Config(format!("cannot look up uid {me}: {e}")))?
            .ok_or_else(|| Error::Config(format!("uid {me} has no user entry")))?,
    };
    if a.user.is_some() && !root {
        return Err(Error::Config(
            "only root can write a unit for another user; run the sudo command pmr startup prints"
                .into(),
        ));
    }
    let home = a
        .home_path
        .clone()
        .map(PathBuf::from)
        .unwrap_or(user.dir.clone());
    let pmr_home = if a.user.is_some() || a.home_path.is_some() {
        home.join(".pmr")
    } else {
        ctx.home.root().to_path_buf()
    };
    let pmr = ctx
        .host
        .daemon_script()
        .parent()
        .map(|d| d.join("bin").join("pmr.js"))
        .ok_or_else(|| Error::Config("cannot find pmr's own path".into()))?;
    let node = ctx.host.node();
    Ok(UnitParams {
        path: unit_path(&node, std::env::var_os("PATH").as_deref()),
        user: user.name,
        home,
        pmr_home,
        node,
        pmr,
        system: root,
        service_name: a.service_name.clone(),
    })
}

pub(super) fn startup(ctx: &Ctx<'_>, a: StartupArgs) -> Result<()> {
    let p = params(ctx, &a)?;
    let unit = render_unit(&p);
    if a.dry_run {
        super::out(&unit);
        return Ok(());
    }
    // A staging directory (PMR_SYSTEMD_DIR: packaging an image) is written
    // whatever runs here; the machine's own unit directory only where
    // systemd would start the unit.
    let staging = std::env::var_os("PMR_SYSTEMD_DIR").is_some_and(|d| !d.is_empty());
    if !staging && !a.force && !systemd_running() {
        return Err(Error::Config(
            "systemd is not running here (a container?), so a unit would never start: wrote nothing; \
             in a container make pmr-runtime the entrypoint (pmr-runtime ecosystem.config.js), \
             or write the unit anyway with --force"
                .into(),
        ));
    }
    let dir = unit_dir(&p);
    let path = dir.join(p.unit_name());
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    std::fs::write(&path, &unit)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    info(&format!("wrote {}:", path.display()));
    super::out(&unit);
    let name = p.unit_name();
    if p.system {
        info("enable it (starts at boot, and now):");
        outln(&format!(
            "  systemctl daemon-reload && systemctl enable --now {name}"
        ));
    } else {
        info("enable it (starts when you log in, and now):");
        outln(&format!(
            "  systemctl --user daemon-reload && systemctl --user enable --now {name}"
        ));
        info("to start it at boot without logging in, let your user linger:");
        outln(&format!("  sudo loginctl enable-linger {}", p.user));
        info("or install a system unit for your user instead:");
        outln(&format!(
            "  sudo env PATH=$PATH {} {} startup systemd --user {} --home-path {}",
            p.node.display(),
            p.pmr.display(),
            p.user,
            p.home.display()
        ));
    }
    info("then save the apps to bring back: pmr save");
    Ok(())
}

pub(super) fn unstartup(ctx: &Ctx<'_>, a: StartupArgs) -> Result<()> {
    let p = params(ctx, &a)?;
    let path = unit_dir(&p).join(p.unit_name());
    let name = p.unit_name();
    let ctl = if p.system {
        "systemctl"
    } else {
        "systemctl --user"
    };
    if a.dry_run {
        info(&format!("would remove {}", path.display()));
        return Ok(());
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {
            info(&format!("removed {}", path.display()));
            info("stop using it:");
            outln(&format!(
                "  {ctl} disable --now {name}; {ctl} daemon-reload"
            ));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            info(&format!("no unit at {}: nothing to remove", path.display()));
            Ok(())
        }
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(system: bool) -> UnitParams {
        UnitParams {
            user: "deploy".into(),
            home: "/home/deploy".into(),
            pmr_home: "/home/deploy/.pmr".into(),
            node: "/opt/node/bin/node".into(),
            pmr: "/opt/app/node_modules/pmr/bin/pmr.js".into(),
            system,
            path: unit_path(Path::new("/opt/node/bin/node"), None),
            service_name: None,
        }
    }

    #[test]
    fn system_unit_runs_as_the_user_and_follows_the_daemon() {
        let u = render_unit(&params(true));
        for line in [
            "Type=forking",
            "User=deploy",
            "Environment=PMR_HOME=/home/deploy/.pmr",
            "PIDFile=/home/deploy/.pmr/pmr.pid",
            "ExecStart=/opt/node/bin/node /opt/app/node_modules/pmr/bin/pmr.js resurrect",
            "ExecStop=/opt/node/bin/node /opt/app/node_modules/pmr/bin/pmr.js kill",
            "Restart=on-failure",
            "WantedBy=multi-user.target",
        ] {
            assert!(u.lines().any(|l| l == line), "missing {line}:\n{u}");
        }
        assert!(u.contains("Environment=PATH=/opt/node/bin:"));
        assert_eq!(params(true).unit_name(), "pmr-deploy.service");
    }

    #[test]
    fn unit_path_keeps_the_users_path_once_each_after_node() {
        let user = std::ffi::OsString::from(
            "/home/deploy/.nvm/versions/node/v20/bin:relative/bin:/usr/bin:/opt/node/bin/:/home/deploy/.volta/bin:/usr/bin",
        );
        assert_eq!(
            unit_path(Path::new("/opt/node/bin/node"), Some(&user)),
            "/opt/node/bin:/home/deploy/.nvm/versions/node/v20/bin:/usr/bin:/home/deploy/.volta/bin:\
             /usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin"
        );
        assert_eq!(
            unit_path(Path::new("/usr/bin/node"), None),
            "/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin"
        );
    }

    #[test]
    fn user_unit_has_no_user_line() {
        let u = render_unit(&params(false));
        assert!(!u.contains("User="));
        assert!(u.contains("WantedBy=default.target"));
        assert_eq!(params(false).unit_name(), "pmr.service");
        let named = UnitParams {
            service_name: Some("shop".into()),
            ..params(true)
        };
        assert_eq!(named.unit_name(), "shop.service");
    }
}
