'use strict'
// Issue 17: the daemon's death is not an outage. The CLI launches a keeper
// that runs the daemon, holds the apps' sockets, pipes and IPC channels, and
// brings a daemon back by itself; the new one adopts the running apps.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { alive, waitFor, freePort, get, withHome, rows, online, receiver, FIXTURES } = require('./helpers')

const TICKER = path.join(FIXTURES, 'logs', 'ticker.js')

/** Live processes of one app (the env pmr gives each). */
function appProcesses (name) {
  const found = []
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue
    try {
      const stat = fs.readFileSync(`/proc/${n}/stat`, 'utf8')
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      if (state === 'Z' || state === 'X') continue
      const env = fs.readFileSync(`/proc/${n}/environ`, 'utf8').split('\0')
      if (env.includes(`PMR_APP_NAME=${name}`)) found.push(Number(n))
    } catch {}
  }
  return found.sort((a, b) => a - b)
}

/** Waits for the keeper to have started a daemon other than `old`, without any pmr command. */
async function respawned (home, old) {
  return waitFor('the keeper to bring a daemon back', () => {
    const pid = home.daemonPid()
    return pid && pid !== old && alive(pid) && fs.existsSync(path.join(home.dir, 'pmr.sock')) ? pid : null
  }, { timeout: 5000, interval: 10 })
}

/** A fresh connection every `every` ms (the bench's probe): counts, and
 * the longest time between two answered requests. */
function poll (port, every = 20) {
  const stats = { ok: 0, failed: 0, errors: {}, longestGap: 0 }
  let running = true
  let lastOk = Date.now()
  const done = (async () => {
    while (running) {
      const t = Date.now()
      try {
        const r = await get(port, '/', { timeout: 5000 })
        if (r.status !== 200) throw Object.assign(new Error('status'), { code: `HTTP ${r.status}` })
        stats.ok++
        stats.longestGap = Math.max(stats.longestGap, Date.now() - lastOk)
        lastOk = Date.now()
      } catch (e) {
        stats.failed++
        stats.errors[e.code || e.message] = (stats.errors[e.code || e.message] || 0) + 1
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, every - (Date.now() - t))))
    }
  })()
  return { stats, async stop () { running = false; await done; return stats } }
}

function ticks (home) {
  let text = ''
  try { text = fs.readFileSync(home.logFile('ticker-out.log'), 'utf8') } catch {}
  return [...text.matchAll(/tick (\d+) /g)].map((m) => Number(m[1]))
}

test('kill -9 of the daemon: no request fails, the keeper brings it back, it adopts the apps, someone is told', withHome(async (home) => {
  const hook = await receiver('ok')
  try {
    await survivesKill(home, hook)
  } finally {
    await hook.close()
  }
}))

