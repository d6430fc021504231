'use strict'
// pmr, PM2 and the SCHED_NONE ceiling behind one small interface, plus the
// per-scenario Scope that owns every process a scenario starts and makes sure
// none of them survives it.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const u = require('./util')

const BENCH = path.resolve(__dirname, '..')
const REPO = path.resolve(BENCH, '..')
const PMR_BIN = path.join(REPO, 'bin', 'pmr.js')
const PM2_BIN = path.join(BENCH, 'node_modules', '.bin', 'pm2')
const FIXTURES = path.join(BENCH, 'fixtures')
const fixture = (name) => path.join(FIXTURES, name)

/** Run a command to completion without blocking the event loop. */
function runAsync(cmd, args, { env, timeout = 60000, cwd } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve({ code: -1, signal: null, stdout, stderr: stderr + String(err), ms: performance.now() - t0 })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 })
    })
  })
}

function runSync(cmd, args, { env, timeout = 60000, cwd } = {}) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: (r.stderr || '') + (r.error ? String(r.error) : ''), ms }
}

function check(r, what) {
  if (r.code !== 0) {
    const err = new Error(`${what} failed (exit ${r.code}${r.signal ? ', ' + r.signal : ''}): ${(r.stderr || r.stdout).trim().slice(0, 800)}`)
    err.result = r
    throw err
  }
  return r
}

// ------------------------------------------------------------------ managers

class Manager {
  constructor(scope, label) {
    this.scope = scope
    this.label = label
    this.home = fs.mkdtempSync(path.join(os.tmpdir(), `${this.kind}-bench-`))
    scope.dirs.push(this.home)
  }

  envFor(extra) {
    return { ...this.scope.env, [this.homeVar]: this.home, ...extra }
  }

  cliSync(args, opts = {}) {
    const [cmd, pre] = this.command()
    return runSync(cmd, [...pre, ...args], { ...opts, env: this.envFor(opts.env) })
  }

  cli(args, opts = {}) {
    const [cmd, pre] = this.command()
    return runAsync(cmd, [...pre, ...args], { ...opts, env: this.envFor(opts.env) })
  }

  /** argv (as an array) of a CLI call, for timing loops. */
  argv(args) {
    const [cmd, pre] = this.command()
    return [cmd, [...pre, ...args]]
  }

  daemonPid() {
    return u.readPidFile(path.join(this.home, this.pidFile))
  }

  list() {
    const r = check(this.cliSync(['jlist']), `${this.label} jlist`)
    const parsed = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')))
    const out = parsed.map((p) => this.normalize(p))
    for (const p of out) if (p.pid) this.scope.track(p.pid)
    return out
  }

  app(name) {
    return this.list().filter((p) => p.name === name)
  }

  /** Wait until `count` instances of `name` are online with a pid; returns them. */
  async waitOnline(name, count, { timeout = 20000 } = {}) {
    return u.waitFor(
      () => {
        const procs = this.app(name)
        const online = procs.filter((p) => p.status === 'online' && p.pid && u.isAlive(p.pid))
        return online.length >= count ? online : null
      },
      { timeout, interval: 50, what: `${count} online instance(s) of ${name} under ${this.label}` }
    )
  }

  async start(script, { name, instances, env, args = [] } = {}) {
    const argv = ['start', script, '--name', name, ...(instances ? ['-i', String(instances)] : []), ...args]
    check(await this.cli(argv, { env }), `${this.label} start ${name}`)
    const d = this.daemonPid()
    if (d) this.scope.track(d)
  }

  async delete(name) {
    return this.cli(['delete', name])
  }

  async kill() {
    const d = this.daemonPid()
    if (d) this.scope.track(d)
    // Never start a daemon only to kill it.
    if (!d && !fs.existsSync(path.join(this.home, this.pidFile))) return { code: 0, ms: 0, skipped: true }
    return this.cli(['kill'], { timeout: 30000 })
  }
}

class Pmr extends Manager {
  get kind() {
    return 'pmr'
  }
  get homeVar() {
    return 'PMR_HOME'
  }
  get pidFile() {
    return 'pmr.pid'
  }
  command() {
    return [process.execPath, [PMR_BIN]]
  }
  normalize(p) {
    return {
      name: p.name,
      id: p.id,
      pid: p.pid || null,
      status: p.status,
      restarts: p.restarts,
      mode: p.mode,
      out: p.logs && p.logs.out,
      raw: p,
    }
  }
  /** The flags that keep restarting a crashing app forever. */
  crashForeverArgs() {
    return ['--max-restarts', '1000000', '--min-uptime', '0']
  }
  async startCrashForever(script, { name, env }) {
    return this.start(script, { name, env, args: this.crashForeverArgs() })
  }
}

class Pm2 extends Manager {
  get kind() {
    return 'pm2'
  }
  get homeVar() {
    return 'PM2_HOME'
  }
  get pidFile() {
    return 'pm2.pid'
  }
  command() {
    return [PM2_BIN, []]
  }
  normalize(p) {
    const e = p.pm2_env || {}
    return {
      name: p.name,
      id: p.pm_id,
      pid: p.pid || null,
      status: e.status,
      restarts: e.restart_time,
      mode: e.exec_mode === 'cluster_mode' ? 'cluster' : e.exec_mode === 'fork_mode' ? 'fork' : e.exec_mode,
      out: e.pm_out_log_path,
      raw: p,
    }
  }
  /**
   * PM2's CLI has --max-restarts but no --min-uptime flag, so the crash app
   * goes through an ecosystem file: max_restarts 1000000, min_uptime 0.
   */
  async startCrashForever(script, { name, env }) {
    const file = path.join(this.home, `${name}.bench.config.json`)
    fs.writeFileSync(file, JSON.stringify({ apps: [{ name, script, max_restarts: 1000000, min_uptime: 0, autorestart: true }] }))
    check(await this.cli(['start', file], { env }), `${this.label} start ${name}`)
    const d = this.daemonPid()
    if (d) this.scope.track(d)
  }
}

