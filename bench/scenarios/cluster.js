'use strict'
// cluster: hello world, 2 instances, under pmr -i 2, PM2 -i 2 and Node's own
// cluster with SCHED_NONE (the ceiling). Interleaved rounds; medians.
const fs = require('node:fs')
const path = require('node:path')
const { fixture } = require('../lib/managers')
const load = require('../lib/load')
const u = require('../lib/util')

const WORKERS = 2

/** Requests served per worker pid, as the fixture last wrote them to its stats dir. */
function readStats(dir) {
  const out = {}
  for (const f of fs.readdirSync(dir)) out[f] = Number(fs.readFileSync(path.join(dir, f), 'utf8')) || 0
  return out
}

/** Shares of the requests in (after − before), busiest first, padded to WORKERS entries. */
function sharesBetween(before, after) {
  const deltas = Object.keys(after).map((pid) => after[pid] - (before[pid] || 0)).filter((d) => d > 0)
  while (deltas.length < WORKERS) deltas.push(0)
  const total = u.sum(deltas) || 1
  return deltas.sort((a, b) => b - a).map((d) => d / total)
}

const pctSplit = (shares) => shares.map((x) => Math.round(x * 100)).join('/')

module.exports = {
  name: 'cluster',
  title: `Cluster throughput: hello world, ${WORKERS} instances`,
  async run({ scope, quick, log }) {
    load.requireWrk()
    const rounds = quick ? 2 : 5
    const duration = quick ? 3 : 10
    const warmup = quick ? 1 : 3
    const splitTotal = quick ? 1000 : 5000
    const kaConnections = 50
    const closeConnections = 20
    const wrkThreads = 2

    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const ceiling = scope.ceiling()
    const ports = await u.freePorts(3)
    const targets = [
      { key: 'pmr', label: `pmr -i ${WORKERS}`, port: ports[0] },
      { key: 'pm2', label: `PM2 -i ${WORKERS}`, port: ports[1] },
      { key: 'ceiling', label: 'ceiling (SCHED_NONE)', port: ports[2] },
    ]
    for (const t of targets) t.stats = scope.tmpdir(`bench-stats-${t.key}-`)
    await pmr.start(fixture('hello.js'), { name: 'hello', instances: WORKERS, env: { PORT: String(ports[0]), BENCH_STATS_DIR: targets[0].stats } })
    await pm2.start(fixture('hello.js'), { name: 'hello', instances: WORKERS, env: { PORT: String(ports[1]), BENCH_STATS_DIR: targets[1].stats } })
    await ceiling.start({ port: ports[2], workers: WORKERS, env: { BENCH_STATS_DIR: targets[2].stats } })
    const modes = { pmr: (await pmr.waitOnline('hello', WORKERS)).map((p) => p.mode), pm2: (await pm2.waitOnline('hello', WORKERS)).map((p) => p.mode) }
    for (const t of targets) await u.waitHttp(t.port)
    for (const t of targets) {
      t.url = `http://127.0.0.1:${t.port}/`
      t.ka = []
      t.close = []
      t.kaShares = []
      t.closeShares = []
    }
    // Runs one load and records how its requests spread over the workers.
    const measured = async (t, fn, into) => {
      const before = readStats(t.stats)
      const res = await fn()
      await u.sleep(350) // the fixture flushes its counter every 250 ms
      into.push(sharesBetween(before, readStats(t.stats)))
      return res
    }

    log(`  warm-up ${warmup} s each, then ${rounds} interleaved rounds: keep-alive ${duration} s (autocannon -c ${kaConnections}), Connection: close ${duration} s (wrk -t ${wrkThreads} -c ${closeConnections})`)
    for (const t of targets) await load.autocannon(scope, t.url, { connections: kaConnections, duration: warmup })
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) t.ka.push(await measured(t, () => load.autocannon(scope, t.url, { connections: kaConnections, duration }), t.kaShares))
      for (const t of targets)
        t.close.push(
          await measured(
            t,
            () => load.wrk(scope, t.url, { threads: wrkThreads, connections: closeConnections, duration, headers: ['Connection: close'] }),
            t.closeShares
          )
        )
      log(`    round ${r + 1}/${rounds}: keep-alive ${targets.map((t) => `${t.key} ${u.fmtNum(t.ka[r].rps, 0)}`).join(', ')}; close ${targets.map((t) => `${t.key} ${u.fmtNum(t.close[r].rps, 0)}`).join(', ')}`)
    }

    log(`  split: ${splitTotal} requests over fresh connections, 20 at a time`)
    for (const t of targets) t.split = await load.shortConnectionSplit(t.port, { total: splitTotal, concurrency: 20 })
    for (const t of targets) t.kaSplit = await load.keepAliveSplit(t.port, { connections: kaConnections })

    const med = {}
    for (const t of targets) {
      med[t.key] = {
        ka: u.median(t.ka.map((x) => x.rps)),
        close: u.median(t.close.map((x) => x.rps)),
        ka_errors: u.sum(t.ka.map((x) => x.errors + x.timeouts + x.non2xx)),
        close_errors: u.sum(t.close.map((x) => load.socketErrorTotal(x) + x.non2xx)),
      }
    }
    const r = {
      ka_vs_ceiling: u.ratio(med.pmr.ka, med.ceiling.ka),
      ka_vs_pm2: u.ratio(med.pmr.ka, med.pm2.ka),
      close_vs_ceiling: u.ratio(med.pmr.close, med.ceiling.close),
      close_vs_pm2: u.ratio(med.pmr.close, med.pm2.close),
      pm2_ka_vs_ceiling: u.ratio(med.pm2.ka, med.ceiling.ka),
      pm2_close_vs_ceiling: u.ratio(med.pm2.close, med.ceiling.close),
    }
    const splitText = (s) => {
      const shares = s.shares.slice()
      while (shares.length < WORKERS) shares.push(0)
      return pctSplit(shares) + ' %' + (s.shares.length > WORKERS ? ` (${s.shares.length} pids)` : '') + (s.errors ? `, ${s.errors} errors` : '')
    }
    const kaCounts = (k) => {
      const c = k.counts.slice()
      while (c.length < WORKERS) c.push(0)
      return c.join(' / ') + (k.errors ? `, ${k.errors} errors` : '')
    }
    const notes = []
    for (const t of targets) {
      if (med[t.key].ka_errors) notes.push(`${t.label}: ${med[t.key].ka_errors} errors/timeouts/non-2xx under keep-alive load`)
      if (med[t.key].close_errors) notes.push(`${t.label}: ${med[t.key].close_errors} socket errors/non-2xx under Connection: close load`)
    }
    if (require('node:os').cpus().length <= WORKERS)
      notes.push(
        `only ${require('node:os').cpus().length} CPUs: the load generator shares the cores with the ${WORKERS} workers, so keep-alive figures depend on how the connections happened to spread (see the split table)`
      )
    if (modes.pm2.some((m) => m !== 'cluster')) notes.push(`PM2 ran in ${modes.pm2.join(',')} mode, not cluster`)
    if (modes.pmr.some((m) => m !== 'cluster')) notes.push(`pmr ran in ${modes.pmr.join(',')} mode, not cluster`)

    return {
      tables: [
        {
          headers: ['load', 'pmr', 'PM2', 'ceiling', 'pmr÷PM2', 'pmr÷ceiling', 'PM2÷ceiling'],
          rows: [
            [`keep-alive (autocannon -c ${kaConnections})`, u.fmtRps(med.pmr.ka), u.fmtRps(med.pm2.ka), u.fmtRps(med.ceiling.ka), u.fmtX(r.ka_vs_pm2), u.fmtX(r.ka_vs_ceiling), u.fmtX(r.pm2_ka_vs_ceiling)],
            [`Connection: close (wrk -c ${closeConnections})`, u.fmtRps(med.pmr.close), u.fmtRps(med.pm2.close), u.fmtRps(med.ceiling.close), u.fmtX(r.close_vs_pm2), u.fmtX(r.close_vs_ceiling), u.fmtX(r.pm2_close_vs_ceiling)],
          ],
        },
        {
          title: `how load spread over the ${WORKERS} workers (busiest first; per round for the load runs)`,
          headers: ['target', 'keep-alive load, % of requests', 'Connection: close load, %', `${splitTotal} short connections, %`, `${kaConnections} keep-alive conns opened at once`],
          rows: targets.map((t) => [
            t.label,
            t.kaShares.map(pctSplit).join(', '),
            t.closeShares.map(pctSplit).join(', '),
            splitText(t.split),
            kaCounts(t.kaSplit),
          ]),
        },
      ],
      goals: [
        { goal: 'keep-alive: pmr ≥ 0.97× ceiling', value: u.fmtX(r.ka_vs_ceiling, 3), met: r.ka_vs_ceiling !== null && r.ka_vs_ceiling >= 0.97 },
        { goal: 'keep-alive: pmr ≥ 1.05× PM2', value: u.fmtX(r.ka_vs_pm2, 3), met: r.ka_vs_pm2 !== null && r.ka_vs_pm2 >= 1.05 },
        { goal: 'Connection: close: pmr ≥ 0.95× ceiling', value: u.fmtX(r.close_vs_ceiling, 3), met: r.close_vs_ceiling !== null && r.close_vs_ceiling >= 0.95 },
      ],
      notes,
      data: {
        rounds,
        duration_s: duration,
        medians_rps: med,
        ratios: r,
        modes,
        per_round: Object.fromEntries(targets.map((t) => [t.key, { keep_alive: t.ka, close: t.close.map(({ raw, ...x }) => x) }])),
        split: Object.fromEntries(targets.map((t) => [t.key, t.split])),
        keep_alive_split: Object.fromEntries(targets.map((t) => [t.key, t.kaSplit])),
        request_shares_per_round: Object.fromEntries(targets.map((t) => [t.key, { keep_alive: t.kaShares, close: t.closeShares }])),
      },
    }
  },
}
