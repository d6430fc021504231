'use strict'
// monitor: what watching costs. Daemon CPU while it supervises many idle
// instances, pmr sampling every instance's process tree every second (plus
// the preload's reports), PM2 its God daemon doing its own checks. Both run
// with a memory limit no instance reaches, so both do their memory checks.
const fs = require('node:fs')
const { fixture } = require('../lib/managers')
const u = require('../lib/util')

const processCount = () => fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length

async function measure(m, { instances, windowMs, settleMs, port, log }) {
  const t0 = Date.now()
  await m.start(fixture('hello.js'), { name: 'idle', instances, env: { PORT: String(port) }, args: ['--max-memory-restart', '1G'] })
  const procs = await m.waitOnline('idle', instances, { timeout: 120000 })
  const startSeconds = (Date.now() - t0) / 1000
  const daemon = m.daemonPid()
  if (!u.isAlive(daemon)) throw new Error(`${m.label} daemon pid ${daemon} is not alive`)
  log(`  ${m.label}: ${instances} instances online in ${startSeconds.toFixed(1)} s; settling ${settleMs} ms, then ${windowMs / 1000} s of measurement`)
  await u.sleep(settleMs)
  const pids = procs.map((p) => p.pid)
  const appCpu = () => u.sum(pids.map((p) => u.cpuMs(p) || 0))
  const machineProcesses = processCount()
  const before = { daemon: u.cpuMs(daemon), apps: appCpu(), at: performance.now() }
  // Nothing else talks to the daemon during the window: no CLI calls.
  await u.sleep(windowMs)
  const after = { daemon: u.cpuMs(daemon), apps: appCpu(), at: performance.now() }
  const elapsed = after.at - before.at
  const res = {
    instances,
    start_seconds: startSeconds,
    window_ms: elapsed,
    daemon_cpu_ms: after.daemon - before.daemon,
    daemon_cpu_pct: ((after.daemon - before.daemon) * 100) / elapsed,
    apps_cpu_ms: after.apps - before.apps,
    apps_cpu_pct_each: ((after.apps - before.apps) * 100) / elapsed / instances,
    daemon_rss: u.rssBytes(daemon),
    machine_processes: machineProcesses,
  }
  // The figures the sampling produced, read after the window so the reading
  // does not count in it.
  if (m.kind === 'pmr') {
    const rows = m.app('idle').map((p) => p.raw)
    res.sampled = rows.filter((r) => r.memory > 0).length
    res.node_figures = rows.filter((r) => r.node).length
  }
  await m.delete('idle')
  await m.kill()
  return res
}

module.exports = {
  name: 'monitor',
  title: 'Monitoring cost: daemon CPU with many idle instances, 1 s sampling',
  async run({ scope, quick, log }) {
    const instances = quick ? 10 : 50
    const windowMs = quick ? 15000 : 60000
    const settleMs = quick ? 3000 : 10000
    const [p1, p2] = await u.freePorts(2)
    // One manager at a time: the other one's instances would be noise.
    const pmr = await measure(scope.pmr(), { instances, windowMs, settleMs, port: p1, log })
    const pm2 = await measure(scope.pm2(), { instances, windowMs, settleMs, port: p2, log })
    const notes = []
    if (pmr.sampled !== instances) notes.push(`pmr had figures for ${pmr.sampled} of ${instances} instances after the window`)
    if (pmr.node_figures !== instances) notes.push(`pmr had Node.js figures for ${pmr.node_figures} of ${instances} instances`)
    notes.push('pmr samples every instance\'s whole process tree each second; PM2 checks memory every 30 s, main pids only')
    if (quick) notes.push(`--quick: ${instances} instances for ${windowMs / 1000} s; the goal is stated for 50 over 60 s`)
    const row = (label, r) => [
      label,
      String(r.instances),
      `${u.fmtNum(r.daemon_cpu_ms, 0)} ms`,
      `${u.fmtNum(r.daemon_cpu_pct, 2)} %`,
      `${u.fmtNum(r.apps_cpu_pct_each, 3)} %`,
      u.fmtMB(r.daemon_rss),
      `${u.fmtNum(r.start_seconds, 1)} s`,
    ]
    return {
      tables: [
        {
          headers: ['daemon', 'instances', `CPU over ${windowMs / 1000} s`, 'of one core', 'each app', 'daemon RSS', 'start all'],
          rows: [row('pmr', pmr), row('PM2 (God)', pm2)],
        },
        { headers: ['ratio', 'value'], rows: [['pmr daemon CPU ÷ PM2', u.fmtX(u.ratio(pmr.daemon_cpu_ms, pm2.daemon_cpu_ms))]] },
      ],
      goals: [
        {
          goal: `pmr daemon below 1% of a core with ${instances} idle instances sampled every second`,
          value: `${u.fmtNum(pmr.daemon_cpu_pct, 2)} %`,
          met: pmr.daemon_cpu_pct < 1 && pmr.sampled === instances,
        },
      ],
      notes,
      data: { pmr, pm2, machine_processes: pmr.machine_processes },
    }
  },
}
