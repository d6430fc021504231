'use strict'
// Shared plumbing for the end-to-end tests: a private PMR_HOME per test
// file, the real CLI run as a child process, and cleanup that kills every
// process a test started, by pid, and checks it is gone.
const { spawnSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const net = require('node:net')
const http = require('node:http')

const ROOT = path.join(__dirname, '..')
const BIN = path.join(ROOT, 'bin', 'pmr.js')
const FIXTURES = path.join(__dirname, 'fixtures')

/** A process is gone when /proc has no entry or shows a zombie (this
 * sandbox's PID 1 reaps slowly, so `kill -0` would still succeed). */
function alive (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Pids of live processes whose process group is `pgid`. */
function groupMembers (pgid) {
  const out = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(name))
    } catch {}
  }
  return out
}

async function waitFor (what, fn, { timeout = 10000, interval = 25 } = {}) {
  const deadline = Date.now() + timeout
  let last
  for (;;) {
    last = await fn()
    if (last) return last
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** GET http://127.0.0.1:port/path with a fresh connection. */
function get (port, urlPath = '/', { timeout = 5000, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent, timeout }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }))
    })
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
  })
}

/**
 * A steady request loop: `connections` concurrent loops of GET requests
 * until stop() is called, with keep-alive (an http.Agent that honours
 * `Connection: close`) or a fresh connection per request. Counts successes,
 * failures by error code and the pids that answered.
 */
function load (port, { connections = 4, keepAlive = false, path: urlPath = '/' } = {}) {
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: connections }) : false
  const stats = { ok: 0, failed: 0, errors: {}, statuses: {}, pids: new Set(), perPid: {} }
  let running = true
  const one = () => new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => {
        if (res.statusCode === 200) {
          stats.ok++
          try {
            const pid = JSON.parse(body).pid
            stats.pids.add(pid)
            stats.perPid[pid] = (stats.perPid[pid] || 0) + 1
          } catch {}
        } else {
          stats.failed++
          stats.statuses[res.statusCode] = (stats.statuses[res.statusCode] || 0) + 1
        }
        resolve()
      })
      res.on('error', (e) => { stats.failed++; stats.errors[e.code] = (stats.errors[e.code] || 0) + 1; resolve() })
    })
    req.setTimeout(10000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e) => {
      stats.failed++
      stats.errors[e.code || e.message] = (stats.errors[e.code || e.message] || 0) + 1
      resolve()
    })
  })
  const loops = Array.from({ length: connections }, async () => {
    while (running) await one()
  })
  return {
    stats,
    async stop () {
      running = false
      await Promise.all(loops)
      if (agent) agent.destroy()
      return stats
    },
  }
}

