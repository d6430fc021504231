'use strict'
// cpu: a CPU-bound handler (3 ms of CPU per request) under keep-alive load,
// -i 2 (issue 16): pmr's default policy beside PM2 and Node's own
// round-robin cluster. With every worker busy, throughput is decided by
// whether both workers get their share of the connections.
const { fixture } = require('../lib/managers')
const load = require('../lib/load')
const u = require('../lib/util')

const WORKERS = 2

module.exports = {
  name: 'cpu',
  title: `CPU-bound handler (3 ms per request) under keep-alive load, ${WORKERS} instances`,
  async run({ scope, quick, log }) {
    const rounds = quick ? 1 : 5
    const duration = quick ? 3 : 8
    const connections = 20
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const nodeRr = scope.ceiling('node-rr')
    const ports = await u.freePorts(3)
    const script = fixture('cpu.js')
    await pmr.start(script, { name: 'cpu', instances: WORKERS, env: { PORT: String(ports[0]) } })
    await pm2.start(script, { name: 'cpu', instances: WORKERS, env: { PORT: String(ports[1]) } })
    await nodeRr.start({ port: ports[2], workers: WORKERS, script, env: { CEILING_SCHED: 'rr' } })
    await pmr.waitOnline('cpu', WORKERS)
    await pm2.waitOnline('cpu', WORKERS)
    const targets = [
      { key: 'pmr', label: `pmr -i ${WORKERS} (default policy)`, port: ports[0], runs: [] },
      { key: 'pm2', label: `PM2 -i ${WORKERS}`, port: ports[1], runs: [] },
      { key: 'node-rr', label: `Node cluster (round-robin)`, port: ports[2], runs: [] },
    ]
    for (const t of targets) await u.waitHttp(t.port)
    const warmup = quick ? 1 : 3
    log(`  warm-up ${warmup} s each (the JIT compiles the handler), then ${rounds} interleaved rounds of autocannon -c ${connections} for ${duration} s, each round starting with the next target`)
    for (const t of targets) await load.autocannon(scope, `http://127.0.0.1:${t.port}/`, { connections, duration: warmup })
    for (let r = 0; r < rounds; r++) {
      // The host drifts within a round as well: no target always goes first.
      const order = targets.map((_, i) => targets[(i + r) % targets.length])
      for (const t of order) t.runs.push(await load.autocannon(scope, `http://127.0.0.1:${t.port}/`, { connections, duration }))
      log(`    round ${r + 1}: ${targets.map((t) => `${t.key} ${u.fmtNum(t.runs[r].rps, 0)}`).join(', ')}`)
    }
    const rps = Object.fromEntries(targets.map((t) => [t.key, t.runs.map((x) => x.rps)]))
    const perRound = rps.pmr.map((v, i) => ({ vsNode: u.ratio(v, rps['node-rr'][i]), vsPm2: u.ratio(v, rps.pm2[i]) }))
    const fmtRounds = (k) => perRound.map((x) => u.fmtX(x[k])).join(', ')
    return {
      tables: [
        {
          headers: ['target', 'req/s per round', 'median', 'errors'],
          rows: targets.map((t) => [t.label, t.runs.map((x) => u.fmtNum(x.rps, 0)).join(', '), u.fmtRps(u.median(rps[t.key])), String(u.sum(t.runs.map((x) => x.errors + x.timeouts + x.non2xx)))]),
        },
        { headers: ['ratio', 'per round'], rows: [['pmr ÷ Node round-robin', fmtRounds('vsNode')], ['pmr ÷ PM2', fmtRounds('vsPm2')]] },
      ],
      goals: [
        { goal: 'pmr ≥ 0.95× Node round-robin in every round', value: fmtRounds('vsNode'), met: perRound.every((x) => x.vsNode !== null && x.vsNode >= 0.95) },
        { goal: 'pmr ≥ 1.0× PM2 in every round', value: fmtRounds('vsPm2'), met: perRound.every((x) => x.vsPm2 !== null && x.vsPm2 >= 1.0) },
      ],
      notes: [`${require('node:os').cpus().length} CPUs shared by autocannon, the supervisor and the workers`],
      data: { rps, per_round: perRound },
    }
  },
}
