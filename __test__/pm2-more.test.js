'use strict'
// Issue 18, the last drop-in points: `pmr send` (an app's stdin), per-app
// `pmr set <app>.<KEY>`, the ecosystem keys pid_file and force, `--env` on
// restart as PM2 refuses it, and `start` returning once instances are
// online. Each through the real CLI and daemon.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { waitFor, freePort, FIXTURES, withHome, rows } = require('./helpers')
const pmr = require('..')

const DIR = path.join(FIXTURES, 'pm2-more')
const one = (home, name) => rows(home, name)[0]
const logHas = (home, name, text) => {
  const f = home.logFile(`${name}-out.log`)
  return fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes(text)
}

test('pmr send writes a line to an app\'s stdin; an app that never reads gets "full", not a stuck daemon', withHome(async (home) => {
  home.ok(['start', 'echo-stdin.js', '--name', 'echo'], { cwd: DIR })
  home.ok(['start', 'idle.js', '--name', 'deaf'], { cwd: DIR })
  const echo = await waitFor('echo online', () => one(home, 'echo')?.status === 'online' && one(home, 'echo').pid && one(home, 'echo'))
  await waitFor('deaf online', () => one(home, 'deaf')?.status === 'online')
  await waitFor('echo reads stdin', () => logHas(home, 'echo', 'GREETING='))

  const r = home.ok(['send', String(echo.id), 'hello world'])
  assert.match(r.stdout, new RegExp(`sent the line to the stdin of echo \\(id ${echo.id}, pid ${echo.pid}\\)`))
  await waitFor('the line in the log', () => logHas(home, 'echo', 'got: hello world'))
  home.ok(['send', 'echo', '--not-a-flag'])
  await waitFor('a line starting with -- too', () => logHas(home, 'echo', 'got: --not-a-flag'))

  // deaf never reads its stdin: the pipe, then pmr's queue, fill up, and
  // then a send is refused at once.
  const pm = await pmr.connect({ home: home.dir })
  try {
    const big = 'x'.repeat(16 * 1024)
    let refused
    for (let n = 0; n < 200 && !refused; n++) {
      await pm.sendLine('deaf', big).catch((e) => { refused = e })
    }
    assert.ok(refused, 'never refused')
    assert.equal(refused.code, 'PMR_BUSY')
    assert.match(refused.message, /stdin of app deaf \(id \d+\) is full/)
    // The daemon and the other apps go on: echo still gets its lines.
    await pm.sendLine(echo.id, 'still here')
    await waitFor('echo unaffected', () => logHas(home, 'echo', 'got: still here'))
  } finally {
    await pm.close()
  }
  const cli = home.run(['send', 'deaf', 'one more'])
  assert.notEqual(cli.code, 0)
  assert.match(cli.stderr, /stdin of app deaf \(id \d+\) is full/)
  assert.equal(cli.stderr.trim().split('\n').length, 1)
  const deaf = one(home, 'deaf')
  assert.equal(deaf.status, 'online')
  assert.equal(deaf.restarts, 0)

  // PM2's programmatic name for it.
  const PM2 = require('pmr/pm2').custom
  const pm2 = new PM2({ home: home.dir })
  await pm2.connect()
  try {
    const [p] = await pm2.sendLineToStdin(echo.id, 'from pm2 api')
    assert.equal(p.pm_id, echo.id)
    await waitFor('the PM2 API line', () => logHas(home, 'echo', 'got: from pm2 api'))
  } finally {
    await pm2.disconnect()
  }

  home.ok(['stop', 'echo'])
  const stopped = home.run(['send', 'echo', 'x'])
  assert.notEqual(stopped.code, 0)
  assert.match(stopped.stderr, /echo \(id \d+\) is not running/)
  assert.match(home.ok(['send', '--help']).stdout, /pmr send 0/)
}))

