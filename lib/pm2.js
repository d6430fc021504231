'use strict'
// PM2's programmatic API (`require('pm2')`) over pmr's own JS API
// (lib/api.js), so a deploy script written for PM2 runs with only its
// require line changed: the same methods and arguments, callbacks or (when
// no callback is given) promises, and PM2-shaped processes, which the core
// builds from pmr's typed descriptions (src/model/pm2.rs). It uses the JS
// API's internal helpers (`_resolve`, `_request`), which are this package's
// own.
const { EventEmitter } = require('node:events')
const path = require('node:path')
const pmr = require('./api.js')
const native = require(path.join(__dirname, '..', 'native.js'))

const { PmrError } = pmr

/** A callback if given (called outside the promise, so what it throws is
 * an uncaught exception, as with PM2), else the promise. */
function settle (promise, cb) {
  if (typeof cb !== 'function') return promise
  promise.then((v) => process.nextTick(cb, null, v), (e) => process.nextTick(cb, e))
}

/** PM2's start options (its CLI's camelCase, or ecosystem keys) as app
 * options: `maxMemoryRestart` is `max_memory_restart`, `scriptArgs` the
 * app's `args`; what only steers PM2's CLI is dropped. */
const CLI_ONLY = new Set(['rawArgs', 'updateEnv', 'force', 'parallel', 'only', 'strict', 'commands'])
function appOptions (opts) {
  const app = {}
  for (const [k, v] of Object.entries(opts || {})) {
    if (CLI_ONLY.has(k) || v === undefined || typeof v === 'function') continue
    if (k === 'scriptArgs') { app.args = v; continue }
    // `{ env: 'production' }` names an env section, which a single script has not.
    if (k === 'env' && typeof v !== 'object') continue
    app[k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = v
  }
  return app
}

function warn (lines) {
  for (const l of lines) process.stderr.write(`[pmr] warning: ${l}\n`)
}

/** PM2's answer to stop/restart/reload/delete: one object per process. */
function operated (procs) {
  return procs.map((p) => ({
    name: p.name,
    namespace: p.pm2_env.namespace,
    pm_id: p.pm_id,
    status: p.pm2_env.status,
    restart_time: p.pm2_env.restart_time,
    pm2_env: p.pm2_env,
  }))
}

/** PM2's `process:event` names for pmr's events; the others have none. */
const PROCESS_EVENTS = { start: 'start', online: 'online', exit: 'exit', restart: 'restart', stop: 'stop', errored: 'restart overlimit' }

/** What `launchBus` hands out: an EventEmitter with PM2's event names,
 * where `on('log:*', (type, packet) => ...)` matches by pattern as PM2's
 * bus (an axon sub-emitter) does. */
class Bus extends EventEmitter {
  constructor (owner) {
    super()
    this._owner = owner
    this._patterns = []
  }

  on (event, fn) {
    if (typeof event === 'string' && event.includes('*')) {
      const re = new RegExp('^' + event.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('(.*)') + '$')
      this._patterns.push({ event, re, fn })
      return this
    }
    return super.on(event, fn)
  }

  off (event, fn) {
    this._patterns = this._patterns.filter((p) => !(p.event === event && p.fn === fn))
    return super.off(event, fn)
  }

  /** A listener's exception is an uncaught exception, as with PM2's bus
   * (not lost in the promise chain that orders the events). */
  _publish (name, packet) {
    try {
      this.emit(name, packet)
      for (const p of [...this._patterns]) {
        const m = p.re.exec(name)
        if (m) p.fn(...m.slice(1), packet)
      }
    } catch (err) {
      process.nextTick(() => { throw err })
    }
  }

  /** Ends the bus: no more events reach it. */
  close (cb) {
    this._owner._dropBus(this)
    if (typeof cb === 'function') process.nextTick(cb)
  }
}

class PM2 {
  /** `new (require('pmr/pm2').custom)({ pm2_home })`: an API for another
   * pmr home (`pm2_home` or `home`; default PMR_HOME or ~/.pmr). */
  constructor ({ pm2_home: pm2Home, home } = {}) {
    this._home = home || pm2Home || undefined
    this._api = null
    this._connecting = null
    this._buses = new Set()
    this._listener = null
    this._known = new Map()
    this._queue = Promise.resolve()
    this._keepAlive = null
  }

  async _open (inProcess) {
    if (inProcess) {
      this._api = new pmr.Supervisor()
      return { new_pm2_instance: true }
    }
    try {
      this._api = await pmr.connect({ home: this._home, start: false })
      return { new_pm2_instance: false }
    } catch (e) {
      if (!e || e.code !== 'PMR_DAEMON') throw e
    }
    this._api = await pmr.connect({ home: this._home })
    return { new_pm2_instance: true }
  }

  /** The pmr API, connecting first: PM2 lets calls come before connect. */
  async _client () {
    if (this._api) return this._api
    if (!this._connecting) this._connecting = this._open(false).finally(() => { this._connecting = null })
    await this._connecting
    return this._api
  }

  /** `connect([noDaemon], [cb])`: `noDaemon === true` runs the apps in this
   * process (pmr's Supervisor), as PM2's no-daemon mode does. */
  connect (noDaemon, cb) {
    if (typeof noDaemon === 'function') { cb = noDaemon; noDaemon = false }
    const run = async () => {
      if (this._api) return { new_pm2_instance: false }
      if (this._connecting) { await this._connecting; return { new_pm2_instance: false } }
      this._connecting = this._open(noDaemon === true)
      try { return await this._connecting } finally { this._connecting = null }
    }
    return settle(run(), cb)
  }

  /** Closes the connection and every bus; the daemon and its apps keep running. */
  disconnect (cb) {
    const run = async () => {
      await this._quiet()
      const api = this._api
      this._api = null
      this._known.clear()
      if (api) await api.close()
      return {}
    }
    return settle(run(), cb)
  }

  close (cb) {
    return this.disconnect(cb)
  }

  /** Stops every app and the daemon. */
  killDaemon (cb) {
    const run = async () => {
      const api = await this._client()
      await this._quiet()
      this._api = null
      if (typeof api.kill === 'function') await api.kill()
      else await api.close()
      return {}
    }
    return settle(run(), cb)
  }

  kill (cb) {
    return this.killDaemon(cb)
  }

  /** PM2-shaped processes for these targets (ids, names, 'all'); [] when none matches. */
  async _shapes (api, targets) {
    if (targets.length === 0) return []
    let descs
    try {
      descs = await api.describe(targets.map(String))
    } catch (e) {
      if (e && e.code === 'PMR_NOT_FOUND') return []
      throw e
    }
    const procs = JSON.parse(native.pm2Processes(JSON.stringify(descs)))
    for (const p of procs) this._known.set(p.pm_id, p)
    return procs
  }

  /** Waits (bounded by the apps' listen_timeout) until the instances have
   * left `launching`, so that a script that lists right after `start`
   * sees them `online`, as PM2's start callback lets it. */
  async _settled (api, ids, specs) {
    const bound = Math.max(3000, ...specs.map((s) => s.listen_timeout_ms || 0)) + 2000
    const deadline = Date.now() + bound
    const wanted = new Set(ids)
    for (;;) {
      const rows = (await api.list()).filter((r) => wanted.has(r.id))
      if (rows.every((r) => r.status !== 'launching') || Date.now() > deadline) return
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  /** `start(script|app|{apps}|file, [opts], [cb])`. Apps that already run are
   * restarted with their (new) definition, as PM2 does. With a file or a
   * list of apps, `opts.env` names the `env_<name>` section and `opts.only`
   * picks apps; `opts.strict` refuses unknown keys. */
  start (cmd, opts, cb) {
    if (typeof opts === 'function') { cb = opts; opts = {} }
    if (!opts || typeof opts !== 'object') opts = {}
    return settle(this._start(cmd, opts), cb)
  }

  async _start (cmd, opts) {
    const api = await this._client()
    const file = typeof cmd === 'string' && native.isConfigFile(cmd)
    let input
    if (file) input = cmd
    else if (typeof cmd === 'string') input = { ...appOptions(opts), script: cmd }
    else if (cmd && typeof cmd === 'object' && (Array.isArray(cmd) || cmd.apps || cmd.pm2)) input = cmd
    else if (cmd && typeof cmd === 'object') input = { ...appOptions(opts), ...cmd }
    else throw new PmrError('start() takes a script, app options, { apps: [...] } or an ecosystem file', 'PMR_CONFIG')
    const selection = file || Array.isArray(cmd) || (cmd && (cmd.apps || cmd.pm2))
      ? { env: typeof opts.env === 'string' ? opts.env : undefined, only: opts.only, strict: opts.strict }
      : { strict: opts.strict }
    const { specs, warnings } = api._resolve(input, selection)
    warn(warnings)
    const running = new Set((await api.list()).map((r) => r.name))
    const fresh = specs.filter((s) => !running.has(s.name))
    const again = specs.filter((s) => running.has(s.name))
    const ids = []
    if (fresh.length) ids.push(...(await api._request('start', { apps: fresh })).instances.map((i) => i.id))
    if (again.length) ids.push(...(await api._request('restart_apps', { apps: again, update_env: false })).instances.map((i) => i.id))
    await this._settled(api, ids, specs)
    return this._shapes(api, ids)
  }

  /** The names a target means: an ecosystem file's apps that pmr runs, else the target itself. */
  async _targets (api, target) {
    if (typeof target === 'number') return [String(target)]
    if (typeof target === 'string' && native.isConfigFile(target)) {
      const { specs } = api._resolve(target)
      const names = new Set((await api.list()).map((r) => r.name))
      return specs.map((s) => s.name).filter((n) => names.has(n))
    }
    return [].concat(target).map(String)
  }

  async _act (target, how) {
    const api = await this._client()
    const names = await this._targets(api, target)
    if (names.length === 0) throw new PmrError(`${target}: no app of it runs`, 'PMR_NOT_FOUND')
    const before = how === 'delete' ? await this._shapes(api, names) : null
    const report = await api[how](names)
    if (before) return operated(before.map((p) => ({ ...p, pm2_env: { ...p.pm2_env, status: 'stopped' } })))
    return operated(await this._shapes(api, report.instances.map((i) => i.id)))
  }

  stop (target, cb) {
    return settle(this._act(target, 'stop'), cb)
  }

  delete (target, jsonVia, cb) {
    if (typeof jsonVia === 'function') cb = jsonVia
    return settle(this._act(target, 'delete'), cb)
  }

  /** `restart(target|file, [opts], [cb])`; `opts.updateEnv` takes this
   * process's environment. A file restarts its apps with its definitions. */
  restart (target, opts, cb) {
    if (typeof opts === 'function') { cb = opts; opts = {} }
    return settle(this._again(target, opts || {}, 'restart'), cb)
  }

  /** `reload(target|file, [opts], [cb])`: zero-downtime in cluster mode. */
  reload (target, opts, cb) {
    if (typeof opts === 'function') { cb = opts; opts = {} }
    return settle(this._again(target, opts || {}, 'reload'), cb)
  }

  async _again (target, opts, how) {
    const api = await this._client()
    const updateEnv = opts.updateEnv === true
    let report
    if (typeof target === 'string' && native.isConfigFile(target)) {
      const { specs, warnings } = api._resolve(target, { env: opts.env, only: opts.only, strict: opts.strict })
      warn(warnings)
      report = await api._request(how === 'reload' ? 'reload_apps' : 'restart_apps', { apps: specs, update_env: updateEnv })
    } else {
      report = await api[how]([].concat(target).map(String), { updateEnv })
    }
    return operated(await this._shapes(api, report.instances.map((i) => i.id)))
  }

  /** Every process, in PM2's shape (`pm2 jlist`), in id order. */
  list (opts, cb) {
    if (typeof opts === 'function') cb = opts
    const run = async () => {
      const procs = await this._shapes(await this._client(), ['all'])
      return procs.sort((a, b) => a.pm_id - b.pm_id)
    }
    return settle(run(), cb)
  }

  /** The processes of an app name or id, in PM2's shape; [] when there is none. */
  describe (target, cb) {
    const run = async () => this._shapes(await this._client(), [String(target)])
    return settle(run(), cb)
  }

  /** Saves the running apps for `pmr resurrect` (PM2's `dump`). */
  dump (force, cb) {
    if (typeof force === 'function') cb = force
    const run = async () => {
      await (await this._client())._request('save')
      return { success: true }
    }
    return settle(run(), cb)
  }

  sendSignalToProcessName (signal, name, cb) {
    const run = async () => {
      const api = await this._client()
      const report = await api.signal(String(name), String(signal))
      return this._shapes(api, report.instances.map((i) => i.id))
    }
    return settle(run(), cb)
  }

  sendSignalToProcessId (signal, id, cb) {
    return this.sendSignalToProcessName(signal, String(id), cb)
  }

  /** `sendDataToProcessId(id, packet, [cb])` or `(packet, [cb])` with
   * `packet.id`: the app gets `packet` on `process.on('message')`. */
  sendDataToProcessId (id, packet, cb) {
    if (id && typeof id === 'object') { cb = packet; packet = id; id = packet.id }
    const run = async () => {
      const api = await this._client()
      if (typeof api.sendDataToProcessId !== 'function') {
        throw new PmrError('this pmr cannot send data to a process yet (no sendDataToProcessId in its JS API)', 'PMR_PROTOCOL')
      }
      const res = await api.sendDataToProcessId(id, { ...packet, id })
      return res === undefined ? { success: true } : res
    }
    return settle(run(), cb)
  }

  /** PM2's `sendLineToStdin(pm_id, line, [separator], [cb])`: the line
   * (then `separator`, a newline unless given) on the instance's stdin. */
  sendLineToStdin (id, line, separator, cb) {
    if (typeof separator === 'function') { cb = separator; separator = undefined }
    const run = async () => {
      const api = await this._client()
      const report = await api.sendLine(String(id), String(line) + (separator === undefined ? '\n' : String(separator)))
      return this._shapes(api, report.instances.map((i) => i.id))
    }
    return settle(run(), cb)
  }

  /** `launchBus(cb)`: `cb(err, bus)`, bus emitting `process:event`,
   * `log:out`, `log:err` and `process:msg` in PM2's shapes. */
  launchBus (cb) {
    const run = async () => {
      const api = await this._client()
      const bus = new Bus(this)
      this._buses.add(bus)
      // PM2's bus is a socket that keeps the script running until it
      // disconnects; pmr's event stream alone does not keep Node alive.
      if (!this._keepAlive) this._keepAlive = setInterval(() => {}, 1 << 30)
      if (!this._listener) {
        this._listener = (item) => { this._queue = this._queue.then(() => this._relay(api, item)).catch(() => {}) }
        api.on('*', this._listener)
      }
      await this._shapes(api, ['all'])
      return bus
    }
    if (typeof cb !== 'function') return run()
    run().then((bus) => process.nextTick(cb, null, bus, bus), (e) => process.nextTick(cb, e))
  }

  /** Ends every bus and waits for the item being relayed: a request still
   * in flight when the connection closes would never be answered (and its
   * pending promise would keep Node running). */
  async _quiet () {
    for (const b of [...this._buses]) this._dropBus(b)
    await this._queue
  }

  _dropBus (bus) {
    this._buses.delete(bus)
    if (this._buses.size === 0 && this._keepAlive) {
      clearInterval(this._keepAlive)
      this._keepAlive = null
    }
    if (this._buses.size === 0 && this._listener && this._api) {
      this._api.off('*', this._listener)
      this._listener = null
    }
  }

  _publish (name, packet) {
    for (const b of this._buses) b._publish(name, packet)
  }

  /** One stream item to the buses, in order (items wait for the describe
   * that gives their process its PM2 shape). */
  async _relay (api, item) {
    if (this._buses.size === 0) return
    const known = this._known.get(item.id)
    const brief = { pm_id: item.id, name: item.app, rev: null, namespace: known ? known.pm2_env.namespace : 'default' }
    if (item.line !== undefined && item.stream) {
      this._publish(item.stream === 'err' ? 'log:err' : 'log:out', { process: brief, at: item.time, data: item.line + '\n' })
      return
    }
    if (item.type === 'message') {
      const msg = item.data
      const proc = { pm_id: brief.pm_id, name: brief.name, namespace: brief.namespace }
      if (msg && msg.type && msg.data) this._publish(msg.type, { at: item.time, data: msg.data, process: { ...proc, rev: null } })
      else this._publish('process:msg', { at: item.time, raw: msg, process: proc })
      return
    }
    const event = PROCESS_EVENTS[item.type]
    if (!event) return
    const [now] = await this._shapes(api, [String(item.id)]).catch(() => [])
    const shape = now || known
    const env = shape ? { ...shape.pm2_env } : { name: item.app, pm_id: item.id }
    delete env.env
    const manually = item.type === 'stop' || (item.type === 'exit' && item.expected === true) ||
      (item.type === 'restart' && item.reason === 'user')
    this._publish('process:event', { event, manually, process: env, at: item.time })
  }
}

module.exports = new PM2()
module.exports.custom = PM2
module.exports.PmrError = PmrError
