'use strict'
// Issue: reliability and security hardening. Each case of the README's
// "Reliability" section has its test here.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { Home, alive, waitFor, freePort, get } = require('./helpers')

function withHome (fn) {
  return async (t) => {
    const home = new Home()
    try {
      await fn(home, t)
    } finally {
      await home.cleanup()
    }
  }
}

const rows = (home, name) => home.jlist().filter((r) => r.name === name)

test('daemon killed with -9: the next command stops the orphans and brings the apps back once', withHome(async (home) => {
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
  assert.equal((await get(port)).status, 200, 'the restored app got its port back (no EADDRINUSE)')
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
