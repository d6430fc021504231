'use strict'
// many: 60 idle fork-mode apps from one ecosystem file. Times `start <file>`,
// `restart all` and `reload all` under pmr and PM2 (one manager at a time, so
// they do not share the CPU), and pmr's daemon RSS before the restart and
// after the reload.
const fs = require('node:fs')
const path = require('node:path')
const { fixture } = require('../lib/managers')
const u = require('../lib/util')

const APPS = 60

async function sampleRss(pid, { n = 5, every = 200 } = {}) {
  const v = []
  for (let i = 0; i < n; i++) {
    v.push(u.rssBytes(pid))
    if (i < n - 1) await u.sleep(every)
  }
  return u.median(v)
}

/** Every one of the apps online, each with a pid other than `before`'s. */
async function allOnline(m, before = new Map()) {
  return u.waitFor(
    () => {
      const list = m.list()
      const fresh = list.filter((p) => p.status === 'online' && p.pid && u.isAlive(p.pid) && before.get(p.name) !== p.pid)
      return fresh.length >= APPS ? list : null
    },
    { timeout: 60000, interval: 100, what: `${APPS} apps online under ${m.label}` }
  )
}

async function timed(m, args) {
  const r = await m.cli(args, { timeout: 120000 })
  if (r.code !== 0) throw new Error(`${m.label} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 600)}`)
  return r.ms
}

module.exports = {
  name: 'many',
  title: `${APPS} idle fork-mode apps: start of the file, restart all, reload all`,
  async run({ scope, log }) {
    const dir = scope.tmpdir('bench-many-')
    const apps = Array.from({ length: APPS }, (_, i) => ({ name: `idle-${i}`, script: fixture('idle.js'), exec_mode: 'fork' }))
    const file = path.join(dir, 'ecosystem.config.json')
    fs.writeFileSync(file, JSON.stringify({ apps }))
    const summary = {}
    for (const m of [scope.pmr(), scope.pm2()]) {
      const s = {}
      log(`  ${m.label}: start of ${APPS} apps`)
      s.start_ms = await timed(m, ['start', file])
      let list = await allOnline(m)
      const daemon = m.daemonPid()
      scope.track(daemon)
      await u.sleep(1500)
      s.rss_before = await sampleRss(daemon)
      s.restart_ms = await timed(m, ['restart', 'all'])
      list = await allOnline(m, new Map(list.map((p) => [p.name, p.pid])))
      s.reload_ms = await timed(m, ['reload', 'all'])
      await allOnline(m, new Map(list.map((p) => [p.name, p.pid])))
      await u.sleep(1500)
      s.rss_after = await sampleRss(daemon)
      s.rss_growth = s.rss_after - s.rss_before
      summary[m.kind] = s
      await m.kill()
    }
    const { pmr, pm2 } = summary
    const ratios = {
      start: u.ratio(pmr.start_ms, pm2.start_ms),
      restart: u.ratio(pmr.restart_ms, pm2.restart_ms),
      reload: u.ratio(pmr.reload_ms, pm2.reload_ms),
    }
    const rows = Object.entries(summary).map(([k, s]) => [
      k, u.fmtMs(s.start_ms), u.fmtMs(s.restart_ms), u.fmtMs(s.reload_ms), u.fmtMB(s.rss_before), u.fmtMB(s.rss_after), u.fmtMB(s.rss_growth),
    ])
    return {
      tables: [
        { headers: ['manager', `start of ${APPS}`, 'restart all', 'reload all', 'daemon RSS before', 'after', 'growth'], rows },
        {
          headers: ['ratio (pmr ÷ PM2)', 'value'],
          rows: [['start', u.fmtX(ratios.start)], ['restart all', u.fmtX(ratios.restart)], ['reload all', u.fmtX(ratios.reload)]],
        },
      ],
      goals: [
        { goal: 'restart all ≤ 0.3× PM2', value: u.fmtX(ratios.restart), met: ratios.restart !== null && ratios.restart <= 0.3 },
        { goal: 'reload all ≤ 0.3× PM2', value: u.fmtX(ratios.reload), met: ratios.reload !== null && ratios.reload <= 0.3 },
        { goal: `start of ${APPS} ≤ 0.5× PM2`, value: u.fmtX(ratios.start), met: ratios.start !== null && ratios.start <= 0.5 },
        { goal: 'pmr daemon RSS after restart all + reload all within 2 MB of before', value: u.fmtMB(pmr.rss_growth), met: Math.abs(pmr.rss_growth) <= 2 * 1048576 },
      ],
      notes: [
        'times are of the CLI command, as a user waits for it (pmr start waits for min_uptime, 1 s by default, as it does for every start)',
        'RSS before: after the start, settled 1.5 s; after: after restart all + reload all, settled 1.5 s',
      ],
      data: { apps: APPS, summary, ratios },
    }
  },
}
