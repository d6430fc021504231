'use strict'
// Small helpers shared by the scenarios: timing, statistics, /proc readers,
// free ports, HTTP probes and table formatting.
const fs = require('node:fs')
const net = require('node:net')
const http = require('node:http')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Wall clock in ms with sub-ms precision (same clock as a fixture's performance.timeOrigin). */
const wallNow = () => performance.timeOrigin + performance.now()

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

function percentile(values, p) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const idx = Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))
  return v[idx]
}

function sum(values) {
  return values.reduce((a, b) => a + (Number(b) || 0), 0)
}

/** a / b, or null when either is missing or b is 0. */
function ratio(a, b) {
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null
  return a / b
}

/** A TCP port nobody listens on right now (bound to port 0, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

async function freePorts(n) {
  const ports = new Set()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

// ---------------------------------------------------------------- /proc

/** Process state letter from /proc/<pid>/stat, or null when there is no such process. */
function procState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
  } catch {
    return null
  }
}

/** Alive = exists and is not a zombie (PID 1 here does not reap promptly, so kill -0 lies). */
function isAlive(pid) {
  if (!pid) return false
  const s = procState(pid)
  return s !== null && s !== 'Z' && s !== 'X'
}

/** VmRSS of a process in bytes, or null. */
function rssBytes(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return m ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

// USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
const CLK_TCK = 100

/** utime + stime of a process in ms, or null. */
function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields after "(comm)": state=0 ppid=1 ... utime=11 stime=12
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK
  } catch {
    return null
  }
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
  } catch {
    return null
  }
}

/** Every live pid whose environment holds exactly `entry` (e.g. "BENCH_RUN_ID=abc"). */
function pidsWithEnv(entry) {
  const found = []
  let names
  try {
    names = fs.readdirSync('/proc')
  } catch {
    return found
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    if (pid === process.pid) continue
    let env
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1')
    } catch {
      continue
    }
    if (env.split('\0').includes(entry) && isAlive(pid)) found.push(pid)
  }
  return found
}

function readPidFile(file) {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : null
  } catch {
    return null
  }
}

function countLines(file) {
  let fd
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    return 0
  }
  const buf = Buffer.allocUnsafe(1 << 20)
  let n = 0
  let read
  try {
    while ((read = fs.readSync(fd, buf, 0, buf.length, null)) > 0) {
      for (let i = 0; i < read; i++) if (buf[i] === 10) n++
    }
  } finally {
    fs.closeSync(fd)
  }
  return n
}

// ---------------------------------------------------------------- HTTP

/** One GET on a fresh connection. Resolves {ok, status, pid, ms, code}. Never rejects. */
function probe(port, { timeout = 2000, path = '/' } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now()
    let done = false
    const finish = (r) => {
      if (done) return
      done = true
      resolve({ ms: performance.now() - t0, ...r })
    }
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume()
      res.on('end', () =>
        finish({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, pid: Number(res.headers['x-pid']) || null })
      )
      res.on('error', (err) => finish({ ok: false, code: err.code || err.message }))
    })
    req.setTimeout(timeout, () => {
      req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' }))
    })
    req.on('error', (err) => finish({ ok: false, code: err.code || err.message }))
  })
}

/** Poll until the port answers 2xx (optionally: from `n` distinct pids). */
async function waitHttp(port, { timeout = 15000, pids = 1 } = {}) {
  const deadline = Date.now() + timeout
  const seen = new Set()
  while (Date.now() < deadline) {
    const r = await probe(port, { timeout: 1000 })
    if (r.ok) {
      seen.add(r.pid)
      if (seen.size >= pids) return [...seen]
    } else {
      await sleep(20)
    }
  }
  throw new Error(`nothing answered on port ${port} within ${timeout} ms (pids seen: ${[...seen].join(',') || 'none'})`)
}

async function waitFor(fn, { timeout = 10000, interval = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await sleep(interval)
  }
}

// ---------------------------------------------------------------- formatting

function fmtNum(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—'
  if (typeof v !== 'number') return String(v)
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}
const fmtMs = (v) => (v === null || v === undefined ? '—' : `${fmtNum(v, v < 10 ? 2 : 1)} ms`)
const fmtMB = (bytes) => (bytes === null || bytes === undefined ? '—' : `${fmtNum(bytes / 1048576, 1)} MB`)
const fmtX = (r, digits = 2) => (r === null || r === undefined ? '—' : `${fmtNum(r, digits)}×`)
const fmtRps = (v) => (v === null || v === undefined ? '—' : `${fmtNum(v, 0)} req/s`)
const fmtPct = (v) => (v === null || v === undefined ? '—' : `${fmtNum(v * 100, 1)} %`)

function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => (c === null || c === undefined ? '—' : String(c))))
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] || '').length)))
  const line = (r) => '  ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  const sep = '  ' + widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(cells[0]), sep, ...cells.slice(1).map(line)].join('\n')
}

module.exports = {
  sleep,
  wallNow,
  median,
  percentile,
  sum,
  ratio,
  freePort,
  freePorts,
  procState,
  isAlive,
  rssBytes,
  cpuMs,
  cmdline,
  pidsWithEnv,
  readPidFile,
  countLines,
  probe,
  waitHttp,
  waitFor,
  fmtNum,
  fmtMs,
  fmtMB,
  fmtX,
  fmtRps,
  fmtPct,
  table,
}
