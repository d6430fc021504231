'use strict'
// Issue 5: ecosystem files and the full app configuration. Real configs in
// every format, real processes in a private PMR_HOME.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { waitFor, freePort, get, FIXTURES, withHome, rows } = require('./helpers')

const ECO = path.join(FIXTURES, 'eco')
const FORMATS = path.join(ECO, 'formats')
const BAD = path.join(ECO, 'bad')

async function online (home, name, count = 1) {
  return waitFor(`${name} online`, () => {
    const r = rows(home, name)
    return r.length === count && r.every((x) => x.status === 'online') ? r : null
  })
}

/** The env the app answers with, once it answers. */
async function served (port) {
  return waitFor(`an answer on ${port}`, async () => {
    try {
      const r = await get(port)
      return r.status === 200 ? JSON.parse(r.body) : null
    } catch {
      return null
    }
  })
}

/** A private directory for configs a test writes, removed afterwards. */
function scratch (t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmr-eco-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

const problemLines = (stderr) => stderr.trim().split('\n')

for (const [file, flavour, mode, count] of [
  ['ecosystem.config.js', 'js', 'cluster', 2],
  ['ecosystem.config.cjs', 'cjs', 'cluster', 1],
  ['ecosystem.config.mjs', 'mjs', 'fork', 1],
  ['tla.config.mjs', 'tla', 'fork', 1],
  ['ecosystem.json', 'json', 'fork', 1],
  ['ecosystem.yaml', 'yaml', 'fork', 1],
]) {
  test(`${file}: apps start with --env production, paths relative to the file`, withHome(async (home) => {
    const port = await freePort()
    // Run from elsewhere: script and cwd must resolve against the file's directory.
    const r = home.ok(['start', path.join('eco', 'formats', file), '--env', 'production'], { cwd: FIXTURES, env: { PORT: String(port) } })
    if (flavour === 'tla') assert.match(r.stdout, /config evaluated/)
    const web = await online(home, 'web', count)
    assert.equal(web[0].mode, mode)
    await online(home, 'bg')
    const answer = await served(port)
    assert.equal(answer.env.APP_ENV, `prod-${flavour}`, 'env_production merged over env')
    assert.equal(answer.env.NODE_ENV, 'production')
    assert.equal(answer.env.PORT, String(port), 'the caller environment is inherited')
    const desc = home.ok(['describe', 'bg']).stdout
    assert.match(desc, new RegExp(`cwd +│ ${path.join(ECO, 'app').replace(/[/\\]/g, '.')}`))
    assert.match(desc, new RegExp(`script +│ ${path.join(ECO, 'app', 'worker.js').replace(/[/\\]/g, '.')}`))
  }))
}

test('without --env the base env applies; --only starts the named apps only', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'ecosystem.json', '--only', 'web'], { cwd: FORMATS, env: { PORT: String(port) } })
  await online(home, 'web')
  assert.deepEqual(rows(home, 'bg'), [])
  const answer = await served(port)
  assert.equal(answer.env.APP_ENV, 'json')
  assert.equal(answer.env.NODE_ENV, 'development')

  // Issue 18: the file's apps that run are restarted, as pm2 start does
  // (they used to be left alone); the missing ones start.
  const again = home.ok(['start', 'ecosystem.json'], { cwd: FORMATS, env: { PORT: String(port) } })
  assert.match(again.stdout, /web already running: restarting with ecosystem\.json's definition, as pm2 start does/)
  assert.match(again.stdout, /starting .*worker\.js as bg/)
  await online(home, 'bg')
  assert.equal(rows(home, 'web').length, 1)
  const third = home.ok(['start', 'ecosystem.json'], { cwd: FORMATS })
  assert.match(third.stdout, /web, bg already running: restarting/)
  assert.match(third.stdout, /restarted web, bg/)

  const wrong = home.run(['start', 'ecosystem.json', '--only', 'wbe'], { cwd: FORMATS })
  assert.notEqual(wrong.code, 0)
  assert.match(wrong.stderr, /ecosystem\.json: --only: no app named 'wbe' in the file — did you mean web\?/)
}))

