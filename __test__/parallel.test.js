'use strict'
// Operations on many apps work on the apps in parallel, and one app that
// fails does not stop the others: `restart all`, `reload all` and the start
// of an ecosystem file report every app's outcome, the CLI exits 1 when any
// failed, and the JS API rejects with the per-app outcomes in `err.report`.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { withHome, waitFor, freePort, online, FIXTURES } = require('./helpers')
const pmr = require('..')

const SLOW = 6
// Each slow app takes this long to exit after its SIGINT: one app after the
// other, every app would get its SIGINT only once the one before exited.
const EXIT_AFTER_MS = 2000

/** Apps that note when their SIGINT arrives and exit EXIT_AFTER_MS later,
 * a cluster app, and `doomed`: a script that runs until its interpreter
 * line is broken (then it cannot be spawned again). */
function writeApps (dir, port) {
  fs.writeFileSync(path.join(dir, 'slow.js'), `
const fs = require('node:fs')
setInterval(() => {}, 1 << 30)
process.on('SIGINT', () => {
  fs.appendFileSync(process.env.STAMPS, JSON.stringify({ app: process.env.name, pid: process.pid, at: Date.now() }) + '\\n')
  setTimeout(() => process.exit(0), ${EXIT_AFTER_MS})
})
// Its handler is in place: a SIGINT from now on is noted.
fs.appendFileSync(process.env.STAMPS + '.ready', process.pid + '\\n')
`)
  fs.writeFileSync(path.join(dir, 'doomed-run'), '#!/bin/sh\nexec sleep 1000\n', { mode: 0o755 })
  const stamps = path.join(dir, 'stamps')
  const apps = [
    ...Array.from({ length: SLOW }, (_, i) => ({
      name: `slow-${i}`, script: 'slow.js', kill_timeout: 10000, env: { STAMPS: stamps, name: `slow-${i}` },
    })),
    { name: 'doomed', script: 'doomed-run' },
    { name: 'web', script: path.join(FIXTURES, 'server.js'), instances: 2, exec_mode: 'cluster', env: { PORT: String(port), HOST: '127.0.0.1' } },
  ]
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), `module.exports = { apps: ${JSON.stringify(apps)} }`)
  return stamps
}

function readStamps (file) {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  } catch {
    return []
  }
}

/** Every slow app got its SIGINT before the first of them could exit. */
function assertOverlapped (stamps, what) {
  assert.equal(stamps.length, SLOW, `${what}: every slow app was stopped once`)
  const at = stamps.map((s) => s.at)
  const spread = Math.max(...at) - Math.min(...at)
  assert.ok(spread < EXIT_AFTER_MS * 0.75, `${what}: the apps were stopped together, not one after the other (SIGINTs spread over ${spread} ms)`)
}

/** Every slow app's current process has its SIGINT handler in place. */
async function slowReady (home, stamps) {
  await waitFor('every slow app ready for its SIGINT', () => {
    let ready = []
    try { ready = fs.readFileSync(stamps + '.ready', 'utf8').split('\n').map(Number) } catch {}
    const rows = home.jlist().filter((r) => r.name.startsWith('slow-'))
    return rows.length === SLOW && rows.every((r) => r.status === 'online' && ready.includes(r.pid))
  })
}

const pidsOf = (rows) => new Map(rows.filter((r) => r.name !== 'doomed').map((r) => [`${r.name}#${r.id}`, r.pid]))

