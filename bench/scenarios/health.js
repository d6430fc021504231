'use strict'
// health: issue 20's figures. An app that stops answering while its
// process lives (replaced within interval × failures + 1 s; PM2: never);
// -i 2 under keep-alive load while one worker is broken (failed requests
// without and with a health check); a loop blocked forever (replaced within
// the lag + 1 s); crash → webhook latency; 1000 crashes → deliveries; the
// daemon's CPU with 50 checked instances against 50 unchecked.
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { REPO } = require('../lib/managers')
const u = require('../lib/util')

const APP = path.join(REPO, '__test__', 'fixtures', 'health', 'app.js')
const BLOCK = path.join(REPO, '__test__', 'fixtures', 'health', 'block.js')
const CRASH = path.join(REPO, '__test__', 'fixtures', 'health', 'crash.js')

function get(port, p, timeout = 2000, agent = false) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      let body = ''
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.setTimeout(timeout, () => req.destroy(new Error('timeout')))
    req.on('error', (e) => resolve({ error: e.message }))
  })
}

/** Keep-alive loops counting answers and failures (timeouts included). */
function keepAliveLoad(port, connections = 8, timeout = 2000) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  const s = { ok: 0, failed: 0 }
  let running = true
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      const r = await get(port, '/', timeout, agent)
      if (r.status === 200) s.ok++
      else s.failed++
    }
  })
  return { s, stop: async () => { running = false; await Promise.all(loops); agent.destroy(); return s } }
}

