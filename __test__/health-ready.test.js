'use strict'
// Issue 20, readiness: with an HTTP health check, a reload hands over only
// to a replacement whose check passed (one that never passes is rolled
// back and the old workers keep serving), and pmr-runtime's /readyz stays
// 503 until the check passes although the app already answers.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { waitFor, freePort, get, withHome, rows, online, FIXTURES, ROOT } = require('./helpers')

const APP = path.join(FIXTURES, 'health', 'app.js')
const RUNTIME = path.join(ROOT, 'bin', 'pmr-runtime.js')
const CHECK = ['--health-http', '/healthz', '--health-interval', '200ms', '--health-timeout', '1s', '--health-failures', '2']

test('reload waits for the replacement to pass its HTTP check: one that never passes is rolled back, the old workers serve on', withHome(async (home) => {
  const port = await freePort()
  const badNew = path.join(home.dir, 'bad-new')
  home.ok(['start', APP, '--name', 'api', '-i', '2', '--listen-timeout', '3000', ...CHECK], { env: { PORT: String(port), HEALTH_FAIL_NEW: badNew } })
  const first = await online(home, 'api', 2)
  await waitFor('both healthy', () => rows(home, 'api').every((r) => r.health && r.health.status === 'healthy'))

  fs.writeFileSync(badNew, '')
  const failed = await home.runAsync(['reload', 'api'])
  assert.notEqual(failed.code, 0, `the reload must fail: ${failed.stdout}${failed.stderr}`)
  assert.match(failed.stdout + failed.stderr, /did not pass its health check \(GET \/healthz\) within listen_timeout \(3000 ms\), the last: HTTP 503: not ready/)
  const kept = rows(home, 'api')
  assert.deepEqual(kept.map((r) => r.pid).sort(), first.map((r) => r.pid).sort(), 'the old workers are kept')
  assert.ok(kept.every((r) => r.status === 'online' && r.restarts === 0))
  const served = JSON.parse((await get(port, '/')).body).pid
  assert.ok(first.some((r) => r.pid === served), 'an old worker answers')

  fs.rmSync(badNew)
  home.ok(['reload', 'api'])
  const after = rows(home, 'api')
  assert.ok(after.every((r) => !first.some((f) => f.pid === r.pid) && r.restarts === 1), 'both replaced once the check passes: ' + JSON.stringify({ first: first.map((r) => r.pid), after: after.map((r) => [r.pid, r.restarts]) }))
}))

test('pmr-runtime /readyz waits for the HTTP health check, not only for listening', withHome(async (home) => {
  const port = await freePort()
  const health = await freePort()
  const notReady = path.join(home.dir, 'not-ready')
  fs.writeFileSync(notReady, '')
  const child = spawn(process.execPath, [RUNTIME, APP, '--name', 'web', ...CHECK, '--health-start-period', '60s', '--health-port', String(health), '--health-host', '127.0.0.1'], {
    cwd: FIXTURES, env: home.env({ PORT: String(port), HEALTH_FAIL_FILE: notReady }), stdio: 'ignore',
  })
  home.pids.add(child.pid)
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  try {
    await waitFor('the app to answer', () => get(port, '/').catch(() => null))
    await waitFor('a failed check', async () => {
      const r = await get(port, '/healthz')
      return r.status === 503
    })
    assert.equal((await get(health, '/healthz')).status, 200, 'alive')
    // Within the start period failures do not count: not ready, not replaced.
    for (let i = 0; i < 3; i++) {
      assert.equal((await get(health, '/readyz')).status, 503, 'not ready while the check fails')
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    fs.rmSync(notReady)
    await waitFor('ready once the check passes', async () => (await get(health, '/readyz')).status === 200)
  } finally {
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
  }
}))
