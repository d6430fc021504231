// Types of pmr's JS API: `connect()` (a client of the daemon) and
// `new Supervisor()` (the same supervisor in-process). Both have the same
// methods; every rejection is a PmrError with a stable `code`.

/** A duration: milliseconds, or text like `'500ms'`, `'10s'`, `'2m'`, `'1h'`. */
export type Duration = number | string

/** A size: bytes, or text like `'512K'`, `'300M'`, `'1G'` (not `'1GB'`). */
export type Size = number | string

/** An app as PM2's ecosystem files describe it; every key is optional but `script`. */
export interface AppOptions {
  /** App name, a target for every command (a number is a name too, as in PM2). Default: the script's file name without extension. */
  name?: string | number
  /** What to run: a file (relative to `cwd`) or a command in PATH. `.js/.cjs/.mjs` run with the node that runs pmr, `.sh` with bash, `.py` with python3. Also spelled `exec` or `cmd`. */
  script: string
  /** Arguments for the script; a string is split like a shell would. */
  args?: string | string[]
  /** Program that runs the script; `'none'` executes it directly. Default: chosen by the script's extension. */
  interpreter?: string
  /** Options for the interpreter, e.g. `'--max-old-space-size=4096'`. */
  interpreter_args?: string | string[]
  /** PM2's name for `interpreter_args`. */
  node_args?: string | string[]
  /** Working directory. Default: the caller's (or the ecosystem file's) directory. */
  cwd?: string
  /** Number of instances: a count, `'max'` or `0` (one per CPU), `-n` (CPUs minus n). Default 1. More than one instance of a Node.js app runs in cluster mode. */
  instances?: number | 'max'
  /** `'cluster'`: instances share the app's ports and reload without downtime (Node.js only). `'fork'`: plain processes. Also `'fork_mode'`/`'cluster_mode'`. Default: cluster when `instances` is set on a Node.js app. */
  exec_mode?: 'fork' | 'cluster' | 'fork_mode' | 'cluster_mode'
  /** Environment of the app, over the caller's environment. Numbers and booleans become strings. */
  env?: Record<string, string | number | boolean>
  /** `env_<name>`: merged over `env` when started with `{ env: '<name>' }`. */
  [envSection: `env_${string}`]: Record<string, string | number | boolean> | undefined
  /** Shortcut for `env.PORT`. */
  port?: number
  /** Replace an instance whose memory (its whole process tree) passes this size. */
  max_memory_restart?: Size
  /** Unstable restarts in a row before the app is `errored`. Default 16. */
  max_restarts?: number
  /** A run shorter than this is unstable. Default 1000 ms. */
  min_uptime?: Duration
  /** Wait this long before restarting a crashed app. Default 0. */
  restart_delay?: Duration
  /** A restart delay that grows ×1.5 per consecutive crash up to 15 s, reset after 30 s up. */
  exp_backoff_restart_delay?: Duration
  /** Restart the app when it exits. Default true. */
  autorestart?: boolean
  /** Exit codes that mean "done, don't restart". */
  stop_exit_codes?: number | number[]
  /** Signal that asks the app to stop. Default `'SIGINT'`. */
  kill_signal?: string
  /** Time between the stop signal and SIGKILL of the app's process group. Default 1600 ms. */
  kill_timeout?: Duration
  /** Ask the app to stop with `process.send('shutdown')` instead of a signal. */
  shutdown_with_message?: boolean
  /** The app is ready when it calls `process.send('ready')`, not when it listens. */
  wait_ready?: boolean
  /** How long a new instance may take to become ready. Default 3000 ms. */
  listen_timeout?: Duration
  /** stdout file (`'/dev/null'` discards). Default `$PMR_HOME/logs/<name>-out.log`. */
  out_file?: string
  /** stderr file. Default `$PMR_HOME/logs/<name>-error.log`. */
  error_file?: string
  /** Also write both streams to this file (`true`: `$PMR_HOME/logs/<name>.log`). */
  log_file?: string | boolean
  /** One log file for all instances instead of one per instance. */
  merge_logs?: boolean
  /** Prefix every log line with a timestamp. */
  time?: boolean
  /** Timestamp format (strftime, or PM2's day.js tokens); implies `time`. */
  log_date_format?: string
  /** `'json'`: one JSON object per log line. */
  log_type?: 'json'
  /** Send both streams to /dev/null. */
  disable_logs?: boolean
  /** Reload the app when files change (`true`: the cwd). */
  watch?: boolean | string | string[]
  /** Globs not watched (`node_modules` and dotfiles never are). */
  ignore_watch?: string | string[]
  /** Reload once files have been quiet this long after a change. Default 1000 ms. */
  watch_delay?: Duration
  /** Reload on a schedule: a cron pattern (5 fields, or 6 with seconds first) or `'@daily'`... */
  cron_restart?: string
  /** How a cluster app's connections reach its workers. Default `'round-robin'`. */
  lb?: 'round-robin' | 'least-connections' | 'sticky' | 'shared'
  /** Variable holding the instance number. Default `'NODE_APP_INSTANCE'`. */
  instance_var?: string
  /** Variable increased by one per instance (`'PORT'`: 3000, 3001...). */
  increment_var?: string
  /** Group of apps, usable as a target. Default `'default'`. */
  namespace?: string
  /** User to run as (name or number). */
  uid?: string | number
  /** Group to run as (name or number). */
  gid?: string | number
  /** Run with Node's `--enable-source-maps`. */
  source_map_support?: boolean
  /** Replace an instance that fails this check (one of http, tcp, command). */
  health_check?: {
    /** A path of the instance's own server (`'/healthz'`) or a URL. */
    http?: string
    tcp?: number
    command?: string
    /** Default 5 s. */
    interval?: Duration
    /** Default 2 s. */
    timeout?: Duration
    /** Failed checks in a row that make it unhealthy. Default 3. */
    failures?: number
    /** Failures during this long after a start do not count. Default 0. */
    start_period?: Duration
  }
  /** Replace an instance whose event loop stays blocked longer than this. */
  max_event_loop_lag?: Duration
  /** This app's alert receivers (instead of the `notify.*` settings). */
  notify?: {
    webhook?: string | string[]
    slack?: string | string[]
    command?: string
    events?: AlertKind[]
    throttle?: Duration
  }
}

