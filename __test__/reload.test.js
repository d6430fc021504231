'use strict'
// Issue: zero-downtime reload and graceful shutdown. Replacements must be
// ready before old workers stop; old workers drain without cutting a
// keep-alive client off; a failed replacement leaves the old one serving.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { alive, waitFor, freePort, get, load, withHome, rows, online } = require('./helpers')

/** Starts behave.js with a behaviour file the test can rewrite. */
async function startBehaving (home, name, args = [], behaviour = {}) {
  const port = await freePort()
  const file = path.join(home.dir, `${name}-behaviour.json`)
  fs.writeFileSync(file, JSON.stringify(behaviour))
  home.ok(['start', 'behave.js', '--name', name, ...args], { env: { PORT: String(port), BEHAVIOR_FILE: file } })
  return { port, file, set: (b) => fs.writeFileSync(file, JSON.stringify(b)) }
}

test('5 reloads under keep-alive load: no failed request, every instance replaced', withHome(async (home) => {
  const { port } = await startBehaving(home, 'api', ['-i', '2'])
  const first = await online(home, 'api', 2)
  const loop = load(port, { connections: 8, keepAlive: true })
  await waitFor('traffic', () => loop.stats.ok > 300)
  const seen = new Set(first.map((r) => r.pid))
  for (let i = 0; i < 5; i++) {
    // Not spawnSync: the load loop lives in this process and must keep
    // reading its sockets while the reload runs, as a real client would.
    const r = await home.okAsync(['reload', 'api'])
    assert.match(r.stdout, /reloaded api/)
    const now = rows(home, 'api')
    for (const x of now) {
      assert.ok(!seen.has(x.pid), 'each reload brings new pids')
      seen.add(x.pid)
    }
    const before = loop.stats.ok
    await waitFor('traffic after the reload', () => loop.stats.ok > before + 100)
  }
  const s = await loop.stop()
  assert.equal(s.failed, 0, `no request failed: ${JSON.stringify({ errors: s.errors, statuses: s.statuses })}`)
  const end = rows(home, 'api')
  assert.deepEqual(end.map((r) => r.restarts), [5, 5])
  assert.deepEqual(end.map((r) => r.restart_reasons.user), [5, 5])
  for (const r of first) assert.ok(!alive(r.pid))
}))

