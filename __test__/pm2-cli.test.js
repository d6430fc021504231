'use strict'
// Issue 18, part 1: the commands, flags and targets a PM2 user types, and
// the programs PM2 runs (package bins, command lines, plain files), each
// through the real CLI and daemon.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { waitFor, freePort, get, FIXTURES, ROOT, BIN, withHome, rows, online } = require('./helpers')

const DIR = path.join(FIXTURES, 'pm2-cli')
const one = (home, name) => rows(home, name)[0]
const cmdline = (pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')

/** A directory of the test's own holding copies of fixtures. */
function scratch (home, files) {
  const dir = fs.mkdtempSync(path.join(home.dir, 'app-'))
  for (const [from, to] of files) fs.copyFileSync(from, path.join(dir, to))
  return dir
}

/** The CLI with `input` on its stdin. */
function withStdin (home, args, input, cwd = DIR) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: home.env(), input, encoding: 'utf8', timeout: 30000 })
  home.notePids()
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('-v, -x, --no-automation, source maps beside the script, startup --service-name', withHome(async (home) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  assert.match(home.ok(['-v']).stdout, new RegExp(pkg.version.replace(/\./g, '\\.')))

  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'forked', '-x', '-i', '1', '--no-automation'], { env: { PORT: String(port) } })
  const [f] = await online(home, 'forked', 1, { listening: false })
  assert.equal(f.mode, 'fork', '-x keeps a Node.js app out of cluster mode')

  const auto = home.ok(['start', 'mapped.js', '--name', 'maps'], { cwd: DIR })
  assert.match(auto.stdout, /mapped\.js\.map is there, so the app runs with --enable-source-maps/)
  home.ok(['start', 'mapped.js', '--name', 'nomaps', '--disable-source-map-support'], { cwd: DIR })
  const [maps, nomaps] = await Promise.all(['maps', 'nomaps'].map((n) => waitFor(n, () => one(home, n).pid && one(home, n))))
  assert.ok(cmdline(maps.pid).includes('--enable-source-maps'))
  assert.ok(!cmdline(nomaps.pid).includes('--enable-source-maps'))

  const units = fs.mkdtempSync(path.join(home.dir, 'units-'))
  const w = home.ok(['startup', '--service-name', 'shop'], { env: { PMR_SYSTEMD_DIR: units } })
  assert.match(w.stdout, /enable --now shop\.service/)
  assert.ok(fs.existsSync(path.join(units, 'shop.service')))
  home.ok(['unstartup', '--service-name', 'shop'], { env: { PMR_SYSTEMD_DIR: units } })
  assert.ok(!fs.existsSync(path.join(units, 'shop.service')))
  const bad = home.run(['startup', '--service-name', 'a/b', '--dry-run'])
  assert.match(bad.stderr, /--service-name 'a\/b'/)
}))

test('several scripts in one start; start - and delete - read an ecosystem JSON from stdin', withHome(async (home) => {
  const r = home.ok(['start', 'idle.js', 'lines.js'])
  assert.match(r.stdout, /starting .*idle\.js as idle/)
  assert.match(r.stdout, /starting .*lines\.js as lines/)
  assert.deepEqual(home.jlist().map((x) => x.name).sort(), ['idle', 'lines'])
  const named = home.run(['start', 'idle.js', 'crash.js', '--name', 'x'])
  assert.notEqual(named.code, 0)
  assert.match(named.stderr, /--name names one app, and 2 scripts were given/)

  const eco = JSON.stringify({ apps: [{ name: 'fromstdin', script: 'idle.js', env: { A: '1' } }] })
  const s = withStdin(home, ['start', '--no-wait', '-'], eco, FIXTURES)
  assert.equal(s.code, 0, s.stderr)
  await waitFor('fromstdin online', () => one(home, 'fromstdin')?.status === 'online')
  const d = withStdin(home, ['delete', '-'], eco, FIXTURES)
  assert.equal(d.code, 0, d.stderr)
  assert.deepEqual(rows(home, 'fromstdin'), [])
  const broken = withStdin(home, ['start', '-'], '{ nope', FIXTURES)
  assert.notEqual(broken.code, 0)
  assert.match(broken.stderr, /stdin \(JSON expected\)/)
}))

