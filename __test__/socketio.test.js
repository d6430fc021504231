'use strict'
// Issue 16: a real Socket.IO app in cluster mode with default transports
// (polling, then the upgrade to WebSocket): sticky sessions by Engine.IO
// sid, broadcasts relayed between workers, clients back after a reload,
// and sendDataToProcessId reaching a worker as PM2 delivers it.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { io } = require('socket.io-client')
const { connect } = require('..')
const { waitFor, freePort, withHome, rows, online, alive, get, FIXTURES } = require('./helpers')

const APP = path.join(FIXTURES, 'balance', 'sio.js')
const CLIENTS = 20

function client (port, stats) {
  const s = io(`http://127.0.0.1:${port}`, { reconnectionDelay: 50, reconnectionDelayMax: 200, timeout: 5000 })
  s.pid = null
  s.news = []
  s.on('hello', (h) => { s.pid = h.pid })
  s.on('news', (m) => s.news.push(m))
  s.on('connect_error', (e) => { stats.failed.push(e.message) })
  return s
}

// The transport in use now. An event would race: the upgrade to WebSocket
// may finish before or after Socket.IO's 'connect', and after a reload it
// happens again on a new engine.
const upgraded = (s) => s.io.engine?.transport?.name === 'websocket'

test('Socket.IO with default transports over -i 2 --lb sticky: handshakes, broadcasts, a reload', {
  timeout: 90000
}, withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', APP, '--name', 'sio', '-i', '2', '--lb', 'sticky'], { env: { PORT: String(port) } })
  const workers = await online(home, 'sio', 2)
  await waitFor('listening', () => rows(home, 'sio').every((x) => x.listening.length > 0))
  const stats = { failed: [] }
  const clients = Array.from({ length: CLIENTS }, () => client(port, stats))
  try {
    await waitFor('every client connected and upgraded', () => clients.every((c) => c.connected && c.pid && upgraded(c)), { timeout: 20000 })
    assert.deepEqual(stats.failed, [], 'no failed handshake')
    const pids = new Set(clients.map((c) => c.pid))
    assert.deepEqual([...pids].sort(), workers.map((w) => w.pid).sort(), 'the clients are spread over both workers')

    // A broadcast from one worker reaches the clients of the other too.
    clients[0].emit('shout', 'one')
    await waitFor('the broadcast everywhere', () => clients.every((c) => c.news.includes('one')))

    // sendDataToProcessId: PM2's packet shape, to one instance.
    const api = await connect({ home: home.dir })
    try {
      const target = rows(home, 'sio')[1]
      await api.sendDataToProcessId(target.id, { topic: 'cfg', data: { v: 1 } })
      await waitFor('the packet, broadcast by the worker that got it', () => clients.every((c) => c.news.some((m) => m && m.from === 'pmr' && m.id === target.id && m.data.v === 1)))
      await assert.rejects(api.sendDataToProcessId(target.id, { data: 1 }), /no 'topic'/)
      await assert.rejects(api.sendDataToProcessId(999, { topic: 't', data: 1 }), (e) => e.code !== undefined)
    } finally {
      await api.close()
    }

    // A reload: it returns once every client is back (each replaced
    // worker's clients joined again elsewhere), so a broadcast sent the
    // moment it returns reaches all of them; none fails a handshake.
    const old = new Set(workers.map((w) => w.pid))
    for (const c of clients) c.pid = null
    await home.okAsync(['reload', 'sio'])
    clients.find((c) => c.connected).emit('shout', 'two')
    assert.deepEqual(clients.filter((c) => !c.connected).length, 0, 'every client connected when the reload returns')
    await waitFor('the broadcast sent as the reload returned, everywhere', () => clients.every((c) => c.news.includes('two')))
    await waitFor('every client back on a new worker', () => clients.every((c) => c.connected && c.pid && !old.has(c.pid)), { timeout: 10000 })
    assert.deepEqual(stats.failed, [], 'no failed handshake across the reload')
  } finally {
    for (const c of clients) c.close()
  }
}))

