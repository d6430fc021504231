'use strict'
// index.d.ts against what the core really serializes. The TypeScript
// compiler API reads the declared properties of the instance row, the
// description (with the app spec), the report, every event type and the log
// line; a real daemon in a temp PMR_HOME runs apps that provoke every event
// type, and the keys of the values it sends (JS API list/describe/events,
// `pmr jlist`) are compared with the declarations, nested objects included.
// A key sent but not declared, a required key never sent, or a null where
// the type does not allow one fails the test, naming the type and the key.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const ts = require('typescript')
const { withHome, waitFor, freePort, FIXTURES, ROOT } = require('./helpers')
const pmr = require('..')

const DTS = path.join(ROOT, 'index.d.ts')

/** The declarations of index.d.ts, by name, with the checker that reads them. */
function declarations () {
  const program = ts.createProgram([DTS], { strict: true, noEmit: true, types: [], skipLibCheck: true })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(DTS)
  const types = new Map()
  ts.forEachChild(source, (node) => {
    if ((ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node) || ts.isClassDeclaration(node)) && node.name) {
      types.set(node.name.text, checker.getDeclaredTypeOfSymbol(checker.getSymbolAtLocation(node.name)))
    }
  })
  return { checker, types }
}

const { checker, types } = declarations()

const NULLISH = ts.TypeFlags.Null | ts.TypeFlags.Undefined

function members (type) {
  return type.isUnion() ? type.types : [type]
}

function allowsNull (type) {
  return members(type).some((t) => t.flags & (ts.TypeFlags.Null | ts.TypeFlags.Unknown | ts.TypeFlags.Any))
}

/** An object type whose keys are all declared: an interface, an inline
 * `{...}` or a Record over literal keys; not an array, nor a type with a
 * string index (`Record<string, string>`), whose keys are free. */
function isShape (type) {
  return (type.flags & ts.TypeFlags.Object) !== 0 && !checker.isArrayType(type) &&
    !type.getStringIndexType() && checker.getPropertiesOfType(type).length > 0
}

/** How failures name a type: its interface name, else where it sits. */
function labelOf (type, where) {
  const s = type.symbol
  return s && (s.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class)) ? s.name : where
}

/** The member of a union that describes `value`: the one whose `type`
 * property is the value's (events), else the only object member. */
function pick (type, value) {
  const objects = members(type).filter((t) => !(t.flags & NULLISH) && (t.flags & ts.TypeFlags.Object))
  if (objects.length <= 1) return objects[0]
  return objects.find((t) => {
    const tag = t.getProperty('type')
    if (!tag || value.type === undefined) return false
    const tagType = checker.getTypeOfSymbol(tag)
    return members(tagType).some((m) => m.isStringLiteral() && m.value === value.type)
  })
}

/** Every shape seen: its declared properties, the keys values had, and
 * what disagreed. */
const seen = new Map()
const wrong = []
/** Each disagreement once, at the first value that showed it. */
const reported = new Set()
function disagree (what, message) {
  if (reported.has(what)) return
  reported.add(what)
  wrong.push(message)
}

function record (label, type) {
  if (!seen.has(label)) {
    const declared = new Map()
    for (const p of checker.getPropertiesOfType(type)) {
      declared.set(p.name, { optional: (p.flags & ts.SymbolFlags.Optional) !== 0, type: checker.getTypeOfSymbol(p) })
    }
    seen.set(label, { declared, keys: new Set(), samples: 0 })
  }
  return seen.get(label)
}

/** Checks one real value against a declared type, recursively. */
function check (type, value, where) {
  if (value === null || value === undefined || typeof value !== 'object') return
  if (Array.isArray(value)) {
    const arrays = members(type).filter((t) => checker.isArrayType(t))
    if (arrays.length === 0) return
    const element = checker.getTypeArguments(arrays[0])[0]
    value.forEach((v, i) => check(element, v, `${where}[${i}]`))
    return
  }
  const shape = pick(type, value)
  if (!shape) {
    if (members(type).filter((t) => t.flags & ts.TypeFlags.Object).length > 1) {
      wrong.push(`${where}: ${JSON.stringify(value).slice(0, 200)} matches none of ${checker.typeToString(type)}`)
    }
    return
  }
  if (!isShape(shape)) return
  const label = labelOf(shape, where.replace(/\[\d+\]/g, '[]'))
  const r = record(label, shape)
  r.samples++
  for (const [key, v] of Object.entries(value)) {
    r.keys.add(key)
    const d = r.declared.get(key)
    if (!d) {
      disagree(`${label}.${key} undeclared`, `${label}.${key}: serialized (at ${where}) but not declared in index.d.ts`)
      continue
    }
    if (v === null && !allowsNull(d.type)) {
      disagree(`${label}.${key} null`, `${label}.${key}: serialized as null (at ${where}) but declared ${checker.typeToString(d.type)}`)
    }
    check(d.type, v, `${where}.${key}`)
  }
}