test('smart start: the same script restarts, another directory\'s is refused with the commands, -f starts a copy; a script file is a target', withHome(async (home) => {
  home.ok(['start', 'idle.js'])
  const first = await waitFor('idle online', () => one(home, 'idle')?.status === 'online' && one(home, 'idle'))
  const again = home.ok(['start', 'idle.js'])
  assert.match(again.stdout, /idle already runs .*idle\.js: restarting it, as pm2 start does/)
  const second = await waitFor('a new pid', () => { const x = one(home, 'idle'); return x.pid && x.pid !== first.pid && x.status === 'online' && x })
  assert.equal(second.id, first.id)

  const other = scratch(home, [[path.join(FIXTURES, 'idle.js'), 'idle.js']])
  const refused = home.run(['start', 'idle.js'], { cwd: other })
  assert.notEqual(refused.code, 0)
  assert.match(refused.stderr, new RegExp(`idle is already running another script, ${FIXTURES.replace(/[/\\]/g, '.')}/idle\\.js \\(cwd ${FIXTURES.replace(/[/\\]/g, '.')}\\)`))
  assert.match(refused.stderr, /pmr start idle\.js --name idle-2; to replace it: pmr delete idle && pmr start idle\.js/)
  assert.equal(refused.stderr.trim().split('\n').length, 1)

  const forced = home.ok(['start', 'idle.js', '-f'], { cwd: other })
  assert.match(forced.stdout, /--force: idle already runs, so this one is named idle-2/)
  await waitFor('idle-2 online', () => one(home, 'idle-2')?.status === 'online')

  // By file name: this directory's app, not the other one.
  home.ok(['stop', 'idle.js'], { cwd: other })
  assert.equal(one(home, 'idle-2').status, 'stopped')
  assert.equal(one(home, 'idle').status, 'online')
  home.ok(['restart', 'idle.js'])
  assert.equal(one(home, 'idle-2').status, 'stopped')

  // pmr start <name> of a running app restarts it too.
  const before = one(home, 'idle').pid
  const byName = home.ok(['start', 'idle'])
  assert.match(byName.stdout, /idle was running: restarted it, as pm2 start does/)
  await waitFor('restarted by name', () => { const x = one(home, 'idle'); return x.pid && x.pid !== before && x.status === 'online' })
}))

test('a command line with spaces runs through bash -c; -i N of a non-Node command warns', withHome(async (home) => {
  const r = home.ok(['start', 'echo started-by-bash && exec sleep 1000', '--name', 'sh'])
  const row = await waitFor('sh online', () => one(home, 'sh')?.status === 'online' && one(home, 'sh'))
  assert.equal(row.mode, 'fork')
  assert.ok(r.stdout.includes('starting'))
  await waitFor('the line in the log', () => fs.existsSync(home.logFile('sh-out.log')) && fs.readFileSync(home.logFile('sh-out.log'), 'utf8').includes('started-by-bash'))
  const warn = home.ok(['start', 'job.sh', '--name', 'jobs', '-i', '2'])
  assert.match(warn.stdout, /jobs: 2 instances of .*job\.sh, which is not a Node\.js app, run in fork mode and cannot share a port/)

  // Reloading a fork-mode command says what gives zero downtime, once, and
  // never "reloaded" after "restarted instead".
  const rl = home.ok(['reload', 'sh'])
  assert.match(rl.stdout, /sh runs in fork mode.*restarted instead of reloaded.*run the Node\.js script itself/)
  assert.doesNotMatch(rl.stdout, /-i 1 for zero-downtime/)
  assert.doesNotMatch(rl.stdout, /\[pmr\] reloaded sh/)
}))