/** Live processes (not zombies) whose environment holds `entry`. */
function processesWithEnv (entry) {
  const found = []
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue
    try {
      const env = fs.readFileSync(`/proc/${n}/environ`, 'utf8').split('\0')
      if (!env.includes(entry)) continue
      const stat = fs.readFileSync(`/proc/${n}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue
      found.push({ pid: Number(n), cmd: fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() })
    } catch {}
  }
  return found
}

/**
 * `pmr start` waits until the instances are online and then through their
 * min_uptime (1 s by default) to fail on an early exit. The suite's tests
 * wait for what they need themselves, so their starts return at once
 * (`--no-wait`, the old behaviour) unless a test asks for the waiting start
 * with `{ wait: true }`: every start paying min_uptime made the suite about
 * 60% slower.
 */
function startArgs (args, wait) {
  if (wait || args[0] !== 'start' || args.includes('--no-wait')) return args
  return ['start', '--no-wait', ...args.slice(1)]
}

class Home {
  constructor () {
    // Short path: a Unix socket path must stay under ~100 bytes.
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmr-t-'))
    this.pids = new Set()
  }

  env (extra = {}) {
    return { ...process.env, PMR_HOME: this.dir, NO_COLOR: '1', ...extra }
  }

  /** Runs the CLI to completion. */
  run (args, { cwd = FIXTURES, env = {}, timeout = 30000, wait = false } = {}) {
    const r = spawnSync(process.execPath, [BIN, ...startArgs(args, wait)], {
      cwd, env: this.env(env), encoding: 'utf8', timeout,
    })
    this.notePids()
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal }
  }

  /** Runs the CLI and fails with its output unless it exits 0. */
  ok (args, opts) {
    const r = this.run(args, opts)
    if (r.code !== 0) {
      throw new Error(`pmr ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    }
    return r
  }

  /** Runs the CLI without blocking this process's event loop (a test that
   * is also an HTTP client must keep reading its sockets meanwhile). */
  runAsync (args, { cwd = FIXTURES, env = {}, wait = false } = {}) {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, ...startArgs(args, wait)], { cwd, env: this.env(env) })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => { stdout += d })
      child.stderr.on('data', (d) => { stderr += d })
      child.on('exit', (code) => {
        this.notePids()
        resolve({ code, stdout, stderr })
      })
    })
  }

  async okAsync (args, opts) {
    const r = await this.runAsync(args, opts)
    if (r.code !== 0) {
      throw new Error(`pmr ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    }
    return r
  }

  /** Starts the CLI without waiting (for `logs` streaming). */
  spawn (args, { cwd = FIXTURES, env = {}, wait = false } = {}) {
    const child = spawn(process.execPath, [BIN, ...startArgs(args, wait)], { cwd, env: this.env(env) })
    this.pids.add(child.pid)
    return child
  }

  jlist () {
    const r = this.ok(['jlist'])
    const rows = JSON.parse(r.stdout)
    for (const row of rows) if (row.pid) this.pids.add(row.pid)
    return rows
  }

  daemonPid () {
    try {
      return Number(fs.readFileSync(path.join(this.dir, 'pmr.pid'), 'utf8'))
    } catch {
      return null
    }
  }

  /** The keeper that runs the daemon (and would start it again). */
  keeperPid () {
    try {
      return Number(fs.readFileSync(path.join(this.dir, 'keeper.pid'), 'utf8').split(' ')[0])
    } catch {
      return null
    }
  }

  notePids () {
    const d = this.daemonPid()
    if (d) this.pids.add(d)
    const k = this.keeperPid()
    if (k) this.pids.add(k)
  }

  logFile (name) {
    return path.join(this.dir, 'logs', name)
  }

  /** Stops the daemon, then kills anything this test ever saw, and checks
   * that every one of those processes is gone. */
  async cleanup () {
    this.notePids()
    if (fs.existsSync(path.join(this.dir, 'pmr.sock'))) this.run(['kill'])
    // The keeper first: it would start a daemon again once that one is killed.
    const keeper = this.keeperPid()
    if (keeper && alive(keeper)) { try { process.kill(keeper, 'SIGKILL') } catch {} }
    for (const pid of this.pids) {
      if (alive(pid)) {
        for (const p of groupMembers(pid)) { try { process.kill(p, 'SIGKILL') } catch {} }
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    }
    await waitFor('every test process to exit', () => [...this.pids].every((p) => !alive(p)), { timeout: 5000 })
    // Whatever ran in this home inherited PMR_HOME: a process with it still
    // alive escaped pmr (a restart after a stop, a lost grandchild).
    let leaked = []
    try {
      await waitFor('no process of this home left', () => (leaked = processesWithEnv(`PMR_HOME=${this.dir}`)).length === 0, { timeout: 3000 })
    } catch {
      for (const p of leaked) { try { process.kill(p.pid, 'SIGKILL') } catch {} }
      throw new Error(`processes outlived the test: ${leaked.map((p) => `${p.pid} ${p.cmd}`).join('; ')}`)
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true })
    }
  }
}

/** A webhook receiver (a node:http server): `answer` is 'ok', '500' or
 * 'hang'. Records each request. */
async function receiver (answer) {
  const got = []
  const open = new Set()
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      got.push({ at: Date.now(), path: req.url, type: req.headers['content-type'], body: body ? JSON.parse(body) : null })
      if (answer === 'hang') return
      res.statusCode = answer === '500' ? 500 : 200
      res.end(answer === '500' ? 'internal error' : 'ok')
    })
  })
  server.on('connection', (s) => { open.add(s); s.on('close', () => open.delete(s)) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}/hook`
  return {
    url,
    got,
    close: () => new Promise((resolve) => { for (const s of open) s.destroy(); server.close(resolve) }),
  }
}

/** A test body run with a fresh PMR_HOME that is cleaned up whatever happens. */
function withHome (fn) {
  return async (t) => {
    const home = new Home()
    try {
      await fn(home, t)
    } finally {
      await home.cleanup()
    }
  }
}

const rows = (home, name) => home.jlist().filter((r) => r.name === name)

/** Waits for exactly `n` online instances of an app (listening on their
 * sockets too, unless the app is not a server). */
const online = (home, name, n, { listening = true } = {}) => waitFor(`${n} online instances of ${name}`, () => {
  const r = rows(home, name)
  return r.length === n && r.every((x) => x.status === 'online' && (!listening || x.listening.length > 0)) ? r : null
})

module.exports = { Home, withHome, rows, online, alive, groupMembers, waitFor, freePort, get, load, receiver, FIXTURES, ROOT, BIN }
