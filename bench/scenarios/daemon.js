'use strict'
// daemon: the process manager itself dies (kill -9) or is updated while a
// `-i 2` app serves. For `kill -9`, a fresh connection every 20 ms and no
// command afterwards: failed requests, the longest gap between two answered
// requests, and how long until the CLI answers again with the apps listed.
// For `pmr update`: wrk -c 20 keep-alive load across the update.
const fs = require('node:fs')
const path = require('node:path')
const net = require('node:net')
const { fixture } = require('../lib/managers')
const load = require('../lib/load')
const u = require('../lib/util')

const EVERY = 20

/** Probes every EVERY ms for `ms`, from `t0`; the kill happens at `killAt`. */
async function pollAround(port, ms, act) {
  const results = []
  const inflight = new Set()
  let stop = false
  const loop = (async () => {
    while (!stop) {
      const startedAt = u.wallNow()
      const p = u.probe(port, { timeout: 3000 }).then((r) => results.push({ startedAt, endedAt: u.wallNow(), ...r }))
      inflight.add(p)
      p.finally(() => inflight.delete(p))
      await u.sleep(EVERY)
    }
  })()
  await u.sleep(300)
  const killAt = u.wallNow()
  const extra = await act()
  await u.sleep(ms)
  stop = true
  await loop
  await Promise.all([...inflight])
  const after = results.filter((r) => r.startedAt >= killAt)
  const ok = results.filter((r) => r.ok).sort((a, b) => a.endedAt - b.endedAt)
  let gap = 0
  for (let i = 1; i < ok.length; i++) if (ok[i].endedAt >= killAt) gap = Math.max(gap, ok[i].endedAt - ok[i - 1].endedAt)
  return {
    polls_after_kill: after.length,
    failed: after.filter((r) => !r.ok).length,
    codes: [...new Set(after.filter((r) => !r.ok).map((r) => r.code || r.status))],
    longest_gap_ms: Math.round(gap),
    ...extra,
  }
}

/** The control socket answers a ping (a raw request: no CLI that could start a daemon). */
function pings(sock) {
  return new Promise((resolve) => {
    const s = net.connect(sock)
    let buf = ''
    s.on('data', (d) => {
      buf += d
      if (buf.includes('\n')) { s.destroy(); resolve(/"ok"|"pong"|"pid"/.test(buf)) }
    })
    s.on('error', () => resolve(false))
    s.write('{"v":1,"id":1,"cmd":"ping"}\n')
  })
}

