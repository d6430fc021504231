//! The native handles behind the JS API (`lib/api.js`): a client of the
//! daemon and an in-process supervisor, both taking a request as JSON and
//! answering its result as JSON text or failing with a JS Error whose `code`
//! is pmr's stable code; plus the resolution of app options and the other
//! rules the JS API takes from the core.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use pmr::client::{select, AsyncClient, Launcher};
use pmr::handler::{parse_request, RequestHandler};
use pmr::paths::Home;
use pmr::settings::Settings;
use pmr::spec::AppSpec;
use pmr::supervisor::{InstanceInfo, ScaleTo, Supervisor, SupervisorConfig};
use tokio::task::JoinHandle;

use crate::Outcome;

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

#[napi(ts_return_type = "Promise<NativeClient>")]
pub async fn connect_daemon(opts: ConnectOptions) -> Outcome<NativeClient> {
    let launcher = opts.start.then(|| Launcher {
        node: PathBuf::from(&opts.node),
        daemon_script: PathBuf::from(&opts.daemon_script),
        daemon_binary: crate::daemon_binary(),
    });
    let home = Home::new(&opts.home);
    AsyncClient::connect(&home, launcher)
        .await
        .map(|inner| NativeClient {
            inner: Arc::new(inner),
            stream: Mutex::new(None),
        })
        .into()
}

