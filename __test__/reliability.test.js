'use strict'
// Issue: reliability and security hardening. Each case of the README's
// "Reliability" section has its test here.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { alive, waitFor, freePort, get, withHome, rows } = require('./helpers')

// Issue 17: a daemon killed alone is brought back by its keeper and adopts
// the apps (survival.test.js); with its keeper killed too, nothing holds
// the apps' pipes and sockets: the next command replaces them, as before.
test('daemon and keeper killed with -9: the next command stops the orphans and brings the apps back once', withHome(async (home) => {
  const port = await freePort()
  const port2 = await freePort()
  home.ok(['start', 'server.js', '--name', 'forked'], { env: { PORT: String(port) } })
  home.ok(['start', 'server.js', '--name', 'clustered', '-i', '2'], { env: { PORT: String(port2) } })
  await waitFor('both apps serving', async () => {
    const a = await get(port).catch(() => null)
    const b = await get(port2).catch(() => null)
    return a && b
  })
  const before = home.jlist()
  const forkPid = before.find((r) => r.name === 'forked').pid
  const daemon = home.daemonPid()
  const keeper = Number(fs.readFileSync(path.join(home.dir, 'keeper.pid'), 'utf8').split(' ')[0])
  process.kill(keeper, 'SIGKILL')
  process.kill(daemon, 'SIGKILL')
  await waitFor('the daemon to die', () => !alive(daemon))
  assert.ok(alive(forkPid), 'a fork-mode app outlives its daemon')

  const r = home.ok(['list'])
  assert.match(r.stdout, /started the daemon/)
  assert.match(r.stdout, new RegExp(`the previous daemon \\(pid ${daemon}\\) did not exit cleanly; stopped the \\d+ process(es)? it left running; restoring forked, clustered`))
  await waitFor('the old fork-mode process to be gone', () => !alive(forkPid))
  const after = await waitFor('every app back online', () => {
    const all = home.jlist()
    const ready = (x) => x.status === 'online' && (x.mode === 'fork' || x.listening.length)
    return all.length === 3 && all.every(ready) ? all : null
  })
  assert.deepEqual(after.map((x) => x.name).sort(), ['clustered', 'clustered', 'forked'], 'no duplicates')
  for (const x of after) assert.ok(!before.some((b) => b.pid === x.pid))
  // Fork mode: online is not yet listening.
  const served = await waitFor('the restored fork-mode app to serve', () => get(port).catch(() => null))
  assert.equal(served.status, 200, 'the restored app got its port back (no EADDRINUSE)')
  assert.equal((await get(port2)).status, 200)
  assert.equal(rows(home, 'forked')[0].last_error, null)
}))

test('a clean kill leaves nothing to recover', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'a'])
  assert.ok(fs.existsSync(path.join(home.dir, 'state.json')))
  assert.equal(fs.statSync(path.join(home.dir, 'state.json')).mode & 0o777, 0o600)
  home.ok(['kill'])
  assert.ok(!fs.existsSync(path.join(home.dir, 'state.json')))
  assert.deepEqual(home.jlist(), [])
}))

test('a SIGSTOPped app is still stopped, by SIGKILL after kill_timeout', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'frozen', '--kill-timeout', '500'])
  const [r] = rows(home, 'frozen')
  process.kill(r.pid, 'SIGSTOP')
  const t0 = Date.now()
  await home.okAsync(['stop', 'frozen'])
  assert.ok(Date.now() - t0 >= 450)
  assert.ok(!alive(r.pid))
  assert.equal(rows(home, 'frozen')[0].last_exit.signal, 'SIGKILL')
}))

test('an app that closes its stdout early or floods stderr blocks nothing', withHome(async (home) => {
  fs.writeFileSync(path.join(home.dir, 'closer.js'), `
    const fs = require('fs')
    fs.closeSync(1)
    setInterval(() => {}, 1 << 30)`)
  fs.writeFileSync(path.join(home.dir, 'flood.js'), `
    const line = 'x'.repeat(200) + '\\n'
    let n = 0
    function burst () { for (let i = 0; i < 2000; i++) process.stderr.write(line); n += 2000; if (n < 200000) setImmediate(burst); else console.log('flood done') }
    burst()
    setInterval(() => {}, 1 << 30)`)
  home.ok(['start', path.join(home.dir, 'closer.js'), '--name', 'closer'])
  home.ok(['start', path.join(home.dir, 'flood.js'), '--name', 'flood'])
  await waitFor('the flood to finish', () => {
    try { return fs.readFileSync(home.logFile('flood-out.log'), 'utf8').includes('flood done') } catch { return false }
  }, { timeout: 30000 })
  // The daemon answers promptly all along.
  const t0 = Date.now()
  home.ok(['jlist'])
  assert.ok(Date.now() - t0 < 2000)
  assert.ok(rows(home, 'closer').every((r) => r.status === 'online'))
  assert.equal(rows(home, 'flood')[0].restarts, 0)
}))

