//! The request handler of the control protocol: every request answered the
//! same way, with its typed result, by the daemon (over its socket) and by an
//! in-process supervisor (the JS API's `new Supervisor()`). Connection-level
//! requests (subscribe, kill) are the transport's business. It lives beside
//! `protocol`, not in it: the protocol is the wire format alone and depends
//! on no part of the daemon.

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::paths::Home;
use crate::process::signal::parse_signal;
use crate::protocol::{
    Answer, Cleared, Flushed, Pong, Reopened, Request, Saved, SettingChanged, PROTOCOL_VERSION,
};
use crate::settings::{AppKey, Settings};
use crate::spec::check_runnable;
use crate::supervisor::dump::{self, Dump};
use crate::supervisor::{prometheus, Supervisor};

/// Applies new settings to something that depends on them before they are
/// kept (the daemon's metrics endpoint binds its new port): an error refuses
/// the change. What it returns is told to the user.
pub type SettingsHook = Box<dyn Fn(&Settings) -> Result<Option<String>> + Send + Sync>;

pub struct RequestHandler {
    pub sup: Supervisor,
    /// The daemon's home, where settings and the dump live; None in-process.
    home: Option<Home>,
    /// Serializes `set`, `save` and `cleardump`: no interleaved load-modify-save.
    file_lock: Mutex<()>,
    hook: Option<SettingsHook>,
}

impl RequestHandler {
    pub fn new(sup: Supervisor, home: Option<Home>) -> Self {
        RequestHandler {
            sup,
            home,
            file_lock: Mutex::new(()),
            hook: None,
        }
    }

    /// Runs `hook` on every settings change, before it is kept.
    pub fn with_settings_hook(mut self, hook: SettingsHook) -> Self {
        self.hook = Some(hook);
        self
    }