module.exports = {
  name: 'daemon',
  title: 'Death (kill -9) and update of the daemon itself, under load of a -i 2 app',
  async run({ scope, quick, log }) {
    const rounds = quick ? 1 : 3
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const [pPort, qPort] = await u.freePorts(2)
    await pmr.start(fixture('hello.js'), { name: 'hello', instances: 2, env: { PORT: String(pPort) } })
    await pm2.start(fixture('hello.js'), { name: 'hello', instances: 2, env: { PORT: String(qPort) } })
    await pmr.waitOnline('hello', 2)
    await pm2.waitOnline('hello', 2)
    await u.waitHttp(pPort, { pids: 2 })
    await u.waitHttp(qPort, { pids: 2 })
    const sock = path.join(pmr.home, 'pmr.sock')

    const pmrKills = []
    for (let r = 0; r < rounds; r++) {
      const before = pmr.app('hello').map((p) => [p.pid, p.restarts])
      const old = pmr.daemonPid()
      const res = await pollAround(pPort, 1000, async () => {
        const t0 = u.wallNow()
        process.kill(old, 'SIGKILL')
        // Back: a new daemon answers on the control socket.
        let back = null
        while (back === null && u.wallNow() - t0 < 10000) {
          const pid = pmr.daemonPid()
          if (pid && pid !== old && u.isAlive(pid) && (await pings(sock))) back = u.wallNow() - t0
          else await u.sleep(5)
        }
        return { daemon_back_ms: back === null ? null : Math.round(back) }
      })
      const after = pmr.app('hello').map((p) => [p.pid, p.restarts])
      res.apps_unchanged = JSON.stringify(before) === JSON.stringify(after)
      pmr.scope.track(pmr.daemonPid())
      pmrKills.push(res)
      log(`  pmr kill -9 #${r + 1}: ${JSON.stringify(res)}`)
    }

    // PM2: its God daemon killed, no command afterwards for 3 s.
    const pm2Old = pm2.daemonPid()
    const pm2Kill = await pollAround(qPort, 3000, async () => {
      process.kill(pm2Old, 'SIGKILL')
      return {}
    })
    log(`  PM2 kill -9: ${JSON.stringify(pm2Kill)}`)

    // pmr update under wrk -c 20 keep-alive load.
    const updates = []
    for (let r = 0; r < rounds; r++) {
      const before = pmr.app('hello').map((p) => [p.pid, p.restarts])
      const w = load.startWrk(scope, `http://127.0.0.1:${pPort}/`, { connections: 20, duration: 4 })
      await u.sleep(1000)
      const t0 = u.wallNow()
      const up = await pmr.cli(['update'], { timeout: 30000 })
      const updateMs = Math.round(u.wallNow() - t0)
      const res = await w.done
      const after = pmr.app('hello').map((p) => [p.pid, p.restarts])
      pmr.scope.track(pmr.daemonPid())
      updates.push({
        exit: up.code,
        update_ms: updateMs,
        requests: res.total,
        socket_errors: load.socketErrorTotal(res),
        non2xx: res.non2xx,
        pids_and_restarts_unchanged: JSON.stringify(before) === JSON.stringify(after),
      })
      log(`  pmr update #${r + 1}: ${JSON.stringify(updates.at(-1))}`)
    }
    const spread = (xs) => (xs.some((x) => x === null) ? 'n/a' : `${Math.min(...xs)}–${Math.max(...xs)}`)
    return {
      tables: [
        {
          headers: ['target', 'failed requests (per kill)', 'longest gap (ms)', 'daemon back (ms)', 'apps unchanged'],
          rows: [
            ['pmr kill -9', pmrKills.map((k) => k.failed).join(', '), spread(pmrKills.map((k) => k.longest_gap_ms)), spread(pmrKills.map((k) => k.daemon_back_ms)), pmrKills.every((k) => k.apps_unchanged) ? 'yes' : 'no'],
            ['PM2 kill -9', `${pm2Kill.failed} of ${pm2Kill.polls_after_kill} ${pm2Kill.codes.join(',')}`, String(pm2Kill.longest_gap_ms), 'until the next command', '-'],
          ],
        },
        {
          headers: ['pmr update under wrk -c 20', 'requests', 'socket errors', 'non-2xx', 'pids and restarts unchanged', 'update took (ms)'],
          rows: updates.map((x, i) => [`#${i + 1}`, String(x.requests), String(x.socket_errors), String(x.non2xx), x.pids_and_restarts_unchanged ? 'yes' : 'no', String(x.update_ms)]),
        },
      ],
      goals: [
        { goal: 'kill -9: 0 failed requests', value: pmrKills.map((k) => k.failed).join(', '), met: pmrKills.every((k) => k.failed === 0) },
        { goal: 'kill -9: longest gap < 200 ms', value: spread(pmrKills.map((k) => k.longest_gap_ms)), met: pmrKills.every((k) => k.longest_gap_ms < 200) },
        { goal: 'kill -9: daemon back within 1 s', value: spread(pmrKills.map((k) => k.daemon_back_ms)), met: pmrKills.every((k) => k.daemon_back_ms !== null && k.daemon_back_ms < 1000) },
        { goal: 'update: 0 socket errors, 0 non-2xx, pids unchanged', value: updates.map((x) => `${x.socket_errors}/${x.non2xx}`).join(', '), met: updates.every((x) => x.socket_errors === 0 && x.non2xx === 0 && x.pids_and_restarts_unchanged && x.exit === 0) },
      ],
      notes: ['PM2 is left without a command for 3 s after its daemon dies (its workers die with it)'],
      data: { rounds, every_ms: EVERY, pmr_kills: pmrKills, pm2_kill: pm2Kill, updates },
    }
  },
}
