'use strict'
// reload: 2 instances under keep-alive load from wrk (which honours
// Connection: close, unlike autocannon), 10 reloads one second apart; count
// socket errors and non-2xx responses, and time each reload command.
const { fixture } = require('../lib/managers')
const load = require('../lib/load')
const u = require('../lib/util')

const WORKERS = 2

module.exports = {
  name: 'reload',
  title: `Reload under keep-alive load: ${WORKERS} instances, wrk -c 20`,
  async run({ scope, quick, log }) {
    load.requireWrk()
    const reloads = quick ? 3 : 10
    const connections = 20
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const targets = [
      { key: 'pmr', label: 'pmr', m: pmr },
      { key: 'pm2', label: 'PM2', m: pm2 },
    ]
    const ports = await u.freePorts(targets.length)
    for (const [i, t] of targets.entries()) {
      t.port = ports[i]
      await t.m.start(fixture('hello.js'), { name: 'hello', instances: WORKERS, env: { PORT: String(t.port) } })
    }
    for (const t of targets) {
      await t.m.waitOnline('hello', WORKERS)
      await u.waitHttp(t.port)
    }
    log(`  ${reloads} reloads one second apart under wrk -t 2 -c ${connections}, one target at a time`)
    for (const t of targets) {
      t.reloads = []
      const url = `http://127.0.0.1:${t.port}/`
      const w = load.startWrk(scope, url, { threads: 2, connections, untilStopped: true })
      const loadStart = Date.now()
      await u.sleep(1000)
      for (let i = 0; i < reloads; i++) {
        const t0 = Date.now()
        const before = t.m.app('hello').map((p) => p.pid)
        const r = await t.m.cli(['reload', 'hello'], { timeout: 60000 })
        const after = t.m.app('hello')
        const replaced = before.filter((pid) => pid && !after.some((p) => p.pid === pid)).length
        t.reloads.push({
          ms: r.ms,
          exit: r.code,
          stderr: r.code ? (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ') : undefined,
          replaced,
          online_after: after.filter((p) => p.status === 'online').length,
        })
        const wait = 1000 - (Date.now() - t0)
        if (wait > 0) await u.sleep(wait)
      }
      await u.sleep(1000)
      w.stop()
      t.wrk = await w.done
      t.seconds = (Date.now() - loadStart) / 1000
      // let the apps settle before the other target runs
      await t.m.waitOnline('hello', WORKERS).catch(() => {})
      const se = t.wrk.socket_errors
      log(`    ${t.label}: ${load.socketErrorTotal(t.wrk)} socket errors (connect ${se.connect}, read ${se.read}, write ${se.write}, timeout ${se.timeout}), ${t.wrk.non2xx} non-2xx, ${t.wrk.total} requests`)
    }
    const summary = {}
    for (const t of targets) {
      summary[t.key] = {
        socket_errors: load.socketErrorTotal(t.wrk),
        socket_errors_by_kind: t.wrk.socket_errors,
        non2xx: t.wrk.non2xx,
        requests: t.wrk.total,
        rps: t.wrk.rps,
        reload_ms_median: u.median(t.reloads.map((x) => x.ms)),
        reload_failures: t.reloads.filter((x) => x.exit !== 0).length,
        workers_replaced: u.sum(t.reloads.map((x) => x.replaced)),
        load_seconds: t.seconds,
      }
    }
    const se = (s) => `${s.socket_errors} (c ${s.socket_errors_by_kind.connect} r ${s.socket_errors_by_kind.read} w ${s.socket_errors_by_kind.write} t ${s.socket_errors_by_kind.timeout})`
    const notes = []
    for (const t of targets) {
      const fails = t.reloads.filter((x) => x.exit !== 0)
      if (fails.length) notes.push(`${t.label}: ${fails.length} reload command(s) exited non-zero, e.g.: ${fails[0].stderr}`)
      const expect = reloads * WORKERS
      if (summary[t.key].workers_replaced !== expect) notes.push(`${t.label}: ${summary[t.key].workers_replaced} of ${expect} workers were replaced by the reloads`)
    }
    notes.push('socket errors: c = connect, r = read, w = write, t = timeout (wrk)')
    const errs = summary.pmr.socket_errors + summary.pmr.non2xx
    return {
      tables: [
        {
          headers: ['target', 'socket errors', 'non-2xx', 'requests', 'req/s', 'reload cmd (median)', 'failed reloads', 'workers replaced'],
          rows: targets.map((t) => {
            const s = summary[t.key]
            return [`${t.label} -i ${WORKERS}`, se(s), String(s.non2xx), String(s.requests), u.fmtNum(s.rps, 0), u.fmtMs(s.reload_ms_median), `${s.reload_failures}/${reloads}`, `${s.workers_replaced}/${reloads * WORKERS}`]
          }),
        },
      ],
      goals: [
        {
          goal: `pmr: zero socket errors and non-2xx over ${reloads} reloads`,
          value: `${summary.pmr.socket_errors} socket errors, ${summary.pmr.non2xx} non-2xx`,
          met: errs === 0 && summary.pmr.reload_failures === 0 && summary.pmr.workers_replaced === reloads * WORKERS,
        },
      ],
      notes,
      data: { reloads, connections, summary, per_reload: Object.fromEntries(targets.map((t) => [t.key, t.reloads])), wrk_output: Object.fromEntries(targets.map((t) => [t.key, t.wrk.raw])) },
    }
  },
}
