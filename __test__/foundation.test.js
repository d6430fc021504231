'use strict'
// Issue: foundation. The daemon, fork-mode supervision and the CLI, end to
// end with real processes in a private PMR_HOME.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { alive, groupMembers, waitFor, FIXTURES, withHome } = require('./helpers')

const app = (home, name) => home.jlist().filter((r) => r.name === name)

test('start, list, stop, start again, delete', withHome(async (home) => {
  const r = home.ok(['start', 'idle.js', '--name', 'idle'])
  assert.match(r.stdout, /starting .*idle\.js as idle \(fork mode, 1 instance\)/)
  assert.match(r.stdout, /│ idle +│ fork/)
  const [row] = app(home, 'idle')
  assert.equal(row.status, 'online')
  assert.equal(row.mode, 'fork')
  assert.equal(row.restarts, 0)
  assert.ok(alive(row.pid))
  for (const k of ['name', 'id', 'instance', 'pid', 'status', 'restarts', 'uptime_ms', 'memory', 'cpu', 'mode']) {
    assert.ok(k in row, `jlist rows have ${k}`)
  }
  const daemon = home.daemonPid()
  assert.ok(alive(daemon))
  assert.equal(fs.statSync(path.join(home.dir, 'pmr.sock')).mode & 0o777, 0o600)
  assert.equal(fs.statSync(home.dir).mode & 0o777, 0o700)

  const listed = home.ok(['list']).stdout
  assert.match(listed, /id +│ name +│ mode +│ pid +│ status +│ restarts +│ uptime +│ cpu +│ memory/)
  assert.doesNotMatch(listed, /\x1b\[/, 'no colors when stdout is not a terminal')

  home.ok(['stop', 'idle'])
  const [stopped] = app(home, 'idle')
  assert.equal(stopped.status, 'stopped')
  assert.equal(stopped.pid, null)
  assert.ok(!alive(row.pid))

  home.ok(['start', 'idle'])
  const [again] = app(home, 'idle')
  assert.equal(again.status, 'online')
  assert.notEqual(again.pid, row.pid)
  assert.equal(again.id, row.id, 'a restarted app keeps its id')

  home.ok(['delete', 'idle'])
  assert.deepEqual(app(home, 'idle'), [])
  assert.ok(!alive(again.pid))
}))

test('name derived from the script, and a running script started again is restarted, not doubled', withHome(async (home) => {
  const r = home.ok(['start', 'idle.js'])
  assert.match(r.stdout, /no --name given: the app is named 'idle'/)
  // Issue 18: as pm2 start does (it used to be refused as "already running").
  const dup = home.ok(['start', 'idle.js'])
  assert.match(dup.stdout, /idle already runs .*idle\.js: restarting it/)
  assert.equal(app(home, 'idle').length, 1)
}))

test('a crash restarts the app with a new pid and restarts=1', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'c'])
  const [before] = app(home, 'c')
  process.kill(before.pid, 'SIGKILL')
  const after = await waitFor('a new pid', () => {
    const [r] = app(home, 'c')
    return r.pid && r.pid !== before.pid && r.status === 'online' ? r : null
  })
  assert.equal(after.restarts, 1)
  assert.equal(after.restart_reasons.crash, 1)
  assert.equal(after.last_exit.signal, 'SIGKILL')
  assert.equal(after.last_exit.expected, false)
}))

test('a crash loop ends errored after max_restarts, and restart resets it', withHome(async (home) => {
  home.ok(['start', 'crash.js', '--name', 'loop', '--max-restarts', '3'])
  const row = await waitFor('errored', () => {
    const [r] = app(home, 'loop')
    return r.status === 'errored' ? r : null
  })
  assert.equal(row.restarts, 3)
  assert.equal(row.pid, null)
  assert.match(row.errored_reason, /3 unstable restarts \(max_restarts 3\).*exited with code 1/)
  const desc = home.ok(['describe', 'loop']).stdout
  assert.match(desc, /errored because .*max_restarts 3/)
  assert.match(desc, /last exit +│ exited with code 1/)
  // Still errored a moment later: nothing restarts it behind our back.
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(app(home, 'loop')[0].status, 'errored')
  assert.match(home.ok(['list']).stdout, /loop \(id 0\) is errored/)

  home.ok(['restart', 'loop'])
  const [r] = app(home, 'loop')
  assert.ok(r.unstable_restarts <= 1, 'restart resets the unstable count')
}))

test('min_uptime: a slow crash is not unstable', withHome(async (home) => {
  home.ok(['start', 'crash.js', '--name', 'slow', '--max-restarts', '1', '--min-uptime', '0'])
  await waitFor('three restarts', () => app(home, 'slow')[0].restarts >= 3)
  assert.notEqual(app(home, 'slow')[0].status, 'errored')
}))