test('1000 idle clients and an oversized message: list still answers quickly', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'a'])
  const sock = path.join(home.dir, 'pmr.sock')
  const clients = []
  for (let i = 0; i < 1000; i++) {
    clients.push(await new Promise((resolve, reject) => {
      const c = net.connect(sock, () => resolve(c))
      c.on('error', reject)
    }))
  }
  const big = net.connect(sock)
  big.write('x'.repeat(8 << 20))
  try {
    const t0 = Date.now()
    const r = home.ok(['jlist'])
    const took = Date.now() - t0
    assert.equal(JSON.parse(r.stdout)[0].name, 'a')
    assert.ok(took < 1000, `jlist took ${took} ms with 1000 idle clients`)
  } finally {
    for (const c of clients) c.destroy()
    big.destroy()
  }
}))

test('another user cannot use the control socket', withHome(async (home, t) => {
  home.ok(['ping'])
  if (process.getuid() !== 0) return t.skip('needs root to run a client as another user')
  const probe = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'true'])
  if (probe.status !== 0) return t.skip('setpriv cannot switch users here')
  // The home is 0700: another user cannot even reach the socket...
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath,
    path.join(__dirname, '..', 'bin', 'pmr.js'), 'jlist'], { env: { ...process.env, PMR_HOME: home.dir }, encoding: 'utf8' })
  assert.notEqual(r.status, 0)
  assert.match(r.stderr, /\[pmr\] error: /)
  // ...and with the directory opened up, the daemon still refuses the peer.
  fs.chmodSync(home.dir, 0o711)
  fs.chmodSync(path.join(home.dir, 'pmr.sock'), 0o666)
  const script = `const s = require('net').connect(${JSON.stringify(path.join(home.dir, 'pmr.sock'))});
    let got = ''; s.on('data', (d) => { got += d }); s.on('close', () => { console.log(JSON.stringify(got)) });
    s.on('error', (e) => console.log('error ' + e.code)); s.write('{"v":1,"id":1,"cmd":"list"}\\n')`
  const peer = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8' })
  fs.chmodSync(home.dir, 0o700)
  const lines = peer.stdout.trim().split('\n')
  assert.equal(lines[lines.length - 1], '""', `the daemon closed the connection without answering: ${peer.stdout} ${peer.stderr}`)
  assert.match(fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8'), /refused a control connection from another user/)
}))

const inodes = (pid) => fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
  try { return [Number(fd), fs.readlinkSync(`/proc/${pid}/fd/${fd}`)] } catch { return [Number(fd), null] }
}).filter(([, t]) => t)

test('a stop reaches processes that left the group with setsid (cgroup scope)', withHome(async (home, t) => {
  fs.writeFileSync(path.join(home.dir, 'escape.js'), `
    const { spawn } = require('child_process')
    const c = spawn('setsid', ['sleep', '1000'], { stdio: 'ignore', detached: false })
    console.log('escapee ' + c.pid)
    setInterval(() => {}, 1 << 30)`)
  home.ok(['start', path.join(home.dir, 'escape.js'), '--name', 'esc'])
  const [r] = rows(home, 'esc')
  const escapee = await waitFor('the escapee', () => {
    const m = fs.readFileSync(home.logFile('esc-out.log'), 'utf8').match(/escapee (\d+)/)
    return m && Number(m[1])
  })
  home.pids.add(escapee)
  const stat = fs.readFileSync(`/proc/${escapee}/stat`, 'utf8')
  const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
  assert.notEqual(pgrp, r.pid, 'the escapee is out of the app\'s process group')
  const desc = home.ok(['describe', 'esc']).stdout
  if (!/kill scope +│ cgroup /.test(desc)) {
    assert.match(desc, /kill scope +│ process group \d+/)
    return t.skip('no cgroup v2 here: process groups cannot reach a setsid escapee')
  }
  home.ok(['stop', 'esc'])
  await waitFor('the escapee to be gone', () => !alive(escapee))
  assert.ok(!alive(r.pid))
  assert.equal(rows(home, 'esc')[0].kill_scope, null)
}))

