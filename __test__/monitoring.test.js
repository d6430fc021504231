'use strict'
// Issue: monitoring. CPU and memory per instance summed over its whole
// process tree, Node.js runtime figures from the preload, memory limits that
// act within seconds (gracefully, through the reload path in cluster mode),
// `pmr metrics` and the Prometheus endpoint, and `pmr monit` in a real
// terminal.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const http = require('node:http')
const { spawnSync } = require('node:child_process')
const { alive, waitFor, freePort, load, FIXTURES, BIN, withHome, rows, online } = require('./helpers')

const DIR = path.join(FIXTURES, 'monitoring')
const MB = 1048576

const jsonLines = (file) => fs.existsSync(file)
  ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
  : []

/**
 * A small parser of Prometheus' text format (0.0.4): checks the syntax of
 * every line, that each family is declared once with a known type before
 * its samples, and that samples of a family are not interleaved with
 * others. Returns family name → { type, help, samples: [{ labels, value }] }.
 */
function parsePrometheus (text) {
  assert.ok(text.endsWith('\n'), 'the text ends with a newline')
  const families = new Map()
  let current = null
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue
    if (line.startsWith('#')) {
      const m = line.match(/^# (HELP|TYPE) (\S+) (.*)$/)
      if (!m) continue // a plain comment
      const [, kind, name, rest] = m
      assert.match(name, NAME, line)
      if (!families.has(name)) families.set(name, { type: 'untyped', help: null, samples: [] })
      const f = families.get(name)
      if (kind === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest), `type in ${line}`)
        assert.equal(f.samples.length, 0, `TYPE of ${name} before its samples`)
        f.type = rest
      } else {
        f.help = rest
      }
      current = name
      continue
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/)
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`)
    const [, name, labelText, valueText] = m
    assert.equal(name, current, `${name} is not interleaved with another family`)
    const labels = {}
    if (labelText) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y
      let at = 0
      while (at < labelText.length) {
        re.lastIndex = at
        const l = re.exec(labelText)
        assert.ok(l, `labels of ${JSON.stringify(line)}`)
        assert.ok(!(l[1] in labels), `label ${l[1]} once`)
        labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1')
        at = re.lastIndex
      }
    }
    const value = /^[+-]?Inf$/.test(valueText) ? Number(valueText.replace('Inf', 'Infinity')) : Number(valueText)
    assert.ok(valueText === 'NaN' || !Number.isNaN(value), `value of ${line}`)
    families.get(name).samples.push({ labels, value })
  }
  return families
}

const sampleOf = (families, name, match) => {
  const f = families.get(name)
  assert.ok(f, `family ${name}`)
  return f.samples.filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
}

test('a cluster instance leaking past --max-memory-restart is replaced within 3 s, the other never stops serving', withHome(async (home, t) => {
  const port = await freePort()
  const leakFile = path.join(home.dir, 'leak.jsonl')
  const startsFile = path.join(home.dir, 'starts.jsonl')
  home.ok(['start', 'leaky-server.js', '--name', 'api', '-i', '2', '--max-memory-restart', '80M'], {
    cwd: DIR,
    env: { PORT: String(port), LEAK_INSTANCE: '0', LEAK_FILE: leakFile, STARTS_FILE: startsFile, LIMIT_MB: '80', LEAK_AFTER_MS: '1500', LEAK_MB_PER_S: '40' },
  })
  const first = await online(home, 'api', 2)
  const events = home.spawn(['logs', 'api', '--lines', '0'])
  let stream = ''
  events.stdout.on('data', (d) => { stream += d })
  const loop = load(port, { connections: 4, keepAlive: true })

  const crossed = await waitFor('the leak to pass 80M', () => jsonLines(leakFile).find((e) => e.what === 'crossed'), { timeout: 20000, interval: 50 })
  const replaced = await waitFor('a replacement for instance 0', () =>
    jsonLines(startsFile).find((e) => e.instance === '0' && e.pid !== crossed.pid), { timeout: 10000, interval: 50 })
  const took = replaced.at - crossed.at
  t.diagnostic(`replacement listening ${took} ms after the leak passed 80M`)
  assert.ok(took < 3000, `replacement listening ${took} ms after the crossing`)

  await waitFor('the old process to exit', () => !alive(crossed.pid))
  const before = loop.stats.ok
  await waitFor('traffic after the replacement', () => loop.stats.ok > before + 50)
  const s = await loop.stop()
  assert.equal(s.failed, 0, `no request failed: ${JSON.stringify({ errors: s.errors, statuses: s.statuses })}`)

  const now = rows(home, 'api')
  const other = now.find((r) => r.instance === 1)
  assert.equal(other.pid, first.find((r) => r.instance === 1).pid, 'the other instance kept its process')
  assert.equal(other.restarts, 0)
  assert.ok(s.perPid[other.pid] > 0, 'the other instance served throughout')
  const leaked = now.find((r) => r.instance === 0)
  assert.equal(leaked.pid, replaced.pid)
  assert.equal(leaked.restarts, 1)
  assert.equal(leaked.restart_reasons.memory, 1)
  assert.equal(leaked.memory_limit, 80 * MB)
  assert.equal(leaked.memory_exceeded.limit, 80 * MB)
  assert.ok(leaked.memory_exceeded.memory > 80 * MB)

  const desc = home.ok(['describe', String(leaked.id)]).stdout
  assert.match(desc, /memory limit 80M exceeded \(\d+(\.\d)?M\)/)
  assert.match(desc, /restarts +│ 1 \(crash 0, memory 1,/)
  await waitFor('the event in the stream', () => /api#\d+: memory limit 80M exceeded \(\d+(\.\d)?M\)/.test(stream))
  events.kill()
}))

test('memory held by a child process counts: the app is restarted for it', withHome(async (home) => {
  const mark = path.join(home.dir, 'lives')
  home.ok(['start', 'leaky-child.js', '--name', 'kid', '--max-memory-restart', '80M'], {
    cwd: DIR, env: { MARK_FILE: mark, CHILD_MB: '150' },
  })
  const [first] = rows(home, 'kid')
  const child = await waitFor('the child to be started', () => {
    const m = fs.readFileSync(home.logFile('kid-out.log'), 'utf8').match(/child (\d+)/)
    return m && Number(m[1])
  })
  const after = await waitFor('a memory restart', () => {
    const [r] = rows(home, 'kid')
    return r.restart_reasons.memory === 1 && r.status === 'online' ? r : null
  }, { timeout: 15000 })
  assert.notEqual(after.pid, first.pid)
  assert.equal(after.restart_reasons.crash, 0)
  assert.ok(after.memory_exceeded.memory > 80 * MB, 'the tree, child included, was over the limit')
  await waitFor('the old child to be gone', () => !alive(child))
  // The second life has no child: one process, well under the limit.
  const calm = await waitFor('a sample of the new process', () => {
    const [r] = rows(home, 'kid')
    return r.memory > 0 ? r : null
  })
  assert.equal(calm.processes, 1)
  assert.ok(calm.memory < 80 * MB)
  // list() has a memory figure from the first moment of a process, so the
  // second life may not have written its mark yet: wait for it, then count.
  const lives = () => fs.readFileSync(mark, 'utf8').trim().split('\n').length
  await waitFor('the second life to mark its start', () => lives() >= 2)
  assert.equal(lives(), 2)
  assert.match(home.ok(['describe', 'kid']).stdout, /memory limit 80M exceeded \(\d+(\.\d)?M\)/)
}))

test('an idle app: near 0% CPU, its memory and Node.js figures; a non-Node app has no Node.js figures', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web'], { env: { PORT: String(port) } })
  home.ok(['start', 'sleep', '--name', 'nap', '--', '1000'])
  // Three samples after start-up, each near 0%.
  const seen = []
  await waitFor('three samples of the idle app', () => {
    const [r] = rows(home, 'web')
    if (r.uptime_ms < 2500 || !r.node) return false
    if (seen.length === 0 || seen[seen.length - 1].uptime_ms + 900 < r.uptime_ms) seen.push(r)
    return seen.length >= 3
  }, { timeout: 15000, interval: 200 })
  for (const r of seen) {
    assert.ok(r.cpu < 3, `idle CPU ${r.cpu}%`)
    assert.ok(r.memory > 10 * MB && r.memory < 200 * MB, `memory ${r.memory}`)
    assert.equal(r.processes, 1)
    assert.ok(r.node.heap_used > 0 && r.node.heap_total >= r.node.heap_used, JSON.stringify(r.node))
    assert.ok(r.node.active_handles >= 1, JSON.stringify(r.node))
    assert.ok(r.node.event_loop_lag_ms >= 0 && r.node.event_loop_lag_ms < 500, JSON.stringify(r.node))
  }
  const [nap] = rows(home, 'nap')
  assert.equal(nap.node, null)
  assert.ok(nap.memory > 0, 'a non-Node app still has its memory')
  const desc = home.ok(['describe', 'web']).stdout
  assert.match(desc, /heap +│ [\d.]+mb used of [\d.]+mb/)
  assert.match(desc, /event loop lag +│ [\d.]+ ms/)
  assert.doesNotMatch(home.ok(['describe', 'nap']).stdout, /heap/)
}))

test('a blocked event loop shows as a growing lag, and falls back once it runs again', withHome(async (home) => {
  home.ok(['set', 'metrics.interval', '300ms'])
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web'], { env: { PORT: String(port) } })
  await waitFor('Node.js figures', () => rows(home, 'web')[0].node)
  const [r] = rows(home, 'web')
  // SIGSTOP freezes the loop the way a long synchronous task does.
  process.kill(r.pid, 'SIGSTOP')
  try {
    await waitFor('a lag over 1 s', () => rows(home, 'web')[0].node.event_loop_lag_ms > 1000, { timeout: 5000, interval: 200 })
  } finally {
    process.kill(r.pid, 'SIGCONT')
  }
  // Reports come every 300 ms (the preload follows metrics.interval): the lag falls back quickly.
  await waitFor('the lag back to normal', () => rows(home, 'web')[0].node.event_loop_lag_ms < 250, { timeout: 3000, interval: 100 })
}))

test('an app that closes its IPC channel lives on without Node.js figures', withHome(async (home) => {
  home.ok(['start', 'disconnects.js', '--name', 'quiet'], { cwd: DIR })
  await waitFor('Node.js figures', () => rows(home, 'quiet')[0].node)
  home.ok(['sendSignal', 'SIGUSR2', 'quiet'])
  const r = await waitFor('the figures to go', () => { const [x] = rows(home, 'quiet'); return x.node === null ? x : null })
  assert.equal(r.status, 'online')
  assert.equal(r.restarts, 0)
  assert.ok(r.memory > 0, 'CPU and memory are still sampled')
}))

test('pmr metrics prints Prometheus text; the HTTP endpoint serves it on loopback, moves and stops live', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'api', '-i', '2', '--max-memory-restart', '300M'], { env: { PORT: String(port) } })
  home.ok(['start', 'job.sh', '--name', 'job'])
  await online(home, 'api', 2)
  home.ok(['stop', 'job'])
  await waitFor('figures for both instances', () => rows(home, 'api').every((r) => r.memory > 0 && r.node))

  const text = home.ok(['metrics']).stdout
  const fam = parsePrometheus(text)
  for (const [name, type] of [['pmr_up', 'gauge'], ['pmr_restarts_total', 'counter'], ['pmr_cpu_percent', 'gauge'],
    ['pmr_memory_bytes', 'gauge'], ['pmr_uptime_seconds', 'gauge'], ['pmr_event_loop_lag_seconds', 'gauge'],
    ['pmr_heap_used_bytes', 'gauge'], ['pmr_active_handles', 'gauge'], ['pmr_memory_limit_bytes', 'gauge']]) {
    assert.equal(fam.get(name)?.type, type, name)
    assert.ok(fam.get(name).help, `help of ${name}`)
  }
  const up = sampleOf(fam, 'pmr_up', { app: 'api' })
  assert.deepEqual(up.map((s) => s.value), [1, 1])
  assert.deepEqual(up.map((s) => s.labels.instance).sort(), ['0', '1'])
  assert.deepEqual(sampleOf(fam, 'pmr_up', { app: 'job' }).map((s) => s.value), [0])
  assert.deepEqual(sampleOf(fam, 'pmr_restarts_total', { app: 'api', instance: '0' }).map((s) => s.labels.reason).sort(),
    ['crash', 'cron', 'health', 'memory', 'user', 'watch'])
  for (const s of sampleOf(fam, 'pmr_memory_bytes', { app: 'api' })) assert.ok(s.value > 10 * MB)
  assert.equal(sampleOf(fam, 'pmr_memory_bytes', { app: 'job' }).length, 0, 'a stopped instance has no usage')
  assert.deepEqual(sampleOf(fam, 'pmr_memory_limit_bytes', { app: 'api' }).map((s) => s.value), [300 * MB, 300 * MB])
  assert.equal(sampleOf(fam, 'pmr_heap_used_bytes', { app: 'api' }).length, 2)
  assert.equal(sampleOf(fam, 'pmr_heap_used_bytes', { app: 'job' }).length, 0)

  const scrape = (p, urlPath = '/metrics') => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: p, path: urlPath, agent: false, timeout: 3000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }))
    }).on('error', reject)
  })

  const p1 = await freePort()
  const set = home.ok(['set', 'metrics.port', String(p1)])
  assert.match(set.stdout, new RegExp(`Prometheus metrics at http://127\\.0\\.0\\.1:${p1}/metrics`))
  const got = await scrape(p1)
  assert.equal(got.status, 200)
  assert.equal(got.type, 'text/plain; version=0.0.4; charset=utf-8')
  assert.deepEqual([...parsePrometheus(got.body).keys()], [...fam.keys()])
  assert.equal((await scrape(p1, '/nope')).status, 404)

  // A port that is taken is refused, and the endpoint stays where it was.
  const busy = http.createServer()
  await new Promise((resolve) => busy.listen(0, '127.0.0.1', resolve))
  try {
    const taken = home.run(['set', 'metrics.port', String(busy.address().port)])
    assert.equal(taken.code, 1)
    assert.match(taken.stderr, /metrics\.port: cannot serve metrics on 127\.0\.0\.1:\d+: Address already in use/)
    assert.equal(home.ok(['get', 'metrics.port']).stdout.trim(), String(p1))
    assert.equal((await scrape(p1)).status, 200)
  } finally {
    busy.close()
  }

  // Moving it frees the old port at once; the setting survives a daemon restart.
  const p2 = await freePort()
  home.ok(['set', 'metrics.port', String(p2)])
  await assert.rejects(scrape(p1), /ECONNREFUSED/)
  assert.equal((await scrape(p2)).status, 200)
  home.ok(['kill'])
  home.ok(['ping'])
  assert.equal((await scrape(p2)).status, 200)
  assert.match(home.ok(['set', 'metrics.port', 'none']).stdout, /the metrics endpoint is off/)
  await assert.rejects(scrape(p2), /ECONNREFUSED/)
}))

