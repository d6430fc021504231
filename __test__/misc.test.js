'use strict'
// Issue: the rest of what PM2 users reach for. Watch (an edit replaces the
// app, ignored paths do not, a watched cluster app drops no request), cron
// restarts (fire on schedule, not for stopped apps), signals, reset, regex
// and namespace targets, update, startOrRestart/startOrReload, pid,
// prettylist and examples.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Home, alive, waitFor, freePort, get, load, FIXTURES, ROOT, withHome, rows, online } = require('./helpers')

const MISC = path.join(FIXTURES, 'misc')

const one = (home, name) => rows(home, name)[0]
/** A directory of the test's own (beside PMR_HOME's files, not in them)
 * holding copies of fixtures, which the test may edit. */
function scratch (home, files) {
  const dir = fs.mkdtempSync(path.join(home.dir, 'app-'))
  for (const [from, to] of files) fs.copyFileSync(from, path.join(dir, to))
  return dir
}

const history = (home, name) => home.ok(['describe', name]).stdout

test('watch: an edit replaces the instance within watch_delay + 1 s; stop --watch stops watching, restart resumes', withHome(async (home) => {
  const dir = scratch(home, [[path.join(FIXTURES, 'idle.js'), 'idle.js']])
  home.ok(['start', 'idle.js', '--name', 'w', '--watch', '--watch-delay', '500ms'], { cwd: dir })
  const first = await waitFor('w watching', () => {
    const x = one(home, 'w')
    return x.status === 'online' && x.watching ? x : null
  })
  const t0 = Date.now()
  fs.appendFileSync(path.join(dir, 'idle.js'), '// edited\n')
  const next = await waitFor('a new process', () => {
    const x = one(home, 'w')
    return x.pid && x.pid !== first.pid && x.status === 'online' ? x : null
  })
  const took = Date.now() - t0
  assert.ok(took < 500 + 1000, `replaced ${took} ms after the edit`)
  assert.equal(next.restarts, 1)
  assert.deepEqual(next.restart_reasons, { crash: 0, memory: 0, watch: 1, cron: 0, user: 0, health: 0 })
  await waitFor('the old process to be gone', () => !alive(first.pid))
  const desc = history(home, 'w')
  assert.match(desc, /watch +│ .*app-\w+, delay 500 ms: watching/)
  assert.match(desc, /idle\.js changed: replacing it \(pid \d+\) \(reason: watch\)/)

  const off = home.ok(['stop', '--watch', 'w'])
  assert.match(off.stdout, /w: stopped watching; it keeps running \(pmr restart w watches again\)/)
  const still = one(home, 'w')
  assert.equal(still.status, 'online')
  assert.equal(still.pid, next.pid)
  assert.equal(still.watching, false)
  assert.match(history(home, 'w'), /watch +│ .*: not watching \(pmr stop --watch; pmr restart w watches again\)/)

  home.ok(['restart', 'w'])
  assert.equal(one(home, 'w').watching, true)
  home.ok(['stop', 'w'])
  const stopped = one(home, 'w')
  assert.equal(stopped.watching, false, 'a stopped app is not watched')
  assert.match(history(home, 'w'), /not watching while stopped/)
}))

test('watch: node_modules, dotfiles and ignore_watch globs do not replace the app', withHome(async (home) => {
  const dir = scratch(home, [[path.join(FIXTURES, 'idle.js'), 'idle.js']])
  for (const d of ['node_modules', '.cache', 'out']) fs.mkdirSync(path.join(dir, d))
  home.ok(['start', 'idle.js', '--name', 'app', '--watch', '--watch-delay', '200ms', '--ignore-watch', '*.log'], { cwd: dir })
  // The control: the same directories named in watch are watched, so the
  // same writes replace it; by then the app would have been replaced too.
  home.ok(['start', 'idle.js', '--name', 'control', '--watch=node_modules,.cache,out', '--watch-delay', '200ms'], { cwd: dir })
  await waitFor('both watching', () => ['app', 'control'].every((n) => one(home, n).watching))
  fs.writeFileSync(path.join(dir, 'node_modules', 'dep.js'), '1')
  fs.writeFileSync(path.join(dir, '.cache', 'entry'), '1')
  fs.writeFileSync(path.join(dir, 'out', 'app.log'), '1')
  await waitFor('the control replaced', () => one(home, 'control').restart_reasons.watch === 1)
  const app = one(home, 'app')
  assert.equal(app.restarts, 0)
  assert.doesNotMatch(history(home, 'app'), /replacing/)

  fs.mkdirSync(path.join(dir, 'lib'))
  await waitFor('a new directory replaces it', () => one(home, 'app').restart_reasons.watch === 1)
  fs.writeFileSync(path.join(dir, 'lib', 'util.js'), '1')
  await waitFor('a file in the new directory too', () => one(home, 'app').restart_reasons.watch === 2)
}))

