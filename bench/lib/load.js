'use strict'
// Load generators: autocannon (keep-alive), wrk (Connection: close, and the
// reload scenario because it honours Connection: close), a Node client for
// the split of short connections over workers, and the crash poller.
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const u = require('./util')
const { BENCH } = require('./managers')

const AUTOCANNON_BIN = path.join(BENCH, 'node_modules', '.bin', 'autocannon')

function wrkPath() {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/bin', '/usr/local/bin'])) {
    const p = path.join(dir, 'wrk')
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {}
  }
  return null
}

function wrkVersion() {
  const p = wrkPath()
  if (!p) return null
  try {
    execFileSync(p, ['-v'], { stdio: 'pipe' })
  } catch (err) {
    // wrk -v prints its version and exits 1
    const out = String(err.stdout || '') + String(err.stderr || '')
    const m = /wrk\s+(\S+)/.exec(out)
    return m ? m[1] : 'unknown'
  }
  return 'unknown'
}

function requireWrk() {
  if (!wrkPath()) {
    const err = new Error(
      'wrk is not installed. It comes from the Debian package: `apt-get install -y wrk` (as root), then run again.'
    )
    err.code = 'NO_WRK'
    throw err
  }
}

function requireBenchDeps() {
  for (const p of [AUTOCANNON_BIN, path.join(BENCH, 'node_modules', '.bin', 'pm2')]) {
    if (!fs.existsSync(p)) {
      const err = new Error(`${path.relative(process.cwd(), p)} is missing: run \`npm install\` inside bench/ first.`)
      err.code = 'NO_DEPS'
      throw err
    }
  }
}

/** autocannon as a child process; resolves {rps, total, errors, timeouts, non2xx, latency_p50_ms, latency_p99_ms}. */
function autocannon(scope, url, { connections = 50, duration = 10 } = {}) {
  return new Promise((resolve, reject) => {
    const child = scope.spawn(AUTOCANNON_BIN, ['-c', String(connections), '-d', String(duration), '-j', '-n', url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => {
      try {
        const j = JSON.parse(out)
        resolve({
          rps: j.requests.average,
          total: j.requests.total,
          errors: j.errors,
          timeouts: j.timeouts,
          non2xx: j.non2xx,
          latency_p50_ms: j.latency.p50,
          latency_p99_ms: j.latency.p99,
          duration_s: j.duration,
        })
      } catch (e) {
        reject(new Error(`autocannon failed (exit ${code}): ${err.trim().slice(0, 500) || out.slice(0, 500)}`))
      }
    })
  })
}

function parseWrk(text) {
  const num = (re) => {
    const m = re.exec(text)
    return m ? Number(m[1]) : 0
  }
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const total = /(\d+) requests in ([\d.]+)(m?s|m)\b/.exec(text)
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    total: total ? Number(total[1]) : 0,
    socket_errors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/),
  }
}

function socketErrorTotal(w) {
  const s = w.socket_errors
  return s.connect + s.read + s.write + s.timeout
}

/**
 * Start wrk. `duration` in seconds; with `untilStopped`, wrk runs long and
 * stop() sends SIGINT (wrk then prints its summary). Resolves via .done.
 */