function never (label) {
  const r = seen.get(label)
  if (!r) {
    const loose = types.get(label) && types.get(label).getStringIndexType()
    return [loose
      ? `${label}: declared with a string index signature, which lets any key through; declare its keys instead`
      : `${label}: no value of this type was seen`]
  }
  return [...r.declared].filter(([k, d]) => !d.optional && !r.keys.has(k))
    .map(([k]) => `${label}.${k}: declared (not optional) in index.d.ts but never serialized in ${r.samples} values`)
}

const PMR_EVENTS = members(types.get('PmrEvent')).map((t) => t.symbol.name)

function write (dir, name, code) {
  const file = path.join(dir, name)
  fs.writeFileSync(file, `'use strict'\n${code}\n`)
  return file
}

test('index.d.ts declares exactly what the core serializes: instances, descriptions, reports, every event, log lines', { timeout: 120000 }, withHome(async (home) => {
  // Apps inherit PMR_HOME, so the cleanup finds any that outlives the test.
  const previousHome = process.env.PMR_HOME
  process.env.PMR_HOME = home.dir
  const dir = fs.mkdtempSync(path.join(home.dir, 'apps-'))
  const blocker = net.createServer()
  let pm
  try {
    pm = await pmr.connect({ home: home.dir })
    home.notePids()
    const events = []
    const lines = []
    pm.on('*', (e) => { if (e.type) events.push(e); else if (e.line !== undefined) lines.push(e) })
    const got = (what, fn) => waitFor(what, () => events.find(fn), { timeout: 20000 })
    const reports = []
    const run = async (p) => { const r = await p; reports.push(r); return r }

    const port = await freePort()
    const taken = await freePort()
    await new Promise((resolve) => blocker.listen(taken, '127.0.0.1', resolve))
    const ready = write(dir, 'ready.js', "process.send('ready'); console.log('ready'); setInterval(() => {}, 1 << 30)")
    const leak = write(dir, 'leak.js', 'const keep = []; setInterval(() => keep.push(Buffer.alloc(8 << 20, 1)), 50)')

    await run(pm.start({ name: 'web', script: path.join(FIXTURES, 'server.js'), instances: 1, exec_mode: 'cluster', env: { PORT: port }, max_memory_restart: '1G', increment_var: 'WEB_N' }))
    await got('web listening', (e) => e.type === 'listening' && e.app === 'web')
    await run(pm.start({ name: 'ready', script: ready, wait_ready: true, watch: [dir], ignore_watch: ['*.js'], log_type: 'json' }))
    await got('ready', (e) => e.type === 'ready')
    await run(pm.start({ name: 'talk', script: path.join(FIXTURES, 'sender.js') }))
    await got('a message', (e) => e.type === 'message')
    await run(pm.start({ name: 'crash', script: path.join(FIXTURES, 'crash.js'), max_restarts: 1, min_uptime: '1h', restart_delay: 10 }))
    await got('errored', (e) => e.type === 'errored' && e.app === 'crash')
    await run(pm.start({ name: 'bind', script: path.join(FIXTURES, 'server.js'), instances: 1, exec_mode: 'cluster', env: { PORT: taken, HOST: '127.0.0.1' }, autorestart: false }))
    await got('a bind error', (e) => e.type === 'error' && e.app === 'bind')
    await run(pm.start({ name: 'cron', script: path.join(FIXTURES, 'idle.js'), cron_restart: '* * * * * *', time: true }))
    await got('a cron replacement', (e) => e.type === 'replacing' && e.app === 'cron')
    await run(pm.start({ name: 'leak', script: leak, max_memory_restart: '64M' }))
    await got('a memory limit', (e) => e.type === 'memory_limit')
    await run(pm.start({ name: 'sick', script: path.join(FIXTURES, 'idle.js'), health_check: { command: 'false', interval: 100, failures: 1 }, max_event_loop_lag: '1h', notify: { command: 'true', events: ['health'] } }))
    await got('an unhealthy instance', (e) => e.type === 'unhealthy' && e.app === 'sick')
    await run(pm.reload('web'))
    await got('the reload finishing', (e) => e.type === 'reload' && e.step === 'old_exited')
    await run(pm.stop(['cron', 'leak', 'bind', 'sick']))
    await got('a stop', (e) => e.type === 'stop')
    await waitFor('a log line from the daemon', () => lines.length > 0)

    const listed = await pm.list()
    const described = await pm.describe('all')
    const jlist = home.jlist()
    const pong = await pm.ping()

    assert.ok(listed.length >= 7 && jlist.length === listed.length && described.length === listed.length)
    listed.forEach((r, i) => check(types.get('InstanceInfo'), r, `list()[${i}]`))
    jlist.forEach((r, i) => check(types.get('InstanceInfo'), r, `pmr jlist[${i}]`))
    described.forEach((d, i) => check(types.get('Description'), d, `describe()[${i}]`))
    for (const [i, r] of reports.entries()) check(types.get('Report'), r, `report ${i}`)
    for (const e of events) check(types.get('PmrEvent'), e, `event ${e.type}`)
    for (const l of lines) check(types.get('LogLine'), l, 'log line')
    const ping = types.get('Client').getProperty('ping')
    const pongType = checker.getAwaitedType(checker.getTypeOfSymbol(ping).getCallSignatures()[0].getReturnType())
    check(pongType, pong, 'ping()')

    const missingEvents = PMR_EVENTS.filter((name) => !seen.has(name))
    assert.deepEqual(missingEvents, [], `event types never provoked, so not checked: ${missingEvents.join(', ')}`)
    for (const label of ['InstanceInfo', 'Description', 'AppSpec', 'LogSpec', 'Report', 'ExitRecord', 'LogLine', ...PMR_EVENTS]) {
      wrong.push(...never(label))
    }
    for (const [label] of seen) if (!/^[A-Z]/.test(label)) wrong.push(...never(label))
    assert.deepEqual(wrong, [], `index.d.ts disagrees with what the core serializes:\n  ${wrong.join('\n  ')}`)
  } finally {
    if (pm) await pm.kill().catch(() => {})
    blocker.close()
    if (previousHome === undefined) delete process.env.PMR_HOME
    else process.env.PMR_HOME = previousHome
  }
}))

