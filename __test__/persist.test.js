'use strict'
// Issue: survive reboots and run in containers. save/resurrect, the
// systemd unit, and pmr-runtime as a container's PID 1.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { waitFor, freePort, get, FIXTURES, ROOT, withHome } = require('./helpers')

const RUNTIME = path.join(ROOT, 'bin', 'pmr-runtime.js')

test('save, kill, resurrect: same apps, instances, env and stopped state', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web', '-i', '2'], { env: { PORT: String(port), APP_ENV: 'saved' } })
  home.ok(['start', 'idle.js', '--name', 'paused'])
  home.ok(['stop', 'paused'])
  await waitFor('web online', () => home.jlist().filter((r) => r.name === 'web' && r.listening.length).length === 2)
  assert.match(home.ok(['save']).stdout, /saved 2 apps \(web, paused\) to .*dump\.json/)
  const dump = path.join(home.dir, 'dump.json')
  assert.equal(fs.statSync(dump).mode & 0o777, 0o600)
  const saved = JSON.parse(fs.readFileSync(dump, 'utf8'))
  assert.equal(saved.apps[0].spec.env.APP_ENV, 'saved')

  home.ok(['kill'])
  // A different shell: the apps must get the saved environment, not this one.
  const r = home.ok(['resurrect'], { env: { APP_ENV: 'other shell' } })
  assert.match(r.stdout, /paused was saved stopped: listed, not started/)
  const rows = await waitFor('the apps back online', () => {
    const all = home.jlist()
    return all.filter((x) => x.status === 'online').length === 2 ? all : null
  })
  assert.deepEqual(rows.map((x) => [x.name, x.status, x.mode]), [
    ['web', 'online', 'cluster'], ['web', 'online', 'cluster'], ['paused', 'stopped', 'fork'],
  ])
  await waitFor('web listening again', async () => {
    const res = await get(port).catch(() => null)
    return res && JSON.parse(res.body).env === 'saved'
  })
  // Already there: a second resurrect changes nothing.
  assert.match(home.ok(['resurrect']).stdout, /web is already in the list: left as it is/)
  assert.equal(home.jlist().length, 3)
}))

test('a corrupt dump falls back to the backup; both corrupt is an error and starts nothing', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'first'])
  home.ok(['save'])
  home.ok(['start', 'idle.js', '--name', 'second'])
  home.ok(['save'])
  const dump = path.join(home.dir, 'dump.json')
  assert.equal(fs.statSync(dump + '.bak').mode & 0o777, 0o600)
  home.ok(['kill'])
  fs.writeFileSync(dump, '{"version":1,"apps":[{"sp')
  const r = home.ok(['resurrect'])
  assert.match(r.stdout, /dump\.json is unreadable .*: using the previous save/)
  assert.deepEqual(home.jlist().map((x) => x.name), ['first'])

  home.ok(['kill'])
  fs.writeFileSync(dump + '.bak', 'not json either')
  const bad = home.run(['resurrect'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /dump\.json is unreadable .* and so is .*dump\.json\.bak .*: nothing was started/)
  assert.deepEqual(home.jlist(), [])

  home.ok(['cleardump'])
  assert.deepEqual(JSON.parse(fs.readFileSync(dump, 'utf8')).apps, [])
  assert.match(home.ok(['resurrect']).stdout, /│|no apps/)
}))

test('startup: where systemd is not running, nothing is written unless --force; the unit keeps the PATH of now', {
  skip: fs.existsSync('/run/systemd/system') && 'systemd runs here: this test would write the machine\'s own unit',
}, withHome(async (home) => {
  const user = require('node:os').userInfo().username
  const name = process.getuid() === 0 ? `pmr-${user}.service` : 'pmr.service'
  const real = process.getuid() === 0
    ? path.join('/etc/systemd/system', name)
    : path.join(require('node:os').homedir(), '.config', 'systemd', 'user', name)
  const existed = fs.existsSync(real)
  const refused = home.run(['startup'])
  assert.equal(refused.code, 1)
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr)
  assert.match(refused.stderr, /systemd is not running here .*wrote nothing.*pmr-runtime.*--force/)
  assert.equal(fs.existsSync(real), existed, 'nothing was written')

  const extra = path.join(home.dir, 'nvm', 'bin')
  const PATH = [extra, path.dirname(process.execPath), '/usr/bin', extra, 'relative/bin', '/usr/bin'].join(':')
  const dry = home.ok(['startup', '--dry-run'], { env: { PATH } }).stdout
  const unitPath = dry.split('\n').find((l) => l.startsWith('Environment=PATH=')).slice('Environment=PATH='.length).split(':')
  assert.equal(unitPath[0], path.dirname(process.execPath), 'node first')
  assert.ok(unitPath.includes(extra), `the user's PATH is kept: ${unitPath}`)
  assert.deepEqual(unitPath, [...new Set(unitPath)], 'each directory once')
  assert.ok(!unitPath.includes('relative/bin'))

  if (existed) return // never overwrite a unit this machine really has
  const dirExisted = fs.existsSync(path.dirname(real))
  try {
    const forced = home.ok(['startup', '--force'])
    assert.ok((forced.stderr + forced.stdout).includes(`wrote ${real}`), forced.stderr + forced.stdout)
    assert.ok(fs.existsSync(real))
  } finally {
    fs.rmSync(dirExisted ? real : path.dirname(real), { recursive: true, force: true })
  }
}))