test('watch: a cluster app under a keep-alive request loop drops no request', withHome(async (home) => {
  const dir = scratch(home, [[path.join(MISC, 'server.js'), 'server.js']])
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web', '-i', '2', '--watch', '--watch-delay', '300ms'], { cwd: dir, env: { PORT: String(port) } })
  const first = await waitFor('2 workers listening and watched', () => {
    const r = rows(home, 'web')
    return r.length === 2 && r.every((x) => x.status === 'online' && x.listening.length > 0 && x.watching) ? r : null
  })
  const old = new Set(first.map((x) => x.pid))
  const loop = load(port, { connections: 4, keepAlive: true })
  try {
    await waitFor('traffic', () => loop.stats.ok > 200)
    fs.writeFileSync(path.join(dir, 'feature.js'), 'module.exports = 1\n')
    await waitFor('both workers replaced', () => {
      const r = rows(home, 'web')
      return r.length === 2 && r.every((x) => !old.has(x.pid) && x.status === 'online' && x.restart_reasons.watch === 1)
    }, { interval: 200 })
    const before = loop.stats.ok
    await waitFor('traffic on the new workers', () => loop.stats.ok > before + 100)
  } finally {
    await loop.stop()
  }
  const s = loop.stats
  assert.equal(s.failed, 0, `no request failed: ${JSON.stringify({ errors: s.errors, statuses: s.statuses })}`)
  assert.match(history(home, 'web'), /reload: replacement ready/)
}))

test('cron_restart: a per-second schedule fires, describe and jlist show the next run, a stopped app is skipped', withHome(async (home) => {
  for (const name of ['tick', 'tock']) {
    home.ok(['start', 'idle.js', '--name', name, '--cron-restart', '* * * * * *'])
  }
  const ticked = await waitFor('two cron restarts', () => {
    const x = one(home, 'tick')
    return x.restart_reasons.cron >= 2 ? x : null
  }, { interval: 100 })
  assert.equal(ticked.restarts, ticked.restart_reasons.cron)
  assert.ok(ticked.next_cron_restart > Date.now() - 1000 && ticked.next_cron_restart < Date.now() + 2000, `${ticked.next_cron_restart}`)
  assert.match(history(home, 'tick'), /cron restart +│ \* \* \* \* \* \*: next at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/)
  assert.match(history(home, 'tick'), /cron_restart \* \* \* \* \* \*: replacing it/)

  home.ok(['stop', 'tick'])
  const stopped = one(home, 'tick')
  assert.equal(stopped.next_cron_restart, null)
  const base = one(home, 'tock').restart_reasons.cron
  await waitFor('two more runs of the other app', () => one(home, 'tock').restart_reasons.cron >= base + 2, { interval: 100 })
  const after = one(home, 'tick')
  assert.equal(after.status, 'stopped')
  assert.equal(after.pid, null)
  assert.equal(after.restart_reasons.cron, stopped.restart_reasons.cron, 'no run while stopped')
  assert.match(history(home, 'tick'), /cron restart +│ .*: not while stopped/)
}))

test('sendSignal and its alias signal reach every instance', withHome(async (home) => {
  home.ok(['start', path.join(MISC, 'signals.js'), '--name', 'sig', '-i', '2'])
  const r = await online(home, 'sig', 2, { listening: false })
  const logs = r.map((x) => x.logs.out)
  await waitFor('both ready', () => r.every((x, i) => fs.existsSync(logs[i]) && fs.readFileSync(logs[i], 'utf8').includes(`ready ${x.pid}`)))
  const sent = home.ok(['sendSignal', 'SIGUSR2', 'sig'])
  for (const x of r) assert.match(sent.stdout, new RegExp(`sent SIGUSR2 to sig \\(id ${x.id}, pid ${x.pid}\\)`))
  const count = (i) => fs.readFileSync(logs[i], 'utf8').split('\n').filter((l) => l === `got SIGUSR2 in ${r[i].pid}`).length
  await waitFor('SIGUSR2 in each log', () => r.every((_, i) => count(i) === 1))
  home.ok(['signal', 'SIGUSR2', '/^si/'])
  await waitFor('a second SIGUSR2 in each log', () => r.every((_, i) => count(i) === 2))
  const bad = home.run(['signal', 'SIGNOPE', 'sig'])
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /SIGNOPE/)
}))

