'use strict'
// socketio: a real Socket.IO app (socket.io + socket.io-client, default
// transports: polling, then the upgrade to WebSocket), -i 4 (issue 16).
// 200 clients connect at once (failed handshakes counted), one broadcast
// must reach all 200; then, under pmr, a reload with all 200 connected:
// how long each client was away, failed handshakes, and how many of the
// broadcasts sent after the reload command returned each client missed.
// PM2 7.0.4 runs the same app beside it.
const path = require('node:path')
const { REPO } = require('../lib/managers')
const u = require('../lib/util')

const WORKERS = 4
const CLIENTS = 200

function clients(port, n) {
  const { io } = require(path.join(REPO, 'node_modules', 'socket.io-client'))
  const stats = { failed: 0 }
  const all = Array.from({ length: n }, () => {
    const s = io(`http://127.0.0.1:${port}`, { reconnectionDelay: 100, reconnectionDelayMax: 500, timeout: 10000 })
    s.news = []
    s.away = []
    s.on('hello', (h) => { s.pid = h.pid })
    s.on('news', (m) => s.news.push(m))
    s.on('connect_error', () => { stats.failed++ })
    s.on('disconnect', () => { s.lostAt = Date.now() })
    s.on('connect', () => { if (s.lostAt) s.away.push(Date.now() - s.lostAt); s.lostAt = 0 })
    return s
  })
  return { all, stats }
}

const upgraded = (s) => s.connected && s.io.engine?.transport?.name === 'websocket'

async function settle(all, timeout) {
  try {
    await u.waitFor(() => all.every(upgraded), { timeout, interval: 50, what: 'clients' })
  } catch {}
  return all.filter(upgraded).length
}

async function broadcast(all, tag, timeout = 5000) {
  const from = all.find((s) => s.connected)
  if (!from) return 0
  from.emit('shout', tag)
  try {
    await u.waitFor(() => all.every((s) => s.news.includes(tag)), { timeout, interval: 50, what: 'broadcast' })
  } catch {}
  return all.filter((s) => s.news.includes(tag)).length
}

module.exports = {
  name: 'socketio',
  title: `Socket.IO, default transports, ${WORKERS} instances, ${CLIENTS} clients`,
  async run({ scope, quick, log }) {
    const n = quick ? 50 : CLIENTS
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const ports = await u.freePorts(2)
    const rows = []
    const data = {}
    const targets = [
      { key: 'pmr', label: `pmr -i ${WORKERS} --lb sticky`, m: pmr, port: ports[0], args: ['--lb', 'sticky'] },
      { key: 'pm2', label: `PM2 -i ${WORKERS}`, m: pm2, port: ports[1], args: [] },
    ]
    for (const t of targets) {
      await t.m.start(path.join(REPO, '__test__', 'fixtures', 'balance', 'sio.js'), { name: 'sio', instances: WORKERS, env: { PORT: String(t.port) }, args: t.args })
      await t.m.waitOnline('sio', WORKERS)
      await u.waitFor(() => u.probe(t.port, { path: '/socket.io/?EIO=4&transport=polling' }).then((r) => r.ok), { timeout: 15000, what: 'sio listening' }).catch(() => {})
      const { all, stats } = clients(t.port, n)
      const t0 = Date.now()
      const ok = await settle(all, 30000)
      const connectMs = Date.now() - t0
      const reached = await broadcast(all, 'one')
      const d = { connected_upgraded: ok, failed_handshakes: stats.failed, connect_ms: connectMs, broadcast_reached: reached, workers_used: new Set(all.map((s) => s.pid)).size }
      log(`  ${t.label}: ${ok}/${n} connected and upgraded in ${connectMs} ms, ${stats.failed} failed handshakes, broadcast reached ${reached}/${n}`)
      if (t.key === 'pmr') {
        stats.failed = 0
        for (const s of all) s.away = []
        const r = await t.m.cli(['reload', 'sio'], { timeout: 60000 })
        const done = Date.now()
        // Broadcasts after the reload returned: 20, 100 ms apart.
        const tags = []
        for (let i = 0; i < 20; i++) {
          const from = all.find((s) => s.connected)
          const tag = `after-${i}`
          tags.push(tag)
          if (from) from.emit('shout', tag)
          await u.sleep(100)
        }
        const back = await settle(all, 15000)
        await u.sleep(1000)
        const missed = u.sum(all.map((s) => tags.filter((g) => !s.news.includes(g)).length))
        const away = all.flatMap((s) => s.away)
        Object.assign(d, {
          reload_code: r.code,
          reload_ms: Math.round(r.ms),
          back_after_reload: back,
          reconnect_max_ms: away.length ? Math.max(...away) : null,
          reconnect_p50_ms: away.length ? u.median(away) : null,
          reconnected: away.length,
          failed_handshakes_reload: stats.failed,
          missed_after_reload: missed,
          broadcasts_after_reload: tags.length,
          first_broadcast_after_reload_ms: Date.now() - done,
        })
        log(`    reload (${Math.round(r.ms)} ms): ${back}/${n} back, away max ${d.reconnect_max_ms} ms (p50 ${d.reconnect_p50_ms}), ${stats.failed} failed handshakes, ${missed} of ${tags.length * n} deliveries after the reload missed`)
      }
      for (const s of all) s.close()
      data[t.key] = d
      rows.push([
        t.label,
        `${d.connected_upgraded}/${n}`,
        String(d.failed_handshakes),
        `${d.broadcast_reached}/${n}`,
        d.reconnect_max_ms === undefined ? '—' : `${d.reconnect_max_ms} ms`,
        d.failed_handshakes_reload === undefined ? '—' : String(d.failed_handshakes_reload),
        d.missed_after_reload === undefined ? '—' : `${d.missed_after_reload} / ${d.broadcasts_after_reload * n}`,
      ])
      await t.m.delete('sio')
    }
    return {
      tables: [{ headers: ['target', 'connected + upgraded', 'failed handshakes', 'broadcast reached', 'reload: longest away', 'reload: failed handshakes', 'deliveries missed after reload'], rows }],
      goals: [
        { goal: `pmr: ${n} clients, 0 failed handshakes`, value: `${data.pmr.connected_upgraded}/${n}, ${data.pmr.failed_handshakes} failed`, met: data.pmr.connected_upgraded === n && data.pmr.failed_handshakes === 0 },
        { goal: `pmr: a broadcast reaches all ${n}`, value: `${data.pmr.broadcast_reached}/${n}`, met: data.pmr.broadcast_reached === n },
        { goal: 'pmr reload: every client back within 2 s, 0 failed handshakes, 0 missed', value: `${data.pmr.reconnect_max_ms} ms, ${data.pmr.failed_handshakes_reload} failed, ${data.pmr.missed_after_reload} missed`, met: data.pmr.back_after_reload === n && data.pmr.reconnect_max_ms !== null && data.pmr.reconnect_max_ms <= 2000 && data.pmr.failed_handshakes_reload === 0 && data.pmr.missed_after_reload === 0 },
      ],
      notes: [`${require('node:os').cpus().length} CPUs shared by the ${n} clients, the supervisor and the workers`],
      data,
    }
  },
}