test('startup: the systemd unit, written and removed', withHome(async (home, t) => {
  const unitDir = path.join(home.dir, 'units')
  const dry = home.ok(['startup', '--dry-run']).stdout
  const user = require('node:os').userInfo().username
  for (const line of [
    '[Service]', 'Type=forking', `Environment=PMR_HOME=${home.dir}`, `PIDFile=${home.dir}/pmr.pid`,
    `ExecStart=${process.execPath} ${path.join(ROOT, 'bin', 'pmr.js')} resurrect`,
    `ExecStop=${process.execPath} ${path.join(ROOT, 'bin', 'pmr.js')} kill`, 'Restart=on-failure',
  ]) assert.ok(dry.split('\n').includes(line), `the unit has ${line}:\n${dry}`)
  assert.equal(fs.existsSync(unitDir), false, '--dry-run writes nothing')

  const env = { PMR_SYSTEMD_DIR: unitDir }
  const r = home.ok(['startup', 'systemd'], { env })
  const name = process.getuid() === 0 ? `pmr-${user}.service` : 'pmr.service'
  const file = path.join(unitDir, name)
  assert.equal(fs.readFileSync(file, 'utf8'), dry)
  assert.match(r.stdout, new RegExp(`enable --now ${name.replace('.', '\\.')}`))
  const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
  if (verify.error) t.diagnostic('systemd-analyze not available: unit syntax not verified')
  else {
    // verify also checks that the unit's programs exist; they do here.
    const problems = (verify.stderr || '').split('\n').filter((l) => l.includes(name) && !/Failed to prepare filename|Unit .* not found/.test(l))
    assert.deepEqual(problems, [], verify.stderr)
  }
  assert.match(home.ok(['unstartup'], { env }).stdout, /removed .*\.service/)
  assert.equal(fs.existsSync(file), false)
  const bad = home.run(['startup', 'upstart'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /'upstart' is not supported/)
}))

/** Starts pmr-runtime (optionally as PID 1 of a new PID namespace). */
function runtime (home, args, { pid1 = false } = {}) {
  const cmd = pid1 ? 'unshare' : process.execPath
  const argv = pid1 ? ['--pid', '--fork', '--mount-proc', process.execPath, RUNTIME, ...args] : [RUNTIME, ...args]
  const child = spawn(cmd, argv, { cwd: FIXTURES, env: home.env() })
  const r = { child, out: '', err: '' }
  child.stdout.on('data', (d) => { r.out += d })
  child.stderr.on('data', (d) => { r.err += d })
  r.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  home.pids.add(child.pid)
  return r
}

/** Children of a process, whichever of its threads spawned them. */
function children (pid) {
  const out = []
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
    if (text) out.push(...text.split(/\s+/).map(Number))
  }
  return out.filter((p) => p > 1)
}

/** The host pid of the process that is PID 1 inside unshare's namespace. */
function nsInit (unsharePid) {
  return children(unsharePid)[0] || null
}

function zombieChildren (pid) {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
    try {
      const stat = fs.readFileSync(`/proc/${n}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return f[0] === 'Z' && Number(f[1]) === pid
    } catch { return false }
  })
}

const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0

test('pmr-runtime as PID 1: orphans reaped, managed exits seen, SIGTERM stops gracefully and exits 0', {
  skip: !canUnshare && 'unshare --pid --fork --mount-proc is not permitted here',
}, withHome(async (home) => {
  const r = runtime(home, ['orphans.js', '--name', 'maker'], { pid1: true })
  await waitFor('the app', () => /running maker/.test(r.err) && /orphan maker/.test(r.out))
  const init = await waitFor('PID 1 of the namespace', () => nsInit(r.child.pid))
  home.pids.add(init)
  // The orphans end after 0.3 s; their zombies must not stay.
  await new Promise((resolve) => setTimeout(resolve, 400))
  await waitFor('no zombie left under PID 1', () => zombieChildren(init).length === 0, { timeout: 3000 })
  // A managed child's exit still reaches the supervisor (not stolen by the reaper).
  const [app] = await waitFor('the app process', () => {
    const c = children(init)
    return c.length === 1 ? c : null
  })
  home.pids.add(app)
  process.kill(app, 'SIGKILL')
  await waitFor('the crash to be seen', () => /killed by SIGKILL \(crash\)/.test(r.err))
  await waitFor('the restart', () => (r.out.match(/orphan maker/g) || []).length === 2)
  process.kill(init, 'SIGTERM')
  const { code } = await r.exited
  assert.equal(code, 0)
  assert.match(r.err, /stopping every app/)
  assert.match(r.err, /maker\|0: killed by SIGINT \(pid \d+\)|maker\|0: exited/)
}))

test('pmr-runtime exits non-zero when every app is errored', withHome(async (home) => {
  const r = runtime(home, ['crash.js', '--name', 'bad', '--max-restarts', '1', '--raw'])
  const { code } = await r.exited
  assert.equal(code, 1)
  assert.match(r.err, /every app is errored/)
  assert.match(r.out, /^out line from \d+$/m, '--raw prints lines as written')
}))

test('pmr-runtime health endpoints and JSON output', withHome(async (home) => {
  const port = await freePort()
  const health = await freePort()
  const r = runtime(home, ['server.js', '--name', 'hs', '-i', '2', '--health-port', String(health), '--health-host', '127.0.0.1', '--json'])
  try {
    // PORT comes from the environment of the test.
    await waitFor('ready', async () => (await get(health, '/readyz').catch(() => ({}))).status === 200)
    assert.equal((await get(health, '/healthz')).status, 200)
    assert.equal((await get(health, '/nope')).status, 404)
    const line = await waitFor('the listening line', () => r.out.split('\n').find((l) => l.includes('listening on')))
    const obj = JSON.parse(line)
    assert.equal(obj.app, 'hs')
    assert.equal(obj.stream, 'out')
  } finally {
    r.child.kill('SIGTERM')
    assert.equal((await r.exited).code, 0)
  }
  void port
}))