test('pmr set <app>.<KEY>: the app gets it in its env from its next start; get lists it; unset removes it; a typo is refused', withHome(async (home) => {
  home.ok(['start', 'echo-stdin.js', '--name', 'greeter'], { cwd: DIR })
  await waitFor('first start', () => logHas(home, 'greeter', 'GREETING=(unset)'))

  const s = home.ok(['set', 'greeter.GREETING', 'bonjour'])
  assert.match(s.stdout, /greeter\.GREETING = "bonjour"/)
  assert.match(s.stdout, /greeter gets GREETING=bonjour in its environment from its next start \(pmr restart greeter\)/)
  assert.equal(home.ok(['get', 'greeter.GREETING']).stdout.trim(), '"bonjour"')
  assert.match(home.ok(['get']).stdout, /^greeter\.GREETING = "bonjour"$/m)
  const saved = JSON.parse(fs.readFileSync(path.join(home.dir, 'config.json'), 'utf8'))
  assert.deepEqual(saved.apps, { greeter: { GREETING: 'bonjour' } })
  assert.ok(!logHas(home, 'greeter', 'GREETING=bonjour'), 'not before a restart')

  home.ok(['restart', 'greeter'])
  await waitFor('the value in its env', () => logHas(home, 'greeter', 'GREETING=bonjour'))

  const typo = home.run(['set', 'lgo.retain', '3'])
  assert.notEqual(typo.code, 0)
  assert.match(typo.stderr, /unknown setting 'lgo\.retain' — did you mean log\.retain\? \(a per-app setting is <app>\.<VARIABLE>, and no app is named lgo\)/)
  const badVar = home.run(['set', 'greeter.no-dash', '1'])
  assert.notEqual(badVar.code, 0)
  assert.match(badVar.stderr, /'no-dash' is not an environment variable name/)

  const u = home.ok(['unset', 'greeter.GREETING'])
  assert.match(u.stdout, /greeter\.GREETING is unset/)
  assert.notEqual(home.run(['get', 'greeter.GREETING']).code, 0)
  assert.notEqual(home.run(['unset', 'greeter.GREETING']).code, 0, 'nothing left to unset')
  fs.truncateSync(home.logFile('greeter-out.log'))
  home.ok(['restart', 'greeter'])
  await waitFor('gone from its env', () => logHas(home, 'greeter', 'GREETING=(unset)'))
}))

test('ecosystem pid_file writes the pid file like -p; force: true starts a copy under a free name like -f', withHome(async (home) => {
  const dir = fs.mkdtempSync(path.join(home.dir, 'eco-'))
  fs.copyFileSync(path.join(DIR, 'idle.js'), path.join(dir, 'idle.js'))
  const file = path.join(dir, 'eco.json')
  fs.writeFileSync(file, JSON.stringify({
    apps: [
      { name: 'pf', script: 'idle.js', pid: 'run/pf.pid' },
      { name: 'dup', script: 'idle.js', force: true },
    ],
  }))
  fs.mkdirSync(path.join(dir, 'run'))
  const first = home.ok(['start', 'eco.json'], { cwd: dir })
  assert.doesNotMatch(first.stderr, /pid|force/, 'neither key is ignored any more')
  const pidFile = path.join(dir, 'run', 'pf.pid')
  await waitFor('the pid file', () => {
    const x = one(home, 'pf')
    return x?.pid && fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() === String(x.pid)
  })
  await waitFor('dup online', () => one(home, 'dup')?.status === 'online')

  const again = home.ok(['start', 'eco.json'], { cwd: dir })
  assert.match(again.stdout, /force: dup already runs, so this one is named dup-2/)
  assert.match(again.stdout, /pf already running: restarting/)
  await waitFor('dup-2 online', () => one(home, 'dup-2')?.status === 'online')
  assert.equal(one(home, 'dup').status, 'online', 'the first copy keeps running')

  home.ok(['delete', 'pf'])
  await waitFor('the pid file removed', () => !fs.existsSync(pidFile))
}))

test('restart --env without a file is refused as PM2 refuses it; --name renames; start returns once instances are online', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'i'], { cwd: DIR })
  const r = home.run(['restart', 'i', '--env', 'production'])
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /--env production selects env_production of an ecosystem file; name the file/)

  // --name renames, keeping the other options given with it.
  const rn = home.ok(['restart', 'i', '--name', 'renamed', '--node-args', '--max-old-space-size=96'])
  assert.match(rn.stdout, /renamed i to renamed: pmr keys ids and logs by name/)
  const renamed = await waitFor('renamed online', () => one(home, 'renamed')?.status === 'online' && one(home, 'renamed').pid && one(home, 'renamed'))
  assert.ok(fs.readFileSync(`/proc/${renamed.pid}/cmdline`, 'utf8').split('\0').includes('--max-old-space-size=96'))
  assert.deepEqual(rows(home, 'i'), [])
  home.ok(['start', 'idle.js', '--name', 'j'], { cwd: DIR })
  const taken = home.run(['reload', 'renamed', '--name', 'j'])
  assert.notEqual(taken.code, 0)
  assert.match(taken.stderr, /--name j: an app is already named j/)
  assert.equal(one(home, 'renamed').status, 'online', 'a refused rename leaves the app alone')

  // Without --no-wait, start waits for each cluster worker to listen.
  const port = await freePort()
  const t0 = Date.now()
  home.ok(['start', 'slow-listen.js', '--name', 'slow', '-i', '2'], { cwd: DIR, wait: true, env: { PORT: String(port), LISTEN_AFTER_MS: '800' } })
  assert.ok(Date.now() - t0 >= 800, 'returned before the workers listened')
  const slow = rows(home, 'slow')
  assert.equal(slow.length, 2)
  for (const x of slow) {
    assert.equal(x.status, 'online')
    assert.ok(x.listening.length > 0, `instance ${x.id} listens`)
  }
}))
