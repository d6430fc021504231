//! The JS API's native side: a client of the daemon and an in-process
//! supervisor, both taking requests as JSON and answering outcome JSON
//! (`{ok, result}` or `{ok: false, error: {code, message}}`), plus the
//! resolution of app options and the tail of a log file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use pmr::client::{AsyncClient, Launcher};
use pmr::control::{outcome_json, parse_request, Controller};
use pmr::paths::Home;
use pmr::settings::Settings;
use pmr::supervisor::{Supervisor, SupervisorConfig};
use tokio::task::JoinHandle;

use crate::to_js;

/// Stream items (events, log lines) as JSON text. Weak: a listener alone
/// never keeps Node running.
type WeakListener = ThreadsafeFunction<String, (), String, Status, false, true>;
/// The in-process supervisor's listener keeps Node running until `close()`:
/// its apps are children of this process.
type StrongListener = ThreadsafeFunction<String, (), String, Status, false>;

#[napi(object)]
pub struct ConnectOptions {
    /// The pmr home (PMR_HOME).
    pub home: String,
    /// Start the daemon when none runs.
    pub start: bool,
    /// `process.execPath`, to start the daemon with.
    pub node: String,
    /// Absolute path of daemon.js.
    pub daemon_script: String,
}

#[napi]
pub struct NativeClient {
    inner: Arc<AsyncClient>,
    stream: Mutex<Option<JoinHandle<()>>>,
}

#[napi]
pub async fn connect_daemon(opts: ConnectOptions) -> Result<NativeClient> {
    let launcher = opts.start.then(|| Launcher {
        node: PathBuf::from(&opts.node),
        daemon_script: PathBuf::from(&opts.daemon_script),
        daemon_binary: crate::daemon_binary(),
    });
    let home = Home::new(&opts.home);
    let inner = AsyncClient::connect(&home, launcher).await.map_err(to_js)?;
    Ok(NativeClient {
        inner: Arc::new(inner),
        stream: Mutex::new(None),
    })
}

#[napi]
impl NativeClient {
    /// One request (JSON), answered with outcome JSON.
    #[napi]
    pub async fn request(&self, json: String) -> String {
        let result = match parse_request(&json) {
            Ok(req) => self.inner.request(req).await,
            Err(e) => Err(e),
        };
        outcome_json(result)
    }

    /// Calls `onItem` with every event and log line (JSON) from now on.
    #[napi(ts_args_type = "onItem: (item: string) => void")]
    pub async fn subscribe(&self, on_item: WeakListener) -> String {
        let mut rx = match self.inner.subscribe().await {
            Ok(rx) => rx,
            Err(e) => return outcome_json(Err(e)),
        };
        let task = napi::bindgen_prelude::spawn(async move {
            while let Some(item) = rx.recv().await {
                if let Ok(text) = serde_json::to_string(&item) {
                    on_item.call(text, ThreadsafeFunctionCallMode::NonBlocking);
                }
            }
        });
        replace(&self.stream, task);
        outcome_json(Ok(serde_json::Value::Null))
    }

    #[napi]
    pub async fn close(&self) {
        take(&self.stream);
        self.inner.close().await;
    }
}

#[napi(object)]
pub struct SupervisorOptions {
    /// Where default log files go.
    pub log_dir: String,
    /// Loaded first by every Node app (the drain preload).
    pub preload: Option<String>,
}

#[napi]
pub struct NativeSupervisor {
    control: Arc<Controller>,
    stream: Mutex<Option<JoinHandle<()>>>,
    /// Tells the stream task to deliver what is queued, then end.
    stream_end: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

#[napi]
pub async fn create_supervisor(opts: SupervisorOptions) -> Result<NativeSupervisor> {
    std::fs::create_dir_all(&opts.log_dir)
        .map_err(|e| to_js(pmr::Error::io(format!("cannot create {}", opts.log_dir), e)))?;
    let sup = Supervisor::new(SupervisorConfig {
        log_dir: PathBuf::from(&opts.log_dir),
        node_preload: opts.preload.map(PathBuf::from),
        settings: Settings::default(),
    });
    Ok(NativeSupervisor {
        control: Arc::new(Controller::new(sup, None)),
        stream: Mutex::new(None),
        stream_end: Mutex::new(None),
    })
}

#[napi]
impl NativeSupervisor {
    #[napi]
    pub async fn request(&self, json: String) -> String {
        let result = match parse_request(&json) {
            Ok(req) => self.control.handle(req).await,
            Err(e) => Err(e),
        };
        outcome_json(result)
    }

    /// Calls `onItem` with every event and log line (JSON) until `close()`.
    #[napi(ts_args_type = "onItem: (item: string) => void")]
    pub fn subscribe(&self, on_item: StrongListener) {
        let mut stream = self.control.sup.stream(true, true);
        let (end_tx, mut end_rx) = tokio::sync::oneshot::channel::<()>();
        let deliver = move |item: &pmr::protocol::StreamItem| {
            if let Ok(text) = serde_json::to_string(item) {
                on_item.call(text, ThreadsafeFunctionCallMode::NonBlocking);
            }
        };
        let task = napi::bindgen_prelude::spawn(async move {
            loop {
                tokio::select! {
                    item = stream.next() => match item {
                        Some(item) => deliver(&item),
                        None => return,
                    },
                    _ = &mut end_rx => {
                        while let Some(item) = stream.try_next() {
                            deliver(&item);
                        }
                        return;
                    }
                }
            }
        });
        *self.stream_end.lock().unwrap_or_else(|e| e.into_inner()) = Some(end_tx);
        replace(&self.stream, task);
    }

    /// Stops every app gracefully, delivers the events that says, then lets
    /// Node exit.
    #[napi]
    pub async fn close(&self) {
        self.control.sup.shutdown().await;
        let end = self
            .stream_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let task = self.stream.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let (Some(end), Some(task)) = (end, task) {
            let _ = end.send(());
            let _ = task.await;
        }
    }

    /// SIGKILLs every app's process group now: for `process.on('exit')`,
    /// where nothing asynchronous runs any more.
    #[napi]
    pub fn kill_all_sync(&self) {
        self.control.sup.kill_all_now();
    }
}

fn replace(slot: &Mutex<Option<JoinHandle<()>>>, task: JoinHandle<()>) {
    if let Some(old) = slot.lock().unwrap_or_else(|e| e.into_inner()).replace(task) {
        old.abort();
    }
}

fn take(slot: &Mutex<Option<JoinHandle<()>>>) {
    if let Some(t) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
        t.abort();
    }
}

/// App options or a parsed ecosystem (JSON) resolved into specs: outcome
/// JSON whose result is `{specs, notices, problems}`.
#[napi]
pub fn resolve_apps(json: String) -> String {
    outcome_json(pmr::spec::api::resolve_json(&json))
}

/// The last `n` lines of a log file.
#[napi]
pub fn tail_file(path: String, n: u32) -> Result<Vec<String>> {
    pmr::logs::tail::last_lines(Path::new(&path), n as usize)
        .map_err(|e| to_js(pmr::Error::io(format!("cannot read {path}"), e)))
}
