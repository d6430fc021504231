'use strict'
// Issue: cluster mode. pmr is the cluster primary: it binds the sockets
// workers ask for, hands them over, and keeps them while the app runs.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const http = require('node:http')
const { alive, waitFor, freePort, get, load, withHome, rows, online } = require('./helpers')

/** Fresh-connection requests until `n` distinct pids have answered. */
async function distinctPids (port, n) {
  const pids = new Set()
  await waitFor(`${n} workers answering on ${port}`, async () => {
    const r = await get(port).catch(() => null)
    if (r && r.status === 200) pids.add(JSON.parse(r.body).pid)
    return pids.size >= n
  }, { interval: 1 })
  return pids
}

test('two workers share one port and both answer', withHome(async (home) => {
  const port = await freePort()
  const r = home.ok(['start', 'server.js', '--name', 'web', '-i', '2'], { env: { PORT: String(port) } })
  assert.match(r.stdout, /2 instances of a Node\.js app: running in cluster mode/)
  const [a, b] = await online(home, 'web', 2)
  assert.deepEqual([a.mode, b.mode], ['cluster', 'cluster'])
  assert.deepEqual([a.instance, b.instance], [0, 1])
  const pids = await distinctPids(port, 2)
  assert.deepEqual([...pids].sort(), [a.pid, b.pid].sort())
  const desc = home.ok(['describe', 'web']).stdout
  assert.match(desc, new RegExp(`sockets held by pmr +│ .*:${port}`))
  // Each instance logs to its own files.
  assert.ok(fs.existsSync(home.logFile(`web-out-${a.id}.log`)))
  assert.ok(fs.existsSync(home.logFile(`web-out-${b.id}.log`)))
}))

test('kill -9 of one worker under load: no refused connection, only it restarts', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web', '-i', '2'], { env: { PORT: String(port) } })
  const [a, b] = await online(home, 'web', 2)
  const loop = load(port, { connections: 4 })
  await waitFor('traffic', () => loop.stats.ok > 200)
  process.kill(a.pid, 'SIGKILL')
  await waitFor('the replacement', () => {
    const r = rows(home, 'web').find((x) => x.id === a.id)
    return r.pid !== a.pid && r.status === 'online' && r.listening.length > 0
  })
  const before = loop.stats.ok
  await waitFor('more traffic', () => loop.stats.ok > before + 200)
  const s = await loop.stop()
  assert.equal(s.errors.ECONNREFUSED, undefined, `no connection was refused: ${JSON.stringify(s.errors)}`)
  // Only a request the killed worker had already accepted can be lost.
  assert.ok(s.failed <= 4, `at most the killed worker's in-flight requests failed: ${JSON.stringify(s.errors)}`)
  const after = rows(home, 'web')
  const other = after.find((x) => x.id === b.id)
  assert.equal(other.pid, b.pid, 'the other worker kept running')
  assert.equal(other.restarts, 0)
  assert.equal(after.find((x) => x.id === a.id).restarts, 1)
}))

test('all workers killed at once: requests made meanwhile wait and succeed', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web', '-i', '2'], { env: { PORT: String(port) } })
  const [a, b] = await online(home, 'web', 2)
  process.kill(a.pid, 'SIGKILL')
  process.kill(b.pid, 'SIGKILL')
  // Sent while no worker is accepting: the kernel queues them on pmr's socket.
  const answers = await Promise.all(Array.from({ length: 10 }, () => get(port)))
  for (const r of answers) assert.equal(r.status, 200)
  const pids = new Set(answers.map((r) => JSON.parse(r.body).pid))
  assert.ok(!pids.has(a.pid) && !pids.has(b.pid), 'answered by the new workers')
}))

test('scale up and down without touching the running workers', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web', '-i', '2'], { env: { PORT: String(port) } })
  const first = await online(home, 'web', 2)
  home.ok(['scale', 'web', '4'])
  const four = await online(home, 'web', 4)
  assert.deepEqual(four.map((r) => r.instance).sort(), [0, 1, 2, 3])
  for (const r of first) assert.equal(four.find((x) => x.id === r.id).pid, r.pid)
  await distinctPids(port, 4)
  home.ok(['scale', 'web', '-3'])
  const one = await online(home, 'web', 1)
  assert.equal(one[0].pid, first.find((r) => r.instance === 0).pid)
  home.ok(['scale', 'web', '+1'])
  await online(home, 'web', 2)
  const r = home.run(['scale', 'web', '0'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /cannot scale web to 0/)
}))

