'use strict'
// The JS API: `connect()` gives a client of the daemon, `new Supervisor()`
// runs the same supervisor inside this process. Both speak the control
// protocol through the native addon (requests as JSON, results as JSON), so
// they behave exactly like the CLI; every rule the CLI applies (resolving
// options, scale counts, config-file names, which apps already run, log
// targets) is the core's, reached through the addon. Errors are PmrError
// objects whose `code` is the stable code the CLI's messages come from.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const native = require(path.join(ROOT, 'native.js'))

class PmrError extends Error {
  constructor (message, code) {
    super(message)
    this.name = 'PmrError'
    this.code = code
  }
}

/** The addon's errors carry pmr's stable `code` (and, for a refused
 * ecosystem, `problems`): they become PmrErrors; anything else is rethrown
 * as it is. */
function pmrError (err) {
  if (!err || typeof err.code !== 'string' || !err.code.startsWith('PMR_')) return err
  const e = new PmrError(err.message, err.code)
  if (err.problems) e.problems = err.problems
  return e
}

/** Runs a native call answering JSON text; its error as a PmrError. */
function fromNative (call) {
  let text
  try {
    text = call()
  } catch (err) {
    throw pmrError(err)
  }
  return JSON.parse(text)
}

async function fromNativeAsync (promise) {
  let text
  try {
    text = await promise
  } catch (err) {
    throw pmrError(err)
  }
  return JSON.parse(text)
}

function defaultHome () {
  return process.env.PMR_HOME || path.join(os.homedir(), '.pmr')
}

function targets (target) {
  const list = Array.isArray(target) ? target : [target]
  if (list.length === 0 || list.some((t) => t === undefined || t === null || t === '')) {
    throw new PmrError('no target given: name an app, an id, a namespace, or "all"', 'PMR_NOT_FOUND')
  }
  return list.map(String)
}

function callerEnv () {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (typeof v === 'string') env[k] = v
  return env
}

/** A stream item from the native side, as the listener sees it. */
function toEvent (item) {
  if (item.event) {
    const { type, ...rest } = item.event
    return [type, { type, ...rest }]
  }
  if (item.log) return ['log', item.log]
  if (item.lagged !== undefined) return ['lagged', { skipped: item.lagged }]
  return [null, null]
}

class Api {
  constructor () {
    this._listeners = new Map()
    this._closed = false
  }

  async _native () {
    if (this._closed) throw new PmrError('this pmr handle is closed', 'PMR_CLOSED')
    return this._handle
  }

  async _request (cmd, fields = {}) {
    const n = await this._native()
    return fromNativeAsync(n.request(JSON.stringify({ cmd, ...fields })))
  }

  /** An operation on apps. When any app failed it rejects with a PmrError
   * carrying the first failure's code, a message naming every failure, and
   * `report` (every app's outcome in `report.apps`, and the instances):
   * the apps that went through are in it, done. */
  async _operation (cmd, fields = {}) {
    const report = await this._request(cmd, fields)
    if (report && report.error) {
      const e = new PmrError(report.error.message, report.error.code)
      e.report = report
      throw e
    }
    return report
  }

  _logDir () {
    throw new Error('subclass')
  }

  /** Resolves app options (an object or a list) or an ecosystem file into
   * the specs the supervisor runs, exactly as the CLI does. Unknown keys
   * are warnings unless `strict` (or PMR_STRICT=1) makes them errors. */
  _resolve (apps, { env, only, strict } = {}) {
    let config = null
    let file = null
    let baseDir = process.cwd()
    if (typeof apps === 'string') {
      file = path.resolve(apps)
      baseDir = path.dirname(file)
      if (!fs.existsSync(file)) throw new PmrError(`${apps}: no such file`, 'PMR_CONFIG')
      if (native.isJsConfig(file)) {
        const answer = JSON.parse(require('./config-loader.js').loadConfig(file))
        if (answer.error) {
          const where = answer.line ? `${apps}:${answer.line}` : apps
          throw new PmrError(`${where}: ${answer.error}`, 'PMR_CONFIG')
        }
        config = answer.config
      }
    } else if (apps && typeof apps === 'object') {
      config = apps
    } else {
      throw new PmrError('start() takes app options, a list of them, or an ecosystem file path', 'PMR_CONFIG')
    }
    const input = {
      config,
      file,
      baseDir,
      envName: env || null,
      only: only ? [].concat(only) : [],
      strict: strict === true || /^(1|true|yes|on)$/i.test((process.env.PMR_STRICT || '').trim()),
      callerEnv: callerEnv(),
      node: process.execPath,
      logDir: this._logDir(),
    }
    return fromNative(() => native.resolveApps(JSON.stringify(input)))
  }

