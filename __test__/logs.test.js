'use strict'
// Issue 6: logs. Capture into whole lines, timestamps, JSON lines, built-in
// rotation that loses no line, `pmr logs` (history in order, streaming,
// flags), flush, reloadLogs, a full disk and a stalled client, end to end
// with real processes in a private PMR_HOME.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const zlib = require('node:zlib')
const { spawnSync } = require('node:child_process')
const { waitFor, FIXTURES, withHome } = require('./helpers')

const LOGS = path.join(FIXTURES, 'logs')

const app = (home, name) => home.jlist().filter((r) => r.name === name)
const read = (file) => { try { return fs.readFileSync(file, 'utf8') } catch { return '' } }
const lines = (text) => text.split('\n').filter((l) => l !== '')

/** The rotated files of `base` (README: `<stem>__<UTC time>Z[-n].<ext>[.gz]`),
 * oldest first. */
function rotatedFiles (base) {
  const dir = path.dirname(base)
  const ext = path.extname(base)
  const stem = path.basename(base, ext)
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const re = new RegExp(`^${esc(stem)}__(\\d{4}-\\d\\d-\\d\\d_\\d\\d-\\d\\d-\\d\\d)Z(?:-(\\d+))?${esc(ext)}(\\.gz)?$`)
  return fs.readdirSync(dir)
    .map((name) => ({ name, m: re.exec(name) }))
    .filter((x) => x.m)
    .map(({ name, m }) => ({ file: path.join(dir, name), stamp: m[1], n: Number(m[2] || 0), gz: !!m[3] }))
    .sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : a.n - b.n))
}

/** Every line of `base`, its rotated files first (gunzipped), in order. */
function allLines (base) {
  let text = ''
  for (const r of rotatedFiles(base)) {
    const buf = fs.readFileSync(r.file)
    text += r.gz ? zlib.gunzipSync(buf).toString('utf8') : buf.toString('utf8')
  }
  return lines(text + read(base))
}

/** Parses a burst.js line; null unless it is whole (payload of the stated
 * length, one letter repeated). */
function burstLine (l) {
  const m = /^(i\d+) (\d{6}) (\d+) ([a-z]+)$/.exec(l)
  if (!m || m[4].length !== Number(m[3]) || m[4] !== m[4][0].repeat(m[4].length)) return null
  return { tag: m[1], seq: Number(m[2]) }
}

test('two instances under heavy output: every line whole in the merged file, none mixed', withHome(async (home) => {
  const N = 20000
  home.ok(['start', path.join(LOGS, 'burst.js'), '--name', 'burst', '-i', '2', '--merge-logs'],
    { env: { LINES: String(N), LONG_EVERY: '2500', LONG_LEN: '150000' } })
  const out = home.logFile('burst-out.log')
  const err = home.logFile('burst-error.log')
  await waitFor('both bursts to end', () => lines(read(err)).filter((l) => l.startsWith('done')).length === 2, { timeout: 60000 })
  const all = await waitFor('every line in the file', () => {
    const ls = lines(read(out))
    return ls.length >= 2 * N ? ls : null
  }, { timeout: 30000 })
  assert.equal(all.length, 2 * N)
  const next = {}
  for (const l of all) {
    const p = burstLine(l)
    assert.ok(p, `a whole line, not a cut or mixed one: ${l.slice(0, 80)}...`)
    assert.equal(p.seq, next[p.tag] || 0, `${p.tag}'s lines in order`)
    next[p.tag] = p.seq + 1
  }
  assert.deepEqual(next, { i0: N, i1: N })
  const longOnes = all.filter((l) => l.length > 150000).length
  assert.equal(longOnes, 2 * (N / 2500), 'the lines longer than a pipe buffer are there, whole')
}))

test('a crash keeps the partial last line', withHome(async (home) => {
  home.ok(['start', path.join(LOGS, 'crash-partial.js'), '--name', 'part', '--no-autorestart'])
  const text = await waitFor('the partial line', () => {
    const t = read(home.logFile('part-out.log'))
    return t.includes('partial') ? t : null
  })
  assert.equal(text, 'line 0\nline 1\npartial without newline\n')
  await waitFor('the crash to be recorded', () => app(home, 'part')[0].last_exit?.signal === 'SIGKILL')
}))

