'use strict'
// Issue 18: `require('pmr/pm2')`, PM2's programmatic API. A deploy script
// written for PM2 (callbacks, connect ... disconnect) runs with only its
// require line changed; the promise forms, launchBus's events,
// sendSignalToProcessName, dump and sendDataToProcessId work on a real
// daemon; the shapes match index.d.ts's Pm2Process.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const ts = require('typescript')
const { withHome, waitFor, freePort, FIXTURES, ROOT } = require('./helpers')
const pmr = require('..')

const PM2 = path.join(FIXTURES, 'pm2')

/** Runs a node script to its end (without blocking this event loop). */
function runScript (home, file, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd: PM2, env: home.env(env) })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      home.notePids()
      resolve({ code, signal, stdout, stderr })
    })
  })
}

test('a deploy script written for PM2 runs with only the require line changed', withHome(async (home) => {
  const text = fs.readFileSync(path.join(PM2, 'deploy.js'), 'utf8')
  assert.equal(text.match(/require\('pmr\/pm2'\)/g).length, 1, 'the one line that differs from PM2')
  const port = await freePort()
  const r = await runScript(home, path.join(PM2, 'deploy.js'), { PORT: String(port) })
  assert.equal(r.code, 0, `the script ends by itself after disconnect\n${r.stdout}\n${r.stderr}`)
  const seen = Object.fromEntries(r.stdout.trim().split('\n').map((l) => {
    const { what, value } = JSON.parse(l)
    return [what, value]
  }))
  assert.deepEqual(seen.started.map((a) => [a.name, a.status, a.mode, a.retries]), [
    ['api', 'online', 'cluster_mode', '5'],
    ['api', 'online', 'cluster_mode', '5'],
  ])
  assert.deepEqual(seen.list.map((p) => [p.name, p.status, p.memory]), [['api', 'online', 'number'], ['api', 'online', 'number']])
  assert.ok(seen.list.every((p) => p.pid > 0))
  assert.deepEqual(seen.reloaded, [['api', 'online'], ['api', 'online']])
  const before = seen.list.map((p) => p.pid).sort()
  const after = seen.described.map(([pid]) => pid).sort()
  assert.notDeepEqual(after, before, 'reload replaced the workers')
  assert.ok(seen.described.every(([, exec]) => exec === path.join(PM2, 'env-server.js')))
  assert.deepEqual(seen.stopped, [[0, 'stopped'], [0, 'stopped']])
  assert.equal(seen.deleted, 0)
  assert.deepEqual(home.jlist(), [])
}))

test("PM2's bus example (launchBus, logs, messages, events) runs with only the require line changed", withHome(async (home) => {
  const r = await runScript(home, path.join(PM2, 'bus.js'))
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
  const seen = JSON.parse(r.stdout.trim().split('\n').at(-1))
  assert.deepEqual(seen.msg, [{ ready: true }, 'plain message'])
  await waitFor('nothing left', () => home.jlist().length === 0)
  assert.ok(seen.out.includes('talker: hello out'), seen.out.join('|'))
  assert.ok(seen.err.includes('talker: hello err'), seen.err.join('|'))
  // Items reach the bus in the daemon's order, and the start comes before the app's output.
  assert.ok(seen.events.includes('start talker'), seen.events.join('|'))
}))

/** The declared properties of an index.d.ts interface: name → optional. */
function declared (name) {
  const dts = path.join(ROOT, 'index.d.ts')
  const program = ts.createProgram([dts], { strict: true, noEmit: true, types: [], skipLibCheck: true })
  const checker = program.getTypeChecker()
  let found
  ts.forEachChild(program.getSourceFile(dts), (node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === name) found = checker.getDeclaredTypeOfSymbol(checker.getSymbolAtLocation(node.name))
  })
  return new Map(checker.getPropertiesOfType(found).map((p) => [p.name, (p.flags & ts.SymbolFlags.Optional) !== 0]))
}

/** Every key of `value` declared (or, in pm2_env, an env variable or the
 * instance variable, which PM2 spreads over it), every required key there. */
function checkShape (p) {
  const wrong = []
  for (const [name, value, spread] of [['Pm2Process', p, null], ['Pm2Env', p.pm2_env, p.pm2_env]]) {
    const keys = declared(name)
    for (const [k, optional] of keys) if (!optional && !(k in value)) wrong.push(`${name}.${k} missing`)
    for (const k of Object.keys(value)) {
      if (keys.has(k)) continue
      if (spread && (k in spread.env || k === spread.instance_var)) continue
      wrong.push(`${name}.${k} not declared`)
    }
  }
  return wrong
}