#[napi]
impl NativeClient {
    /// One request (JSON), answered with its result as JSON text.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn request(&self, json: String) -> Outcome<String> {
        let result = match parse_request(&json) {
            Ok(req) => self.inner.request::<serde_json::Value>(req).await,
            Err(e) => Err(e),
        };
        result.map(|v| v.to_string()).into()
    }

    /// Calls `onItem` with every event and log line (JSON) from now on.
    #[napi(
        ts_args_type = "onItem: (item: string) => void",
        ts_return_type = "Promise<void>"
    )]
    pub async fn subscribe(&self, on_item: WeakListener) -> Outcome<()> {
        let mut rx = match self.inner.subscribe().await {
            Ok(rx) => rx,
            Err(e) => return Err::<(), _>(e).into(),
        };
        let task = napi::bindgen_prelude::spawn(async move {
            while let Some(item) = rx.recv().await {
                if let Ok(text) = serde_json::to_string(&item) {
                    on_item.call(text, ThreadsafeFunctionCallMode::NonBlocking);
                }
            }
        });
        replace(&self.stream, task);
        Outcome(Ok(()))
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
    handler: Arc<RequestHandler>,
    stream: Mutex<Option<JoinHandle<()>>>,
    /// Tells the stream task to deliver what is queued, then end.
    stream_end: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

#[napi(ts_return_type = "Promise<NativeSupervisor>")]
pub async fn create_supervisor(opts: SupervisorOptions) -> Outcome<NativeSupervisor> {
    if let Err(e) = std::fs::create_dir_all(&opts.log_dir) {
        return Err::<NativeSupervisor, _>(pmr::Error::io(
            format!("cannot create {}", opts.log_dir),
            e,
        ))
        .into();
    }
    let sup = Supervisor::new(SupervisorConfig {
        log_dir: PathBuf::from(&opts.log_dir),
        node_preload: opts.preload.map(PathBuf::from),
        settings: Settings::default(),
    });
    Outcome(Ok(NativeSupervisor {
        handler: Arc::new(RequestHandler::new(sup, None)),
        stream: Mutex::new(None),
        stream_end: Mutex::new(None),
    }))
}

#[napi]
impl NativeSupervisor {
    /// One request (JSON), answered with its result as JSON text.
    #[napi(ts_return_type = "Promise<string>")]
    pub async fn request(&self, json: String) -> Outcome<String> {
        let result = match parse_request(&json) {
            Ok(req) => self.handler.handle(req).await,
            Err(e) => Err(e),
        };
        result
            .and_then(|answer| serde_json::to_string(&answer).map_err(encode_error))
            .into()
    }

    /// Calls `onItem` with every event and log line (JSON) until `close()`.
    #[napi(ts_args_type = "onItem: (item: string) => void")]
    pub fn subscribe(&self, on_item: StrongListener) {
        let mut stream = self.handler.sup.stream(true, true);
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
        self.handler.sup.shutdown().await;
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
        self.handler.sup.kill_all_now();
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

/// App options or a parsed ecosystem (JSON) resolved into specs: JSON text
/// of `{specs, notices, warnings}` (warnings as lines to show). A refusal
/// throws a PMR_CONFIG Error with every problem in `problems`.
#[napi(ts_return_type = "string")]
pub fn resolve_apps(json: String) -> Outcome<String> {
    pmr::spec::js_options::resolve_json(&json).into()
}

/// The last `n` lines of a log file.
#[napi(ts_return_type = "Array<string>")]
pub fn tail_file(path: String, n: u32) -> Outcome<Vec<String>> {
    pmr::logs::tail::last_lines(Path::new(&path), n as usize)
        .map_err(|e| pmr::Error::io(format!("cannot read {path}"), e))
        .into()
}

/// `scale(name, n)`'s count: `4`, `'+2'` or `'-1'`, as the CLI reads it;
/// JSON text of the `to` field of a scale request.
#[napi(ts_return_type = "string")]
pub fn parse_scale(text: String) -> Outcome<String> {
    ScaleTo::parse(&text)
        .map_err(pmr::Error::Config)
        .and_then(|to| serde_json::to_string(&to).map_err(encode_error))
        .into()
}

/// Whether a path names an ecosystem file rather than a script, by the
/// CLI's rule (PM2's).
#[napi]
pub fn is_config_file(path: String) -> bool {
    pmr::spec::ecosystem::is_config_file(&path)
}

/// Whether a config file is JavaScript, which only Node can evaluate
/// (`.js`, `.cjs`, `.mjs`); JSON and YAML ones the core reads itself.
#[napi]
pub fn is_js_config(path: String) -> bool {
    pmr::spec::ecosystem::Format::of(Path::new(&path)) == Some(pmr::spec::ecosystem::Format::Js)
}

/// Splits resolved specs (JSON) by whether the app already runs in `list`
/// (JSON of `list()`): JSON text of `{start, notices}`, the notices naming
/// `file`, as `pmr start <file>` says them.
#[napi(ts_return_type = "string")]
pub fn plan_start(specs: String, list: String, file: String) -> Outcome<String> {
    let plan = || -> pmr::Result<String> {
        let specs: Vec<AppSpec> = serde_json::from_str(&specs).map_err(bad_argument)?;
        let list: Vec<InstanceInfo> = serde_json::from_str(&list).map_err(bad_argument)?;
        let plan = select::plan_start(specs, &list);
        let notices: Vec<String> = plan.running.iter().map(|r| r.notice(&file)).collect();
        serde_json::to_string(&serde_json::json!({ "start": plan.start, "notices": notices }))
            .map_err(encode_error)
    };
    plan().into()
}

/// The instances of `list` (JSON of `list()`) a `logs` target names, as
/// `pmr logs <target>` chooses them: JSON text of `{all, ids, apps,
/// instances}`, where a new line follows when `all`, or its id is in `ids`,
/// or its app in `apps`.
#[napi(ts_return_type = "string")]
pub fn select_logs(list: String, target: String) -> Outcome<String> {
    let chosen = || -> pmr::Result<String> {
        let list: Vec<InstanceInfo> = serde_json::from_str(&list).map_err(bad_argument)?;
        let follow = select::LogTarget::parse(Some(&target))?.select(&list, &target)?;
        serde_json::to_string(&follow).map_err(encode_error)
    };
    chosen().into()
}

fn bad_argument(e: serde_json::Error) -> pmr::Error {
    pmr::Error::Protocol(format!("bad argument: {e}"))
}

fn encode_error(e: serde_json::Error) -> pmr::Error {
    pmr::Error::Protocol(format!("cannot encode the result: {e}"))
}

/// `describe`'s answer (JSON text) in PM2's shape, as `pm2 jlist` and PM2's
/// programmatic API give it (`require('pmr/pm2')`).
#[napi(ts_return_type = "string")]
pub fn pm2_processes(descriptions: String) -> Outcome<String> {
    pmr::model::pm2::processes_json(&descriptions).into()
}