test('an app gets exactly fds 0, 1, 2 (and 3, its IPC channel) and nothing of the daemon', withHome(async (home) => {
  home.ok(['start', 'sleep', '--name', 'plain', '--', '1000'])
  const [plain] = rows(home, 'plain')
  assert.deepEqual(inodes(plain.pid).map(([fd]) => fd).sort(), [0, 1, 2])
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'worker', '-i', '1'], { env: { PORT: String(port) } })
  await waitFor('listening', () => rows(home, 'worker')[0].listening.length === 1)
  const [w] = rows(home, 'worker')
  // Steered by the kernel, a worker holds its own listening socket and the
  // overflow socket, which the daemon sends just after the first; by pmr,
  // only the listening socket.
  const steered = /by the kernel/.test(home.ok(['describe', 'worker']).stdout)
  const handed = steered ? 2 : 1
  const daemonInodes = () => new Set(inodes(home.daemonPid()).map(([, t]) => t).filter((t) => /^(socket|pipe):/.test(t)))
  const sharedNow = () => { const d = daemonInodes(); return inodes(w.pid).filter(([fd, t]) => d.has(t)) }
  const shared = await waitFor(`the ${handed} handed sockets`, () => {
    const s = sharedNow()
    return s.filter(([fd]) => fd > 2).length >= handed ? s : null
  })
  // Only the ends of the stdin pipe (`pmr send` writes to it), of the
  // output pipes, and the sockets pmr handed over.
  for (const [fd, t] of shared) {
    assert.ok(fd <= 2 || /^socket:/.test(t), `fd ${fd} (${t}) is shared with the daemon`)
  }
  assert.match(fs.readlinkSync(`/proc/${w.pid}/fd/0`), /^pipe:/, 'stdin is the pipe pmr send writes to')
  assert.equal(shared.filter(([fd]) => fd > 2).length, handed, `only the handed sockets: ${JSON.stringify(shared)}`)
  assert.match(fs.readlinkSync(`/proc/${w.pid}/fd/3`), /^socket:/)
}))

test('200 instances exiting at the same instant are all seen and restarted', withHome(async (home) => {
  // Light shell processes (200 Node ones would take this machine longer to
  // start than the wait); each sleeps until the same wall-clock instant.
  const at = (Date.now() + 6000) / 1000
  fs.writeFileSync(path.join(home.dir, 'together.sh'), `#!/bin/sh
d=$(awk -v at=${at} -v now=$(date +%s.%N) 'BEGIN { d = at - now; if (d > 0) printf "%.3f", d; else print 0 }')
if [ "$d" != "0" ]; then sleep "$d"; exit 1; fi
exec sleep 1000
`)
  fs.writeFileSync(path.join(home.dir, 'herd.json'), JSON.stringify({
    apps: [{ name: 'herd', script: 'together.sh', instances: 200, min_uptime: 0 }],
  }))
  home.ok(['start', 'herd.json'], { cwd: home.dir, timeout: 60000 })
  assert.ok(Date.now() / 1000 < at, 'every instance started before the instant')
  await waitFor('every instance restarted once', () => {
    const all = rows(home, 'herd')
    return all.length === 200 && all.every((r) => r.restarts === 1 && r.status === 'online')
  }, { timeout: 30000, interval: 200 })
}))