test('pmr start with no argument uses ecosystem.config.js of the current directory', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start'], { cwd: FORMATS, env: { PORT: String(port) } })
  await online(home, 'web', 2)
  await online(home, 'bg')
  assert.equal((await served(port)).env.APP_ENV, 'js')

  const empty = home.run(['start'], { cwd: os.tmpdir() })
  assert.notEqual(empty.code, 0)
  assert.match(empty.stderr, /no script given and no ecosystem\.config\.js .* here; pmr start <script\|file>, or pmr init/)
}))

test('every validation problem is reported at once, and nothing starts', withHome(async (home) => {
  const r = home.run(['start', 'ecosystem.config.js'], { cwd: BAD })
  assert.notEqual(r.code, 0)
  const lines = problemLines(r.stderr)
  assert.deepEqual(lines, [
    "[pmr] warning: ecosystem.config.js: apps[0] (api): instances: 'max' with exec_mode 'fork' starts several processes that each listen on the app's port: all but one will fail with EADDRINUSE if it is a server; use exec_mode 'cluster' to share the port",
    // Issue 18: PM2 ignores unknown keys, so pmr warns (strict mode refuses, below).
    '[pmr] warning: ecosystem.config.js: apps[1] (worker): max_memmory_restart: unknown option — did you mean max_memory_restart?',
    "[pmr] error: ecosystem.config.js: apps[2] (mailer): max_memory_restart: '1GB' is not a size, use 1G or 1024M",
    "[pmr] error: ecosystem.config.js: apps[3] (cron): script: missing: the file or command to run, e.g. script: 'server.js'",
    "[pmr] error: ecosystem.config.js: apps[4] (api): name: 'api' is also the name of apps[0] (api); app names must be unique",
    `[pmr] error: ecosystem.config.js: apps[5] (ghost): script not found: ${path.join(BAD, 'nowhere.js')}`,
    '[pmr] error: ecosystem.config.js: 4 problems, nothing was started',
  ])
  assert.ok(!fs.existsSync(path.join(home.dir, 'pmr.sock')), 'no daemon was even started')
  const strict = home.run(['start', 'ecosystem.config.js', '--strict'], { cwd: BAD })
  assert.ok(problemLines(strict.stderr).includes('[pmr] error: ecosystem.config.js: apps[1] (worker): max_memmory_restart: unknown option — did you mean max_memory_restart?'), strict.stderr)
  assert.equal(problemLines(strict.stderr).at(-1), '[pmr] error: ecosystem.config.js: 5 problems, nothing was started')

  // One bad app keeps the good ones from starting too.
  const dir = path.join(home.dir, 'cfg')
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), `module.exports = { apps: [
    { name: 'ok', script: ${JSON.stringify(path.join(ECO, 'app', 'worker.js'))} },
    { name: 'late', script: ${JSON.stringify(path.join(ECO, 'app', 'worker.js'))}, cron_restart: '0 25 * * *' },
  ] }`)
  const bad = home.run(['start'], { cwd: dir })
  assert.notEqual(bad.code, 0)
  assert.deepEqual(problemLines(bad.stderr), [
    "[pmr] error: ecosystem.config.js: apps[1] (late): cron_restart: '0 25 * * *' is not a cron pattern: hour '25' is out of range 0-23",
    '[pmr] error: ecosystem.config.js: 1 problem, nothing was started',
  ])
  assert.ok(!fs.existsSync(path.join(home.dir, 'pmr.sock')))
}))

test('syntax errors point at file:line, in every format', withHome(async (home) => {
  const js = home.run(['start', 'syntax.config.js'], { cwd: BAD })
  assert.notEqual(js.code, 0)
  assert.deepEqual(problemLines(js.stderr), ["[pmr] error: syntax.config.js:3: SyntaxError: Unexpected identifier 'script'"])

  const mjs = home.run(['start', 'syntax.config.mjs'], { cwd: BAD })
  assert.notEqual(mjs.code, 0)
  assert.match(mjs.stderr, /^\[pmr\] error: syntax\.config\.mjs:5: SyntaxError: Unexpected identifier 'oops'\n$/)
  assert.equal(problemLines(mjs.stderr).length, 1)

  const dir = path.join(home.dir, 'cfg')
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'ecosystem.json'), '{\n  "apps": [\n    {"name": "a" "script": "a.js"}\n  ]\n}\n')
  const json = home.run(['start', 'ecosystem.json'], { cwd: dir })
  assert.match(json.stderr, /^\[pmr\] error: ecosystem\.json:3:18: expected comma\n$/)
  fs.writeFileSync(path.join(dir, 'ecosystem.yaml'), 'apps:\n  - name: a\n   script: [a.js\n')
  const yaml = home.run(['start', 'ecosystem.yaml'], { cwd: dir })
  assert.match(yaml.stderr, /^\[pmr\] error: ecosystem\.yaml:3:4: /)

  fs.writeFileSync(path.join(dir, 'throws.config.js'), "const x = require('./no-such-module')\nmodule.exports = { apps: [] }\n")
  const thrown = home.run(['start', 'throws.config.js'], { cwd: dir })
  assert.deepEqual(problemLines(thrown.stderr), ["[pmr] error: throws.config.js:1: Cannot find module './no-such-module'"])
  assert.ok(!fs.existsSync(path.join(home.dir, 'pmr.sock')))
}))

