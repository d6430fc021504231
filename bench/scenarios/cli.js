'use strict'
// cli: latency of `jlist` with one app running.
const { runSync, fixture } = require('../lib/managers')
const u = require('../lib/util')

module.exports = {
  name: 'cli',
  title: 'CLI latency: jlist with one app running',
  async run({ scope, quick, log }) {
    const runs = quick ? 10 : 60
    const warmup = quick ? 2 : 5
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const [p1, p2] = await u.freePorts(2)
    await pmr.start(fixture('hello.js'), { name: 'hello', env: { PORT: String(p1) } })
    await pm2.start(fixture('hello.js'), { name: 'hello', env: { PORT: String(p2) } })
    await pmr.waitOnline('hello', 1)
    await pm2.waitOnline('hello', 1)
    // Sanity: both answer with one app in their list.
    for (const m of [pmr, pm2]) {
      const n = m.list().length
      if (n !== 1) throw new Error(`${m.label} jlist lists ${n} processes, expected 1`)
    }

    const targets = [
      { key: 'pmr', argv: pmr.argv(['jlist']), env: pmr.envFor() },
      { key: 'pm2', argv: pm2.argv(['jlist']), env: pm2.envFor() },
      { key: 'node', argv: [process.execPath, ['-e', '0']], env: scope.env },
    ]
    const samples = { pmr: [], pm2: [], node: [] }
    log(`  ${warmup} warm-up + ${runs} interleaved runs of each command`)
    for (let i = 0; i < warmup + runs; i++) {
      for (const t of targets) {
        const r = runSync(t.argv[0], t.argv[1], { env: t.env, timeout: 20000 })
        if (r.code !== 0) throw new Error(`${t.argv.flat().join(' ')} exited ${r.code}: ${r.stderr.slice(0, 300)}`)
        if (i >= warmup) samples[t.key].push(r.ms)
      }
    }
    const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, u.median(v)]))
    const p90 = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, u.percentile(v, 90)]))
    const vsPm2 = u.ratio(med.pmr, med.pm2)
    const vsNode = u.ratio(med.pmr, med.node)
    return {
      tables: [
        {
          headers: ['command', 'median', 'p90', 'min', 'pmr ÷ this'],
          rows: [
            ['pmr jlist', u.fmtMs(med.pmr), u.fmtMs(p90.pmr), u.fmtMs(Math.min(...samples.pmr)), '1.00×'],
            ['pm2 jlist', u.fmtMs(med.pm2), u.fmtMs(p90.pm2), u.fmtMs(Math.min(...samples.pm2)), u.fmtX(vsPm2)],
            ['node -e 0 (ceiling)', u.fmtMs(med.node), u.fmtMs(p90.node), u.fmtMs(Math.min(...samples.node)), u.fmtX(vsNode)],
          ],
        },
      ],
      goals: [
        { goal: 'pmr jlist ≤ 0.5× pm2 jlist', value: u.fmtX(vsPm2, 3), met: vsPm2 !== null && vsPm2 <= 0.5 },
        { goal: 'pmr jlist ≤ 1.3× node -e 0', value: u.fmtX(vsNode, 3), met: vsNode !== null && vsNode <= 1.3 },
      ],
      data: { runs, median_ms: med, p90_ms: p90, ratio: { pmr_vs_pm2: vsPm2, pmr_vs_node: vsNode }, samples_ms: samples },
    }
  },
}
