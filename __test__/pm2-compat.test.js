'use strict'
// Issue 18: ecosystem files as PM2 reads them (JSON5, `pm2` for `apps`,
// `cmd`, numbers as strings, env objects, numeric names, deploy sections,
// unknown keys warned once, strict mode) and `jlist --format pm2`, with
// real files and real processes in a private PMR_HOME.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { withHome, waitFor, freePort, get, rows, FIXTURES } = require('./helpers')

const PM2 = path.join(FIXTURES, 'pm2')

/** The answer of the env-server fixture on `port`, once it answers. */
function served (port) {
  return waitFor(`an answer on ${port}`, async () => {
    try {
      const r = await get(port)
      return r.status === 200 ? JSON.parse(r.body) : null
    } catch {
      return null
    }
  })
}

/** `pmr jlist --format pm2` (or with other args), parsed; its pids noted for cleanup. */
function pm2List (home, args = ['jlist', '--format', 'pm2'], env = {}) {
  const r = home.ok(args, { env })
  const list = JSON.parse(r.stdout)
  for (const p of list) if (p.pid) home.pids.add(p.pid)
  return list
}

const warnings = (stderr) => stderr.split('\n').filter((l) => l.startsWith('[pmr] warning:'))

test('a .json file written for PM2 runs as PM2 reads it: JSON5, cmd, numbers as strings, env objects, a numeric name, deploy', withHome(async (home) => {
  const port = await freePort()
  const r = home.ok(['start', 'ecosystem.json'], { cwd: PM2, env: { PORT: String(port) } })
  // Each unknown key warns once, naming every app that has it, and suggests the known option.
  assert.deepEqual(warnings(r.stderr), [
    '[pmr] warning: ecosystem.json: deploy: ignored: pmr runs apps, it does not deploy them',
    '[pmr] warning: ecosystem.json: apps[0] (web), apps[1] (2024): exec_intepreter: unknown option — did you mean interpreter?',
    '[pmr] warning: ecosystem.json: apps[0] (web): source_map_suport: unknown option — did you mean source_map_support?',
  ])
  assert.doesNotMatch(r.stderr, /error/)

  const answer = await served(port)
  assert.deepEqual(answer.env, {
    RETRIES: '3',
    DEBUG: 'true',
    CONF: '{"level":"info","tags":["a","b"]}',
    LIST: '[1,2]',
    NOTHING: 'null',
    NODE_APP_INSTANCE: '0',
  }, 'env values as PM2 passes them: objects as JSON')

  await waitFor('2024 online', () => rows(home, '2024').find((x) => x.status === 'online'))
  const [web] = pm2List(home).filter((p) => p.name === 'web')
  assert.equal(web.pm2_env.max_restarts, 50, '"50" is read as 50')
  assert.equal(web.pm2_env.kill_timeout, 3000)
  assert.equal(web.pm2_env.pm_exec_path, path.join(PM2, 'env-server.js'), 'cmd is the script')

  // The numeric name is a target (no instance has id 2024).
  home.ok(['stop', '2024'])
  assert.equal(rows(home, '2024')[0].status, 'stopped')
  home.ok(['delete', 'ecosystem.json'], { cwd: PM2 })
  assert.deepEqual(home.jlist(), [])

  // The older top-level key.
  home.ok(['start', 'legacy.json'], { cwd: PM2 })
  await waitFor('legacy online', () => rows(home, 'legacy').find((x) => x.status === 'online'))
}))

test('strict mode (--strict, PMR_STRICT=1) refuses unknown keys; deploy stays a warning', withHome(async (home) => {
  for (const [args, env] of [[['start', 'ecosystem.json', '--strict'], {}], [['start', 'ecosystem.json'], { PMR_STRICT: '1' }]]) {
    const r = home.run(args, { cwd: PM2, env })
    assert.equal(r.code, 1, r.stderr)
    assert.deepEqual(r.stderr.trim().split('\n'), [
      '[pmr] warning: ecosystem.json: deploy: ignored: pmr runs apps, it does not deploy them',
      '[pmr] error: ecosystem.json: apps[0] (web): exec_intepreter: unknown option — did you mean interpreter?',
      '[pmr] error: ecosystem.json: apps[0] (web): source_map_suport: unknown option — did you mean source_map_support?',
      '[pmr] error: ecosystem.json: apps[1] (2024): exec_intepreter: unknown option — did you mean interpreter?',
      '[pmr] error: ecosystem.json: 3 problems, nothing was started',
    ])
  }
  assert.equal(home.daemonPid(), null, 'nothing started, not even the daemon')
  // A JSON5 syntax error still points at its line.
  const dir = fs.mkdtempSync(path.join(home.dir, 'cfg-'))
  fs.writeFileSync(path.join(dir, 'ecosystem.json'), '{\n  apps: [\n    { name: "a" script: "a.js" },\n  ],\n}\n')
  const bad = home.run(['start', 'ecosystem.json'], { cwd: dir })
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /^\[pmr\] error: ecosystem\.json:3:17: expected comma\n$/)
}))