test('flags that only make sense with a file, and --name with a file, are refused', withHome(async (home) => {
  const env = home.run(['start', path.join(ECO, 'app', 'worker.js'), '--env', 'production'])
  assert.match(env.stderr, /--env production selects env_production of an ecosystem file/)
  // Issue 18: other app flags now override the file's apps (pm2-cli.test.js); --name names one app.
  const mixed = home.run(['start', 'ecosystem.json', '--name', 'x'], { cwd: FORMATS })
  assert.match(mixed.stderr, /--name names one app; the apps of ecosystem\.json take their names from the file/)
  assert.ok(!fs.existsSync(path.join(home.dir, 'pmr.sock')))
}))

test('reload of a changed file applies the new env without dropping a request', withHome(async (home, t) => {
  const dir = scratch(t)
  const port = await freePort()
  const file = path.join(dir, 'ecosystem.config.js')
  const write = (appEnv, extra = '') => fs.writeFileSync(file, `module.exports = { apps: [{
    name: 'api', script: ${JSON.stringify(path.join(ECO, 'app', 'server.js'))},
    instances: 2, exec_mode: 'cluster', env: { APP_ENV: '${appEnv}' }${extra}
  }] }`)
  write('one')
  home.ok(['start', 'ecosystem.config.js'], { cwd: dir, env: { PORT: String(port) } })
  await online(home, 'api', 2)
  assert.equal((await served(port)).env.APP_ENV, 'one')

  write('two', ", max_memory_restart: '300M'")
  let stop = false
  let ok = 0
  const failures = []
  const seen = new Set()
  const loop = (async () => {
    while (!stop) {
      try {
        const r = await get(port) // a fresh connection per request
        if (r.status === 200) {
          ok++
          seen.add(JSON.parse(r.body).env.APP_ENV)
        } else failures.push(`status ${r.status}`)
      } catch (e) {
        failures.push(e.message)
      }
    }
  })()
  const reload = home.spawn(['reload', 'ecosystem.config.js'], { cwd: dir })
  let out = ''
  reload.stdout.on('data', (d) => { out += d })
  reload.stderr.on('data', (d) => { out += d })
  const code = await new Promise((resolve) => reload.on('exit', resolve))
  stop = true
  await loop
  assert.equal(code, 0, out)
  assert.match(out, /api: applying .*env APP_ENV "one" -> "two"/)
  assert.match(out, /max_memory_restart null -> 314572800/)
  assert.deepEqual(failures, [], `${failures.length} failed requests out of ${ok + failures.length}`)
  assert.ok(ok > 10, `the loop ran (${ok} requests)`)
  assert.ok(seen.has('one'))
  const after = await online(home, 'api', 2)
  assert.equal(after.length, 2)
  const answers = await Promise.all([get(port), get(port), get(port), get(port)])
  for (const a of answers) assert.equal(JSON.parse(a.body).env.APP_ENV, 'two')
  assert.equal(JSON.parse(answers[0].body).env.PORT, String(port), 'the inherited environment is kept')
}))