/** Node's own cluster with SCHED_NONE (workers accept directly): the throughput ceiling. */
class Ceiling {
  constructor(scope, label = 'ceiling') {
    this.scope = scope
    this.label = label
    this.child = null
  }
  async start({ port, workers = 2, script = fixture('hello.js'), env = {} }) {
    this.child = this.scope.spawn(process.execPath, [fixture('ceiling.js')], {
      env: { ...this.scope.env, PORT: String(port), WORKERS: String(workers), CEILING_SCRIPT: script, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const child = this.child
    this.pids = await new Promise((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error('the ceiling cluster did not get ready within 15 s')), 15000)
      child.stdout.on('data', (d) => {
        out += d
        const m = /^ready ([\d ]+)$/m.exec(out)
        if (m) {
          clearTimeout(timer)
          child.stdout.resume()
          resolve(m[1].trim().split(' ').map(Number))
        }
      })
      child.on('exit', (code) => reject(new Error(`the ceiling cluster exited (${code}) before it was ready`)))
    })
    for (const pid of this.pids) this.scope.track(pid)
    await u.waitHttp(port)
  }
  async stop() {
    if (this.child && u.isAlive(this.child.pid)) {
      this.child.kill('SIGTERM')
      await u.waitFor(() => !u.isAlive(this.child.pid), { timeout: 5000, what: 'ceiling primary to exit' }).catch(() => {})
    }
  }
}

// ------------------------------------------------------------------ scope

let scopeSeq = 0

/**
 * Everything a scenario starts goes through its Scope: fresh homes, a tag in
 * the environment of every process (BENCH_RUN_ID), and a cleanup that runs
 * `pmr kill` / `pm2 kill`, then kills by pid whatever still carries the tag.
 */
class Scope {
  constructor(runId, scenario) {
    this.tag = `${runId}-${scenario}-${++scopeSeq}`
    this.tagEntry = `BENCH_RUN_ID=${this.tag}`
    const nodeDir = path.dirname(process.execPath)
    this.env = {
      ...process.env,
      PATH: `${nodeDir}:${process.env.PATH || '/usr/bin:/bin'}`,
      BENCH_RUN_ID: this.tag,
      NO_COLOR: '1',
      PM2_DISCRETE_MODE: 'true',
    }
    delete this.env.PMR_HOME
    delete this.env.PM2_HOME
    delete this.env.NODE_OPTIONS
    this.dirs = []
    this.managers = []
    this.children = []
    this.pids = new Set()
  }

  tmpdir(prefix = 'bench-') {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    this.dirs.push(d)
    return d
  }

  pmr(label = 'pmr') {
    const m = new Pmr(this, label)
    this.managers.push(m)
    return m
  }

  pm2(label = 'PM2') {
    const m = new Pm2(this, label)
    this.managers.push(m)
    return m
  }

  ceiling(label) {
    const c = new Ceiling(this, label)
    this.managers.push(c)
    return c
  }

  track(pid) {
    if (pid) this.pids.add(pid)
  }

  spawn(cmd, args, opts = {}) {
    const child = spawn(cmd, args, { env: this.env, ...opts })
    this.children.push(child)
    this.track(child.pid)
    child.on('error', () => {})
    return child
  }

  /**
   * Graceful first (pmr kill, pm2 kill, ceiling SIGTERM), then SIGKILL by pid
   * for anything left. Returns what had to be killed by force.
   */
  async cleanup() {
    const report = { graceful: [], leftovers: [] }
    for (const m of this.managers) {
      try {
        if (m instanceof Ceiling) await m.stop()
        else {
          const r = await m.kill()
          report.graceful.push({ manager: m.label, exit: r.code, ms: Math.round(r.ms) })
        }
      } catch (err) {
        report.graceful.push({ manager: m.label, error: String(err) })
      }
    }
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null && u.isAlive(c.pid)) c.kill('SIGTERM')
    // Give graceful exits a moment, then list survivors.
    const deadline = Date.now() + 3000
    let left = []
    for (;;) {
      left = [...new Set([...u.pidsWithEnv(this.tagEntry), ...[...this.pids].filter(u.isAlive)])]
      if (left.length === 0 || Date.now() > deadline) break
      await u.sleep(100)
    }
    for (const pid of left) {
      report.leftovers.push({ pid, cmd: u.cmdline(pid) })
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    await u.waitFor(() => [...this.pids].filter(u.isAlive).length === 0 && u.pidsWithEnv(this.tagEntry).length === 0, {
      timeout: 5000,
      what: 'every benchmark process to be gone',
    }).catch((err) => report.leftovers.push({ error: String(err) }))
    for (const d of this.dirs) fs.rmSync(d, { recursive: true, force: true })
    return report
  }

  /** Synchronous last resort (process exit, Ctrl-C). */
  killAllSync() {
    for (const pid of new Set([...u.pidsWithEnv(this.tagEntry), ...[...this.pids].filter(u.isAlive)])) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    for (const d of this.dirs) fs.rmSync(d, { recursive: true, force: true })
  }
}

module.exports = { Scope, Pmr, Pm2, Ceiling, runAsync, runSync, check, fixture, BENCH, REPO, PMR_BIN, PM2_BIN }