test('jlist and prettylist --format pm2 (and PMR_FORMAT=pm2) print PM2\'s shape', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'list.config.js'], { cwd: PM2, env: { PORT: String(port) } })
  await served(port)
  await waitFor('flaky waiting to restart', () => rows(home, 'flaky').find((x) => x.status === 'waiting-restart'))
  await waitFor('job online', () => rows(home, 'job').find((x) => x.status === 'online'))
  home.ok(['stop', 'job'])

  const list = pm2List(home)
  assert.deepEqual(pm2List(home, ['jlist'], { PMR_FORMAT: 'pm2' }).map((p) => p.pm_id), list.map((p) => p.pm_id))
  const pretty = home.ok(['prettylist', '--format', 'pm2'])
  assert.match(pretty.stdout, /^\[\n {2}\{\n {4}"pid": /)
  assert.deepEqual(JSON.parse(pretty.stdout).map((p) => p.name), list.map((p) => p.name))
  assert.ok(!('pm2_env' in home.jlist()[0]), 'pmr\'s own shape stays the default')

  const pmrRows = home.jlist()
  const byName = (n) => list.filter((p) => p.name === n)
  const api = byName('api')
  assert.equal(api.length, 2)
  for (const [i, p] of api.entries()) {
    const mine = pmrRows.find((r) => r.id === p.pm_id)
    assert.deepEqual(Object.keys(p).sort(), ['monit', 'name', 'pid', 'pm2_env', 'pm_id'])
    assert.equal(p.pid, mine.pid)
    assert.ok(p.pid > 0)
    assert.equal(typeof p.monit.memory, 'number')
    assert.equal(typeof p.monit.cpu, 'number')
    const e = p.pm2_env
    assert.equal(e.status, 'online')
    assert.equal(e.exec_mode, 'cluster_mode')
    assert.equal(e.instances, 2)
    assert.equal(e.pm_id, p.pm_id)
    assert.equal(e.NODE_APP_INSTANCE, i, 'the instance number, spread over pm2_env')
    assert.equal(e.RETRIES, '1', 'the environment spread over pm2_env too')
    assert.equal(e.env.RETRIES, '1')
    assert.equal(e.pm_exec_path, path.join(PM2, 'env-server.js'))
    assert.equal(e.pm_cwd, PM2)
    assert.equal(e.exec_interpreter, 'node')
    assert.deepEqual(e.node_args, ['--max-old-space-size=100'])
    assert.deepEqual(e.args, ['--foo', '1'])
    assert.equal(e.pm_out_log_path, mine.logs.out)
    assert.equal(e.pm_err_log_path, mine.logs.err)
    assert.match(e.pm_out_log_path, /api-out-\d+\.log$/)
    assert.equal(e.pm_pid_path, null)
    assert.equal(e.namespace, 'default')
    assert.equal(e.watch, false)
    assert.equal(e.autorestart, true)
    assert.equal(e.restart_time, 0)
    assert.equal(e.unstable_restarts, 0)
    assert.equal(e.created_at, mine.created_at)
    assert.ok(e.pm_uptime >= e.created_at && e.pm_uptime <= Date.now())
  }
  const [job] = byName('job')
  assert.equal(job.pid, 0, 'pid 0 when stopped, as in PM2')
  assert.deepEqual(job.monit, { memory: 0, cpu: 0 })
  assert.equal(job.pm2_env.status, 'stopped')
  assert.equal(job.pm2_env.exec_mode, 'fork_mode')
  assert.equal(job.pm2_env.namespace, 'jobs')
  const [flaky] = byName('flaky')
  assert.equal(flaky.pm2_env.status, 'waiting restart', 'PM2 spells it with a space')
  assert.equal(flaky.pm2_env.exit_code, 3)
  assert.equal(flaky.pid, 0)

  const wrong = home.run(['jlist'], { env: { PMR_FORMAT: 'pm3' } })
  assert.equal(wrong.code, 1)
  assert.equal(wrong.stderr.trim(), '[pmr] error: PMR_FORMAT=pm3 is not a list format: use pm2 (PM2\'s shape) or pmr')
}))
