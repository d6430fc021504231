'use strict'
// Issue 17: `pmr update` swaps the daemon in place. The old daemon exits
// leaving every app running; its keeper starts the new binary, which adopts
// them. A new binary that does not run is never handed the apps.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { alive, waitFor, freePort, get, load, withHome, online, receiver, ROOT } = require('./helpers')

const DAEMON = path.join(ROOT, 'pmr-daemon')

test('update hands over to a new binary under keep-alive load: same pids, same restarts, no failed request, no alert', withHome(async (home) => {
  const hook = await receiver('ok')
  try {
    await updatesInPlace(home, hook)
  } finally {
    await hook.close()
  }
}))

async function updatesInPlace (home, hook) {
  // An update is on purpose: the `daemon` alert (a daemon that died) must not page anyone.
  home.ok(['set', 'notify.webhook', hook.url])
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'api', '-i', '2'], { env: { PORT: String(port) } })
  home.ok(['start', 'idle.js', '--name', 'worker'])
  await online(home, 'api', 2)
  const copy = path.join(home.dir, 'new', 'pmr-daemon')
  fs.mkdirSync(path.dirname(copy))
  fs.copyFileSync(DAEMON, copy)
  fs.chmodSync(copy, 0o755)
  const before = home.jlist()
  const old = home.daemonPid()

  const traffic = load(port, { connections: 4, keepAlive: true })
  await waitFor('requests flowing', () => traffic.stats.ok > 20)
  const r = await home.okAsync(['update', '--daemon-binary', copy])
  const okAt = traffic.stats.ok
  await waitFor('requests after the handover', () => traffic.stats.ok > okAt + 50)
  const stats = await traffic.stop()

  assert.match(r.stdout, new RegExp(`updated in place: daemon pid ${old} \\(pmr [\\w.-]+\\) handed over to pid \\d+ \\(pmr [\\w.-]+, ${copy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\); 3 of 3 app processes kept running, not restarted`))
  assert.equal(stats.failed, 0, `failed: ${JSON.stringify(stats.errors)} ${JSON.stringify(stats.statuses)}`)
  const now = home.daemonPid()
  assert.notEqual(now, old)
  assert.ok(!alive(old))
  assert.equal(fs.readlinkSync(`/proc/${now}/exe`), copy, 'the new daemon runs the new binary')
  const after = await waitFor('the adopted apps online', () => {
    const a = home.jlist()
    return a.length === before.length && a.every((r) => r.status === 'online') ? a : null
  })
  assert.deepEqual(after.map((x) => [x.name, x.pid, x.restarts, x.status]), before.map((x) => [x.name, x.pid, x.restarts, 'online']))
  // Supervised as before: the adopted workers still get the connections.
  assert.ok(stats.pids.size >= 2)
  assert.deepEqual(hook.got.map((g) => g.body.event), [], 'no alert for an update')
  // In turn again, by the new daemon's program: hashed, ten connections
  // one after another would not alternate between the two workers.
  if (/by the kernel/.test(home.ok(['describe', 'api']).stdout)) {
    const seq = []
    for (let i = 0; i < 10; i++) seq.push(JSON.parse((await get(port)).body).pid)
    assert.ok(seq.every((p, i) => i === 0 || p !== seq[i - 1]), `in turn: ${seq}`)
  }
  // The new daemon's program took over the workers' sockets: not one
  // failed write to its maps (the old maps are freed a moment late).
  const log = fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8')
  assert.doesNotMatch(log, /cannot update the (connection turn|overflow socket)/)
}

test('a new binary that does not run, or fails at start, leaves the apps and a daemon of the old binary', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'worker'])
  const [before] = home.jlist()
  const old = home.daemonPid()

  const broken = path.join(home.dir, 'broken')
  fs.writeFileSync(broken, '#!/bin/sh\nexit 3\n', { mode: 0o755 })
  const r = home.run(['update', '--daemon-binary', broken])
  assert.equal(r.code, 1)
  assert.match(r.stderr, new RegExp(`the new daemon binary ${broken} does not run \\(exit status: 3, said ""\\): the running daemon is left as it is`))
  assert.equal(home.daemonPid(), old, 'the old daemon still runs')

  // Says its version, then cannot start: the keeper goes back to the old binary.
  const failing = path.join(home.dir, 'failing')
  fs.writeFileSync(failing, '#!/bin/sh\n[ "$1" = --version ] && { echo "pmr-daemon 9.9.9"; exit 0; }\nexit 1\n', { mode: 0o755 })
  const f = home.run(['update', '--daemon-binary', failing])
  assert.equal(f.code, 1, f.stdout + f.stderr)
  assert.match(f.stderr, /\(pmr-daemon 9\.9\.9\) did not start: the keeper went back to the previous binary, daemon pid \d+ \(pmr [\w.-]+\); 1 of 1 app processes kept running, not restarted/)
  const now = home.daemonPid()
  assert.equal(fs.readlinkSync(`/proc/${now}/exe`), fs.realpathSync(DAEMON))
  const [after] = await waitFor('the app online', () => {
    const r = home.jlist().filter((x) => x.status === 'online')
    return r.length ? r : null
  })
  assert.deepEqual([after.pid, after.restarts, after.status], [before.pid, before.restarts, 'online'])
}))