test('extension-less node scripts: a shebang bin clusters with -i 2, a plain file runs with node', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'srv', '-i', '2'], { cwd: DIR, env: { PORT: String(port) } })
  const srv = await online(home, 'srv', 2)
  assert.ok(srv.every((x) => x.mode === 'cluster'))
  const seen = new Set()
  await waitFor('both workers answering', async () => {
    const body = JSON.parse((await get(port)).body)
    assert.equal(body.worker, true)
    seen.add(body.pid)
    return seen.size === 2
  })
  assert.ok(rows(home, 'srv').every((x) => x.restarts === 0), 'no instance crash-loops')

  home.ok(['start', 'plain'], { cwd: DIR })
  await waitFor('plain ran under node', () => fs.existsSync(home.logFile('plain-out.log')) && fs.readFileSync(home.logFile('plain-out.log'), 'utf8').includes('plain under node'))
}))

test('ids start at 0 after delete all; scale down removes the highest; a watch turned off stays off after stop/start', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'a'])
  home.ok(['start', 'idle.js', '--name', 'b', '-i', '3'])
  assert.deepEqual(rows(home, 'b').map((x) => x.id), [1, 2, 3])
  home.ok(['scale', 'b', '1'])
  assert.deepEqual(rows(home, 'b').map((x) => [x.id, x.instance]), [[1, 0]])
  home.ok(['delete', 'all'])
  home.ok(['start', 'idle.js', '--name', 'c'])
  assert.equal(one(home, 'c').id, 0)

  const dir = scratch(home, [[path.join(FIXTURES, 'idle.js'), 'idle.js']])
  home.ok(['start', 'idle.js', '--name', 'w', '--watch'], { cwd: dir })
  await waitFor('w watching', () => one(home, 'w').watching)
  home.ok(['stop', '--watch', 'w'])
  home.ok(['stop', 'w'])
  home.ok(['start', 'w'])
  await waitFor('w online', () => one(home, 'w').status === 'online')
  assert.equal(one(home, 'w').watching, false)
}))

test('output without a newline reaches the log file; instances max is saved as max', withHome(async (home) => {
  home.ok(['start', 'partial.js'], { cwd: DIR })
  const t0 = Date.now()
  await waitFor('the prompt in the error log', () => fs.existsSync(home.logFile('partial-error.log')) && fs.readFileSync(home.logFile('partial-error.log'), 'utf8') === 'password? ')
  assert.ok(Date.now() - t0 < 3000)
  await waitFor('the partial stdout line', () => fs.readFileSync(home.logFile('partial-out.log'), 'utf8') === 'step 1...')

  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'm', '-i', 'max'], { env: { PORT: String(port) } })
  home.ok(['save'])
  const dump = JSON.parse(fs.readFileSync(path.join(home.dir, 'dump.json'), 'utf8'))
  const m = dump.apps.find((a) => a.spec.name === 'm')
  assert.equal(m.instances, 'max')
  assert.equal(dump.apps.find((a) => a.spec.name === 'partial').instances, undefined)
}))

test('options with an ecosystem file override it; start <file> restarts the apps that run; init [name]', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'eco.json', '-i', '2', '--only', 'api'], { cwd: DIR, env: { PORT: String(port) } })
  const api = await online(home, 'api', 2)
  assert.ok(api.every((x) => x.mode === 'cluster'), '-i 2 from the command line wins over the file')
  assert.deepEqual(rows(home, 'side'), [])
  const again = home.ok(['start', 'eco.json'], { cwd: DIR, env: { PORT: String(port) } })
  assert.match(again.stdout, /api already running: restarting with eco\.json's definition, as pm2 start does/)
  await online(home, 'api', 1, { listening: false })
  await waitFor('side online', () => one(home, 'side')?.status === 'online')

  const dir = fs.mkdtempSync(path.join(home.dir, 'init-'))
  fs.writeFileSync(path.join(dir, 'server.js'), '')
  home.ok(['init', 'shop'], { cwd: dir })
  const text = fs.readFileSync(path.join(dir, 'ecosystem.config.js'), 'utf8')
  assert.match(text, /name: 'shop'/)
  assert.match(text, /script: 'server\.js'/)
  home.ok(['init', 'pm2.config.js'], { cwd: dir })
  assert.ok(fs.existsSync(path.join(dir, 'pm2.config.js')))
}))