async function receiver() {
  const got = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => { got.push({ at: Date.now(), body: JSON.parse(body) }); res.end('ok') })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}/hook`, got, close: () => new Promise((r) => server.close(r)) }
}

const pidOf = (m, name) => (m.app(name)[0] || {}).pid

module.exports = {
  name: 'health',
  title: 'Health checks, the event-loop watchdog and alerts',
  async run({ scope, quick, log }) {
    const pmr = scope.pmr()
    const data = {}
    const rows = []

    // 1. An app that stops answering: pmr with a check, PM2 without one.
    {
      const [port, port2] = await u.freePorts(2)
      const interval = 1000
      const failures = 3
      await pmr.start(APP, { name: 'hang', env: { PORT: String(port), BREAK: 'hang' },
        args: ['--health-http', '/healthz', '--health-interval', `${interval}ms`, '--health-timeout', '500ms', '--health-failures', String(failures)] })
      const [first] = await pmr.waitOnline('hang', 1)
      await u.waitFor(() => { const r = pmr.app('hang')[0]; return r && r.raw.health && r.raw.health.status === 'healthy' }, { timeout: 10000, what: 'healthy' })
      await get(port, '/break')
      const t0 = Date.now()
      await u.waitFor(() => { const r = pmr.app('hang')[0]; return r && r.pid !== first.pid && r.status === 'online' }, { timeout: 20000, what: 'replacement' })
      await u.waitHttp(port)
      const ms = Date.now() - t0
      data.replacement_ms = ms
      rows.push(['stops answering /healthz, process alive', `${failures} × ${interval} ms + 1 s = ${failures * interval + 1000} ms`, `${ms} ms`, ms <= failures * interval + 1000 ? 'yes' : 'no'])
      await pmr.delete('hang')

      const pm2 = scope.pm2()
      await pm2.start(APP, { name: 'hang', env: { PORT: String(port2), BREAK: 'hang' } })
      const [p2] = await pm2.waitOnline('hang', 1)
      await u.waitHttp(port2)
      await get(port2, '/break')
      await u.sleep(failures * interval + 1000)
      const still = (await get(port2, '/healthz', 500)).error
      const same = pidOf(pm2, 'hang') === p2.pid
      data.pm2_after_ms = { same_pid: same, healthz_still_hangs: Boolean(still) }
      rows.push(['PM2, same app', 'never (no health check)', same && still ? `same pid, /healthz still hangs after ${failures * interval + 1000} ms` : 'changed?', '-'])
      await pm2.kill()
    }

    // 2. -i 2 under keep-alive load, one worker broken.
    for (const [mode, check] of [['hang-all', false], ['hang-all', true], ['fail-health', true]]) {
      const port = await u.freePort()
      const name = `ka-${mode}-${check ? 'checked' : 'unchecked'}`
      const args = check ? ['--health-http', '/healthz', '--health-interval', '500ms', '--health-timeout', '300ms', '--health-failures', '2'] : []
      await pmr.start(APP, { name, instances: 2, env: { PORT: String(port), BREAK: mode === 'hang-all' ? 'hang-all' : '' }, args })
      await pmr.waitOnline(name, 2)
      await u.waitHttp(port, { pids: 2 })
      const l = keepAliveLoad(port)
      await u.sleep(1000)
      const broke = JSON.parse((await get(port, '/break')).body).pid
      const t0 = Date.now()
      let replacedMs = null
      await u.waitFor(() => {
        const r = pmr.app(name)
        if (replacedMs === null && r.length === 2 && !r.some((x) => x.pid === broke) && r.every((x) => x.status === 'online')) replacedMs = Date.now() - t0
        return Date.now() - t0 > 8000
      }, { timeout: 20000, interval: 200 })
      const s = await l.stop()
      data[name] = { ...s, replaced_ms: replacedMs }
      const what = mode === 'hang-all' ? 'broken worker hangs every request' : 'broken worker fails /healthz, still serves'
      rows.push([`-i 2 keep-alive, ${what}, ${check ? 'health check' : 'no check'}`, check && mode !== 'hang-all' ? '0 failed' : 'count', `${s.failed} failed of ${s.ok + s.failed} in 9 s${replacedMs ? `, replaced in ${replacedMs} ms` : ''}`, check && mode !== 'hang-all' ? (s.failed === 0 ? 'yes' : 'no') : '-'])
      await pmr.delete(name)
    }

    // 3. A loop blocked forever.
    {
      const port = await u.freePort()
      const mark = path.join(scope.tmpdir(), 'blocked')
      const lag = 2000
      await pmr.start(BLOCK, { name: 'stuck', instances: 1, env: { PORT: String(port), BLOCK_MARK: mark }, args: ['--max-event-loop-lag', `${lag}ms`] })
      const [first] = await pmr.waitOnline('stuck', 1)
      await u.waitFor(() => fs.existsSync(mark), { timeout: 10000, what: 'block' })
      const blockedAt = fs.statSync(mark).mtimeMs
      await u.waitFor(() => { const r = pmr.app('stuck')[0]; return r && r.pid !== first.pid && r.status === 'online' }, { timeout: 20000, what: 'replacement' })
      const ms = Date.now() - blockedAt
      const log = fs.readFileSync(path.join(pmr.home, 'pmr.log'), 'utf8')
      // When pmr decided: the daemon log's own timestamp of the verdict.
      const verdict = log.split('\n').find((l) => /unhealthy .*event loop blocked/.test(l))
      const noticed = verdict ? Date.parse(verdict.split(/\s+/)[0]) - blockedAt : null
      data.blocked_noticed_ms = noticed
      data.blocked_replaced_ms = ms
      rows.push(['event loop blocked forever, max_event_loop_lag 2s', `noticed within ${lag + 1000} ms`,
        `noticed after ${noticed == null ? '?' : Math.round(noticed)} ms; the replacement online after ${Math.round(ms)} ms`, noticed != null && noticed <= lag + 1000 ? 'yes' : 'no'])
      await pmr.delete('stuck')
    }

    // 4. Alert latency and 5. a crash loop's deliveries.
    {
      const r = await receiver()
      check(pmr.cliSync(['set', 'notify.webhook', r.url]))
      check(pmr.cliSync(['set', 'notify.throttle', '0']))
      const port = await u.freePort()
      await pmr.start(APP, { name: 'exit', env: { PORT: String(port) }, args: ['--min-uptime', '0'] })
      const lat = []
      for (let i = 0; i < (quick ? 5 : 20); i++) {
        await pmr.waitOnline('exit', 1)
        await u.waitHttp(port)
        const before = r.got.length
        const t0 = Date.now()
        await get(port, '/exit')
        await u.waitFor(() => r.got.length > before, { timeout: 10000, what: 'alert' })
        lat.push(r.got[r.got.length - 1].at - t0)
      }
      data.alert_latency_ms = lat
      const med = u.median(lat)
      rows.push(['crash → webhook received', 'median < 200 ms', `median ${med} ms (min ${Math.min(...lat)}, max ${Math.max(...lat)}, ${lat.length} crashes)`, med < 200 ? 'yes' : 'no'])
      await pmr.delete('exit')

      const crashes = quick ? 200 : 1000
      const window = 30000
      check(pmr.cliSync(['set', 'notify.throttle', `${window}ms`]))
      const start = r.got.length
      const t0 = Date.now()
      await pmr.start(CRASH, { name: 'loop', env: { CRASH_AFTER_MS: '1' }, args: ['--min-uptime', '0', '--max-restarts', '100000'] })
      await u.waitFor(() => (pmr.app('loop')[0] || {}).restarts >= crashes, { timeout: 600000, interval: 500, what: `${crashes} crashes` })
      const loopMs = Date.now() - t0
      await pmr.delete('loop')
      // The last window's summary.
      await u.sleep(window + 1000)
      const deliveries = r.got.slice(start)
      data.crash_loop = { crashes, ms: loopMs, deliveries: deliveries.length, suppressed: deliveries.map((d) => d.body.suppressed) }
      rows.push([`${crashes} crashes in a loop (${Math.round(loopMs / 1000)} s), throttle 30 s`, 'a handful of deliveries', `${deliveries.length} deliveries (${deliveries.map((d) => d.body.suppressed ? `summary of ${d.body.suppressed}` : d.body.event).join(', ')})`, deliveries.length <= 6 ? 'yes' : 'no'])
      check(pmr.cliSync(['set', 'notify.webhook', 'none']))
      await r.close()
    }

    // 6. Daemon CPU: 50 instances with a check every 5 s, and without.
    {
      const n = quick ? 10 : 50
      const windowMs = quick ? 10000 : 30000
      for (const checked of [false, true]) {
        const port = await u.freePort()
        const name = checked ? 'fifty-checked' : 'fifty'
        await pmr.start(APP, { name, instances: n, env: { PORT: String(port) }, args: checked ? ['--health-http', '/healthz', '--health-interval', '5s'] : [] })
        await pmr.waitOnline(name, n, { timeout: 120000 })
        await u.sleep(6000)
        const d = pmr.daemonPid()
        const c0 = u.cpuMs(d)
        await u.sleep(windowMs)
        const pct = ((u.cpuMs(d) - c0) / windowMs) * 100
        data[`${name}_daemon_cpu_percent`] = pct
        rows.push([`daemon CPU, ${n} instances ${checked ? 'with an HTTP check every 5 s' : 'without a check'}`, checked ? '< 1 % of a core' : 'no cost (the base)', `${pct.toFixed(2)} %`, checked ? (pct < 1 ? 'yes' : 'no') : '-'])
        await pmr.delete(name)
      }
    }

    await pmr.kill()
    return {
      tables: [{ headers: ['figure', 'goal', 'measured', 'met'], rows }],
      goals: [],
      notes: [
        'hang-all: requests that reach the broken worker before it is replaced time out (2 s client timeout); with a check the window is interval × failures',
        'the daemon CPU base includes metrics sampling of every instance (metrics.interval 1 s)',
      ],
      data,
    }
  },
}

function check(r) {
  if (r.code !== 0) throw new Error(`${r.stdout}${r.stderr}`)
  return r
}