  /** Starts apps: app options, a list of them, or an ecosystem file path.
   * Apps of a file that already run are left alone (use reload to apply
   * changes). Resolves to `{ instances, notices }`. */
  async start (apps, opts = {}) {
    const resolved = this._resolve(apps, opts)
    let specs = resolved.specs
    const notices = [...resolved.warnings, ...resolved.notices]
    if (typeof apps === 'string') {
      const list = await this.list()
      const plan = fromNative(() => native.planStart(JSON.stringify(specs), JSON.stringify(list), apps))
      notices.push(...plan.notices)
      specs = plan.start
      if (specs.length === 0) return { instances: [], notices }
    }
    const report = await this._operation('start', { apps: specs })
    return { instances: report.instances, notices: [...notices, ...report.notices], apps: report.apps }
  }

  stop (target) {
    return this._operation('stop', { target: targets(target) })
  }

  restart (target, { updateEnv = false } = {}) {
    return this._operation('restart', { target: targets(target), env: updateEnv ? callerEnv() : null })
  }

  /** Zero-downtime reload. With an ecosystem file path, applies the file's
   * definitions (like `pmr reload ecosystem.config.js`). */
  async reload (target, { updateEnv = false, env, only } = {}) {
    if (typeof target === 'string' && native.isConfigFile(target) && fs.existsSync(target)) {
      const { specs } = this._resolve(target, { env, only })
      return this._operation('reload_apps', { apps: specs, update_env: updateEnv })
    }
    return this._operation('reload', { target: targets(target), env: updateEnv ? callerEnv() : null })
  }

  delete (target) {
    return this._operation('delete', { target: targets(target) })
  }

  /** `n` instances exactly, or a string '+2' / '-1'. */
  async scale (name, n) {
    const to = fromNative(() => native.parseScale(String(n)))
    return this._operation('scale', { name: String(name), to })
  }

  list () {
    return this._request('list')
  }

  describe (target) {
    return this._request('describe', { target: targets(target) })
  }

  signal (target, signal) {
    return this._operation('signal', { target: targets(target), signal: String(signal) })
  }

  reset (target) {
    return this._operation('reset', { target: targets(target) })
  }

  /** PM2's sendDataToProcessId: `packet` ({ topic, data }) reaches instance
   * `id`'s process.on('message') as { type: 'process:msg', topic, data, id }. */
  async sendDataToProcessId (id, packet) {
    const n = Number(id)
    if (!Number.isInteger(n) || n < 0) throw new PmrError(`sendDataToProcessId: '${id}' is not an instance id`, 'PMR_CONFIG')
    return this._operation('send_data', { process_id: n, packet })
  }

  /** `pmr send`: `line` (a newline added) on the stdin of instance `target`
   * (an id), or of every running instance of the app so named. */
  sendLine (target, line) {
    return this._request('send_line', { target: String(target), line: String(line) })
  }

  stopWatch (target) {
    return this._operation('stop_watch', { target: targets(target) })
  }

  /** Log lines as an async iterator: the last `lines` of each file, then
   * (with `follow`) new lines as the apps write them. */
  async * logs (target = 'all', { lines = 15, follow = false } = {}) {
    const list = await this.list()
    const chosen = fromNative(() => native.selectLogs(JSON.stringify(list), String(target)))
    const rows = chosen.instances
    const seen = new Set()
    for (const row of rows) {
      for (const [stream, file] of [['out', row.logs.out], ['err', row.logs.err]]) {
        if (seen.has(file)) continue
        seen.add(file)
        let tail
        try {
          tail = native.tailFile(file, lines)
        } catch (err) {
          throw pmrError(err)
        }
        for (const line of tail) {
          yield { app: row.name, id: row.id, stream, line, time: null }
        }
      }
    }
    if (!follow) return
    const ids = new Set(chosen.ids)
    const apps = new Set(chosen.apps)
    const queue = []
    let wake = null
    const onLog = (l) => {
      if (chosen.all || ids.has(l.id) || apps.has(l.app)) {
        queue.push(l)
        if (wake) { wake(); wake = null }
      }
    }
    this.on('log', onLog)
    try {
      for (;;) {
        while (queue.length) yield queue.shift()
        if (this._closed) return
        await new Promise((resolve) => { wake = resolve })
      }
    } finally {
      this.off('log', onLog)
    }
  }