export type AlertKind = 'crash' | 'errored' | 'memory' | 'health' | 'reload_failed' | 'daemon'

/** What `start` takes: one app, several, or the path of an ecosystem file. */
export type AppsInput = AppOptions | AppOptions[] | { apps: AppOptions[] } | string

/** An app, an instance id, a namespace, `'/regex/'` over app names, `'all'`, or several of them. */
export type Target = string | number | Array<string | number>

export type Status = 'launching' | 'online' | 'stopping' | 'stopped' | 'errored' | 'waiting-restart'

export type RestartReason = 'crash' | 'memory' | 'watch' | 'cron' | 'user' | 'health'

/** What an instance's health check (or the event-loop watchdog) says. */
export interface HealthInfo {
  status: 'starting' | 'healthy' | 'unhealthy'
  check: 'http' | 'tcp' | 'command' | 'event_loop'
  /** Milliseconds since the epoch. */
  last_check_at: number | null
  last_result: string | null
  consecutive_failures: number
}

export interface ExitRecord {
  /** Exit code, or null when a signal ended the process. */
  code: number | null
  signal: string | null
  /** Milliseconds since the epoch. */
  at: number
  uptime_ms: number
  /** pmr asked for it (stop, restart, reload); otherwise a crash. */
  expected: boolean
}

/** One instance, as `list()` and `pmr jlist` give it. */
export interface InstanceInfo {
  name: string
  namespace: string
  /** Unique instance id (PM2's pm_id). */
  id: number
  /** Index of the instance within its app (`NODE_APP_INSTANCE`). */
  instance: number
  /** null when not running. */
  pid: number | null
  status: Status
  restarts: number
  restart_reasons: Record<RestartReason, number>
  /** Consecutive exits within min_uptime. */
  unstable_restarts: number
  uptime_ms: number
  /** Bytes (RSS of the instance's whole process tree). */
  memory: number
  /** Percent of one core, over the instance's whole process tree. */
  cpu: number
  /** Processes in the instance's tree (children included). */
  processes: number
  /** max_memory_restart in bytes, if set. */
  memory_limit: number | null
  /** The last time the tree went over the limit and the instance was replaced. */
  memory_exceeded: { at: number; memory: number; limit: number } | null
  /** What the Node.js process reports (null for other apps). */
  node: { event_loop_lag_ms: number; heap_used: number; heap_total: number; active_handles: number } | null
  /** What a stop reaches: `cgroup <path>` or `process group <pgid>` (null when not running). */
  kill_scope: string | null
  mode: 'fork' | 'cluster'
  /** Milliseconds since the epoch. */
  started_at: number | null
  created_at: number
  last_exit: ExitRecord | null
  /** Why the instance is errored. */
  errored_reason: string | null
  last_error: string | null
  /** Addresses its servers listen on. */
  listening: string[]
  logs: { out: string; err: string; combined: string | null }
  log_dropped_bytes: number
  /** Changes under the app's `watch` paths replace it right now. */
  watching: boolean
  /** When `cron_restart` next replaces the app, in milliseconds since the epoch. */
  next_cron_restart: number | null
  /** With a health check or `max_event_loop_lag`. */
  health: HealthInfo | null
  /** The worker's connections since its process started, when pmr hands them out (cluster mode, every `lb` but `'shared'`). */
  connections: { open: number; accepted: number } | null
}