test('port 0: all workers share one random port', withHome(async (home) => {
  home.ok(['start', 'port0.js', '--name', 'p0', '-i', '2'])
  const [a, b] = await online(home, 'p0', 2)
  const portOf = (id) => waitFor('the port line', () => {
    try { return (fs.readFileSync(home.logFile(`p0-out-${id}.log`), 'utf8').match(/port (\d+)/) || [])[1] } catch { return null }
  })
  const pa = await portOf(a.id)
  assert.equal(await portOf(b.id), pa)
  assert.notEqual(pa, '0')
  const pids = new Set()
  await waitFor('both workers', async () => {
    const r = await get(Number(pa))
    pids.add(Number(r.body))
    return pids.size === 2
  }, { interval: 1 })
}))

test('Unix socket path shared by the workers, removed when the app stops', withHome(async (home) => {
  const sock = path.join(home.dir, 'app.sock')
  home.ok(['start', 'unix.js', '--name', 'ux', '-i', '2'], { env: { SOCK: sock } })
  await online(home, 'ux', 2)
  const ask = () => new Promise((resolve, reject) => {
    http.get({ socketPath: sock, path: '/', agent: false }, (res) => {
      let b = ''
      res.on('data', (d) => { b += d })
      res.on('end', () => resolve(Number(b)))
    }).on('error', reject)
  })
  const pids = new Set()
  await waitFor('both workers on the socket', async () => { pids.add(await ask()); return pids.size === 2 }, { interval: 1 })
  home.ok(['stop', 'ux'])
  assert.ok(!fs.existsSync(sock), 'the socket path is removed with the app')
}))

test('IPv6 and several servers in one worker', withHome(async (home, t) => {
  const port = await freePort()
  const port2 = await freePort()
  home.ok(['start', 'two-servers.js', '--name', 'two', '-i', '2'], { env: { PORT: String(port), PORT2: String(port2) } })
  const [a] = await online(home, 'two', 2)
  await waitFor('both servers listening', () => rows(home, 'two').every((r) => r.listening.length === 2))
  assert.equal(JSON.parse((await get(port)).body).server, 'a')
  assert.equal(JSON.parse((await get(port2)).body).server, 'b')
  const desc = home.ok(['describe', String(a.id)]).stdout
  assert.match(desc, new RegExp(`:${port}`))
  assert.match(desc, new RegExp(`:${port2}`))
  const v6 = await new Promise((resolve) => {
    http.get({ host: '::1', port, agent: false }, (res) => { res.resume(); resolve(res.statusCode) }).on('error', () => resolve(null))
  })
  if (v6 === null) t.diagnostic('no IPv6 loopback here; dual-stack bind not checked over ::1')
  else assert.equal(v6, 200, 'the dual-stack socket answers on ::1 too')
}))

test('ESM, Express and Fastify apps run in cluster mode unmodified', withHome(async (home) => {
  for (const [script, name, check] of [
    ['esm-server.mjs', 'esm', (b) => assert.equal(b.esm, true)],
    ['express-app.js', 'exp', (b) => assert.equal(b.framework, 'express')],
    ['fastify-app.js', 'fst', (b) => assert.equal(b.framework, 'fastify')],
  ]) {
    const port = await freePort()
    home.ok(['start', script, '--name', name, '-i', '2'], { env: { PORT: String(port) } })
    const instances = await online(home, name, 2)
    const pids = await distinctPids(port, 2)
    assert.deepEqual([...pids].sort(), instances.map((r) => r.pid).sort())
    check(JSON.parse((await get(port)).body))
  }
}))

test('workers that never listen stay online', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'queue', '-i', '2'])
  await waitFor('online', () => rows(home, 'queue').every((r) => r.status === 'online'))
  const [a, b] = rows(home, 'queue')
  assert.deepEqual([a.mode, b.listening.length], ['cluster', 0])
  await new Promise((resolve) => setTimeout(resolve, 1200))
  assert.ok(rows(home, 'queue').every((r) => r.restarts === 0 && alive(r.pid)))
}))