test('regex and namespace targets; reset zeroes the counts (CLI and JS API)', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'api-a', '--namespace', 'web'])
  home.ok(['start', 'idle.js', '--name', 'api-b', '--namespace', 'web'])
  home.ok(['start', 'idle.js', '--name', 'worker', '--namespace', 'jobs'])
  const restarts = () => Object.fromEntries(home.jlist().map((x) => [x.name, x.restarts]))
  home.ok(['restart', '/^api-/'])
  assert.deepEqual(restarts(), { 'api-a': 1, 'api-b': 1, worker: 0 })
  home.ok(['restart', 'jobs'])
  home.ok(['restart', '/b$/', 'worker'])
  assert.deepEqual(restarts(), { 'api-a': 1, 'api-b': 2, worker: 2 })

  const bad = home.run(['restart', '/api(/'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /\/api\(\/ is not a usable regular expression/)
  const none = home.run(['stop', '/^nope/'])
  assert.equal(none.code, 1)
  assert.match(none.stderr, /no app name matches \/\^nope\//)

  const reset = home.ok(['reset', '/^api-/'])
  assert.match(reset.stdout, /reset api-a, api-b/)
  assert.deepEqual(restarts(), { 'api-a': 0, 'api-b': 0, worker: 2 })
  for (const x of rows(home, 'api-b')) {
    assert.deepEqual(x.restart_reasons, { crash: 0, memory: 0, watch: 0, cron: 0, user: 0, health: 0 })
    assert.equal(x.unstable_restarts, 0)
  }
  assert.match(history(home, 'api-b'), /restarts +│ 0 \(crash 0, memory 0, watch 0, cron 0, user 0\)/)

  const { connect } = require(ROOT)
  const pm = await connect({ home: home.dir })
  try {
    const report = await pm.reset('jobs')
    assert.deepEqual(report.instances.map((i) => [i.name, i.restarts]), [['worker', 0]])
    await assert.rejects(pm.reset('/^zzz/'), (e) => e.code === 'PMR_NOT_FOUND')
    const unwatched = await pm.stopWatch('worker')
    assert.deepEqual(unwatched.notices, ['worker: not watched (no watch option)'])
    const lines = []
    for await (const l of pm.logs('/^api-/', { lines: 1 })) lines.push(l.app)
    assert.ok(lines.length > 0 && lines.every((a) => a.startsWith('api-')), lines.join())
  } finally {
    await pm.close()
  }
  home.ok(['restart', 'worker'])
  assert.equal(one(home, 'worker').restarts, 1, 'counting goes on after a reset')

  home.ok(['stop', 'web'])
  assert.deepEqual(home.jlist().map((x) => [x.name, x.status]), [['api-a', 'stopped'], ['api-b', 'stopped'], ['worker', 'online']])
}))

test('update replaces the daemon and ends with the same apps, in the same states', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', path.join(MISC, 'server.js'), '--name', 'api', '-i', '2'], { env: { PORT: String(port) } })
  home.ok(['start', 'idle.js', '--name', 'worker'])
  home.ok(['start', 'idle.js', '--name', 'parked'])
  home.ok(['stop', 'parked'])
  await online(home, 'api', 2, { listening: false })
  const before = home.jlist()
  const oldDaemon = home.daemonPid()
  assert.ok(oldDaemon > 1)

  // Issue 17: the daemon hands over in place; the apps are not restarted.
  const r = home.ok(['update'], { timeout: 60000 })
  assert.match(r.stdout, new RegExp(`updated in place: daemon pid ${oldDaemon} \\(pmr [\\w.-]+\\) handed over to pid \\d+`))
  assert.match(r.stdout, /3 of 3 app processes kept running, not restarted/)
  const newDaemon = home.daemonPid()
  assert.ok(newDaemon > 1 && newDaemon !== oldDaemon, `${oldDaemon} -> ${newDaemon}`)
  assert.ok(!alive(oldDaemon))
  for (const x of before) if (x.pid) assert.ok(alive(x.pid), `pid ${x.pid} of ${x.name} still runs`)

  await online(home, 'api', 2, { listening: false })
  const after = home.jlist()
  assert.deepEqual(after.map((x) => [x.name, x.status]), [['api', 'online'], ['api', 'online'], ['worker', 'online'], ['parked', 'stopped']])
  assert.equal((await get(port)).status, 200)

  const nothing = new Home()
  try {
    const idle = nothing.ok(['update'])
    assert.match(idle.stdout, /no daemon is running for .*: the next command starts the installed version/)
    assert.equal(nothing.daemonPid(), null)
  } finally {
    await nothing.cleanup()
  }
}))