/** Where an app's output goes, as resolved (`null`: the default). */
export interface LogSpec {
  out_file: string | null
  error_file: string | null
  /** Both streams, combined, also go to this file. */
  log_file: string | null
  merge_logs: boolean
  time: boolean
  log_date_format: string | null
  log_type: 'json' | null
  /** Rotation of this app's files; null: the daemon-wide `log.*` setting. */
  max_size: number | null
  retain: number | null
  compress: boolean | null
  rotate_interval: 'daily' | 'none' | null
}

/** An app as pmr runs it: paths resolved, defaults applied, times in milliseconds. */
export interface AppSpec {
  name: string
  namespace: string
  /** The script or program, absolute. */
  script: string
  args: string[]
  /** null: the script is executed directly. */
  interpreter: string | null
  interpreter_args: string[]
  /** The app runs under Node.js (it gets an IPC channel and may be clustered). */
  node: boolean
  cwd: string
  /** The complete environment of the app (the caller's plus its own). */
  env: Record<string, string>
  /** The app's own part of `env`. */
  app_env: Record<string, string>
  instances: number
  /** `instances` came from `'max'` (or 0, -1): counted again on the machine that resurrects it. */
  instances_max: boolean
  /** `-p/--pid`: instance 0's pid file (instance N: `<stem>-N.<ext>`). */
  pid_file: string | null
  exec_mode: 'fork' | 'cluster'
  autorestart: boolean
  max_restarts: number
  min_uptime_ms: number
  restart_delay_ms: number
  exp_backoff_restart_delay_ms: number | null
  stop_exit_codes: number[]
  kill_timeout_ms: number
  kill_signal: string
  listen_timeout_ms: number
  wait_ready: boolean
  shutdown_with_message: boolean
  /** Bytes. */
  max_memory_restart: number | null
  instance_var: string
  increment_var: string | null
  logs: LogSpec
  /** Absolute paths watched (empty: no watching). */
  watch: string[]
  ignore_watch: string[]
  watch_delay_ms: number | null
  cron_restart: string | null
  uid: string | null
  gid: string | null
  health_check: {
    /** One of them. */
    probe: { http?: string; tcp?: number; command?: string }
    interval_ms: number
    timeout_ms: number
    failures: number
    start_period_ms: number
  } | null
  max_event_loop_lag_ms: number | null
  notify: { webhook: string[]; slack: string[]; command: string | null; events: AlertKind[] | null; throttle_ms: number | null } | null
  lb: 'round-robin' | 'least-connections' | 'sticky' | 'shared'
}

/** What `describe()` gives per instance. */
export interface Description {
  info: InstanceInfo
  /** The app as pmr runs it (resolved paths, full environment). */
  spec: AppSpec
  /** Recent events of the instance. */
  history: PmrEvent[]
  /** Sockets pmr holds for the app (cluster mode). */
  sockets: string[]
  /** The kernel spreads the app's connections over a socket per worker (`round-robin` where pmr may load its eBPF program); false: pmr hands them over, or `shared`. */
  kernel_steered: boolean
  /** Why the app's `watch` paths are not watched although they should be (e.g. the inotify limit). */
  watch_error: string | null
}

/** What start, stop, restart, reload, delete, scale and signal resolve to.
 * When any app failed they reject instead, with a PmrError whose `report`
 * is this (every app's outcome in `apps`, `error` set). */