async function survivesKill (home, hook) {
  home.ok(['set', 'notify.webhook', hook.url])
  const forkPort = await freePort()
  const clusterPort = await freePort()
  home.ok(['start', 'server.js', '--name', 'forked'], { env: { PORT: String(forkPort) } })
  home.ok(['start', 'server.js', '--name', 'clustered', '-i', '2'], { env: { PORT: String(clusterPort) } })
  home.ok(['start', TICKER, '--name', 'ticker'], { env: { INTERVAL: '10' } })
  await online(home, 'clustered', 2)
  await waitFor('the fork-mode app to serve', () => get(forkPort).catch(() => null))
  await waitFor('some ticks logged', () => ticks(home).length > 5)
  const before = home.jlist()
  const daemon = home.daemonPid()
  const polls = [poll(clusterPort), poll(forkPort)]
  await waitFor('requests flowing', () => polls.every((p) => p.stats.ok > 5))

  const t0 = Date.now()
  process.kill(daemon, 'SIGKILL')
  const next = await respawned(home, daemon)
  const back = Date.now() - t0
  // Requests go on while the new daemon takes over, and after.
  const okAt = polls[0].stats.ok
  await waitFor('requests served by the new daemon', () => polls[0].stats.ok > okAt + 10)
  const [cluster, fork] = await Promise.all(polls.map((p) => p.stop()))
  assert.equal(cluster.failed, 0, `cluster requests failed: ${JSON.stringify(cluster.errors)}`)
  assert.equal(fork.failed, 0, `fork requests failed: ${JSON.stringify(fork.errors)}`)
  assert.ok(back < 3000, `the daemon came back after ${back} ms`)
  assert.ok(next !== daemon)

  const after = await waitFor('the adopted apps online', () => {
    const a = home.jlist()
    return a.length === before.length && a.every((r) => r.status === 'online') ? a : null
  })
  const key = (r) => `${r.name}/${r.instance}`
  assert.deepEqual(after.map((r) => [key(r), r.pid, r.restarts, r.status]),
    before.map((r) => [key(r), r.pid, r.restarts, 'online']), 'the same processes, restart counts kept')
  assert.deepEqual(appProcesses('clustered'), rows(home, 'clustered').map((r) => r.pid).sort((a, b) => a - b), 'no duplicate')
  assert.equal(appProcesses('forked').length, 1)
  assert.match(fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8'), /adopted the 4 processes it left running \(not restarted\)/)

  // Lines written while no daemon read the pipe reached the file, in order.
  const last = ticks(home).at(-1)
  await waitFor('ticks after the outage', () => ticks(home).at(-1) > last + 10)
  const seen = ticks(home)
  for (let i = 1; i < seen.length; i++) assert.equal(seen[i], seen[i - 1] + 1, `tick ${seen[i - 1]} then ${seen[i]}`)
  assert.equal(rows(home, 'ticker')[0].log_dropped_bytes, 0)

  // The adopted processes are supervised: a crash is restarted and counted.
  const victim = rows(home, 'forked')[0]
  process.kill(victim.pid, 'SIGKILL')
  const replaced = await waitFor('the adopted app to be restarted', () => {
    const [r] = rows(home, 'forked')
    return r.pid && r.pid !== victim.pid && r.status === 'online' ? r : null
  })
  assert.equal(replaced.restarts, victim.restarts + 1)
  assert.equal(replaced.last_exit.signal, 'SIGKILL', 'the exit status came through the keeper')
  await waitFor('the restarted app to serve', () => get(forkPort).catch(() => null))

  // The death of the daemon is an alert (the `daemon` event), from the new one.
  const alert = await waitFor('the daemon alert', () => hook.got.find((g) => g.body.event === 'daemon'))
  assert.match(alert.body.message, new RegExp(`the pmr daemon started again \\(pid ${next}\\) after one that did not exit cleanly; it took over 3 app\\(s\\)`))
}

test('kill -9 during a reload and during a start: no duplicate, no leftover, the apps serve', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'api', '-i', '2'], { env: { PORT: String(port) } })
  await online(home, 'api', 2)
  const probe = poll(port)

  // A reload: killed once its first replacement process exists.
  let daemon = home.daemonPid()
  const reload = home.runAsync(['reload', 'api'])
  await waitFor('a replacement to be spawned', () => appProcesses('api').length > 2, { interval: 5 })
  process.kill(daemon, 'SIGKILL')
  await reload
  daemon = await respawned(home, daemon)
  await waitFor('exactly the listed processes of api', () => {
    const r = rows(home, 'api')
    const listed = r.map((x) => x.pid).sort((a, b) => a - b)
    return r.length === 2 && r.every((x) => x.status === 'online') &&
      JSON.stringify(appProcesses('api')) === JSON.stringify(listed)
  })

  // A start: killed once its first process exists.
  const port2 = await freePort()
  const start = home.runAsync(['start', 'server.js', '--name', 'late', '-i', '2'], { env: { PORT: String(port2) } })
  await waitFor('a process of the new app', () => appProcesses('late').length > 0, { interval: 5 })
  process.kill(daemon, 'SIGKILL')
  await start
  daemon = await respawned(home, daemon)
  await waitFor('the new app listed with its processes, or gone entirely', () => {
    const r = rows(home, 'late')
    const listed = r.map((x) => x.pid).filter(Boolean).sort((a, b) => a - b)
    const settled = r.every((x) => x.status === 'online')
    return settled && JSON.stringify(appProcesses('late')) === JSON.stringify(listed)
  })
  const stats = await probe.stop()
  assert.equal(stats.failed, 0, `requests to api failed: ${JSON.stringify(stats.errors)}`)
  assert.equal((await get(port)).status, 200)
}))

test('the keeper never restarts a daemon that exited on purpose: kill ends it too', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'a'])
  const daemon = home.daemonPid()
  const keeper = Number(fs.readFileSync(path.join(home.dir, 'keeper.pid'), 'utf8').split(' ')[0])
  assert.ok(alive(keeper))
  assert.equal(Number(fs.readFileSync(`/proc/${daemon}/stat`, 'utf8').split(') ')[1].split(' ')[1]), keeper, 'the daemon is the keeper\'s child')
  home.ok(['kill'])
  await waitFor('the keeper to exit', () => !alive(keeper))
  assert.ok(!fs.existsSync(path.join(home.dir, 'keeper.pid')))
  assert.ok(!alive(daemon))
}))