test('stop_exit_codes and --no-autorestart leave the app stopped', withHome(async (home) => {
  home.ok(['start', 'crash.js', '--name', 'done', '--stop-exit-codes', '0,3'], { env: { EXIT_CODE: '3' } })
  const r = await waitFor('stopped', () => {
    const [x] = app(home, 'done')
    return x.status === 'stopped' ? x : null
  })
  assert.equal(r.restarts, 0)
  assert.equal(r.last_exit.code, 3)

  home.ok(['start', 'crash.js', '--name', 'once', '--no-autorestart'])
  const o = await waitFor('stopped', () => {
    const [x] = app(home, 'once')
    return x.status === 'stopped' ? x : null
  })
  assert.equal(o.restarts, 0)
}))

test('restart_delay holds the restart back', withHome(async (home) => {
  home.ok(['start', 'crash.js', '--name', 'delayed', '--restart-delay', '1500', '--min-uptime', '0'])
  const waiting = await waitFor('waiting-restart', () => {
    const [x] = app(home, 'delayed')
    return x.status === 'waiting-restart' ? x : null
  })
  assert.equal(waiting.pid, null)
  const t0 = Date.now()
  await waitFor('the restart', () => app(home, 'delayed')[0].restarts >= 1, { timeout: 5000 })
  assert.ok(Date.now() - t0 > 500)
}))

test('stop escalates to SIGKILL after kill_timeout for an app that ignores SIGINT', withHome(async (home) => {
  home.ok(['start', 'ignore-sigint.js', '--name', 'stubborn', '--kill-timeout', '700'])
  const [r] = app(home, 'stubborn')
  await waitFor('the app to install its handler', () => fs.readFileSync(home.logFile('stubborn-out.log'), 'utf8').includes('stubborn'))
  const t0 = Date.now()
  home.ok(['stop', 'stubborn'])
  const took = Date.now() - t0
  assert.ok(took >= 650, `stop waited for kill_timeout (${took} ms)`)
  assert.ok(!alive(r.pid))
  const [s] = app(home, 'stubborn')
  assert.equal(s.last_exit.signal, 'SIGKILL')
  assert.equal(s.last_exit.expected, true)
  assert.equal(s.restarts, 0, 'a stop is not a crash')
  assert.match(fs.readFileSync(home.logFile('stubborn-out.log'), 'utf8'), /got SIGINT, ignoring it/)
}))

test('stop leaves no process of the app behind (grandchildren included)', withHome(async (home) => {
  home.ok(['start', 'grandchild.js', '--name', 'tree'])
  const [r] = app(home, 'tree')
  const members = await waitFor('the grandchild', () => {
    const m = groupMembers(r.pid)
    return m.length >= 3 ? m : null
  })
  home.ok(['stop', 'tree'])
  for (const pid of members) assert.ok(!alive(pid), `pid ${pid} of the app's group is gone`)
  assert.deepEqual(groupMembers(r.pid), [])
}))

test('a crash kills the orphans of the dead process before the restart', withHome(async (home) => {
  home.ok(['start', 'grandchild.js', '--name', 'tree'])
  const [r] = app(home, 'tree')
  const members = await waitFor('the grandchild', () => {
    const m = groupMembers(r.pid)
    return m.length >= 3 ? m : null
  })
  process.kill(r.pid, 'SIGKILL')
  await waitFor('the restart', () => app(home, 'tree')[0].restarts === 1)
  await waitFor('the old tree to be gone', () => members.every((p) => !alive(p)))
}))