// The Socket.IO docs' setup for @socket.io/pm2, both files as the docs write
// them (only `instances` lowered to 2 and the port given by PORT instead of
// 8080): the worker never listens, pmr serves the port and hands each
// connection to setupWorker as @socket.io/pm2's daemon does.
test('the Socket.IO docs\' @socket.io/pm2 setup works unchanged (worker.js without listen(), ecosystem file, -i 2) and outlives a kill -9 of the daemon', {
  timeout: 60000
}, withHome(async (home) => {
  const port = await freePort()
  const fs = require('node:fs')
  const eco = path.join(home.dir, 'ecosystem.config.js')
  fs.writeFileSync(eco, `module.exports = {
  apps : [{
    script    : ${JSON.stringify(path.join(FIXTURES, 'balance', 'pm2-docs-worker.js'))},
    instances : 2,
    exec_mode : "cluster"
  }]
}
`)
  home.ok(['start', eco], { env: { PORT: String(port) } })
  const workers = await online(home, 'pm2-docs-worker', 2)
  const stats = { failed: [] }
  const clients = Array.from({ length: CLIENTS }, () => client(port, stats))
  try {
    await waitFor('every client connected and upgraded', () => clients.every((c) => c.connected && c.pid && upgraded(c)), { timeout: 20000 })
    assert.deepEqual(stats.failed, [], 'no failed handshake')
    assert.deepEqual([...new Set(clients.map((c) => c.pid))].sort(), workers.map((w) => w.pid).sort(), 'the clients are spread over both workers')
    clients[0].emit('shout', 'hi')
    await waitFor('the broadcast everywhere', () => clients.every((c) => c.news.includes('hi')))
    const listening = rows(home, 'pm2-docs-worker').map((r) => r.listening)
    assert.ok(listening.every((l) => l.some((a) => a.endsWith(`:${port}`))), `pmr serves the port for the workers: ${JSON.stringify(listening)}`)

    // kill -9 of the daemon (issue 17): the port pmr serves in the
    // workers' place outlives it in the keeper, the next daemon serves it
    // again, and the relay between the workers comes back with it.
    const daemon = home.daemonPid()
    const handshakes = { ok: 0, failed: [] }
    let polling = true
    const poller = (async () => {
      while (polling) {
        try {
          const r = await get(port, '/socket.io/?EIO=4&transport=polling')
          if (r.status === 200) handshakes.ok++
          else handshakes.failed.push(`HTTP ${r.status}`)
        } catch (e) {
          handshakes.failed.push(e.code || e.message)
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()
    await waitFor('handshakes answered', () => handshakes.ok > 3)
    process.kill(daemon, 'SIGKILL')
    await waitFor('the keeper to bring a daemon back', () => {
      const pid = home.daemonPid()
      return pid && pid !== daemon && alive(pid)
    })
    const okAt = handshakes.ok
    await waitFor('handshakes answered with the new daemon', () => handshakes.ok > okAt + 10)
    polling = false
    await poller
    // Only what the dead daemon held at the instant of its death can be
    // lost (README, "Who keeps the sockets"): a connection it had accepted
    // and not handed to a worker yet, which here includes reading the
    // request's first bytes. Nothing is refused.
    const lost = handshakes.failed.filter((f) => f !== 'ECONNRESET')
    assert.deepEqual(lost, [], 'no handshake refused or failed across the daemon\'s death')
    assert.ok(handshakes.failed.length <= 1, `at most the one connection the daemon held was reset: ${handshakes.failed}`)
    assert.deepEqual(rows(home, 'pm2-docs-worker').map((r) => r.pid).sort(), workers.map((w) => w.pid).sort(), 'the same workers serve on')
    clients[1].emit('shout', 'after')
    await waitFor('a broadcast after the takeover everywhere', () => clients.every((c) => c.news.includes('after')))
  } finally {
    for (const c of clients) c.close()
  }
}))