test('restart all and reload all replace every app in parallel; the one that cannot start is reported and fails the command', withHome(async (home) => {
  const stamps = writeApps(home.dir, await freePort())
  home.ok(['start', 'ecosystem.config.js'], { cwd: home.dir })
  await online(home, 'web', 2)
  let before = await waitFor('every app online', () => {
    const rows = home.jlist()
    return rows.length === SLOW + 3 && rows.every((r) => r.status === 'online') ? rows : null
  })
  // From now on doomed cannot be spawned: its interpreter is gone.
  fs.writeFileSync(path.join(home.dir, 'doomed-run'), '#!/nonexistent/sh\nexec sleep 1000\n', { mode: 0o755 })

  for (const [verb, done] of [['restart', 'restarted'], ['reload', 'reloaded']]) {
    await slowReady(home, stamps)
    fs.rmSync(stamps, { force: true })
    const r = await home.runAsync([verb, 'all'])
    assert.equal(r.code, 1, `${verb} all exits 1 when an app failed\n${r.stderr}`)
    assert.match(r.stderr, /doomed/, `${verb}: the failing app is named`)
    assert.match(r.stderr, new RegExp(`${done} anyway: .*slow-0.*web`), `${verb}: the apps done are named\n${r.stderr}`)
    assertOverlapped(readStamps(stamps), `${verb} all`)
    const after = home.jlist()
    for (const [key, pid] of pidsOf(before)) {
      const now = pidsOf(after).get(key)
      assert.ok(now && now !== pid, `${verb}: ${key} was replaced (pid ${pid} -> ${now})`)
    }
    assert.ok(after.filter((x) => x.name === 'web').every((x) => x.status === 'online'), `${verb}: web is online`)
    before = after
  }
}))

test('the JS API rejects a partial restart with every app\'s outcome in err.report', withHome(async (home) => {
  writeApps(home.dir, await freePort())
  home.ok(['start', 'ecosystem.config.js'], { cwd: home.dir })
  await online(home, 'web', 2)
  await waitFor('every app online', () => home.jlist().every((r) => r.status === 'online'))
  fs.writeFileSync(path.join(home.dir, 'doomed-run'), '#!/nonexistent/sh\n', { mode: 0o755 })
  const pm = await pmr.connect({ home: home.dir })
  try {
    const err = await pm.restart('all').then(() => null, (e) => e)
    assert.ok(err, 'restart all rejects')
    assert.equal(err.name, 'PmrError')
    assert.equal(err.code, 'PMR_SPAWN')
    assert.match(err.message, /doomed/)
    const outcomes = Object.fromEntries(err.report.apps.map((a) => [a.app, a]))
    assert.deepEqual(Object.keys(outcomes), [...Array.from({ length: SLOW }, (_, i) => `slow-${i}`), 'doomed', 'web'], 'every app, in order')
    assert.equal(outcomes.doomed.ok, false)
    assert.equal(outcomes.doomed.error.code, 'PMR_SPAWN')
    for (const [name, o] of Object.entries(outcomes)) if (name !== 'doomed') assert.ok(o.ok && !o.error, `${name} restarted`)
    // A stop of the apps that can be stopped resolves, every app reported ok.
    const stopped = await pm.stop(['web', 'slow-0'])
    assert.deepEqual(stopped.apps, [{ app: 'web', ok: true }, { app: 'slow-0', ok: true }])
  } finally {
    await pm.close()
  }
}))

test('the start of an ecosystem file starts the apps in parallel, in the file\'s order, around one that cannot start', withHome(async (home) => {
  fs.writeFileSync(path.join(home.dir, 'idle.js'), 'setInterval(() => {}, 1 << 30)')
  fs.writeFileSync(path.join(home.dir, 'broken-run'), '#!/nonexistent/sh\n', { mode: 0o755 })
  const names = Array.from({ length: 12 }, (_, i) => `app-${i}`)
  const apps = names.map((name) => ({ name, script: 'idle.js' }))
  apps.splice(5, 0, { name: 'broken', script: 'broken-run' })
  fs.writeFileSync(path.join(home.dir, 'ecosystem.config.js'), `module.exports = { apps: ${JSON.stringify(apps)} }`)
  const r = home.run(['start', 'ecosystem.config.js'], { cwd: home.dir })
  assert.equal(r.code, 1, r.stderr)
  assert.match(r.stderr, /broken/)
  assert.match(r.stderr, new RegExp(`started anyway: ${names.join(', ')}$`, 'm'))
  const rows = home.jlist()
  assert.deepEqual(rows.map((x) => x.name), names, 'listed in the file\'s order, the broken one not kept')
  const ids = rows.map((x) => x.id)
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids follow the file\'s order')
  assert.ok(rows.every((x) => x.pid), 'every other app runs')
}))