test('pmr monit needs a terminal', withHome(async (home) => {
  const r = home.run(['monit'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /pmr monit needs a terminal; .*pmr list or pmr jlist/)
}))

const hasTmux = spawnSync('tmux', ['-V']).status === 0

test('pmr monit in a real 80x24 terminal: apps and figures, reload with r, q restores the terminal', { skip: !hasTmux && 'tmux is not installed' }, withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'api', '-i', '2'], { env: { PORT: String(port) } })
  await online(home, 'api', 2)
  await waitFor('figures for both instances', () => rows(home, 'api').every((r) => r.memory > 0 && r.node))

  const sock = path.join(home.dir, 'tmux.sock')
  const tmux = (...args) => {
    const r = spawnSync('tmux', ['-S', sock, ...args], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  tmux('-f', '/dev/null', 'new-session', '-d', '-x', '80', '-y', '24', 'bash --norc --noprofile')
  try {
    home.pids.add(Number(tmux('display', '-p', '#{pid}').trim()))
    tmux('send-keys', `PS1='$ ' PMR_HOME='${home.dir}' NO_COLOR=1 '${process.execPath}' '${BIN}' monit; echo "MONIT_EXIT=$?"; stty -a | grep -o -- '-\\?icanon'`, 'Enter')
    const pane = () => tmux('capture-pane', '-p')
    const screen = await waitFor('the dashboard with figures', () => {
      const s = pane()
      return /pmr monit: 2 instances/.test(s) && (s.match(/ api +online +\d+\.\d% +[\d.]+mb/g) || []).length === 2 && /heap +[\d.]+mb/.test(s) ? s : null
    })
    assert.equal(tmux('display', '-p', '#{alternate_on}').trim(), '1')
    const lines = screen.split('\n')
    assert.ok(lines.every((l) => [...l].length <= 80), 'fits 80 columns')
    assert.match(screen, /q quit/)

    tmux('send-keys', 'j')
    await waitFor('the second instance selected', () => /api #1 online/.test(pane()))
    tmux('send-keys', 'r')
    await waitFor('a reload from monit', () => rows(home, 'api').every((r) => r.restart_reasons.user === 1 && r.status === 'online'), { timeout: 15000 })
    await waitFor('monit to say so', () => /reloaded api/.test(pane()))

    tmux('resize-window', '-x', '100', '-y', '30')
    await waitFor('a redraw at the new size', () => pane().split('\n').some((l) => /^└─+┘$/.test(l.trim()) && [...l].length === 100))

    tmux('send-keys', 'q')
    // The stty line comes after the exit status: wait for both.
    const after = await waitFor('monit to exit and stty to report', () => { const s = pane(); return /MONIT_EXIT=\d+/.test(s) && /^-?icanon$/m.test(s) ? s : null })
    assert.match(after, /MONIT_EXIT=0/)
    assert.match(after, /^icanon$/m, 'the terminal is back in canonical mode')
    assert.doesNotMatch(after, /pmr monit:/, 'the alternate screen is gone')
    assert.equal(tmux('display', '-p', '#{alternate_on}').trim(), '0')
  } finally {
    spawnSync('tmux', ['-S', sock, 'kill-server'])
  }
}))