    fn home(&self, what: &str) -> Result<&Home> {
        self.home.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "{what} needs the daemon's home; an in-process supervisor has none"
            ))
        })
    }

    /// Answers one request with its typed result.
    pub async fn handle(&self, req: Request) -> Result<Answer> {
        let sup = &self.sup;
        let report = match req {
            Request::Ping => {
                return Ok(Answer::Pong(Pong {
                    pid: std::process::id(),
                    version: crate::VERSION.to_string(),
                    protocol: PROTOCOL_VERSION,
                    home: self
                        .home
                        .as_ref()
                        .map(|h| h.root().display().to_string())
                        .unwrap_or_else(|| "in-process".into()),
                }))
            }
            Request::List => return Ok(Answer::List(sup.list())),
            Request::Describe { target } => return Ok(Answer::Describe(sup.describe(&target)?)),
            Request::Start { apps } => {
                apps.iter().try_for_each(check_runnable)?;
                sup.start(apps).await?
            }
            Request::StartExisting { target } => sup.start_existing(&target).await?,
            Request::Stop { target } => sup.stop(&target).await?,
            Request::Restart { target, env } => sup.restart(&target, env).await?,
            Request::Reload { target, env } => sup.reload(&target, env).await?,
            Request::ReloadApps { apps, update_env } => {
                apps.iter().try_for_each(check_runnable)?;
                sup.reload_apps(apps, update_env).await?
            }
            Request::RestartApps { apps, update_env } => {
                apps.iter().try_for_each(check_runnable)?;
                sup.restart_apps(apps, update_env).await?
            }
            Request::Delete { target } => sup.delete(&target).await?,
            Request::Scale { name, to } => sup.scale(&name, to).await?,
            Request::Signal { target, signal } => {
                let sig = parse_signal(&signal).map_err(Error::Config)?;
                sup.signal(&target, sig).await?
            }
            Request::Reset { target } => sup.reset(&target).await?,
            Request::SendData { process_id, packet } => sup.send_data(process_id, packet).await?,
            Request::SendLine { target, line } => sup.send_line(&target, line).await?,
            Request::StopWatch { target } => sup.stop_watch(&target).await?,
            Request::ReloadLogs => {
                sup.reopen_logs();
                return Ok(Answer::Reopened(Reopened { reopened: true }));
            }
            Request::Flush { target } => {
                return Ok(Answer::Flushed(Flushed {
                    flushed: sup.flush(&target)?,
                }));
            }
            Request::RecentLogs {
                ids,
                lines,
                out,
                err,
            } => return Ok(Answer::RecentLogs(sup.recent_logs(&ids, lines, out, err))),
            Request::Set { key, value } => {
                return self.set(&key, &value).map(Answer::SettingChanged)
            }
            Request::Unset { key } => return self.unset(&key).map(Answer::SettingChanged),
            Request::Save => return self.save().map(Answer::Saved),
            Request::Resurrect => {
                let path = self.home("resurrect")?.dump_file();
                let (dump, warning) = dump::read(&path)?;
                let mut report = sup.restore(dump.apps).await?;
                if let Some(w) = warning {
                    tracing::warn!("{w}");
                    report.notices.insert(0, w);
                }
                report
            }
            Request::ClearDump => {
                let path = self.home("cleardump")?.dump_file();
                let _one_at_a_time = self.file_lock.lock().unwrap_or_else(|e| e.into_inner());
                dump::write(&path, &Dump::new(Vec::new()))?;
                return Ok(Answer::Cleared(Cleared { path }));
            }
            Request::Get { key: None } => return Ok(Answer::AllSettings(sup.settings().all())),
            Request::Get { key: Some(key) } => {
                return sup.settings().get(&key).map(Answer::Setting)
            }
            Request::Metrics => return Ok(Answer::Metrics(prometheus::render(&sup.list()))),
            Request::NotifyTest => return Ok(Answer::NotifyTest(sup.notify_test().await)),
            Request::Subscribe { .. } | Request::Kill | Request::Handoff { .. } => {
                return Err(Error::Protocol(
                    "subscribe, kill and handoff are answered by the connection".into(),
                ))
            }
        };
        Ok(Answer::Report(report))
    }

    fn save(&self) -> Result<Saved> {
        let path = self.home("save")?.dump_file();
        let _one_at_a_time = self.file_lock.lock().unwrap_or_else(|e| e.into_inner());
        let dump = Dump::new(self.sup.saved_apps());
        dump::write(&path, &dump)?;
        tracing::info!("saved {} apps to {}", dump.apps.len(), path.display());
        Ok(Saved {
            path,
            apps: dump.apps.into_iter().map(|a| a.spec.name).collect(),
        })
    }

    fn set(&self, key: &str, value: &str) -> Result<SettingChanged> {
        let app_key = AppKey::parse(key)?;
        if let Some(k) = &app_key {
            if !self.sup.list().iter().any(|i| i.name == k.app) {
                return Err(k.unknown_app(key));
            }
        }
        let _one_at_a_time = self.file_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.sup.settings();
        let mut s = old.clone();
        let key = s.set(key, value)?;
        let note = match &self.hook {
            Some(hook) => hook(&s)?,
            None => None,
        };
        if let Some(home) = &self.home {
            if let Err(e) = s.save(&home.config_file()) {
                if let Some(hook) = &self.hook {
                    let _ = hook(&old);
                }
                return Err(e);
            }
        }
        let shown = s.get(&key)?;
        self.sup.set_settings(s);
        tracing::info!("setting {key} = {shown}");
        let note = match app_key {
            Some(k) => Some(format!(
                "{app} gets {var}={value} in its environment from its next start (pmr restart {app})",
                app = k.app,
                var = k.var
            )),
            None => note,
        };
        Ok(SettingChanged {
            key,
            value: shown,
            note,
        })
    }

    /// `pmr unset <app>.<KEY>`: the app's environment loses it from its
    /// next start. Other keys go back to their defaults.
    fn unset(&self, key: &str) -> Result<SettingChanged> {
        let Some(k) = AppKey::parse(key)? else {
            return self.set(key, &crate::settings::default_text(key)?);
        };
        let _one_at_a_time = self.file_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = self.sup.settings();
        if !s.unset_app(&k) {
            return Err(Error::NotFound(format!("{k} is not set: nothing to unset")));
        }
        if let Some(home) = &self.home {
            s.save(&home.config_file())?;
        }
        self.sup.set_settings(s);
        tracing::info!("setting {k} unset");
        Ok(SettingChanged {
            key: k.to_string(),
            value: serde_json::Value::Null,
            note: Some(format!(
                "{} no longer gets {} from its next start (pmr restart {})",
                k.app, k.var, k.app
            )),
        })
    }
}

/// Parses a request written as JSON by the JS API.
pub fn parse_request(text: &str) -> Result<Request> {
    serde_json::from_str(text).map_err(|e| Error::Protocol(format!("bad request: {e}")))
}