test('the type checks of this file catch an undeclared key, a missing key and an unexpected null', () => {
  // Guards the test above against passing because it compares nothing.
  const before = wrong.length
  reported.clear()
  check(types.get('ExitRecord'), { code: null, signal: null, at: 1, uptime_ms: 2, expected: true, extra: 1 }, 'sample')
  assert.deepEqual(wrong.slice(before), ['ExitRecord.extra: serialized (at sample) but not declared in index.d.ts'])
  check(types.get('ExitRecord'), { code: 1, signal: 'SIGINT', at: null, uptime_ms: 2 }, 'sample')
  assert.deepEqual(wrong.slice(before + 1), ['ExitRecord.at: serialized as null (at sample) but declared number'])
  wrong.length = before
  seen.delete('ExitRecord')
  check(types.get('ExitRecord'), { code: 1, signal: null, at: 1, uptime_ms: 2 }, 'sample')
  assert.deepEqual(never('ExitRecord'), ['ExitRecord.expected: declared (not optional) in index.d.ts but never serialized in 1 values'])
  seen.delete('ExitRecord')
  check(types.get('PmrEvent'), { type: 'restart', app: 'a', id: 0, instance: 0, pid: null, time: 1, reason: 'crash', delay_ms: 0 }, 'sample')
  assert.ok(seen.has('RestartEvent'), 'a union member is chosen by its type')
  assert.deepEqual(never('RestartEvent'), [])
  seen.delete('RestartEvent')
  assert.equal(PMR_EVENTS.length, 14)
})