function startWrk(scope, url, { threads = 1, connections = 20, duration = 10, headers = [], untilStopped = false } = {}) {
  requireWrk()
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${untilStopped ? 3600 : duration}s`]
  for (const h of headers) args.push('-H', h)
  args.push(url)
  const child = scope.spawn(wrkPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ ...parseWrk(out), exit: code, signal, raw: out }))
  })
  return { child, done, stop: () => child.kill('SIGINT') }
}

async function wrk(scope, url, opts) {
  return startWrk(scope, url, opts).done
}

/**
 * `total` requests over fresh connections (Connection: close), `concurrency`
 * at a time; counts which worker pid answered each (x-pid header).
 */
async function shortConnectionSplit(port, { total = 2000, concurrency = 20 } = {}) {
  const byPid = new Map()
  let errors = 0
  let next = 0
  async function lane() {
    while (next < total) {
      next++
      const r = await u.probe(port, { timeout: 5000 })
      if (r.ok && r.pid) byPid.set(r.pid, (byPid.get(r.pid) || 0) + 1)
      else errors++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  const counts = [...byPid.values()].sort((a, b) => b - a)
  const served = u.sum(counts)
  return {
    total,
    errors,
    by_pid: Object.fromEntries(byPid),
    shares: counts.map((c) => c / (served || 1)),
  }
}

/**
 * Open `connections` keep-alive connections at once (as a load generator
 * does when it starts) and count which worker pid accepted each.
 */
async function keepAliveSplit(port, { connections = 50 } = {}) {
  const http = require('node:http')
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  const byPid = new Map()
  let errors = 0
  await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise((resolve) => {
          const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
            const pid = Number(res.headers['x-pid']) || null
            res.resume()
            res.on('end', () => {
              if (pid) byPid.set(pid, (byPid.get(pid) || 0) + 1)
              else errors++
              resolve()
            })
          })
          req.setTimeout(5000, () => req.destroy(new Error('timeout')))
          req.on('error', () => {
            errors++
            resolve()
          })
        })
    )
  )
  agent.destroy()
  const counts = [...byPid.values()].sort((a, b) => b - a)
  return { connections, errors, by_pid: Object.fromEntries(byPid), counts }
}

/**
 * Kill -9 `pid` while a fresh connection is opened every `every` ms. Returns
 * failed connects (refused), other errors (e.g. reset of a request the dead
 * worker held), the ms from the kill until a new pid answered, and the
 * longest wait of any successful request started after the kill.
 */
async function crashPoll(port, pid, { every = 5, before = 200, after = 200, timeout = 10000 } = {}) {
  const results = []
  const inflight = new Set()
  let killAt = null
  let servedAgainAt = null
  let stop = false
  const fire = () => {
    const startedAt = u.wallNow()
    const p = u.probe(port, { timeout: 3000 }).then((r) => {
      const endedAt = u.wallNow()
      results.push({ startedAt, endedAt, ...r })
      if (r.ok && r.pid && r.pid !== pid && killAt !== null && servedAgainAt === null) servedAgainAt = endedAt
    })
    inflight.add(p)
    p.finally(() => inflight.delete(p))
  }
  const loop = (async () => {
    while (!stop) {
      fire()
      await u.sleep(every)
    }
  })()
  await u.sleep(before)
  killAt = u.wallNow()
  try {
    process.kill(pid, 'SIGKILL')
  } catch (err) {
    stop = true
    await loop
    throw new Error(`could not kill ${pid}: ${err.message}`)
  }
  const deadline = Date.now() + timeout
  while (servedAgainAt === null && Date.now() < deadline) await u.sleep(5)
  await u.sleep(after)
  stop = true
  await loop
  await Promise.all([...inflight])

  const afterKill = results.filter((r) => r.startedAt >= killAt)
  const beforeKill = results.filter((r) => r.startedAt < killAt)
  const refused = afterKill.filter((r) => !r.ok && r.code === 'ECONNREFUSED').length
  const otherErrors = results.filter((r) => !r.ok && r.code !== 'ECONNREFUSED' && r.endedAt >= killAt)
  const okAfter = afterKill.filter((r) => r.ok)
  return {
    polls_after_kill: afterKill.length,
    polls_before_kill: beforeKill.length,
    refused,
    other_errors: otherErrors.length,
    other_error_codes: [...new Set(otherErrors.map((r) => r.code || r.status))],
    ms_until_serves: servedAgainAt === null ? null : servedAgainAt - killAt,
    longest_wait_ms: okAfter.length ? Math.max(...okAfter.map((r) => r.ms)) : null,
  }
}

module.exports = {
  AUTOCANNON_BIN,
  wrkPath,
  wrkVersion,
  requireWrk,
  requireBenchDeps,
  autocannon,
  startWrk,
  wrk,
  parseWrk,
  socketErrorTotal,
  shortConnectionSplit,
  keepAliveSplit,
  crashPoll,
}