export interface Report {
  instances: InstanceInfo[]
  /** What the user should be told (a fork-mode app restarted instead of reloaded, what a reload changed...). */
  notices: string[]
  /** Each app the operation worked on (the apps in parallel), in the order they were named. */
  apps: AppOutcome[]
  /** Set when any app failed: the first failure's code, a message naming every failure and the apps done anyway. */
  error?: { code: ErrorCode; message: string }
}

/** One app's outcome in an operation on several. */
export interface AppOutcome {
  app: string
  ok: boolean
  /** Why it failed (absent when `ok`). */
  error?: { code: ErrorCode; message: string }
}

interface EventBase {
  app: string
  id: number
  instance: number
  pid: number | null
  /** Milliseconds since the epoch. */
  time: number
}

export interface StartEvent extends EventBase { type: 'start' }
export interface OnlineEvent extends EventBase { type: 'online' }
export interface ListeningEvent extends EventBase { type: 'listening'; address: string }
export interface ReadyEvent extends EventBase { type: 'ready' }
export interface ExitEvent extends EventBase {
  type: 'exit'
  code: number | null
  signal: string | null
  /** false for a crash. */
  expected: boolean
}
export interface RestartEvent extends EventBase { type: 'restart'; reason: RestartReason; delay_ms: number }
export interface ErroredEvent extends EventBase { type: 'errored'; reason: string }
export interface StopEvent extends EventBase { type: 'stop' }
/** The app's own `process.send()` payload. */
export interface MessageEvent extends EventBase { type: 'message'; data: unknown }
export interface ReloadEvent extends EventBase {
  type: 'reload'
  step: 'replacement_started' | 'replacement_ready' | 'old_stopping' | 'old_exited' | 'failed'
  detail: string | null
}
export interface ErrorEvent extends EventBase { type: 'error'; message: string }
/** A watched file changed or the cron schedule came due: the instance is being replaced (reloaded in cluster mode, restarted in fork mode). */
export interface ReplacingEvent extends EventBase { type: 'replacing'; reason: 'watch' | 'cron'; detail: string }

/** The tree went over max_memory_restart twice in a row; a `restart` (reason `memory`) follows. */
export interface MemoryLimitEvent extends EventBase { type: 'memory_limit'; limit: number; memory: number }

/** Health checks failed `failures` times in a row, or the event loop stayed blocked: a replacement (reason `health`) follows. */
export interface UnhealthyEvent extends EventBase { type: 'unhealthy'; detail: string }

export type PmrEvent = StartEvent | OnlineEvent | ListeningEvent | ReadyEvent | ExitEvent | RestartEvent |
  ErroredEvent | StopEvent | MessageEvent | ReloadEvent | ErrorEvent | ReplacingEvent | MemoryLimitEvent | UnhealthyEvent

export interface LogLine {
  app: string
  id: number
  stream: 'out' | 'err'
  line: string
  /** Milliseconds since the epoch; null for lines read back from a file. */
  time: number | null
  /** Order of arrival across the daemon's instances and streams (lines of one chunk share it); absent for lines read back from a file. */
  seq?: number
}

export interface LaggedEvent {
  /** Items this listener missed because it fell behind. */
  skipped: number
}

export type ErrorCode =
  | 'PMR_NOT_FOUND'
  | 'PMR_CONFIG'
  | 'PMR_DAEMON'
  | 'PMR_TIMEOUT'
  | 'PMR_ALREADY_RUNNING'
  | 'PMR_PROTOCOL'
  | 'PMR_SPAWN'
  | 'PMR_BUSY'
  | 'PMR_RELOAD'
  | 'PMR_IO'
  | 'PMR_CLOSED'

/** One problem of an ecosystem file or of app options that `start` or
 * `reload` refused, as the CLI prints it on one line:
 * `file: app: key: message`. */
export interface Problem {
  /** The file's path as given, or `'app options'` for an object or a list. */
  file: string
  /** The app entry, e.g. `'apps[1] (worker)'`; null for the file as a whole. */
  app: string | null
  /** The option (or `--only`, `--env <name>`) at fault; null when none is. */
  key: string | null
  /** The whole sentence, a suggestion included. */
  message: string
  /** What was probably meant (e.g. `'max_memory_restart'`), when there is a guess. */
  suggestion: string | null
  /** Always false here: warnings do not refuse, they become notices. */
  warning: boolean
}