test('as root: uid/gid drop privileges, HOME/USER/LOGNAME follow, planted log symlinks are refused', withHome(async (home, t) => {
  if (process.getuid() !== 0) return t.skip('needs root to switch users')
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'pmr-uid-'))
  try {
    fs.chmodSync(dir, 0o755)
    const script = path.join(dir, 'who.js')
    fs.writeFileSync(script, `console.log(JSON.stringify({ HOME: process.env.HOME, USER: process.env.USER, LOGNAME: process.env.LOGNAME })); setInterval(() => {}, 1 << 30)`)
    fs.chmodSync(script, 0o644)
    const first = home.ok(['start', script, '--name', 'rooty', '--cwd', dir])
    assert.match(first.stdout, /rooty runs as root because the daemon does and the app sets no uid/)
    const second = home.ok(['start', 'idle.js', '--name', 'rooty2'])
    assert.doesNotMatch(second.stdout, /runs as root/, 'the warning is given once')

    home.ok(['start', script, '--name', 'nob', '--uid', 'nobody', '--gid', 'nogroup', '--cwd', dir])
    const [nob] = rows(home, 'nob')
    const status = fs.readFileSync(`/proc/${nob.pid}/status`, 'utf8')
    assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m)
    assert.match(status, /^Gid:\s+65534\s+65534\s+65534\s+65534$/m)
    assert.doesNotMatch(status, /^Groups:.*\b0\b/m, 'root\'s groups are gone')
    const env = await waitFor('the env line', () => {
      try { return JSON.parse(fs.readFileSync(home.logFile('nob-out.log'), 'utf8').trim()) } catch { return null }
    })
    assert.equal(env.USER, 'nobody')
    assert.equal(env.LOGNAME, 'nobody')
    assert.notEqual(env.HOME, process.env.HOME)

    // A link planted where an app's log should go is not followed.
    const victim = path.join(dir, 'victim.txt')
    fs.writeFileSync(victim, 'untouched\n')
    const planted = path.join(dir, 'out.log')
    fs.symlinkSync(victim, planted)
    home.ok(['start', script, '--name', 'planted', '--uid', 'nobody', '--cwd', dir, '-o', planted])
    await waitFor('the refused write to be counted', () => rows(home, 'planted')[0].log_dropped_bytes > 0)
    assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched\n')
    const bad = home.run(['start', script, '--name', 'ghostuser', '--uid', 'no-such-user-here'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /no user named 'no-such-user-here'/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}))

test('an app that cannot be spawned does not keep the apps after it from starting', withHome(async (home, t) => {
  if (process.getuid() !== 0) return t.skip('needs root: the failure is exec as nobody of a file only root can reach')
  // Checks in the CLI pass (root can reach the file); exec as nobody fails.
  const locked = path.join(home.dir, 'locked')
  fs.mkdirSync(locked, { mode: 0o700 })
  fs.writeFileSync(path.join(locked, 'run'), '#!/bin/sh\nexec sleep 1000\n', { mode: 0o755 })
  fs.writeFileSync(path.join(home.dir, 'idle.js'), 'setInterval(() => {}, 1 << 30)')
  fs.writeFileSync(path.join(home.dir, 'ecosystem.config.js'), `module.exports = { apps: [
    { name: 'first', script: 'idle.js' },
    { name: 'locked', script: 'locked/run', uid: 'nobody' },
    { name: 'last', script: 'idle.js' },
  ] }`)
  const r = home.run(['start', 'ecosystem.config.js'], { cwd: home.dir })
  assert.equal(r.code, 1)
  assert.match(r.stderr, /cannot start .*locked\/run \(instance 0 of locked\): Permission denied.*; started anyway: first, last$/m)
  const names = home.jlist().map((x) => `${x.name}:${x.status}`)
  assert.deepEqual(names, ['first:online', 'last:online'], 'nothing half-started stays; the others run')
}))

test('soak: 10 000 crash-restarts leave the daemon\'s fds and memory as they were', {
  skip: !process.env.PMR_SLOW && 'slow (about a minute): run with PMR_SLOW=1',
}, withHome(async (home, t) => {
  home.ok(['ping'])
  const daemon = home.daemonPid()
  const fds = () => fs.readdirSync(`/proc/${daemon}/fd`).length
  const rss = () => Number(fs.readFileSync(`/proc/${daemon}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024
  home.ok(['start', 'sh', '--name', 'flap', '--max-restarts', '100000000', '--min-uptime', '0', '--', '-c', 'exit 1'])
  await waitFor('100 restarts', () => rows(home, 'flap')[0].restarts >= 100, { timeout: 30000 })
  const fd0 = fds()
  const rss0 = rss()
  await waitFor('10 000 restarts', () => rows(home, 'flap')[0].restarts >= 10100, { timeout: 300000, interval: 1000 })
  home.ok(['stop', 'flap'])
  const fd1 = fds()
  const rss1 = rss()
  t.diagnostic(`daemon fds ${fd0} -> ${fd1}, RSS ${(rss0 / 1048576).toFixed(1)} MB -> ${(rss1 / 1048576).toFixed(1)} MB`)
  assert.ok(fd1 <= fd0, `the daemon's fd count came back (${fd0} -> ${fd1})`)
  assert.ok(rss1 - rss0 < 2 * 1048576, `RSS grew by ${((rss1 - rss0) / 1048576).toFixed(2)} MB`)
}))
