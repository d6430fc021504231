'use strict'
// spread: how connections reach the workers (issue 16). For pmr's default
// policy, pmr `--lb shared` (round 1's SCHED_NONE), PM2 and Node's own
// round-robin cluster, over -i 2 and
// -i 4: 40 keep-alive connections opened 100 ms apart and 50 opened at once,
// busiest worker ÷ fair share. Then the supervisor's own CPU time per 10 000
// connections under `wrk -H 'Connection: close'` (-i 2), pmr's daemon beside
// PM2's God daemon: the cost per connection that decides many-core scaling.
const http = require('node:http')
const { fixture } = require('../lib/managers')
const load = require('../lib/load')
const u = require('../lib/util')

/** One keep-alive connection's first answer: the pid that took it. */
function openKeepAlive(port, agent) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume()
      res.on('end', () => resolve(Number(res.headers['x-pid']) || null))
    })
    req.setTimeout(5000, () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(null))
  })
}

/** Busiest worker's share ÷ fair share of `pids` (null = failed). */
function busiestRatio(pids, workers) {
  const counts = new Map()
  for (const p of pids) if (p) counts.set(p, (counts.get(p) || 0) + 1)
  const ok = u.sum([...counts.values()])
  const busiest = Math.max(0, ...counts.values())
  return { ratio: ok ? busiest / (ok / workers) : null, counts: [...counts.values()].sort((a, b) => b - a), failed: pids.length - ok }
}

async function spreadOnce(port, workers) {
  // One agent per connection: each answered request leaves its connection
  // open and idle (keep-alive) instead of lending it to the next request,
  // so there are 40 (then 50) distinct connections open at the end.
  const agents = []
  const agent = () => {
    const a = new http.Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(a)
    return a
  }
  const spaced = []
  for (let i = 0; i < 40; i++) {
    spaced.push(openKeepAlive(port, agent()))
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const a = busiestRatio(await Promise.all(spaced), workers)
  const b = busiestRatio(await Promise.all(Array.from({ length: 50 }, () => openKeepAlive(port, agent()))), workers)
  for (const x of agents) x.destroy()
  return { spaced: a, burst: b }
}

module.exports = {
  name: 'spread',
  title: 'Connection spread over workers, and the supervisor CPU per connection',
  async run({ scope, quick, log }) {
    const rounds = quick ? 1 : 3
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    const rows = []
    const data = {}
    for (const workers of [2, 4]) {
      const ports = await u.freePorts(3)
      const targets = [
        { key: 'pmr', label: `pmr (default) -i ${workers}`, m: pmr, name: `rr${workers}`, args: [], port: ports[0] },
        { key: 'pmr-shared', label: `pmr --lb shared -i ${workers}`, m: pmr, name: `sh${workers}`, args: ['--lb', 'shared'], port: ports[1] },
        { key: 'pm2', label: `PM2 -i ${workers}`, m: pm2, name: `pm${workers}`, args: [], port: ports[2] },
      ]
      const nodeRr = scope.ceiling('node-rr')
      targets.push({ key: 'node-rr', label: `Node cluster (round-robin) ${workers} workers`, ceiling: nodeRr, port: (await u.freePorts(1))[0] })
      for (const t of targets) {
        if (t.ceiling) {
          await t.ceiling.start({ port: t.port, workers, env: { CEILING_SCHED: 'rr' } })
          continue
        }
        await t.m.start(fixture('hello.js'), { name: t.name, instances: workers, env: { PORT: String(t.port) }, args: t.args })
        await t.m.waitOnline(t.name, workers)
        await u.waitHttp(t.port)
      }
      for (const t of targets) {
        const runs = []
        for (let r = 0; r < rounds; r++) runs.push(await spreadOnce(t.port, workers))
        data[`${t.key}-${workers}`] = runs
        const fmt = (k) => runs.map((x) => `${u.fmtNum(x[k].ratio, 2)}× (${x[k].counts.join('/')})`).join(', ')
        rows.push([t.label, fmt('spaced'), fmt('burst')])
        log(`  ${t.label}: spaced ${fmt('spaced')}; burst ${fmt('burst')}`)
      }
      for (const t of targets) await (t.ceiling ? t.ceiling.stop() : t.m.delete(t.name))
    }

    // Supervisor CPU per 10 000 short connections, -i 2.
    const ports = await u.freePorts(2)
    const cost = []
    for (const [m, port, label] of [[pmr, ports[0], 'pmr daemon (default policy)'], [pm2, ports[1], 'PM2 God daemon']]) {
      await m.start(fixture('hello.js'), { name: 'cost', instances: 2, env: { PORT: String(port) } })
      await m.waitOnline('cost', 2)
      await u.waitHttp(port)
      const daemon = m.daemonPid()
      const before = u.cpuMs(daemon)
      const w = await load.wrk(scope, `http://127.0.0.1:${port}/`, { threads: 2, connections: 20, duration: quick ? 3 : 10, headers: ['Connection: close'] })
      const cpu = u.cpuMs(daemon) - before
      const perTenK = w.total ? (cpu / w.total) * 10000 : null
      cost.push([label, u.fmtNum(w.rps, 0), String(w.total), `${u.fmtNum(cpu, 0)} ms`, perTenK === null ? '-' : `${u.fmtNum(perTenK, 1)} ms`])
      data[`cost-${label}`] = { rps: w.rps, requests: w.total, cpu_ms: cpu, per_10k_ms: perTenK }
      await m.delete('cost')
    }
    return {
      tables: [
        { title: 'busiest worker ÷ fair share (connections per worker), per round', headers: ['target', '40 keep-alive, 100 ms apart', '50 keep-alive at once'], rows },
        { title: "supervisor CPU under wrk -H 'Connection: close' -c20, -i 2", headers: ['supervisor', 'req/s', 'connections', 'CPU', 'CPU per 10 000'], rows: cost },
      ],
      notes: [`${require('node:os').cpus().length} CPUs shared by the load generator, the supervisor and the workers`],
      data,
    }
  },
}