  on (event, fn) {
    if (typeof fn !== 'function') throw new TypeError('on(event, fn): fn must be a function')
    if (!this._listeners.has(event)) this._listeners.set(event, new Set())
    this._listeners.get(event).add(fn)
    this._subscribe()
    return this
  }

  off (event, fn) {
    const set = this._listeners.get(event)
    if (set) set.delete(fn)
    return this
  }

  _emit (text) {
    const [name, event] = toEvent(JSON.parse(text))
    if (!name) return
    for (const key of [name, '*']) {
      const set = this._listeners.get(key)
      if (!set) continue
      for (const fn of [...set]) {
        try {
          fn(event)
        } catch (err) {
          process.nextTick(() => { throw err })
        }
      }
    }
  }
}

class Client extends Api {
  constructor (handle, home) {
    super()
    this._handle = handle
    this.home = home
    this._subscription = null
  }

  _logDir () {
    return path.join(this.home, 'logs')
  }

  _subscribe () {
    if (this._subscription || this._closed) return
    this._subscription = this._handle.subscribe((text) => this._emit(text)).catch((err) => { throw pmrError(err) })
    this._subscription.catch(() => {})
  }

  ping () {
    return this._request('ping')
  }

  /** Stops every app, then the daemon. The client is closed afterwards. */
  async kill () {
    const result = await this._request('kill')
    await this.close()
    return result
  }

  /** Closes the connection; the daemon and its apps keep running. */
  async close () {
    if (this._closed) return
    this._closed = true
    if (this._subscription) await this._subscription.catch(() => {})
    await this._handle.close()
  }
}

/** A client of the daemon for `home` (PMR_HOME, default ~/.pmr), starting
 * the daemon when none runs (unless `start: false`). */
async function connect ({ home = defaultHome(), start = true } = {}) {
  const abs = path.resolve(home)
  try {
    const handle = await native.connectDaemon({
      home: abs,
      start,
      node: process.execPath,
      daemonScript: path.join(ROOT, 'daemon.js'),
    })
    return new Client(handle, abs)
  } catch (err) {
    throw pmrError(err)
  }
}

/** The supervisor inside this process: its apps are this process's children
 * and end with it. While it is open it keeps Node running; `close()` stops
 * its apps gracefully and lets the process exit. On `process.exit()` and on
 * SIGINT/SIGTERM (unless `handleSignals: false`) every app is killed at once. */
class Supervisor extends Api {
  constructor ({ logDir, handleSignals = true } = {}) {
    super()
    this.logDir = path.resolve(logDir || path.join(defaultHome(), 'logs'))
    this._killAll = () => { if (this._sync) this._sync.killAllSync() }
    this._onSignal = (sig) => {
      this._killAll()
      // Nobody else handles it: end the way the signal would have.
      if (process.listenerCount(sig) === 1) {
        this._unhook()
        process.kill(process.pid, sig)
      }
    }
    process.on('exit', this._killAll)
    this._signals = handleSignals ? ['SIGINT', 'SIGTERM'] : []
    for (const s of this._signals) process.on(s, this._onSignal)
    this._handle = native.createSupervisor({
      logDir: this.logDir,
      preload: path.join(ROOT, 'preload', 'drain.js'),
    }).catch((err) => { throw pmrError(err) }).then((h) => {
      this._sync = h
      h.subscribe((text) => this._emit(text))
      return h
    })
    this._handle.catch(() => {})
  }

  _logDir () {
    return this.logDir
  }

  _subscribe () {}

  _unhook () {
    process.removeListener('exit', this._killAll)
    for (const s of this._signals) process.removeListener(s, this._onSignal)
  }

  /** Stops every app gracefully; then the process may exit. */
  async close () {
    if (this._closed) return
    const h = await this._handle
    this._closed = true
    await h.close()
    this._unhook()
  }
}

module.exports = { connect, Supervisor, Client, PmrError }