test('promise forms, launchBus events and logs, signals, dump; shapes as index.d.ts declares', { timeout: 60000 }, withHome(async (home) => {
  const previousHome = process.env.PMR_HOME
  process.env.PMR_HOME = home.dir
  const PM2Api = require('pmr/pm2').custom
  const pm2 = new PM2Api({ home: home.dir })
  try {
    const meta = await pm2.connect()
    assert.equal(meta.new_pm2_instance, true, 'no daemon ran: one was started')
    home.notePids()
    const bus = await pm2.launchBus()
    const events = []
    const logs = []
    const msgs = []
    const wild = []
    bus.on('process:event', (e) => events.push(e))
    bus.on('log:out', (p) => logs.push(['out', p]))
    bus.on('log:err', (p) => logs.push(['err', p]))
    bus.on('process:msg', (p) => msgs.push(p))
    bus.on('log:*', (type, p) => wild.push([type, p.data]))

    const [talker] = await pm2.start(path.join(PM2, 'talker.js'), { name: 'talker' })
    assert.equal(talker.name, 'talker')
    assert.equal(talker.pm2_env.status, 'online')
    assert.equal(talker.pm2_env.exec_mode, 'fork_mode')
    assert.ok(talker.pid > 0)
    home.pids.add(talker.pid)
    assert.deepEqual(checkShape(talker), [])

    await waitFor('both log lines on the bus', () => logs.length >= 2)
    const out = logs.find(([s]) => s === 'out')[1]
    assert.deepEqual(out.process, { pm_id: talker.pm_id, name: 'talker', rev: null, namespace: 'default' })
    assert.equal(out.data, 'hello out\n')
    assert.equal(typeof out.at, 'number')
    assert.equal(logs.find(([s]) => s === 'err')[1].data, 'hello err\n')
    assert.deepEqual(wild.map(([t]) => t).sort(), ['err', 'out'], "'log:*' matches by pattern")
    await waitFor('both messages on the bus', () => msgs.length >= 2)
    assert.deepEqual(msgs.find((m) => m.data).data, { ready: true })
    assert.equal(msgs.find((m) => m.raw).raw, 'plain message')
    assert.equal(msgs[0].process.name, 'talker')
    const online = await waitFor('an online event', () => events.find((e) => e.event === 'online'))
    assert.equal(online.process.name, 'talker')
    assert.equal(online.process.pm_id, talker.pm_id)
    assert.ok(!('env' in online.process), 'PM2 leaves env out of an event\'s process')

    // A restart, seen as PM2's events.
    const restarted = await pm2.restart('talker')
    assert.deepEqual(restarted.map((p) => [p.name, p.status]), [['talker', 'online']])
    await waitFor('exit and restart events', () => events.some((e) => e.event === 'exit' && e.manually) && events.some((e) => e.event === 'restart'))

    const [sig] = await pm2.sendSignalToProcessName('SIGUSR2', 'talker')
    assert.equal(sig.name, 'talker')
    assert.deepEqual(await pm2.dump(), { success: true })
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(home.dir, 'dump.json'), 'utf8')).apps.map((a) => a.spec.name), ['talker'], 'the dump was written')

    const list = await pm2.list()
    assert.deepEqual(list.map((p) => p.name), ['talker'])
    assert.deepEqual(await pm2.describe('nothing-here'), [], 'PM2 answers [] for an unknown name')
    await assert.rejects(pm2.stop('nothing-here'), { code: 'PMR_NOT_FOUND' })

    // The callback form of the same calls.
    const viaCallback = await new Promise((resolve, reject) => pm2.list((err, l) => (err ? reject(err) : resolve(l))))
    assert.equal(viaCallback[0].pm_id, talker.pm_id)

    await pm2.delete('talker')
    assert.deepEqual(await pm2.list(), [])
    bus.close()
    await pm2.disconnect()
    // The daemon outlives the script's connection.
    const again = await pmr.connect({ home: home.dir, start: false })
    await again.close()
  } finally {
    await pm2.disconnect().catch(() => {})
    if (previousHome === undefined) delete process.env.PMR_HOME
    else process.env.PMR_HOME = previousHome
  }
}))

test('sendDataToProcessId reaches the app (PM2 packet shape)', async (t) => {
  if (typeof pmr.Client.prototype.sendDataToProcessId !== 'function') {
    t.skip('lib/api.js has no sendDataToProcessId yet (it comes with issue 18 part 1)')
    return
  }
  await withHome(async (home) => {
    const previousHome = process.env.PMR_HOME
    process.env.PMR_HOME = home.dir
    const pm2 = new (require('pmr/pm2').custom)({ home: home.dir })
    try {
      const bus = await pm2.launchBus()
      home.notePids()
      const lines = []
      bus.on('log:out', (p) => lines.push(p.data))
      const [talker] = await pm2.start({ script: path.join(PM2, 'talker.js'), name: 'talker' })
      home.pids.add(talker.pid)
      await waitFor('the app up', () => lines.includes('hello out\n'))
      await new Promise((resolve, reject) => pm2.sendDataToProcessId(talker.pm_id, {
        type: 'process:msg', topic: 'deploy', data: { version: 2 },
      }, (err, res) => (err ? reject(err) : resolve(res))))
      await waitFor('the app got the packet', () => lines.includes('got deploy: {"version":2}\n'))
      bus.close()
      await pm2.delete('talker')
    } finally {
      await pm2.disconnect().catch(() => {})
      if (previousHome === undefined) delete process.env.PMR_HOME
      else process.env.PMR_HOME = previousHome
    }
  })(t)
})

test('pm2.d.ts types a deploy script written for PM2', () => {
  const dir = fs.mkdtempSync(path.join(PM2, 'ts-'))
  try {
    fs.writeFileSync(path.join(dir, 'deploy.ts'), `import pm2 = require('pmr/pm2')
pm2.connect((err) => {
  if (err) throw err
  pm2.start({ script: 'app.js', name: 'api', instances: 2, exec_mode: 'cluster' }, (err, apps) => {
    const first: number = apps[0].pm2_env.pm_id
    pm2.list((err, list) => {
      const mem: number = list[0].monit.memory
      pm2.disconnect()
    })
  })
})
async function promises (): Promise<string> {
  const list = await pm2.list()
  return list[0].pm2_env.status
}
`)
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: [], noUnusedLocals: false },
      files: ['deploy.ts'],
    }))
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    const r = require('node:child_process').spawnSync(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stdout + r.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
