'use strict'
// Issue 20: health checks and the event-loop watchdog. A process that is
// alive but does not serve is replaced (reason `health`) through the
// zero-downtime path; each cluster worker is checked on its own; checks
// that flap never replace; the crash-loop rule ends a hopeless loop; bad
// options are refused with one line naming the key.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { waitFor, freePort, get, load, withHome, rows, online, FIXTURES } = require('./helpers')

const APP = path.join(FIXTURES, 'health', 'app.js')
// A generous timeout: a loaded CI machine must not make a healthy instance fail.
const FAST = ['--health-interval', '200ms', '--health-timeout', '1s', '--health-failures', '2']

const healthOf = (home, name) => rows(home, name).map((r) => r.health)
const daemonLog = (home) => fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8')

test('an HTTP check passes, then an instance that stops answering it is replaced within interval × failures + 1 s', withHome(async (home, t) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'api', '--health-http', '/healthz', ...FAST], { env: { PORT: String(port), BREAK: 'hang' } })
  const [first] = await waitFor('a healthy instance', () => {
    const r = rows(home, 'api')
    return r.length === 1 && r[0].health && r[0].health.status === 'healthy' ? r : null
  })
  assert.equal(first.health.check, 'http')
  assert.equal(first.health.last_result, 'HTTP 200')
  assert.equal(first.health.consecutive_failures, 0)
  assert.ok(first.health.last_check_at > Date.now() - 5000)

  const broke = JSON.parse((await get(port, '/break')).body).pid
  assert.equal(broke, first.pid)
  const t0 = Date.now()
  const [after] = await waitFor('the replacement', () => {
    const r = rows(home, 'api')
    return r.length === 1 && r[0].pid !== first.pid && r[0].status === 'online' ? r : null
  })
  const took = Date.now() - t0
  t.diagnostic(`replaced ${took} ms after /healthz stopped answering`)
  // 2 failed checks (each a 1 s timeout) 200 ms apart, then the restart.
  assert.ok(took < 200 * 2 + 1000 * 2 + 1000 + 1000, `replaced after ${took} ms`)
  assert.equal(after.restart_reasons.health, 1)
  assert.equal(after.restarts, 1)
  assert.match(daemonLog(home), new RegExp(`unhealthy \\(pid ${first.pid}\\): GET /healthz failed 2 times in a row, the last: no answer within 1000 ms; replacing it`))
  const served = await waitFor('the replacement to serve', () => get(port, '/').catch(() => null))
  assert.equal(JSON.parse(served.body).pid, after.pid)
}))

test('cluster: only the broken worker is replaced, under keep-alive load without a failed request', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'api', '-i', '2', '--health-http', '/healthz', ...FAST], { env: { PORT: String(port) } })
  const first = await online(home, 'api', 2)
  await waitFor('both healthy', () => healthOf(home, 'api').every((h) => h && h.status === 'healthy'))
  const loop = load(port, { connections: 8, keepAlive: true })
  await waitFor('traffic', () => loop.stats.ok > 200)
  const broke = JSON.parse((await get(port, '/break')).body).pid
  const brokenRow = first.find((r) => r.pid === broke)
  const other = first.find((r) => r.pid !== broke)
  const after = await waitFor('the broken worker replaced', () => {
    const r = rows(home, 'api')
    const b = r.find((x) => x.id === brokenRow.id)
    return b && b.pid !== broke && b.status === 'online' ? r : null
  })
  const before = loop.stats.ok
  await waitFor('traffic after', () => loop.stats.ok > before + 200)
  const s = await loop.stop()
  assert.equal(s.failed, 0, `no request failed: ${JSON.stringify({ errors: s.errors, statuses: s.statuses })}`)
  const keptRow = after.find((x) => x.id === other.id)
  assert.equal(keptRow.pid, other.pid, 'the healthy worker was left alone')
  assert.equal(keptRow.restarts, 0)
  assert.equal(after.find((x) => x.id === brokenRow.id).restart_reasons.health, 1)
  assert.match(daemonLog(home), new RegExp(`reload: replacement ready: old pid ${broke}, new pid`), 'replaced through a reload')
  assert.match(daemonLog(home), /GET \/healthz failed 2 times in a row, the last: HTTP 500: database unreachable/)
}))