/** Every rejection of the API. `message` is what the CLI would print. */
export declare class PmrError extends Error {
  name: 'PmrError'
  code: ErrorCode
  /** When a file or app options were refused (code PMR_CONFIG): every problem, one per line of `message`. */
  problems?: Problem[]
  /** When an operation on several apps failed on some: its report, with every app's outcome (`report.apps`); the others were done. */
  report?: Report
}

export interface StartOptions {
  /** Merge `env_<name>` over `env` (the CLI's `--env <name>`). */
  env?: string
  /** Only these apps of an ecosystem file (the CLI's `--only`). */
  only?: string | string[]
  /** Unknown keys are errors instead of warnings (the CLI's `--strict`; also PMR_STRICT=1). */
  strict?: boolean
}

export interface RestartOptions {
  /** Give the apps this process's environment instead of the one they started with. */
  updateEnv?: boolean
}

export interface ReloadOptions extends RestartOptions, StartOptions {}

export interface LogsOptions {
  /** Past lines per log file. Default 15. */
  lines?: number
  /** Then new lines as the apps write them. Default false. */
  follow?: boolean
}

/** What a daemon client and an in-process supervisor share. */
declare abstract class PmrApi {
  /** Starts apps. Apps of an ecosystem file that already run are left alone. */
  start(apps: AppsInput, options?: StartOptions): Promise<Report>
  /** Stops instances (they stay in the list). */
  stop(target: Target): Promise<Report>
  /** Stops and starts instances, all at once. */
  restart(target: Target, options?: RestartOptions): Promise<Report>
  /** Zero-downtime reload: one instance at a time, each once its replacement is ready. Rejects with PMR_RELOAD (the old instance keeps serving) when a replacement fails. With an ecosystem file path, applies the file. */
  reload(target: Target, options?: ReloadOptions): Promise<Report>
  /** Stops instances and forgets them. */
  delete(target: Target): Promise<Report>
  /** Exactly `n` instances, or `'+2'` / `'-1'`. */
  scale(name: string, n: number | string): Promise<Report>
  list(): Promise<InstanceInfo[]>
  describe(target: Target): Promise<Description[]>
  /** Sends a signal (e.g. `'SIGUSR2'`) to the instances' processes. */
  signal(target: Target, signal: string): Promise<Report>
  /** Zeroes the instances' restart counts (restarts, by reason, unstable restarts). */
  reset(target: Target): Promise<Report>
  /** PM2's sendDataToProcessId: `packet` reaches instance `id`'s `process.on('message')` as `{ type: 'process:msg', topic, data, id }`. */
  sendDataToProcessId(id: number, packet: { topic: unknown; data: unknown; type?: string }): Promise<Report>
  /** Stops watching the apps' files; the apps keep running (a restart or reload watches again). */
  /** `pmr send`: `line` (a newline added) on the stdin of instance `target` (an id) or of every running instance of the app so named. Rejects with PMR_BUSY when the app has not read the last 64 lines. */
  sendLine(target: string | number, line: string): Promise<Report>
  stopWatch(target: Target): Promise<Report>
  /** Past lines of the log files, then (with `follow`) new lines. */
  logs(target?: Target, options?: LogsOptions): AsyncIterableIterator<LogLine>
  on(event: 'start', listener: (e: StartEvent) => void): this
  on(event: 'online', listener: (e: OnlineEvent) => void): this
  on(event: 'listening', listener: (e: ListeningEvent) => void): this
  on(event: 'ready', listener: (e: ReadyEvent) => void): this
  on(event: 'exit', listener: (e: ExitEvent) => void): this
  on(event: 'restart', listener: (e: RestartEvent) => void): this
  on(event: 'errored', listener: (e: ErroredEvent) => void): this
  on(event: 'stop', listener: (e: StopEvent) => void): this
  on(event: 'message', listener: (e: MessageEvent) => void): this
  on(event: 'reload', listener: (e: ReloadEvent) => void): this
  on(event: 'error', listener: (e: ErrorEvent) => void): this
  on(event: 'replacing', listener: (e: ReplacingEvent) => void): this
  on(event: 'memory_limit', listener: (e: MemoryLimitEvent) => void): this
  on(event: 'log', listener: (line: LogLine) => void): this
  on(event: 'lagged', listener: (e: LaggedEvent) => void): this
  /** Every event and log line. */
  on(event: '*', listener: (e: PmrEvent | LogLine | LaggedEvent) => void): this
  off(event: string, listener: (...args: any[]) => void): this
}