test('startOrRestart and startOrReload start what is missing and restart or reload what runs', withHome(async (home) => {
  const port = await freePort()
  const dir = scratch(home, [[path.join(FIXTURES, 'idle.js'), 'idle.js'], [path.join(MISC, 'server.js'), 'server.js']])
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), `module.exports = { apps: [
    { name: 'one', script: 'idle.js' },
    { name: 'two', script: 'server.js', instances: 2, env: { PORT: ${port} } },
  ] }`)
  home.ok(['start', 'ecosystem.config.js', '--only', 'one'], { cwd: dir })
  const one0 = one(home, 'one')
  assert.deepEqual(rows(home, 'two'), [])

  const r = home.ok(['startOrRestart', 'ecosystem.config.js'], { cwd: dir })
  assert.match(r.stdout, /two was not running: started/)
  const one1 = one(home, 'one')
  assert.notEqual(one1.pid, one0.pid)
  assert.equal(one1.restart_reasons.user, 1)
  const two1 = await online(home, 'two', 2, { listening: false })
  assert.ok(two1.every((x) => x.restarts === 0))

  home.ok(['startOrReload', 'ecosystem.config.js'], { cwd: dir })
  const two2 = await online(home, 'two', 2, { listening: false })
  assert.ok(two2.every((x) => x.restarts === 1 && !two1.some((y) => y.pid === x.pid)))
  assert.equal(one(home, 'one').restarts, 2)
  assert.equal((await get(port)).status, 200)

  const notFile = home.run(['startOrRestart', 'one'], { cwd: dir })
  assert.equal(notFile.code, 1)
  assert.match(notFile.stderr, /one is not an ecosystem file: name one, e\.g\. ecosystem\.config\.js \(for apps by name use pmr restart\)/)
}))

test('pid, prettylist and examples', withHome(async (home) => {
  assert.equal(home.ok(['pid']).stdout, '', 'no daemon: no pids, and none started')
  assert.equal(home.daemonPid(), null)
  home.ok(['start', 'idle.js', '--name', 'p', '-i', '2'])
  home.ok(['start', 'idle.js', '--name', 'q'])
  const ps = await online(home, 'p', 2, { listening: false })
  const pids = (args) => home.ok(['pid', ...args]).stdout.trim().split('\n').filter(Boolean).map(Number).sort()
  assert.deepEqual(pids(['p']), ps.map((x) => x.pid).sort())
  assert.equal(pids([]).length, 3)
  home.ok(['stop', 'p'])
  assert.deepEqual(pids(['p']), [])
  const unknown = home.run(['pid', 'nope'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no app named 'nope'/)

  const pretty = home.ok(['prettylist']).stdout
  assert.match(pretty, /^\[\n {2}\{\n {4}"/)
  assert.deepEqual(JSON.parse(pretty).map((x) => x.id), home.jlist().map((x) => x.id))

  const ex = home.ok(['examples']).stdout
  for (const want of [/pmr start server\.js --name api -i max/, /pmr reload api/, /env_production: \{ NODE_ENV: 'production' \}/,
    /pmr start ecosystem\.config\.js --env production/, /--max-restarts 5 --min-uptime 10s/]) {
    assert.match(ex, want)
  }
  assert.match(home.ok(['--help']).stdout, /pmr examples/)
}))

test('reset also forgets the crash-loop count: a crashing app gets its full max_restarts again', withHome(async (home) => {
  home.ok(['start', 'crash.js', '--name', 'loopy', '--max-restarts', '3', '--restart-delay', '2000', '--min-uptime', '5000'])
  await waitFor('two unstable restarts', () => one(home, 'loopy').unstable_restarts >= 2, { timeout: 10000 })
  home.ok(['reset', 'loopy'])
  const after = await waitFor('errored', () => {
    const r = one(home, 'loopy')
    return r.status === 'errored' ? r : null
  }, { timeout: 15000 })
  // Three more unstable restarts (plus one already scheduled at the reset,
  // if any); with the old crash-loop count kept it would be at most two.
  assert.ok(after.restarts >= 3, `${after.restarts} restarts after the reset, then errored`)
  assert.equal(after.unstable_restarts, 3)
}))
