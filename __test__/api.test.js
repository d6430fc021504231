'use strict'
// Issue: the JS API. The same interface against the daemon (connect) and
// in-process (new Supervisor), events in order, errors with stable codes,
// and processes that exit by themselves.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { Home, alive, waitFor, freePort, get, FIXTURES, ROOT } = require('./helpers')
const pmr = require('..')

const fixture = (f) => path.join(FIXTURES, f)

/** Runs a script in a child node and waits for it to exit by itself. */
function runScript (code, { env = {}, timeout = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code], { env: { ...process.env, ...env }, cwd: ROOT })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the script did not exit by itself within ${timeout} ms\nstdout: ${out}\nstderr: ${err}`))
    }, timeout)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out, err, pid: child.pid })
    })
  })
}

/** The whole interface, run the same way against both implementations. */
async function exercise (pm, label) {
  const port = await freePort()
  const events = []
  const onEvent = (e) => events.push(`${e.type}:${e.app}`)
  pm.on('*', onEvent)

  const started = await pm.start({ name: 'web', script: fixture('server.js'), instances: 2, env: { PORT: port } })
  assert.equal(started.instances.length, 2, label)
  assert.ok(started.instances.every((i) => i.mode === 'cluster'))
  await waitFor(`${label}: both listening`, async () => (await pm.list()).every((i) => i.listening.length > 0))
  assert.equal((await get(port)).status, 200)

  const [d] = await pm.describe('web')
  assert.equal(d.info.name, 'web')
  assert.equal(d.spec.instances, 2)

  const scaled = await pm.scale('web', 3)
  assert.equal(scaled.instances.length, 3)
  await pm.scale('web', '-1')
  assert.equal((await pm.list()).length, 2)

  const before = (await pm.list()).map((i) => i.pid)
  await pm.reload('web')
  const after = (await pm.list()).map((i) => i.pid)
  assert.ok(after.every((p) => !before.includes(p)), `${label}: reload replaced every instance`)

  await pm.restart('web')
  const restarted = await pm.list()
  assert.ok(restarted.every((i) => i.restarts === 2))

  await pm.signal('web', 'SIGUSR2')
  await pm.stop('web')
  assert.ok((await pm.list()).every((i) => i.status === 'stopped'))
  await pm.start({ name: 'talk', script: fixture('lines.js'), env: { COUNT: '5' } })
  await waitFor(`${label}: log lines`, async () => {
    const lines = []
    for await (const l of pm.logs('talk', { lines: 10 })) lines.push(l)
    return lines.filter((l) => l.stream === 'out').length === 5 && lines.filter((l) => l.stream === 'err').length === 5
  })
  const removed = await pm.delete('all')
  assert.equal(removed.instances.length, 3)
  assert.deepEqual(await pm.list(), [])

  pm.off('*', onEvent)
  for (const e of ['start:web', 'online:web', 'listening:web', 'reload:web', 'exit:web', 'stop:web']) {
    assert.ok(events.includes(e), `${label}: saw ${e} (${events.join(' ')})`)
  }
}

test('every method against the daemon', async () => {
  const home = new Home()
  try {
    const pm = await pmr.connect({ home: home.dir })
    assert.equal(pm.home, home.dir)
    assert.equal((await pm.ping()).home, home.dir)
    await exercise(pm, 'daemon')
    await pm.close()
    await assert.rejects(pm.list(), { code: 'PMR_CLOSED' })
  } finally {
    await home.cleanup()
  }
})

test('every method in-process', async () => {
  const home = new Home()
  const sup = new pmr.Supervisor({ logDir: path.join(home.dir, 'logs'), handleSignals: false })
  try {
    await exercise(sup, 'in-process')
  } finally {
    await sup.close()
    await home.cleanup()
  }
})

test('events arrive in order for a crash and its restart', async () => {
  const home = new Home()
  try {
    const pm = await pmr.connect({ home: home.dir })
    const seen = []
    pm.on('*', (e) => { if (e.app === 'c' && e.type) seen.push(e) })
    const { instances: [i] } = await pm.start({ name: 'c', script: fixture('idle.js') })
    await waitFor('online', () => seen.some((e) => e.type === 'online'))
    process.kill(i.pid, 'SIGKILL')
    await waitFor('the restart to be online', () => seen.filter((e) => e.type === 'online').length === 2)
    const types = seen.map((e) => e.type)
    assert.deepEqual(types, ['start', 'online', 'exit', 'restart', 'start', 'online'])
    const exit = seen[2]
    assert.equal(exit.signal, 'SIGKILL')
    assert.equal(exit.expected, false)
    assert.equal(exit.pid, i.pid)
    assert.equal(seen[3].reason, 'crash')
    assert.notEqual(seen[4].pid, i.pid)
    for (const e of seen) assert.equal(typeof e.time, 'number')
    await pm.close()
  } finally {
    await home.cleanup()
  }
})

test('errors carry stable codes and the CLI message', async () => {
  const home = new Home()
  try {
    const pm = await pmr.connect({ home: home.dir })
    await assert.rejects(pm.stop('ghost'), { name: 'PmrError', code: 'PMR_NOT_FOUND', message: "no app named 'ghost' (see pmr list)" })
    // Issue 18: an unknown key is a warning (PM2 ignores it), an error in strict mode.
    await assert.rejects(pm.start({ name: 'x', script: fixture('idle.js'), max_memmory_restart: '1G' }, { strict: true }),
      { code: 'PMR_CONFIG', message: /max_memmory_restart: unknown option — did you mean max_memory_restart\?/ })
    const warned = await pm.start({ name: 'x', script: fixture('idle.js'), max_memmory_restart: '1G' })
    assert.ok(warned.notices.includes('app options: apps[0] (x): max_memmory_restart: unknown option — did you mean max_memory_restart?'), warned.notices.join('\n'))
    await assert.rejects(pm.start({ script: 'missing.js' }), { code: 'PMR_CONFIG', message: /script not found/ })
    await pm.start({ name: 'one', script: fixture('idle.js') })
    await assert.rejects(pm.start({ name: 'one', script: fixture('idle.js') }), { code: 'PMR_ALREADY_RUNNING' })
    await assert.rejects(pm.scale('one', 'lots'), { code: 'PMR_CONFIG' })
    const cli = home.run(['stop', 'ghost'])
    assert.equal(cli.stderr.trim(), "[pmr] error: no app named 'ghost' (see pmr list)")
    await pm.close()
    await assert.rejects(pmr.connect({ home: path.join(home.dir, 'nothing-here'), start: false }), { code: 'PMR_DAEMON' })
  } finally {
    await home.cleanup()
  }
})

test('a script that connects, starts and closes exits by itself; its app keeps running', async () => {
  const home = new Home()
  try {
    const r = await runScript(`
      const pmr = require('.')
      ;(async () => {
        const pm = await pmr.connect({ home: ${JSON.stringify(home.dir)} })
        pm.on('exit', () => {})
        const { instances } = await pm.start({ name: 'bg', script: ${JSON.stringify(fixture('idle.js'))} })
        console.log(instances[0].pid)
        await pm.close()
      })()`)
    assert.equal(r.code, 0, r.err)
    const pid = Number(r.out.trim())
    home.pids.add(pid)
    assert.ok(alive(pid), 'the app is the daemon\'s, not the script\'s')
    assert.equal(home.jlist()[0].status, 'online')
  } finally {
    await home.cleanup()
  }
})

for (const how of ['process.exit()', 'SIGTERM']) {
  test(`the in-process supervisor leaves no child behind after ${how}`, async () => {
    const home = new Home()
    try {
      const code = `
        const pmr = require('.')
        const sup = new pmr.Supervisor({ logDir: ${JSON.stringify(path.join(home.dir, 'logs'))} })
        sup.start({ name: 'kids', script: ${JSON.stringify(fixture('grandchild.js'))}, instances: 2, exec_mode: 'fork' })
          .then(async () => {
            const rows = await sup.list()
            console.log(JSON.stringify(rows.map((r) => r.pid)))
            ${how === 'SIGTERM' ? "setTimeout(() => process.kill(process.pid, 'SIGTERM'), 200)" : 'setTimeout(() => process.exit(0), 200)'}
          })`
      const r = await runScript(code, { env: { PMR_HOME: home.dir } })
      const pids = JSON.parse(r.out.trim().split('\n')[0])
      for (const p of pids) home.pids.add(p)
      if (how === 'SIGTERM') assert.equal(r.signal, 'SIGTERM', 'the process ended as SIGTERM would end it')
      else assert.equal(r.code, 0)
      await waitFor('every child and grandchild to be gone', () => {
        const all = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))
        return pids.every((p) => !alive(p)) && !all.some((n) => {
          try {
            const stat = fs.readFileSync(`/proc/${n}/stat`, 'utf8')
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
            return pids.includes(Number(f[2])) && f[0] !== 'Z'
          } catch { return false }
        })
      })
    } finally {
      await home.cleanup()
    }
  })
}

test('the in-process supervisor keeps the process alive until close()', async () => {
  const home = new Home()
  try {
    const r = await runScript(`
      const pmr = require('.')
      const sup = new pmr.Supervisor({ logDir: ${JSON.stringify(path.join(home.dir, 'logs'))} })
      sup.start({ name: 'short', script: ${JSON.stringify(fixture('idle.js'))} }).then(async () => {
        const started = Date.now()
        sup.on('stop', () => console.log('stop event'))
        setTimeout(async () => { await sup.close(); console.log('closed after', Date.now() - started >= 500) }, 600)
      })`)
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /stop event\nclosed after true/)
  } finally {
    await home.cleanup()
  }
})

test('ESM import and named exports', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import pmr, { connect, Supervisor, PmrError } from ${JSON.stringify(path.join(ROOT, 'index.mjs'))}
     console.log(typeof pmr.connect, typeof connect, typeof Supervisor, typeof PmrError)`], { encoding: 'utf8' })
  assert.equal(r.stdout.trim(), 'function function function function', r.stderr)
})

test('index.d.ts types a deploy script (tsc --noEmit)', () => {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const bad = spawnSync(process.execPath, [tsc, '--noEmit', '-p', path.join(__dirname, 'types', 'tsconfig.bad.json')], { encoding: 'utf8' })
  assert.notEqual(bad.status, 0, 'a misuse of the API is a type error')
  assert.match(bad.stdout, /max_memmory_restart/)
})