/** A client of the daemon. Listeners never keep the process alive. */
export declare class Client extends PmrApi {
  /** The pmr home this client talks to. */
  readonly home: string
  ping(): Promise<{ pid: number; version: string; protocol: number; home: string }>
  /** Stops every app, then the daemon; closes this client. */
  kill(): Promise<unknown>
  /** Closes the connection; the daemon and its apps keep running. */
  close(): Promise<void>
}

export interface ConnectOptions {
  /** The pmr home. Default: PMR_HOME, else ~/.pmr. */
  home?: string
  /** Start the daemon when none runs. Default true. */
  start?: boolean
}

/** A client of the daemon of `home`, starting the daemon when none runs. */
export declare function connect(options?: ConnectOptions): Promise<Client>

export interface SupervisorOptions {
  /** Where default log files go. Default: $PMR_HOME/logs (~/.pmr/logs). */
  logDir?: string
  /** Kill every app on SIGINT/SIGTERM (then end as the signal would, unless the program handles it). Default true. */
  handleSignals?: boolean
}

/**
 * The supervisor in this process: its apps are children of this process and
 * end with it (a synchronous kill-all runs on `process.exit()` and on
 * SIGINT/SIGTERM). While open it keeps Node running; `close()` stops its apps
 * gracefully and lets the process exit.
 */
export declare class Supervisor extends PmrApi {
  constructor(options?: SupervisorOptions)
  readonly logDir: string
  close(): Promise<void>
}

declare const pmr: {
  connect: typeof connect
  Supervisor: typeof Supervisor
  Client: typeof Client
  PmrError: typeof PmrError
}
export default pmr

// PM2's shapes and programmatic API, as `require('pmr/pm2')` gives them
// (types of pm2.d.ts). See README "Coming from PM2".

/** `pm2_env` of a PM2-shaped process: the app's options and state under
 * PM2's key names. PM2 also spreads the app's environment over it, and its
 * instance variable (`NODE_APP_INSTANCE: 0`): those keys are free. */
export interface Pm2Env {
  name: string
  namespace: string
  pm_id: number
  status: 'launching' | 'online' | 'stopping' | 'stopped' | 'errored' | 'waiting restart'
  restart_time: number
  unstable_restarts: number
  exec_mode: 'cluster_mode' | 'fork_mode'
  instances: number
  /** Last start, milliseconds since the epoch. */
  pm_uptime: number
  created_at: number
  pm_out_log_path: string
  pm_err_log_path: string
  pm_log_path?: string
  /** pmr writes no pid file: null. */
  pm_pid_path: string | null
  pm_exec_path: string
  pm_cwd: string
  /** `node`, the interpreter's name, or `none`. */
  exec_interpreter: string
  node_args: string[]
  args: string[]
  watch: boolean | string[]
  ignore_watch?: string[]
  autorestart: boolean
  instance_var: string
  max_restarts: number
  min_uptime: number
  kill_timeout: number
  listen_timeout: number
  restart_delay: number
  exp_backoff_restart_delay?: number
  max_memory_restart?: number
  wait_ready: boolean
  shutdown_with_message: boolean
  stop_exit_codes?: number[]
  merge_logs: boolean
  log_date_format?: string
  cron_restart?: string
  uid?: string
  gid?: string
  exit_code?: number
  env: Record<string, string>
  [spread: string]: unknown
}

/** One process as `pm2 jlist` (and `pmr jlist --format pm2`) prints it. */
export interface Pm2Process {
  /** 0 when not running. */
  pid: number
  name: string
  pm_id: number
  monit: { memory: number; cpu: number }
  pm2_env: Pm2Env
}

/** What PM2's stop, restart, reload and delete answer: one per process. */
export interface Pm2Operated {
  name: string
  namespace: string
  pm_id: number
  status: Pm2Env['status']
  restart_time: number
  pm2_env: Pm2Env
}

export interface Pm2BusProcess { pm_id: number; name: string; namespace: string; rev?: null }
export interface Pm2LogPacket { process: Pm2BusProcess; at: number; data: string }
export interface Pm2ProcessEvent {
  event: 'start' | 'online' | 'exit' | 'restart' | 'stop' | 'restart overlimit'
  manually: boolean
  process: Omit<Pm2Env, 'env'>
  at: number
}
export interface Pm2MsgPacket { process: Pm2BusProcess; at: number; raw?: unknown; data?: unknown }