test('a port taken by another program: the app sees EADDRINUSE and ends errored', withHome(async (home) => {
  const blocker = net.createServer().listen(0, '0.0.0.0')
  await new Promise((resolve) => blocker.once('listening', resolve))
  const port = blocker.address().port
  try {
    // Every run counts as unstable whatever the load: a loaded machine can
    // take longer than the default min_uptime to reach listen(), and a run
    // that long is a stable one that resets the count.
    home.ok(['start', 'server.js', '--name', 'clash', '-i', '2', '--max-restarts', '2', '--min-uptime', '60s'], { env: { PORT: String(port) } })
    const errored = await waitFor('errored', () => {
      const r = rows(home, 'clash')
      return r.every((x) => x.status === 'errored') ? r : null
    })
    for (const r of errored) {
      assert.equal(r.restarts, 2)
      assert.match(r.last_error, new RegExp(`cannot listen on \\*:${port}: Address (already )?in use`))
    }
    const err = fs.readFileSync(home.logFile(`clash-error-${errored[0].id}.log`), 'utf8')
    assert.match(err, /EADDRINUSE/, 'the app got the error Node gives for a taken port')
    assert.match(home.ok(['describe', 'clash']).stdout, /last error +│ cannot listen on/)
  } finally {
    blocker.close()
  }
}))

test('the port is released when the app is stopped, and held across restarts', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'web', '-i', '1'], { env: { PORT: String(port) } })
  await online(home, 'web', 1)
  const during = get(port, '/')
  await home.okAsync(['restart', 'web'])
  assert.equal((await during).status, 200)
  await home.okAsync(['stop', 'web'])
  await new Promise((resolve, reject) => {
    const s = net.createServer().listen(port, () => s.close(resolve)).on('error', reject)
  })
}))

test("an app's process.send() messages reach the supervisor's event stream", withHome(async (home) => {
  home.ok(['ping'])
  const sock = net.connect(path.join(home.dir, 'pmr.sock'))
  let buf = ''
  sock.on('data', (d) => { buf += d })
  sock.write('{"v":1,"id":1,"cmd":"subscribe","events":true}\n')
  await waitFor('the subscription', () => buf.includes('"subscribed"'))
  home.ok(['start', 'sender.js', '--name', 'talker', '-i', '2'])
  const messages = await waitFor('two messages', () => {
    const m = buf.split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .filter((x) => x.event && x.event.type === 'message' && x.event.app === 'talker')
    return m.length >= 2 ? m : null
  })
  sock.end()
  for (const m of messages) {
    assert.equal(m.event.data.hello, 'supervisor')
    assert.equal(m.event.data.pid, m.event.pid)
  }
}))

test('instance variables, increment_var and merged logs', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'inc', '-i', '2', '--merge-logs'], { env: { PORT: String(port) } })
  const [a, b] = await online(home, 'inc', 2)
  const instances = new Set()
  await waitFor('both instances', async () => {
    instances.add(JSON.parse((await get(port)).body).instance)
    return instances.size === 2
  }, { interval: 1 })
  assert.deepEqual([...instances].sort(), ['0', '1'])
  const merged = await waitFor('both listening lines in one file', () => {
    const t = fs.readFileSync(home.logFile('inc-out.log'), 'utf8')
    return t.includes(`pid ${a.pid}`) && t.includes(`pid ${b.pid}`) ? t : null
  })
  assert.ok(merged)
}))

test('-i on a non-Node command starts that many fork-mode processes', withHome(async (home) => {
  const r = home.ok(['start', 'sleep', '--name', 'sleepers', '-i', '3', '--', '1000'])
  assert.match(r.stdout, /fork mode, 3 instances/)
  const all = rows(home, 'sleepers')
  assert.equal(all.length, 3)
  assert.ok(all.every((x) => x.mode === 'fork' && x.status === 'online'))
  assert.equal(new Set(all.map((x) => x.pid)).size, 3)
  const bad = home.run(['start', 'sleep', '--name', 'nope', '-i', 'lots'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /'lots' is not an instance count/)
}))

test('a worker gets exactly fds 0, 1, 2 and its IPC channel', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'fd', '-i', '1'], { env: { PORT: String(port) } })
  const [r] = await online(home, 'fd', 1)
  home.ok(['start', 'idle.js', '--name', 'forked'])
  const [f] = rows(home, 'forked')
  // Node opens its own descriptors too (epoll, eventfd, pipes of its own,
  // the listening socket it was handed); none may point at the daemon's files.
  for (const pid of [r.pid, f.pid]) {
    const targets = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => [Number(fd), fs.readlinkSync(`/proc/${pid}/fd/${fd}`)])
    for (const [fd, target] of targets) {
      assert.ok(!target.includes(home.dir), `fd ${fd} of pid ${pid} points into PMR_HOME: ${target}`)
      assert.ok(fd < 200, `fd ${fd} (${target}) of pid ${pid} was inherited from outside`)
    }
    assert.match(fs.readlinkSync(`/proc/${pid}/fd/3`), /^socket:/)
  }
}))