test('restart, stop and delete act on the apps of a file', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'ecosystem.yaml', '--only', 'bg'], { cwd: FORMATS })
  await online(home, 'bg')
  const [before] = rows(home, 'bg')

  const r = home.ok(['restart', 'ecosystem.yaml'], { cwd: FORMATS, env: { PORT: String(port) } })
  assert.match(r.stdout, /bg: (definition unchanged, restarting|applying )/)
  assert.match(r.stdout, /web was not running: started/)
  const [bg] = await online(home, 'bg')
  assert.notEqual(bg.pid, before.pid)
  await online(home, 'web')

  home.ok(['stop', 'ecosystem.yaml', '--only', 'web'], { cwd: FORMATS })
  assert.equal(rows(home, 'web')[0].status, 'stopped')
  assert.equal(rows(home, 'bg')[0].status, 'online')

  const both = home.run(['stop', 'ecosystem.yaml', 'bg'], { cwd: FORMATS })
  assert.notEqual(both.code, 0)
  assert.match(both.stderr, /give ecosystem\.yaml alone; to pick some of its apps use --only/)

  home.ok(['delete', 'ecosystem.yaml'], { cwd: FORMATS })
  assert.deepEqual(home.jlist(), [])
  const gone = home.ok(['stop', 'ecosystem.yaml'], { cwd: FORMATS })
  assert.match(gone.stdout, /web is not in pmr's list: nothing to stop/)
}))

test('describe masks secret-looking values; pmr env prints them', withHome(async (home, t) => {
  const dir = scratch(t)
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), `module.exports = { apps: [{
    name: 'api', script: ${JSON.stringify(path.join(ECO, 'app', 'worker.js'))},
    env: { API_TOKEN: 'tok-123456', DB_PASSWORD: 'hunter2', LOG_LEVEL: 'debug', PORT: 4000 },
    cron_restart: '0 3 * * *', watch: ['src'], uid: ${JSON.stringify(os.userInfo().username)}
  }] }`)
  home.ok(['start'], { cwd: dir, env: { FROM_SHELL: 'yes' } })
  await online(home, 'api')
  const desc = home.ok(['describe', 'api']).stdout
  assert.match(desc, /API_TOKEN=\*\*\*\*/)
  assert.match(desc, /DB_PASSWORD=\*\*\*\*/)
  assert.match(desc, /LOG_LEVEL=debug/)
  assert.doesNotMatch(desc, /tok-123456|hunter2/)
  assert.match(desc, /cron restart +│ 0 3 \* \* \*: next at \d{4}-\d\d-\d\d 03:00:00/)
  assert.match(desc, /watch +│ .*src, delay 1000 ms: not watching: cannot watch .*src: /)

  const env = home.ok(['env', 'api']).stdout.trim().split('\n')
  for (const line of ['API_TOKEN=tok-123456', 'DB_PASSWORD=hunter2', 'LOG_LEVEL=debug', 'PORT=4000', 'FROM_SHELL=yes']) {
    assert.ok(env.includes(line), `${line} in\n${env.join('\n')}`)
  }
  const byId = home.ok(['env', String(rows(home, 'api')[0].id)]).stdout
  assert.match(byId, /^API_TOKEN=tok-123456$/m)
  const none = home.run(['env', 'nope'])
  assert.notEqual(none.code, 0)
  assert.match(none.stderr, /no app named 'nope'/)
}))

test('pmr init writes a starter that starts as it is, and never overwrites', withHome(async (home, t) => {
  const dir = scratch(t)
  fs.copyFileSync(path.join(ECO, 'app', 'server.js'), path.join(dir, 'server.js'))
  const r = home.ok(['init'], { cwd: dir })
  assert.match(r.stdout, /wrote .*ecosystem\.config\.js \(app 'server', script server\.js\)/)
  const file = path.join(dir, 'ecosystem.config.js')
  const text = fs.readFileSync(file, 'utf8')
  assert.match(text, /^\/\/ /, 'the starter is commented')
  assert.deepEqual(require(file).apps[0].script, 'server.js')

  const again = home.run(['init'], { cwd: dir })
  assert.notEqual(again.code, 0)
  assert.match(again.stderr, /ecosystem\.config\.js already exists; pmr init does not overwrite it/)
  assert.equal(fs.readFileSync(file, 'utf8'), text)

  const port = await freePort()
  home.ok(['start', '--env', 'production'], { cwd: dir, env: { PORT: String(port) } })
  const [row] = await online(home, 'server')
  assert.equal(row.mode, 'cluster')
  assert.equal((await served(port)).env.NODE_ENV, 'production')
  const reload = home.ok(['reload', 'ecosystem.config.js'], { cwd: dir })
  assert.match(reload.stdout, /server: applying env NODE_ENV "production" -> "development"/)
}))