test('a flapping command check never replaces; a TCP check that never passes ends errored by the crash-loop rule', withHome(async (home) => {
  const dir = fs.mkdtempSync(path.join(home.dir, 'cwd-'))
  const port = await freePort()
  home.ok(['start', APP, '--name', 'flap', '--cwd', dir, '--health-cmd', `sh ${path.join(FIXTURES, 'health', 'flip.sh')}`, ...FAST],
    { env: { PORT: String(port) } })
  const dead = await freePort()
  home.ok(['start', APP, '--name', 'nothing', '--health-tcp', String(dead), '--health-interval', '100ms', '--health-failures', '1', '--max-restarts', '2'],
    { env: { PORT: String(await freePort()) } })

  const [errored] = await waitFor('nothing errored', () => {
    const r = rows(home, 'nothing')
    return r[0] && r[0].status === 'errored' ? r : null
  }, { timeout: 15000 })
  assert.match(errored.errored_reason, /2 unstable restarts \(max_restarts 2\).*unhealthy: TCP connect to port \d+ failed 1 times in a row, the last: cannot connect/)
  assert.equal(errored.restart_reasons.health, 2)

  await waitFor('6 flapping checks', () => Number(fs.readFileSync(path.join(dir, 'flip.count'), 'utf8')) >= 6)
  const [f] = rows(home, 'flap')
  assert.equal(f.restarts, 0, 'never 2 failures in a row')
  assert.ok(f.health.consecutive_failures <= 1)
  assert.equal(f.health.check, 'command')
  assert.match(f.health.last_result, /^exit code [01]: check \d+ (passed|failed)$/)
}))

/** Starts block.js (its loop blocks forever once it has served) with
 * `args`, and waits for the watchdog's replacement: both rows and the time
 * from the block to the replacement online. */
async function blockedThenReplaced (home, args, { listening = true } = {}) {
  const port = await freePort()
  const mark = path.join(home.dir, 'blocked')
  home.ok(['start', path.join(FIXTURES, 'health', 'block.js'), '--name', 'stuck', '--max-event-loop-lag', '1s', ...args],
    { env: { PORT: String(port), BLOCK_MARK: mark } })
  const [first] = await online(home, 'stuck', 1, { listening })
  await waitFor('the loop to block', () => fs.existsSync(mark))
  const blockedAt = fs.statSync(mark).mtimeMs
  const [after] = await waitFor('the replacement', () => {
    const r = rows(home, 'stuck')
    return r[0] && r[0].pid !== first.pid && r[0].status === 'online' ? r : null
  })
  return { port, first, after, took: Date.now() - blockedAt }
}

test('max_event_loop_lag: a loop blocked forever is replaced within the limit + 1 s', withHome(async (home, t) => {
  const { port, after, took } = await blockedThenReplaced(home, ['-i', '1'])
  t.diagnostic(`replacement online ${took} ms after the loop blocked`)
  // Noticed within lag + 1 s; the replacement's own start and the blocked
  // process's kill_timeout (it cannot drain) come on top.
  assert.ok(took < 1000 + 1000 + 1600 + 2000, `replaced ${took} ms after the loop blocked`)
  assert.equal(after.restart_reasons.health, 1)
  assert.equal(after.health.check, 'event_loop')
  assert.match(daemonLog(home), /unhealthy \(pid \d+\): event loop blocked for \d+ ms \(max_event_loop_lag 1000 ms\)/)
  const served = await waitFor('the replacement to serve', () => get(port, '/').catch(() => null))
  assert.equal(JSON.parse(served.body).pid, after.pid)
}))

test('max_event_loop_lag in fork mode: the blocked process is killed at once, not after kill_timeout', withHome(async (home, t) => {
  // A blocked loop cannot run a graceful stop: waiting 10 s for it would
  // only lengthen the outage of an app that has no other instance.
  const { first, after, took } = await blockedThenReplaced(home, ['--kill-timeout', '10s'], { listening: false })
  assert.equal(first.mode, 'fork')
  t.diagnostic(`replacement online ${took} ms after the loop blocked`)
  assert.ok(took < 10000, `replaced ${took} ms after the loop blocked: the 10 s kill_timeout was waited for`)
  assert.equal(after.restart_reasons.health, 1)
  assert.match(daemonLog(home), new RegExp(`killed by SIGKILL \\(pid ${first.pid}\\)`))
}))

test('bad health options are refused with one line naming the key', withHome(async (home) => {
  const eco = path.join(home.dir, 'eco.json')
  const cases = [
    [{ http: '/h', interval: '-5s' }, /health_check\.interval.*positive/],
    [{ http: 'htp:/x' }, /health_check\.http.*neither a path like \/healthz nor a URL/],
    [{ http: '/h', intervall: '5s' }, /health_check\.intervall.*did you mean interval\?/],
    [{ tcp: 3000, http: '/h' }, /health_check.*more than one of http, tcp and command/],
  ]
  for (const [hc, re] of cases) {
    fs.writeFileSync(eco, JSON.stringify({ apps: [{ name: 'x', script: APP, health_check: hc }] }))
    const r = home.run(['start', eco])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, re)
  }
  fs.writeFileSync(eco, JSON.stringify({ apps: [{ name: 'x', script: APP, max_event_loop_lag: 10 }] }))
  assert.match(home.run(['start', eco]).stderr, /max_event_loop_lag.*at least 100ms/)
  const r = home.run(['start', APP, '--health-http', '/h', '--health-interval', '-5s'])
  assert.notEqual(r.code, 0)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  assert.match(r.stderr, /--health-interval: must be a positive duration, got '-5s'/)
  assert.match(home.run(['start', APP, '--health-failures', '0', '--health-tcp', '1']).stderr, /--health-failures: must be a whole number from 1 to 1000/)
  assert.equal(home.jlist().length, 0, 'nothing was started')
}))