test('rotation under a burst: every line once and in order across gzipped files', withHome(async (home) => {
  const N = 20000
  const dir = fs.mkdtempSync(path.join(home.dir, 'eco-'))
  const eco = path.join(dir, 'ecosystem.config.json')
  fs.writeFileSync(eco, JSON.stringify({
    apps: [{ name: 'rot', script: path.join(LOGS, 'burst.js'), env: { LINES: N }, max_size: '16K', retain: 1000, compress: true }],
  }))
  home.ok(['start', eco])
  const out = home.logFile('rot-out.log')
  await waitFor('the burst to end', () => read(home.logFile('rot-error.log')).includes('done'), { timeout: 60000 })
  await waitFor('every rotated file compressed', () => {
    const r = rotatedFiles(out)
    const tmp = fs.readdirSync(path.dirname(out)).some((n) => n.endsWith('.tmp'))
    return r.length > 0 && r.every((x) => x.gz) && !tmp && allLines(out).length === N
  }, { timeout: 30000 })
  const rotated = rotatedFiles(out)
  assert.ok(rotated.length >= 20, `${rotated.length} rotated files for ~500K at 16K`)
  const all = allLines(out)
  assert.equal(all.length, N)
  all.forEach((l, i) => assert.equal(burstLine(l)?.seq, i, `line ${i} once, in order: ${l}`))
  for (const r of rotated) {
    const size = zlib.gunzipSync(fs.readFileSync(r.file)).length
    assert.ok(size <= 16 * 1024, `${r.file}: ${size} bytes, rotated before passing max_size`)
  }
  assert.ok(fs.statSync(out).size <= 16 * 1024)
}))

test('retain prunes the oldest rotated files; settings come from pmr set', withHome(async (home) => {
  home.ok(['set', 'log.max_size', '16K'])
  home.ok(['set', 'log.retain', '3'])
  assert.equal(home.ok(['get', 'log.max_size']).stdout.trim(), '16384')
  const N = 20000
  home.ok(['start', path.join(LOGS, 'burst.js'), '--name', 'kept'], { env: { LINES: String(N) } })
  const out = home.logFile('kept-out.log')
  await waitFor('the burst to end', () => read(home.logFile('kept-error.log')).includes('done'), { timeout: 60000 })
  await waitFor('3 rotated files left', () => rotatedFiles(out).length === 3, { timeout: 30000 })
  const kept = rotatedFiles(out)
  assert.ok(kept.every((r) => !r.gz), 'log.compress is off by default')
  const all = allLines(out)
  const first = burstLine(all[0]).seq
  assert.ok(first > 0, 'older lines were pruned')
  all.forEach((l, i) => assert.equal(burstLine(l)?.seq, first + i, 'what is kept is the newest, without a gap'))
  assert.equal(burstLine(all[all.length - 1]).seq, N - 1)
}))

test('log_type json: one JSON object per line', withHome(async (home) => {
  home.ok(['start', 'lines.js', '--name', 'js', '--log-type', 'json'], { env: { COUNT: '3' } })
  const out = home.logFile('js-out.log')
  const got = await waitFor('three lines', () => {
    const ls = lines(read(out))
    return ls.length === 3 ? ls : null
  })
  const objs = got.map((l) => JSON.parse(l))
  assert.deepEqual(objs.map((o) => o.message), ['out 0', 'out 1', 'out 2'])
  for (const o of objs) {
    assert.equal(o.app, 'js')
    assert.equal(o.id, 0)
    assert.equal(o.instance, 0)
    assert.equal(o.stream, 'out')
    assert.ok(!Number.isNaN(Date.parse(o.timestamp)), o.timestamp)
  }
  const err = await waitFor('err lines', () => lines(read(home.logFile('js-error.log'))).length === 3 && lines(read(home.logFile('js-error.log'))))
  assert.equal(JSON.parse(err[0]).stream, 'err')
  assert.match(home.ok(['describe', 'js']).stdout, /log type +│ json/)
}))

