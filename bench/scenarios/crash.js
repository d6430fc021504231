'use strict'
// crash: the only instance is killed with kill -9 while a client opens a
// fresh connection every few ms: how many connects fail, and how long until
// the app serves again.
const { fixture } = require('../lib/managers')
const load = require('../lib/load')
const u = require('../lib/util')

module.exports = {
  name: 'crash',
  title: 'Crash of the only instance under a poll of fresh connections',
  async run({ scope, quick, log }) {
    const rounds = quick ? 2 : 5
    const every = 5 // ms between new connections
    const upBeforeKill = 1500
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const targets = [
      { key: 'pmr_i1', label: 'pmr -i 1', m: pmr, name: 'hello1', instances: 1 },
      { key: 'pmr_fork', label: 'pmr fork', m: pmr, name: 'hello', instances: null },
      { key: 'pm2_fork', label: 'PM2 fork', m: pm2, name: 'hello', instances: null },
      { key: 'pm2_i1', label: 'PM2 -i 1', m: pm2, name: 'hello1', instances: 1 },
    ]
    const ports = await u.freePorts(targets.length)
    for (const [i, t] of targets.entries()) {
      t.port = ports[i]
      t.samples = []
      await t.m.start(fixture('hello.js'), { name: t.name, instances: t.instances, env: { PORT: String(t.port) } })
    }
    for (const t of targets) {
      t.mode = (await t.m.waitOnline(t.name, 1))[0].mode
      await u.waitHttp(t.port)
    }
    log(`  ${rounds} interleaved rounds; a new connection every ${every} ms`)
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) {
        const [proc] = await t.m.waitOnline(t.name, 1)
        await u.waitHttp(t.port)
        await u.sleep(upBeforeKill)
        const res = await load.crashPoll(t.port, proc.pid, { every })
        t.samples.push(res)
        // wait for the manager to see it online again before the next target
        await t.m.waitOnline(t.name, 1)
      }
    }
    const summary = {}
    const rows = []
    for (const t of targets) {
      const s = {
        mode: t.mode,
        refused_median: u.median(t.samples.map((x) => x.refused)),
        refused_total: u.sum(t.samples.map((x) => x.refused)),
        other_errors_total: u.sum(t.samples.map((x) => x.other_errors)),
        other_error_codes: [...new Set(t.samples.flatMap((x) => x.other_error_codes))],
        ms_until_serves_median: u.median(t.samples.map((x) => x.ms_until_serves)),
        longest_wait_ms_median: u.median(t.samples.map((x) => x.longest_wait_ms)),
        never_served_again: t.samples.filter((x) => x.ms_until_serves === null).length,
      }
      summary[t.key] = s
      rows.push([
        t.label,
        s.mode,
        `${s.refused_median} (${s.refused_total} in ${rounds})`,
        `${s.other_errors_total}${s.other_error_codes.length ? ' ' + s.other_error_codes.join(',') : ''}`,
        u.fmtMs(s.ms_until_serves_median) + (s.never_served_again ? ` (${s.never_served_again} never)` : ''),
        u.fmtMs(s.longest_wait_ms_median),
      ])
    }
    return {
      tables: [
        {
          headers: ['target', 'mode', 'refused connects/crash (median, total)', 'other errors (total)', 'kill → serves again (median)', 'longest wait of a request (median)'],
          rows,
        },
      ],
      goals: [],
      notes: [
        `pmr -i 1: ${summary.pmr_i1.refused_total} refused connects in ${rounds} crashes (the README promises connections wait instead of being refused in cluster mode)`,
        '"other errors": requests in flight on the killed process (ECONNRESET) or not answered within 3 s (TIMEOUT); not refused connects',
        'pmr fork mode is shown for information; the README promises waiting-instead-of-refused for cluster mode (-i)',
      ],
      data: { rounds, every_ms: every, summary, samples: Object.fromEntries(targets.map((t) => [t.key, t.samples])) },
    }
  },
}
