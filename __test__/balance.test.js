'use strict'
// Issue 16: the supervisor accepts and hands each connection to a worker
// by policy (`lb`). Real workers, real sockets, counts per worker.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const http = require('node:http')
const path = require('node:path')
const { waitFor, freePort, get, load, withHome, rows, online, FIXTURES } = require('./helpers')

const APP = path.join(FIXTURES, 'balance', 'app.js')

/** A keep-alive connection that made one request: the socket and who answered. */
function openConn (port, urlPath = '/') {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('utf8')
    socket.on('error', reject)
    socket.on('connect', () => socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: x\r\n\r\n`))
    socket.on('data', (d) => {
      data += d
      const m = /"pid":(\d+)/.exec(data)
      if (m) {
        socket.removeAllListeners('data')
        resolve({ socket, pid: Number(m[1]) })
      }
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function perPid (conns) {
  const counts = {}
  for (const c of conns) counts[c.pid] = (counts[c.pid] || 0) + 1
  return counts
}

/** The busiest worker holds at most 1.1x its fair share, and every worker has some. */
function assertSpread (conns, workers, what) {
  const counts = perPid(conns)
  const fair = conns.length / workers.length
  const busiest = Math.max(...Object.values(counts))
  assert.equal(Object.keys(counts).length, workers.length, `${what}: every worker got connections ${JSON.stringify(counts)}`)
  assert.ok(busiest <= Math.floor(fair * 1.1), `${what}: busiest ${busiest} of ${conns.length} over ${workers.length} (${JSON.stringify(counts)})`)
  for (const pid of Object.keys(counts)) assert.ok(workers.some((w) => w.pid === Number(pid)))
}

async function spread (home, port, workers) {
  const spaced = []
  for (let i = 0; i < 40; i++) {
    spaced.push(await openConn(port))
    await sleep(100)
  }
  assertSpread(spaced, workers, '40 keep-alive connections 100 ms apart')
  // jlist shows each worker's open connections and how many it accepted.
  await waitFor('the open counts', () => {
    const r = rows(home, 'web')
    return r.every((x) => x.connections && x.connections.open === perPid(spaced)[x.pid])
  })
  const burst = await Promise.all(Array.from({ length: 50 }, () => openConn(port)))
  assertSpread(burst, workers, '50 connections at once')
  for (const c of [...spaced, ...burst]) c.socket.destroy()
  await waitFor('the closes reported', () => rows(home, 'web').every((x) => x.connections.open === 0))
  const accepted = rows(home, 'web').reduce((n, x) => n + x.connections.accepted, 0)
  assert.equal(accepted, 90)
}

/** The inodes of the TCP sockets listening on `port` (from /proc/net). */
function listeners (port) {
  const inodes = new Set()
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      // local address "IP:PORT" in hex, state 0A = LISTEN, inode in column 10.
      if (cols.length > 9 && cols[3] === '0A' && parseInt(cols[1].split(':')[1], 16) === port) inodes.add(cols[9])
    }
  }
  return inodes
}

/** Which of `inodes` process `pid` holds open. */
function held (pid, inodes) {
  return fs.readdirSync(`/proc/${pid}/fd`)
    .map((fd) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { return '' } })
    .map((l) => /^socket:\[(\d+)\]$/.exec(l))
    .filter((m) => m && inodes.has(m[1]))
    .map((m) => m[1])
}

// Round-robin is steered by the kernel where it loads pmr's program (root
// here): each worker accepts from a socket of its own. PMR_REUSEPORT=off
// in the daemon's environment keeps to the supervisor's accept-and-hand-over.
for (const [n, by] of [[2, 'kernel'], [4, 'kernel'], [2, 'pmr']]) {
  test(`round-robin (the default, by ${by}) spreads keep-alive connections over -i ${n}`, withHome(async (home) => {
    const port = await freePort()
    const env = { PORT: String(port), ...(by === 'pmr' ? { PMR_REUSEPORT: 'off' } : {}) }
    home.ok(['start', APP, '--name', 'web', '-i', String(n)], { env })
    const workers = await online(home, 'web', n)
    await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
    await spread(home, port, workers)
    const desc = home.ok(['describe', 'web']).stdout
    const row = by === 'kernel' ? 'round-robin, by the kernel \\(a socket per worker\\)' : 'round-robin, by pmr'
    assert.match(desc, new RegExp(`balancing +│ ${row}`))
    assert.match(desc, /connections +│ 0 open, \d+ accepted/)
    const sockets = listeners(port)
    const own = workers.map((w) => held(w.pid, sockets))
    if (by === 'kernel') {
      // Each its own, all different, and the overflow socket they all
      // share; the daemon keeps them all.
      const shared = [...sockets].filter((s) => own.every((o) => o.includes(s)))
      assert.equal(shared.length, 1, JSON.stringify(own))
      const mine = own.map((o) => o.filter((s) => s !== shared[0]))
      assert.ok(mine.every((s) => s.length === 1), JSON.stringify(own))
      assert.equal(new Set(mine.flat()).size, n)
      assert.equal(sockets.size, n + 1)
    } else {
      assert.ok(own.every((s) => s.length === 0), 'workers hold no listening socket: pmr hands connections over')
    }
  }))
}

/** A request on a connection of its own (`Connection: close`): who answered. */
function shortRequest (port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('utf8')
    socket.on('error', reject)
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
    socket.on('data', (d) => { data += d })
    socket.on('end', () => {
      const m = /"pid":(\d+)/.exec(data)
      if (m) resolve(Number(m[1]))
      else reject(new Error(`no answer: ${JSON.stringify(data)}`))
    })
  })
}

// Turns spread long-lived connections; a flood of short ones goes to the
// overflow socket every worker accepts from, so a stuck (or just busy)
// worker does not hold up its turns' share.
test('round-robin: a flood of short connections goes to the free worker while the other is stuck', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '2'], { env: { PORT: String(port) } })
  const [a, b] = await online(home, 'web', 2)
  await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
  // Stuck without taking a core (a blocked event loop would take one of
  // the two the flood needs): stopped until the flood is sent.
  process.kill(a.pid, 'SIGSTOP')
  // Small batches, one after the other: about three times the rate turns
  // are kept below (as fast as this client goes on the core it has). The
  // kernel sees the rate over windows of 67 ms: what comes in the first two
  // may still go in turn.
  const batches = []
  const start = Date.now()
  try {
    for (let i = 0; i < 100; i++) {
      batches.push({ at: Date.now() - start, pids: Array.from({ length: 25 }, () => shortRequest(port)) })
      await sleep(1)
    }
  } finally {
    process.kill(a.pid, 'SIGCONT')
  }
  for (const batch of batches) batch.pids = await Promise.all(batch.pids)
  const all = batches.flatMap((x) => x.pids)
  assert.ok(all.every((p) => p === a.pid || p === b.pid))
  const late = batches.filter((x) => x.at >= 140).flatMap((x) => x.pids)
  const byB = late.filter((p) => p === b.pid).length
  // In turn only, a would have taken every second one once it went on.
  assert.ok(late.length >= 500 && byB >= 0.7 * late.length, `the free worker answered ${byB} of ${late.length} (${JSON.stringify(batches.map((x) => [x.at, x.pids.filter((p) => p === b.pid).length]))})`)
}))

test('least-connections sends new connections to the worker with the fewest open', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '2', '--lb', 'least-connections'], { env: { PORT: String(port) } })
  const [a, b] = await online(home, 'web', 2)
  await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
  const first = []
  for (let i = 0; i < 10; i++) first.push(await openConn(port))
  assert.deepEqual(perPid(first), { [a.pid]: 5, [b.pid]: 5 })
  for (const c of first.filter((c) => c.pid === a.pid)) c.socket.destroy()
  await waitFor('a has none open', () => rows(home, 'web').find((x) => x.pid === a.pid).connections.open === 0)
  const next = []
  for (let i = 0; i < 6; i++) next.push(await openConn(port))
  // Round-robin would give 3/3; the emptier worker catches up first.
  assert.ok(perPid(next)[a.pid] >= 5, JSON.stringify(perPid(next)))
  for (const c of [...first, ...next]) c.socket.destroy()
}))

test('a worker killed with connections handed to it but not taken: another worker serves them', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '2'], { env: { PORT: String(port) } })
  const [a] = await online(home, 'web', 2)
  await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
  // Block one worker: the connections its turn brings stay unacknowledged.
  let blocked = null
  while (!blocked) {
    const c = await openConn(port)
    if (c.pid === a.pid) blocked = c
    else c.socket.destroy()
  }
  blocked.socket.write('GET /block?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(200)
  const waiting = Array.from({ length: 8 }, () => get(port, '/', { timeout: 15000 }))
  await sleep(300)
  process.kill(a.pid, 'SIGKILL')
  const answers = await Promise.all(waiting)
  for (const r of answers) assert.equal(r.status, 200)
  assert.ok(answers.every((r) => JSON.parse(r.body).pid !== a.pid))
  blocked.socket.destroy()
}))

test('scale down under keep-alive load: 0 failed requests, the removed workers get nothing new', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '4'], { env: { PORT: String(port) } })
  await online(home, 'web', 4)
  await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
  const loop = load(port, { connections: 8, keepAlive: true })
  await waitFor('traffic', () => loop.stats.ok > 300)
  // Async: this process is the HTTP client and must keep reading meanwhile.
  await home.okAsync(['scale', 'web', '2'])
  const kept = rows(home, 'web').map((x) => x.pid)
  const before = loop.stats.ok
  await waitFor('more traffic', () => loop.stats.ok > before + 300)
  const s = await loop.stop()
  assert.equal(s.failed, 0, JSON.stringify(s.errors))
  const fresh = await Promise.all(Array.from({ length: 6 }, () => get(port)))
  assert.ok(fresh.every((r) => kept.includes(JSON.parse(r.body).pid)))
}))

test('shared: workers accept from the one socket themselves', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '2', '--lb', 'shared'], { env: { PORT: String(port) } })
  const workers = await online(home, 'web', 2)
  await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
  const pids = new Set()
  await waitFor('both workers answering', async () => {
    const r = await get(port).catch(() => null)
    if (r) pids.add(JSON.parse(r.body).pid)
    return pids.size === 2
  }, { interval: 1 })
  assert.deepEqual([...pids].sort(), workers.map((w) => w.pid).sort())
  assert.ok(rows(home, 'web').every((x) => x.connections === null), 'no counts: pmr does not see the connections')
}))

test('a policy that does not exist is refused, naming the right ones', withHome(async (home) => {
  const r = home.run(['start', APP, '--name', 'web', '-i', '2', '--lb', 'roundrobin'])
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /--lb: 'roundrobin' is not a balancing policy \(one of round-robin, least-connections, sticky, shared\)/)
  const eco = path.join(home.dir, 'eco.config.js')
  fs.writeFileSync(eco, `module.exports = { apps: [{ name: 'web', script: ${JSON.stringify(APP)}, instances: 2, lb: 'least' }] }`)
  const e = home.run(['start', eco])
  assert.notEqual(e.code, 0)
  assert.match(e.stderr, /eco\.config\.js.*web.*lb: 'least' is not a balancing policy/s)
  assert.deepEqual(home.jlist(), [])
}))

/** GET over a fresh connection from a given loopback address. */
function getFrom (port, localAddress, urlPath = '/') {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, localAddress, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve(JSON.parse(body)))
    })
    req.on('error', reject)
  })
}

test('sticky: by Engine.IO session, by client address, and hostile first requests never block', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '2', '--lb', 'sticky'], { env: { PORT: String(port) } })
  const workers = await online(home, 'web', 2)
  await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
  const addresses = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`)

  // By address: each client always reaches the same worker, and the
  // addresses spread over both.
  const byAddress = {}
  for (const a of addresses) {
    const pids = new Set()
    for (let i = 0; i < 4; i++) pids.add((await getFrom(port, a)).pid)
    assert.equal(pids.size, 1, `${a} always reaches one worker`)
    byAddress[a] = [...pids][0]
  }
  assert.equal(new Set(Object.values(byAddress)).size, 2, JSON.stringify(byAddress))

  // By session: the session's requests follow it whatever address they
  // come from (the address alone would spread them over both workers).
  for (const w of workers) {
    let session = null
    while (!session || session.pid !== w.pid) session = await getFrom(port, '127.0.0.1', '/socket.io/?EIO=4&transport=polling')
    for (const a of addresses) {
      const r = await getFrom(port, a, `/socket.io/?EIO=4&transport=polling&sid=${session.sid}`)
      assert.equal(r.pid, w.pid, `a request of ${session.sid} from ${a}`)
    }
  }

  // A client that connects and says nothing, and one whose request line
  // does not end within what pmr reads: others are served meanwhile.
  const silent = net.connect(port, '127.0.0.1')
  const huge = net.connect(port, '127.0.0.1')
  await new Promise((resolve) => huge.on('connect', resolve))
  huge.write(`GET /${'a'.repeat(6000)}`)
  const t0 = Date.now()
  for (let i = 0; i < 5; i++) assert.ok((await getFrom(port, '127.0.0.3')).pid)
  assert.ok(Date.now() - t0 < 900, `served in ${Date.now() - t0} ms beside a silent and a huge client`)
  // Both are still served once they finish their requests (by the normal policy).
  const answer = (s) => new Promise((resolve) => {
    let d = ''
    s.setEncoding('utf8')
    s.on('data', (c) => { d += c; if (/"pid":\d+/.test(d)) resolve(d) })
  })
  const hugeAnswer = answer(huge)
  huge.write(' HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 1200))
  const silentAnswer = answer(silent)
  silent.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.match(await silentAnswer, /"pid":\d+/)
  assert.match(await hugeAnswer, /"pid":\d+/)
  silent.destroy()
  huge.destroy()
}))

