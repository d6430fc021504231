'use strict'
// restart: kill -9 the app, measure until its replacement runs. The fixture
// appends its own start time (performance.timeOrigin, wall clock) and the
// time it started listening to BENCH_START_FILE; both are compared with the
// wall-clock time of the kill, so polling delays do not enter the figures.
const fs = require('node:fs')
const path = require('node:path')
const { fixture } = require('../lib/managers')
const u = require('../lib/util')

function lastStart(file) {
  let text = ''
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
  const lines = text.trim().split('\n').filter(Boolean)
  return lines.length ? JSON.parse(lines[lines.length - 1]) : null
}

module.exports = {
  name: 'restart',
  title: 'Restart after a crash: kill -9 → replacement running',
  async run({ scope, quick, log }) {
    const rounds = quick ? 3 : 10
    const upBeforeKill = 1200 // ms: longer than the default min_uptime, so no run counts as unstable
    const dir = scope.tmpdir('bench-restart-')
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const targets = [
      { key: 'pmr_fork', label: 'pmr (fork)', m: pmr, name: 'hello', instances: null },
      { key: 'pm2_fork', label: 'PM2 (fork)', m: pm2, name: 'hello', instances: null },
      { key: 'pmr_i1', label: 'pmr -i 1 (cluster)', m: pmr, name: 'hello1', instances: 1 },
      { key: 'pm2_i1', label: 'PM2 -i 1 (cluster)', m: pm2, name: 'hello1', instances: 1 },
    ]
    const ports = await u.freePorts(targets.length)
    for (const [i, t] of targets.entries()) {
      t.file = path.join(dir, `${t.key}.starts`)
      t.samples = []
      await t.m.start(fixture('hello.js'), { name: t.name, instances: t.instances, env: { PORT: String(ports[i]), BENCH_START_FILE: t.file } })
    }
    for (const t of targets) {
      await u.waitFor(() => lastStart(t.file), { timeout: 15000, what: `${t.label} to start` })
      t.mode = (t.m.app(t.name)[0] || {}).mode
    }
    log(`  ${rounds} interleaved rounds of kill -9 per target`)
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) {
        const cur = lastStart(t.file)
        const upFor = u.wallNow() - cur.listening
        if (upFor < upBeforeKill) await u.sleep(upBeforeKill - upFor)
        if (!u.isAlive(cur.pid)) throw new Error(`${t.label}: pid ${cur.pid} is not running before the kill`)
        const killAt = u.wallNow()
        process.kill(cur.pid, 'SIGKILL')
        const next = await u.waitFor(
          () => {
            const s = lastStart(t.file)
            return s && s.pid !== cur.pid ? s : null
          },
          { timeout: 15000, interval: 2, what: `${t.label} to start a replacement after kill -9` }
        )
        scope.track(next.pid)
        t.samples.push({ start_ms: next.origin - killAt, listening_ms: next.listening - killAt })
      }
    }
    const rows = []
    const summary = {}
    for (const t of targets) {
      const s = {
        start_ms: u.median(t.samples.map((x) => x.start_ms)),
        listening_ms: u.median(t.samples.map((x) => x.listening_ms)),
        start_max_ms: Math.max(...t.samples.map((x) => x.start_ms)),
        mode: t.mode,
      }
      summary[t.key] = s
      rows.push([t.label, t.mode || '?', u.fmtMs(s.start_ms), u.fmtMs(s.start_max_ms), u.fmtMs(s.listening_ms)])
    }
    const goals = ['pmr_fork', 'pmr_i1'].map((k) => ({
      goal: `${targets.find((t) => t.key === k).label}: new process within 50 ms of the kill (median)`,
      value: u.fmtMs(summary[k].start_ms),
      met: summary[k].start_ms !== null && summary[k].start_ms <= 50,
    }))
    return {
      tables: [
        {
          headers: ['target', 'mode', 'kill → new process (median)', 'max', 'kill → listening (median)'],
          rows,
        },
        {
          headers: ['ratio (median kill → new process)', 'value'],
          rows: [
            ['pmr fork ÷ PM2 fork', u.fmtX(u.ratio(summary.pmr_fork.start_ms, summary.pm2_fork.start_ms))],
            ['pmr -i 1 ÷ PM2 -i 1', u.fmtX(u.ratio(summary.pmr_i1.start_ms, summary.pm2_i1.start_ms))],
          ],
        },
      ],
      goals,
      notes: ['"new process" = the replacement\'s performance.timeOrigin; "listening" = its listen callback (includes Node start-up)'],
      data: { rounds, summary, samples: Object.fromEntries(targets.map((t) => [t.key, t.samples])) },
    }
  },
}