test('logs: files, --lines, --nostream, and the live stream', withHome(async (home) => {
  home.ok(['start', 'lines.js', '--name', 'talk'], { env: { COUNT: '40' } })
  const out = home.logFile('talk-out.log')
  const err = home.logFile('talk-error.log')
  await waitFor('all lines', () => fs.existsSync(err) && fs.readFileSync(err, 'utf8').includes('err 39'))
  assert.equal(fs.readFileSync(out, 'utf8'), Array.from({ length: 40 }, (_, i) => `out ${i}\n`).join(''))

  const r = home.ok(['logs', 'talk', '--lines', '5', '--nostream'])
  assert.match(r.stdout, /last 5 lines of .*talk-out\.log/)
  assert.match(r.stdout, /0\|talk +\| out 35\n/)
  assert.match(r.stdout, /0\|talk +\| out 39\n/)
  assert.doesNotMatch(r.stdout, /out 34\n/)
  assert.match(r.stdout, /err 39/)
  const only = home.ok(['logs', 'talk', '--lines', '3', '--nostream', '--err', '--raw']).stdout
  assert.equal(only, 'err 37\nerr 38\nerr 39\n')

  home.ok(['start', 'idle.js', '--name', 'later'])
  const follower = home.spawn(['logs', 'later', '--lines', '0'])
  let seen = ''
  follower.stdout.on('data', (d) => { seen += d })
  await waitFor('the follower to subscribe', () => seen.includes('following new lines'))
  const [idle] = app(home, 'later')
  process.kill(idle.pid, 'SIGKILL')
  await waitFor('the restart line and the event in the stream', () =>
    /PMR \| later#\d+: killed by SIGKILL \(crash\)/.test(seen) && /\| idle \d+/.test(seen))
  follower.kill('SIGINT')
}))

test('a partial last line is kept when the app exits', withHome(async (home) => {
  home.ok(['start', 'lines.js', '--name', 'part', '--no-autorestart'], { env: { COUNT: '2', PARTIAL: '1', EXIT_AFTER: '1' } })
  await waitFor('stopped', () => app(home, 'part')[0].status === 'stopped')
  const text = await waitFor('the partial line', () => {
    const t = fs.readFileSync(home.logFile('part-out.log'), 'utf8')
    return t.includes('partial') ? t : null
  })
  assert.equal(text, 'out 0\nout 1\npartial line without newline\n')
}))

test('shell scripts, commands in PATH and arguments after --', withHome(async (home) => {
  home.ok(['start', 'job.sh', '--name', 'sh', '--', 'one', 'two'])
  await waitFor('the job line', () => {
    try { return fs.readFileSync(home.logFile('sh-out.log'), 'utf8').includes('with args: one two') } catch { return false }
  })
  home.ok(['start', 'sleep', '--name', 'sleeper', '--', '1000'])
  const [s] = app(home, 'sleeper')
  assert.equal(s.status, 'online')
  assert.match(fs.readFileSync(`/proc/${s.pid}/cmdline`, 'utf8'), /sleep\x001000/)
}))

test('errors: one clear line, non-zero exit, nothing registered', withHome(async (home) => {
  const cases = [
    [['start', 'missing.js'], /^\[pmr\] error: script not found: .*missing\.js$/],
    [['start', 'nosuchcommand-xyz'], /script not found: nosuchcommand-xyz/],
    [['start', 'helpers-data.txt'], /not executable/],
    [['start', 'idle.js', '--cwd', '/nonexistent/dir'], /cwd \/nonexistent\/dir does not exist/],
    [['start', 'idle.js', '--kill-signal', 'SIGNOPE'], /not a signal name/],
    [['start', 'idle.js', '--max-memory-restart', '1GB'], /'1GB' is not a size, use 1G/],
  ]
  fs.writeFileSync(path.join(FIXTURES, 'helpers-data.txt'), 'not a program')
  try {
    for (const [args, re] of cases) {
      const r = home.run(args)
      assert.equal(r.code, 1, `${args.join(' ')} fails`)
      assert.match(r.stderr.trim(), re)
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}`)
    }
  } finally {
    fs.unlinkSync(path.join(FIXTURES, 'helpers-data.txt'))
  }
  // No daemon was needed to refuse those, and none was started.
  assert.equal(home.daemonPid(), null)

  home.ok(['ping'])
  for (const args of [['stop', 'ghost'], ['restart', '99'], ['delete', 'ghost'], ['describe', 'ghost'], ['logs', 'ghost', '--nostream']]) {
    const r = home.run(args)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /no app named 'ghost'|no instance with id 99|no app or id matches 'ghost'/)
  }
  assert.deepEqual(home.jlist(), [])
}))

test('commands against a home with no daemon', withHome(async (home) => {
  const r = home.run(['stop', 'api'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /no daemon is running for/)
  assert.deepEqual(home.jlist(), [])
  assert.match(home.ok(['kill']).stdout, /no daemon is running/)
}))

test('ping starts the daemon; kill stops apps, the daemon, socket and pid file', withHome(async (home) => {
  assert.match(home.ok(['ping']).stdout, /pong: daemon pid \d+/)
  const daemon = home.daemonPid()
  home.ok(['start', 'idle.js', '--name', 'a'])
  const [a] = app(home, 'a')
  assert.match(home.ok(['kill']).stdout, /stopped every app and the daemon/)
  await waitFor('the daemon to exit', () => !alive(daemon))
  assert.ok(!alive(a.pid))
  assert.ok(!fs.existsSync(path.join(home.dir, 'pmr.sock')))
  assert.ok(!fs.existsSync(path.join(home.dir, 'pmr.pid')))
  assert.match(fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8'), /daemon exits/)
}))

// Issue 17: the keeper brings the daemon back by itself (it used to take the next command).
test('a daemon killed with -9 leaves a stale socket that the daemon its keeper starts replaces', withHome(async (home) => {
  home.ok(['ping'])
  const old = home.daemonPid()
  process.kill(old, 'SIGKILL')
  await waitFor('the daemon to die', () => !alive(old))
  await waitFor('a new daemon', () => home.daemonPid() !== old && alive(home.daemonPid()))
  const r = home.ok(['ping'])
  assert.doesNotMatch(r.stdout, /started the daemon/, 'the CLI started no daemon of its own')
  assert.notEqual(home.daemonPid(), old)
  assert.match(fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8'), /removed a stale socket/)
}))

test('two CLIs racing to start the daemon end up with one', withHome(async (home) => {
  const a = home.spawn(['ping'])
  const b = home.spawn(['ping'])
  const codes = await Promise.all([a, b].map((c) => new Promise((resolve) => c.on('exit', resolve))))
  assert.deepEqual(codes, [0, 0])
  const pids = fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8').match(/daemon ready pid=\d+/g)
  assert.equal(pids.length, 1)
}))

function rawRequest (home, payload) {
  return new Promise((resolve, reject) => {
    const s = net.connect(path.join(home.dir, 'pmr.sock'))
    let buf = ''
    s.on('data', (d) => {
      buf += d
      if (buf.includes('\n')) { s.end(); resolve(buf.split('\n').filter(Boolean).map((l) => JSON.parse(l))) }
    })
    s.on('error', reject)
    s.write(payload)
  })
}

test('malformed control messages get error replies and the daemon survives', withHome(async (home) => {
  home.ok(['ping'])
  const daemon = home.daemonPid()
  const cases = [
    ['{not json\n', /malformed JSON/],
    ['{"v":1,"id":7,"cmd":"explode"}\n', /unknown command 'explode'/],
    ['{"v":99,"id":8,"cmd":"list"}\n', /protocol version 99 is not supported/],
    ['{"id":9,"cmd":"list"}\n', /missing protocol version/],
    ['{"v":1,"id":10,"cmd":"start","apps":[{"name":"x"}]}\n', /bad 'start' request/],
    ['{"v":1,"id":11,"cmd":"signal","target":["all"],"signal":"SIGWHAT"}\n', /not a signal name/],
    ['"just a string"\n', /must be a JSON object/],
    ['{"v":1,"id":12}\n', /missing field 'cmd'/],
  ]
  for (const [payload, re] of cases) {
    const [reply] = await rawRequest(home, payload)
    assert.equal(reply.ok, false)
    assert.match(reply.error.message, re)
    assert.match(reply.error.code, /^PMR_/)
  }
  const [big] = await rawRequest(home, 'x'.repeat(5 << 20) + '\n')
  assert.equal(big.error.code, 'PMR_PROTOCOL')
  assert.match(big.error.message, /limit/)
  assert.ok(alive(daemon))
  assert.deepEqual(home.jlist(), [])
}))

test('the app gets the caller environment plus its instance variables', withHome(async (home) => {
  fs.writeFileSync(path.join(FIXTURES, '.env-dump.js'), 'console.log(JSON.stringify(process.env)); setInterval(() => {}, 1 << 30)\n')
  try {
    home.ok(['start', '.env-dump.js', '--name', 'envy'], { env: { MY_SETTING: 'from the shell' } })
    const text = await waitFor('the env dump', () => {
      try { return fs.readFileSync(home.logFile('envy-out.log'), 'utf8').trim() } catch { return null }
    })
    const env = JSON.parse(text)
    assert.equal(env.MY_SETTING, 'from the shell')
    assert.equal(env.NODE_APP_INSTANCE, '0')
    assert.equal(env.pm_id, '0')
    assert.equal(env.NODE_UNIQUE_ID, undefined, 'fork mode is not a cluster worker')
  } finally {
    fs.unlinkSync(path.join(FIXTURES, '.env-dump.js'))
  }
}))

test('the native daemon runs where it is built; PMR_NODE_DAEMON=1 picks the Node host, which works alike', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'n'])
  assert.match(fs.readlinkSync(`/proc/${home.daemonPid()}/exe`), /pmr-daemon$/)
  const rss = Number(fs.readFileSync(`/proc/${home.daemonPid()}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1])
  assert.ok(rss < 30000, `the native daemon is small (${rss} kB)`)
  home.ok(['kill'])
  home.ok(['start', 'idle.js', '--name', 'n'], { env: { PMR_NODE_DAEMON: '1' } })
  assert.match(fs.readlinkSync(`/proc/${home.daemonPid()}/exe`), /node$/)
  const [r] = app(home, 'n')
  process.kill(r.pid, 'SIGKILL')
  await waitFor('the Node-hosted daemon to restart the app', () => app(home, 'n')[0].restarts === 1)
}))