test('reload with an upgraded connection open: it stays until just before kill_timeout, then ends cleanly; new connections go to the new workers', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '1', '--kill-timeout', '3000'], { env: { PORT: String(port) } })
  const [old] = await online(home, 'web', 1)
  await waitFor('listening', () => rows(home, 'web').every((x) => x.listening.length > 0))
  const ws = net.connect(port, '127.0.0.1')
  let got = ''
  ws.setEncoding('utf8')
  ws.on('data', (d) => { got += d })
  const ended = new Promise((resolve, reject) => { ws.on('end', resolve); ws.on('error', reject) })
  ws.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
  await waitFor('the upgrade', () => got.includes(`x-pid: ${old.pid}`))
  const t0 = Date.now()
  const reload = home.okAsync(['reload', 'web'])
  await waitFor('the replacement online', () => rows(home, 'web')[0].pid !== old.pid)
  const fresh = await get(port)
  assert.notEqual(JSON.parse(fresh.body).pid, old.pid, 'a new connection goes to the new worker at once')
  ws.write('still there?')
  await waitFor('the echo from the old worker', () => got.endsWith('still there?'))
  await ended
  const after = Date.now() - t0
  assert.ok(after > 2000, `stayed ${after} ms into the reload (kill_timeout 3000)`)
  const r = await reload
  // Ended by the worker itself, which then exited on its signal: not cut by SIGKILL.
  const desc = home.ok(['describe', 'web']).stdout
  assert.match(desc, new RegExp(`old pid ${old.pid} killed by SIGINT`))
  assert.doesNotMatch(r.stdout + r.stderr + desc, /killed by SIGKILL/)
  ws.destroy()
}))