/** `launchBus`'s emitter; `on('log:*', (type, packet) => ...)` matches by pattern. */
export interface Pm2Bus {
  on(event: 'process:event', fn: (e: Pm2ProcessEvent) => void): this
  on(event: 'log:out' | 'log:err', fn: (p: Pm2LogPacket) => void): this
  on(event: string, fn: (...args: any[]) => void): this
  off(event: string, fn: (...args: any[]) => void): this
  close(cb?: () => void): void
}

export type Pm2Callback<T> = (err: Error | null, result: T) => void

/** `require('pmr/pm2')`: PM2's programmatic API. Every method takes a
 * callback, or returns a promise when given none. */
export interface Pm2Api {
  connect(cb: Pm2Callback<{ new_pm2_instance: boolean }>): void
  connect(noDaemon: boolean, cb: Pm2Callback<{ new_pm2_instance: boolean }>): void
  connect(noDaemon?: boolean): Promise<{ new_pm2_instance: boolean }>
  disconnect(cb?: Pm2Callback<{}>): void
  disconnect(): Promise<{}>
  start(cmd: string | AppOptions | AppOptions[] | { apps: AppOptions[] }, cb: Pm2Callback<Pm2Process[]>): void
  start(cmd: string | AppOptions | AppOptions[] | { apps: AppOptions[] }, opts: Partial<AppOptions> & { env?: string | AppOptions['env']; only?: string | string[]; strict?: boolean; scriptArgs?: string[] }, cb: Pm2Callback<Pm2Process[]>): void
  start(cmd: string | AppOptions | AppOptions[] | { apps: AppOptions[] }, opts?: Partial<AppOptions> & { env?: string | AppOptions['env']; only?: string | string[]; strict?: boolean; scriptArgs?: string[] }): Promise<Pm2Process[]>
  stop(target: string | number, cb: Pm2Callback<Pm2Operated[]>): void
  stop(target: string | number): Promise<Pm2Operated[]>
  restart(target: string | number, cb: Pm2Callback<Pm2Operated[]>): void
  restart(target: string | number, opts: { updateEnv?: boolean; env?: string }, cb: Pm2Callback<Pm2Operated[]>): void
  restart(target: string | number, opts?: { updateEnv?: boolean; env?: string }): Promise<Pm2Operated[]>
  reload(target: string | number, cb: Pm2Callback<Pm2Operated[]>): void
  reload(target: string | number, opts: { updateEnv?: boolean; env?: string }, cb: Pm2Callback<Pm2Operated[]>): void
  reload(target: string | number, opts?: { updateEnv?: boolean; env?: string }): Promise<Pm2Operated[]>
  delete(target: string | number, cb: Pm2Callback<Pm2Operated[]>): void
  delete(target: string | number): Promise<Pm2Operated[]>
  list(cb: Pm2Callback<Pm2Process[]>): void
  list(): Promise<Pm2Process[]>
  describe(target: string | number, cb: Pm2Callback<Pm2Process[]>): void
  describe(target: string | number): Promise<Pm2Process[]>
  launchBus(cb: (err: Error | null, bus: Pm2Bus) => void): void
  launchBus(): Promise<Pm2Bus>
  sendDataToProcessId(id: number, packet: { type?: string; topic?: string | boolean; data?: unknown; [k: string]: unknown }, cb: Pm2Callback<unknown>): void
  sendDataToProcessId(id: number, packet: { type?: string; topic?: string | boolean; data?: unknown; [k: string]: unknown }): Promise<unknown>
  sendLineToStdin(id: number, line: string, cb: Pm2Callback<Pm2Process[]>): void
  sendLineToStdin(id: number, line: string, separator: string, cb: Pm2Callback<Pm2Process[]>): void
  sendLineToStdin(id: number, line: string, separator?: string): Promise<Pm2Process[]>
  sendSignalToProcessName(signal: string, name: string, cb: Pm2Callback<Pm2Process[]>): void
  sendSignalToProcessName(signal: string, name: string): Promise<Pm2Process[]>
  sendSignalToProcessId(signal: string, id: number, cb: Pm2Callback<Pm2Process[]>): void
  sendSignalToProcessId(signal: string, id: number): Promise<Pm2Process[]>
  dump(cb: Pm2Callback<{ success: boolean }>): void
  dump(): Promise<{ success: boolean }>
  killDaemon(cb: Pm2Callback<{}>): void
  killDaemon(): Promise<{}>
}