test('two cluster apps on one port: the second stops at its first listen, naming the holder; never a crash loop', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web', '-i', '2'], { env: { PORT: String(port) } })
  await online(home, 'web', 2)
  const r = home.run(['start', 'server.js', '--name', 'web2', '-i', '2'], { env: { PORT: String(port) }, wait: true })
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /web2 \(id \d\): cannot listen on .*:\d+: the cluster app 'web' holds that port, so web2 was stopped at its first listen/)
  const second = await waitFor('web2 errored', () => { const x = rows(home, 'web2'); return x.length === 2 && x.every((i) => i.status === 'errored') && x })
  assert.ok(second.every((i) => i.restarts === 0), 'not restarted')
  assert.match(home.ok(['describe', 'web2']).stdout, /the cluster app 'web' holds that port/)
  assert.ok(rows(home, 'web').every((i) => i.status === 'online' && i.restarts === 0))
  assert.equal((await get(port)).status, 200)
}))

test('-p writes the pid file while the app runs; restart and reload take -i, --node-args and --watch', withHome(async (home) => {
  const pidFile = path.join(home.dir, 'idle.pid')
  home.ok(['start', 'idle.js', '--name', 'p', '-p', pidFile])
  const first = await waitFor('the pid file', () => {
    const x = one(home, 'p')
    return x.pid && fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() === String(x.pid) && x
  })
  home.ok(['restart', 'p', '-i', '2', '--node-args', '--max-old-space-size=64', '--watch'])
  const two = await waitFor('two instances', () => { const x = rows(home, 'p'); return x.length === 2 && x.every((i) => i.status === 'online' && i.pid !== first.pid) && x })
  assert.ok(two.every((i) => i.mode === 'cluster'))
  for (const i of two) assert.ok(cmdline(i.pid).includes('--max-old-space-size=64'), cmdline(i.pid).join(' '))
  await waitFor('watching', () => rows(home, 'p').every((i) => i.watching))
  const fileOf = (i) => path.join(home.dir, i.instance === 0 ? 'idle.pid' : `idle-${i.instance}.pid`)
  await waitFor('one pid file per instance', () => two.every((i) => fs.existsSync(fileOf(i)) && fs.readFileSync(fileOf(i), 'utf8').trim() === String(i.pid)))
  home.ok(['reload', 'p', '--watch'])
  await waitFor('not watching', () => rows(home, 'p').every((i) => !i.watching))
  home.ok(['stop', 'p'])
  await waitFor('the pid files removed', () => two.every((i) => !fs.existsSync(fileOf(i))))
  // pmr start <existing app> with an option applies it as restart does.
  home.ok(['start', 'p', '-i', '1'])
  await waitFor('one instance', () => rows(home, 'p').length === 1 && one(home, 'p').status === 'online')
}))

test('multiset sets several settings, one bad pair sets none; unset puts the default back', withHome(async (home) => {
  home.ok(['multiset', 'log.retain 30 log.compress true'])
  assert.equal(home.ok(['get', 'log.retain']).stdout.trim(), '30')
  assert.equal(home.ok(['get', 'log.compress']).stdout.trim(), 'true')
  const bad = home.run(['multiset', 'log.retain 5 log.retian 4'])
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /unknown setting 'log\.retian' — did you mean log\.retain\?/)
  assert.equal(home.ok(['get', 'log.retain']).stdout.trim(), '30', 'nothing was set')
  const u = home.ok(['unset', 'log.retain'])
  assert.match(u.stdout, /log\.retain = 10 \(the default\)/)
  assert.equal(home.ok(['get', 'log.retain']).stdout.trim(), '10')
}))
