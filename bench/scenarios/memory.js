'use strict'
// memory: daemon RSS idle with one app running, then its growth after N
// crash-restarts of an app that never stops restarting.
const path = require('node:path')
const { fixture } = require('../lib/managers')
const u = require('../lib/util')

async function sampleRss(pid, { n = 5, every = 200 } = {}) {
  const v = []
  for (let i = 0; i < n; i++) {
    v.push(u.rssBytes(pid))
    if (i < n - 1) await u.sleep(every)
  }
  return u.median(v)
}

module.exports = {
  name: 'memory',
  title: 'Daemon memory: idle RSS, growth after crash-restarts',
  async run({ scope, quick, log }) {
    const target = quick ? 100 : 1000
    const settleMs = quick ? 2000 : 5000
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const managers = [pmr, pm2]
    const [p1, p2] = await u.freePorts(2)
    await pmr.start(fixture('hello.js'), { name: 'hello', env: { PORT: String(p1) } })
    await pm2.start(fixture('hello.js'), { name: 'hello', env: { PORT: String(p2) } })
    await pmr.waitOnline('hello', 1)
    await pm2.waitOnline('hello', 1)
    const daemon = { pmr: pmr.daemonPid(), pm2: pm2.daemonPid() }
    for (const [k, pid] of Object.entries(daemon)) if (!u.isAlive(pid)) throw new Error(`${k} daemon pid ${pid} is not alive`)

    log(`  idle: settling ${settleMs} ms with one app running`)
    await u.sleep(settleMs)
    const idle = { pmr: await sampleRss(daemon.pmr), pm2: await sampleRss(daemon.pm2) }

    // Crash-restart phase, both managers at once (same conditions for both).
    const dir = scope.tmpdir('bench-memory-')
    const state = {}
    for (const [k, m] of [['pmr', pmr], ['pm2', pm2]]) {
      const countFile = path.join(dir, `${k}.count`)
      state[k] = { m, countFile, starts: 0, peak: idle[k], done: false, stalled: null, t0: Date.now(), seconds: null, lastProgress: Date.now() }
      await m.startCrashForever(fixture('crash.js'), { name: 'crash', env: { BENCH_COUNT_FILE: countFile } })
    }
    log(`  crash phase: waiting for ${target} restarts under each manager`)
    const deadline = Date.now() + (quick ? 120000 : 1200000)
    let lastLog = Date.now()
    while (Object.values(state).some((s) => !s.done) && Date.now() < deadline) {
      await u.sleep(250)
      for (const [k, s] of Object.entries(state)) {
        if (s.done) continue
        const starts = u.countLines(s.countFile)
        if (starts > s.starts) s.lastProgress = Date.now()
        s.starts = starts
        s.peak = Math.max(s.peak, u.rssBytes(daemon[k]) || 0)
        if (starts - 1 >= target) {
          s.seconds = (Date.now() - s.t0) / 1000
          const procs = s.m.app('crash')
          s.manager_restarts = procs.length ? procs[0].restarts : null
          s.manager_status = procs.length ? procs[0].status : null
          await s.m.delete('crash')
          s.done = true
        } else if (Date.now() - s.lastProgress > 15000) {
          const procs = s.m.app('crash')
          s.stalled = `no restart for 15 s after ${starts - 1} restarts (status ${procs.length ? procs[0].status : '?'})`
          s.manager_restarts = procs.length ? procs[0].restarts : null
          s.manager_status = procs.length ? procs[0].status : null
          s.seconds = (Date.now() - s.t0) / 1000
          await s.m.delete('crash')
          s.done = true
        }
      }
      if (Date.now() - lastLog > 10000) {
        lastLog = Date.now()
        log(`    restarts so far: pmr ${Math.max(0, state.pmr.starts - 1)}, PM2 ${Math.max(0, state.pm2.starts - 1)}`)
      }
    }
    for (const s of Object.values(state)) {
      if (!s.done) {
        s.stalled = `timed out after ${Math.max(0, s.starts - 1)} restarts`
        s.seconds = (Date.now() - s.t0) / 1000
        await s.m.delete('crash')
      }
    }
    log(`  after: settling ${settleMs} ms`)
    await u.sleep(settleMs)
    const after = { pmr: await sampleRss(daemon.pmr), pm2: await sampleRss(daemon.pm2) }
    const growth = { pmr: after.pmr - idle.pmr, pm2: after.pm2 - idle.pm2 }
    const restarts = { pmr: Math.max(0, state.pmr.starts - 1), pm2: Math.max(0, state.pm2.starts - 1) }
    const idleRatio = u.ratio(idle.pmr, idle.pm2)
    const notes = []
    for (const [k, s] of Object.entries(state)) if (s.stalled) notes.push(`${k}: ${s.stalled}`)
    if (quick) notes.push(`--quick does ${target} crash-restarts; the growth goal is stated for 1000`)
    for (const k of ['pmr', 'pm2']) {
      if (state[k].manager_restarts !== null && state[k].manager_restarts !== undefined && Math.abs(state[k].manager_restarts - restarts[k]) > Math.max(3, restarts[k] * 0.1))
        notes.push(`${k}: its own restart count (${state[k].manager_restarts}) differs from the starts the fixture recorded (${restarts[k]})`)
    }
    return {
      tables: [
        {
          headers: ['daemon', 'idle RSS', `RSS after ${target} restarts`, 'growth', 'peak during', 'restarts done', 'restarts/s'],
          rows: ['pmr', 'pm2'].map((k) => [
            k === 'pmr' ? 'pmr' : 'PM2 (God)',
            u.fmtMB(idle[k]),
            u.fmtMB(after[k]),
            `${growth[k] >= 0 ? '+' : ''}${u.fmtMB(growth[k])}`,
            u.fmtMB(state[k].peak),
            String(restarts[k]),
            u.fmtNum(restarts[k] / (state[k].seconds || 1), 1),
          ]),
        },
        { headers: ['ratio', 'value'], rows: [['pmr idle ÷ PM2 idle', u.fmtX(idleRatio)]] },
      ],
      goals: [
        { goal: 'pmr idle RSS ≤ 0.75× PM2', value: u.fmtX(idleRatio, 3), met: idleRatio !== null && idleRatio <= 0.75 },
        {
          goal: `pmr RSS growth after ${restarts.pmr} crash-restarts < 2 MB`,
          value: u.fmtMB(growth.pmr),
          met: restarts.pmr >= target ? growth.pmr < 2 * 1048576 : false,
        },
      ],
      notes,
      data: {
        target_restarts: target,
        daemon_pids: daemon,
        idle_rss_bytes: idle,
        after_rss_bytes: after,
        growth_bytes: growth,
        peak_rss_bytes: { pmr: state.pmr.peak, pm2: state.pm2.peak },
        restarts_done: restarts,
        manager_reported_restarts: { pmr: state.pmr.manager_restarts, pm2: state.pm2.manager_restarts },
        seconds: { pmr: state.pmr.seconds, pm2: state.pm2.seconds },
        stalled: { pmr: state.pmr.stalled, pm2: state.pm2.stalled },
      },
    }
  },
}