test('--time and log_date_format prefix every line', withHome(async (home) => {
  home.ok(['start', 'lines.js', '--name', 'iso', '--time'], { env: { COUNT: '2' } })
  home.ok(['start', 'lines.js', '--name', 'fmt', '--log-date-format', 'YYYY-MM-DD HH:mm'], { env: { COUNT: '2' } })
  const iso = await waitFor('iso lines', () => lines(read(home.logFile('iso-out.log'))).length === 2 && lines(read(home.logFile('iso-out.log'))))
  for (const [i, l] of iso.entries()) {
    assert.match(l, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}[+-]\\d\\d:\\d\\d: out ${i}$`))
  }
  const fmt = await waitFor('formatted lines', () => lines(read(home.logFile('fmt-out.log'))).length === 2 && lines(read(home.logFile('fmt-out.log'))))
  assert.match(fmt[0], /^\d{4}-\d\d-\d\d \d\d:\d\d: out 0$/)
}))

test('logs --lines: out and err in the order they were written; --out, --json, --timestamp', withHome(async (home) => {
  home.ok(['start', path.join(LOGS, 'alternate.js'), '--name', 'alt'])
  await waitFor('all ten lines', () => read(home.logFile('alt-error.log')).includes('line 9'))
  const raw = home.ok(['logs', 'alt', '--lines', '3', '--nostream', '--raw']).stdout
  assert.equal(raw, 'line 4\nline 5\nline 6\nline 7\nline 8\nline 9\n')
  const onlyOut = home.ok(['logs', 'alt', '--lines', '3', '--nostream', '--raw', '--out']).stdout
  assert.equal(onlyOut, 'line 4\nline 6\nline 8\n')
  const shown = home.ok(['logs', 'alt', '--lines', '2', '--nostream']).stdout
  assert.match(shown, /last 2 lines of .*alt-out\.log, .*alt-error\.log, in the order they were written:\n0\|alt +\| line 6\n0\|alt +\| err \| line 7\n/)
  const json = home.ok(['logs', 'alt', '--lines', '2', '--nostream', '--json']).stdout
  const objs = lines(json).map((l) => JSON.parse(l))
  assert.deepEqual(objs.map((o) => [o.message, o.stream]), [['line 6', 'out'], ['line 7', 'err'], ['line 8', 'out'], ['line 9', 'err']])
  assert.ok(objs.every((o) => o.app === 'alt' && o.id === 0 && !Number.isNaN(Date.parse(o.timestamp))))
  const stamped = home.ok(['logs', 'alt', '--lines', '1', '--nostream', '--raw', '--timestamp=HH:mm:ss']).stdout
  assert.match(stamped, /^\d\d:\d\d:\d\d: line 8\n\d\d:\d\d:\d\d: line 9\n$/)
  assert.equal(home.run(['logs', 'alt', '--out', '--err']).code, 2, '--out and --err conflict')
  assert.match(home.run(['logs', 'alt', '--nostream', '--timestamp=%Q']).stderr, /--timestamp: '%Q' is not a date format/)

  // A new app of the same name: its files have lines from before it, which
  // only the files know, so they are shown file by file.
  home.ok(['delete', 'alt'])
  home.ok(['start', path.join(LOGS, 'alternate.js'), '--name', 'alt'], { env: { COUNT: '0' } })
  const old = home.ok(['logs', 'alt', '--lines', '2', '--nostream']).stdout
  assert.match(old, /alt-out\.log last 2 lines:\n\d+\|alt +\| line 6\n\d+\|alt +\| line 8\n.*alt-error\.log last 2 lines:\n\d+\|alt +\| line 7\n\d+\|alt +\| line 9\n/)
}))

test('streaming: new lines reach pmr logs within 100 ms, after the history, without repeats', withHome(async (home) => {
  home.ok(['start', path.join(LOGS, 'ticker.js'), '--name', 'tick'], { env: { INTERVAL: '150' } })
  await waitFor('a few ticks', () => lines(read(home.logFile('tick-out.log'))).length >= 3)
  const follower = home.spawn(['logs', 'tick', '--lines', '2', '--raw'])
  const delays = []
  const seen = []
  let buf = ''
  follower.stdout.on('data', (d) => {
    const now = Date.now()
    buf += d
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      const m = /^tick (\d+) (\d+)$/.exec(l)
      if (!m) continue
      seen.push(Number(m[1]))
      if (seen.length > 2) delays.push(now - Number(m[2]))
    }
  })
  try {
    await waitFor('10 streamed lines', () => delays.length >= 10, { timeout: 15000 })
  } finally {
    follower.kill('SIGINT')
  }
  seen.forEach((n, i) => i > 0 && assert.equal(n, seen[i - 1] + 1, `no gap or repeat between history and stream: ${seen}`))
  delays.sort((a, b) => a - b)
  const median = delays[delays.length >> 1]
  assert.ok(median < 100, `median delay ${median} ms (all: ${delays.join(', ')})`)
}))

test('a full disk: output is dropped and counted, the app never blocks, writing resumes', withHome(async (home, t) => {
  if (spawnSync('prlimit', ['--version']).status !== 0) return t.skip('prlimit (util-linux) is not installed')
  const progress = path.join(home.dir, 'progress')
  home.ok(['start', path.join(LOGS, 'steady.js'), '--name', 'disk'], { env: { PROGRESS_FILE: progress } })
  const out = home.logFile('disk-out.log')
  await waitFor('some output', () => read(out).length > 20000)
  const daemon = home.daemonPid()
  // RLIMIT_FSIZE on the daemon: its writes past this offset fail with EFBIG
  // (Node ignores SIGXFSZ), like a disk that is full.
  const limit = fs.statSync(out).size + 20000
  const set = (v) => {
    const r = spawnSync('prlimit', ['--pid', String(daemon), `--fsize=${v}:`], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
  }
  set(limit)
  let restored = false
  try {
    await waitFor('bytes to be dropped', () => app(home, 'disk')[0].log_dropped_bytes > 50000)
    const at = Number(read(progress))
    await waitFor('the app to go on writing while nothing reaches the file', () => Number(read(progress)) > at + 2000)
    assert.ok(fs.statSync(out).size <= limit)
    assert.match(home.ok(['describe', 'disk']).stdout, /log bytes dropped/)
    set('unlimited')
    restored = true
  } finally {
    if (!restored) set('unlimited')
  }
  const stuck = fs.statSync(out).size
  await waitFor('writing to resume', () => fs.statSync(out).size > stuck + 20000)
  const ls = lines(read(out))
  let gaps = 0
  for (let i = 0; i < ls.length; i++) {
    assert.match(ls[i], /^n \d{8} x+$/, 'only whole lines, nothing cut by the failed writes')
    assert.equal(ls[i].length, 99)
    const n = Number(ls[i].slice(2, 10))
    if (i > 0 && n !== Number(ls[i - 1].slice(2, 10)) + 1) gaps++
  }
  assert.equal(gaps, 1, 'one gap where the disk was full')
  const log = read(path.join(home.dir, 'pmr.log'))
  assert.match(log, /cannot write .*disk-out\.log: .*dropping output until it can be written/)
  assert.match(log, /writing to .*disk-out\.log again after dropping \d+ bytes/)
}))

test('a stalled logs client never slows the apps', withHome(async (home) => {
  home.ok(['ping'])
  // A client that subscribes, then never reads.
  const sock = net.connect(path.join(home.dir, 'pmr.sock'))
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  sock.write(JSON.stringify({ v: 1, id: 1, cmd: 'subscribe', logs: true, events: true }) + '\n')
  let got = ''
  sock.on('data', (d) => { got += d })
  await waitFor('the subscription', () => got.includes('"subscribed":true'))
  sock.pause()
  try {
    const N = 100000
    home.ok(['start', path.join(LOGS, 'burst.js'), '--name', 'loud'], { env: { LINES: String(N) } })
    await waitFor('the burst to end', () => read(home.logFile('loud-error.log')).includes('done'), { timeout: 30000 })
    await waitFor('every line in the file', () => lines(read(home.logFile('loud-out.log'))).length === N, { timeout: 30000 })
    assert.equal(app(home, 'loud')[0].status, 'online')
    sock.resume()
    await waitFor('the client to be told it missed lines', () => /\{"lagged":\d+\}/.test(got), { timeout: 15000 })
  } finally {
    sock.destroy()
  }
}))

test('flush empties the files in place and the apps keep writing to them', withHome(async (home) => {
  home.ok(['start', path.join(LOGS, 'ticker.js'), '--name', 'tick'], { env: { INTERVAL: '20' } })
  home.ok(['start', 'lines.js', '--name', 'other'], { env: { COUNT: '5' } })
  const out = home.logFile('tick-out.log')
  await waitFor('ticks', () => lines(read(out)).length > 20)
  const tickNo = (l) => Number(l.split(' ')[1])
  const last = tickNo(lines(read(out)).pop())
  const r = home.ok(['flush', 'tick'])
  assert.match(r.stdout, /emptied .*tick-out\.log/)
  assert.match(r.stdout, /emptied .*tick-error\.log/)
  assert.doesNotMatch(r.stdout, /other/)
  await waitFor('new ticks in the emptied file', () => lines(read(out)).length >= 5)
  const text = read(out)
  assert.ok(!text.includes('\0'), 'no hole where the old content was')
  assert.match(text, /^tick \d+ \d+\n/)
  assert.ok(lines(text).every((l) => tickNo(l) >= last), 'the old lines are gone')
  const past = lines(home.ok(['logs', 'tick', '--lines', '100', '--nostream', '--raw']).stdout)
  assert.ok(past.length > 0 && past.every((l) => tickNo(l) >= last), 'the history was flushed too')
  assert.match(home.ok(['flush']).stdout, /emptied .*other-out\.log/)
  assert.equal(read(home.logFile('other-out.log')), '')
  assert.match(home.run(['flush', 'ghost']).stderr, /ghost/)
}))

test('reloadLogs: after an external tool moves a file, lines go to a new one', withHome(async (home) => {
  home.ok(['start', path.join(LOGS, 'ticker.js'), '--name', 'tick'], { env: { INTERVAL: '20' } })
  const out = home.logFile('tick-out.log')
  await waitFor('ticks', () => lines(read(out)).length > 3)
  fs.renameSync(out, out + '.moved')
  home.ok(['reloadLogs'])
  await waitFor('a new file with new lines', () => lines(read(out)).length > 3)
  const moved = read(out + '.moved').length
  await waitFor('more lines in the new file', () => lines(read(out)).length > 10)
  assert.equal(read(out + '.moved').length, moved, 'the moved file gets nothing more')
}))