test('a replacement that crashes on boot: reload fails, the old workers keep serving', withHome(async (home) => {
  const { port, set } = await startBehaving(home, 'api', ['-i', '2'])
  const before = await online(home, 'api', 2)
  set({ crash: true })
  const r = home.run(['reload', 'api'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /reload of api instance 0 \(id \d+\) failed: the replacement exited with code 1 before it was ready; the old process \(pid \d+\) keeps serving/)
  assert.equal(r.stderr.trim().split('\n').length, 1)
  const after = rows(home, 'api')
  assert.deepEqual(after.map((x) => x.pid), before.map((x) => x.pid))
  assert.ok(after.every((x) => x.status === 'online'))
  assert.equal((await get(port)).status, 200)
  const desc = home.ok(['describe', 'api']).stdout
  assert.match(desc, /reload failed .*exited with code 1/)
  set({})
  home.ok(['reload', 'api'])
}))

test('wait_ready: reload waits for a late ready, and keeps the old worker when ready never comes', withHome(async (home) => {
  const { port, set } = await startBehaving(home, 'rdy', ['-i', '1', '--wait-ready', '--listen-timeout', '1500'], { readyDelay: 0 })
  const [old] = await waitFor('online', () => {
    const r = rows(home, 'rdy')
    return r[0].status === 'online' ? r : null
  })
  set({ readyDelay: 700, generation: 2 })
  const t0 = Date.now()
  home.ok(['reload', 'rdy'])
  assert.ok(Date.now() - t0 >= 650, 'the reload waited for ready')
  const [mid] = rows(home, 'rdy')
  assert.notEqual(mid.pid, old.pid)
  assert.equal(JSON.parse((await get(port)).body).generation, 2)

  set({ readyDelay: null, generation: 3 })
  const r = home.run(['reload', 'rdy'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /did not send 'ready' within listen_timeout \(1500 ms\)/)
  const [after] = rows(home, 'rdy')
  assert.equal(after.pid, mid.pid, 'the old worker stays')
  assert.equal(JSON.parse((await get(port)).body).generation, 2)
}))

test('a worker that ignores SIGINT is killed after kill_timeout during a reload', withHome(async (home) => {
  const { set } = await startBehaving(home, 'stub', ['-i', '1', '--kill-timeout', '800'], { ignoreSigint: true })
  const [old] = await online(home, 'stub', 1)
  set({})
  const t0 = Date.now()
  home.ok(['reload', 'stub'])
  assert.ok(Date.now() - t0 >= 750)
  assert.ok(!alive(old.pid))
  const events = home.ok(['describe', 'stub']).stdout
  assert.match(events, new RegExp(`old pid ${old.pid} killed by SIGKILL`))
}))

test('a long request in flight during a reload completes with 200', withHome(async (home) => {
  const { port } = await startBehaving(home, 'slow', ['-i', '1', '--kill-timeout', '5000'], { slowMs: 2000 })
  const [old] = await online(home, 'slow', 1)
  const inflight = get(port, '/slow')
  await new Promise((resolve) => setTimeout(resolve, 200))
  await home.okAsync(['reload', 'slow'])
  const r = await inflight
  assert.equal(r.status, 200)
  assert.equal(JSON.parse(r.body).pid, old.pid)
  assert.equal(r.headers.connection, 'close', 'the draining worker told the client to reconnect')
  assert.notEqual(rows(home, 'slow')[0].pid, old.pid)
}))

test('stop drains: an idle keep-alive connection is closed only after the grace, busy ones finish', withHome(async (home) => {
  const { port } = await startBehaving(home, 'drain', ['-i', '1', '--kill-timeout', '5000'], { slowMs: 1000 })
  await online(home, 'drain', 1)
  const slow = get(port, '/slow')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const t0 = Date.now()
  await home.okAsync(['stop', 'drain'])
  assert.equal((await slow).status, 200)
  assert.ok(Date.now() - t0 < 4000, 'the drain ends when the last request is done, well before kill_timeout')
  const [r] = rows(home, 'drain')
  assert.equal(r.last_exit.signal, 'SIGINT', 'the app ended as SIGINT would end it, not by SIGKILL')
}))

test('reload of a fork-mode app restarts it and says so', withHome(async (home) => {
  await startBehaving(home, 'forky')
  const [old] = rows(home, 'forky')
  const r = home.ok(['reload', 'forky'])
  assert.match(r.stdout, /forky runs in fork mode.*restarted instead of reloaded.*-i 1/)
  assert.notEqual(rows(home, 'forky')[0].pid, old.pid)
}))

test('one reload per app at a time', withHome(async (home) => {
  const { set } = await startBehaving(home, 'once', ['-i', '1', '--wait-ready'], { readyDelay: 0 })
  await waitFor('online', () => rows(home, 'once')[0].status === 'online')
  set({ readyDelay: 1500 })
  const first = home.spawn(['reload', 'once'])
  const firstDone = new Promise((resolve) => first.on('exit', resolve))
  await waitFor('the first reload to start its replacement', () =>
    /reload: replacement started/.test(home.ok(['describe', 'once']).stdout))
  const second = home.run(['reload', 'once'])
  assert.equal(second.code, 1)
  assert.match(second.stderr, /a reload of once is already in progress/)
  assert.equal(await firstDone, 0)
}))

test('reload steps are in the event stream and in describe; --update-env applies', withHome(async (home) => {
  const { port, file } = await startBehaving(home, 'ev', ['-i', '1'])
  await online(home, 'ev', 1)
  const follower = home.spawn(['logs', 'ev', '--lines', '0'])
  let seen = ''
  follower.stdout.on('data', (d) => { seen += d })
  await waitFor('the follower', () => seen.includes('following new lines'))
  await home.okAsync(['reload', 'ev'], { env: { APP_ENV: 'from-the-new-shell' } })
  for (const step of ['replacement started', 'replacement ready', 'stopping the old process', 'old process exited']) {
    await waitFor(`"${step}" in the stream`, () => seen.includes(`reload: ${step}`))
  }
  follower.kill('SIGINT')
  assert.match(home.ok(['describe', 'ev']).stdout, /reload: old process exited/)
  let body = JSON.parse((await get(port)).body)
  assert.equal(body.pid, rows(home, 'ev')[0].pid)
  assert.equal(body.env, null, 'without --update-env the app keeps the environment it started with')
  // --update-env takes the whole environment of the new shell, as in PM2.
  const shell = { APP_ENV: 'from-the-new-shell', PORT: String(port), BEHAVIOR_FILE: file }
  await home.okAsync(['reload', 'ev', '--update-env'], { env: shell })
  body = JSON.parse((await get(port)).body)
  assert.equal(body.env, 'from-the-new-shell')
}))

test('--shutdown-with-message: the app gets its message, connections still drain', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'on-shutdown.js', '--name', 'msg', '-i', '1', '--shutdown-with-message', '--kill-timeout', '4000'], { env: { PORT: String(port) } })
  const [old] = await online(home, 'msg', 1)
  const slow = get(port, '/slow')
  await new Promise((resolve) => setTimeout(resolve, 100))
  await home.okAsync(['reload', 'msg'])
  const r = await slow
  assert.equal(r.status, 200)
  assert.equal(r.headers.connection, 'close')
  const [now] = rows(home, 'msg')
  assert.notEqual(now.pid, old.pid)
  const out = fs.readFileSync(home.logFile(`msg-out-${now.id}.log`), 'utf8')
  assert.match(out, /got shutdown message/)
  assert.doesNotMatch(out, /SIGINT is not how/)
  assert.match(home.ok(['describe', 'msg']).stdout, new RegExp(`old pid ${old.pid} exited with code 0`))
}))
