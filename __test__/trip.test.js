'use strict'
// Issue 22: what a demanding user trips over. Each test runs the real CLI
// against real processes and checks what pmr prints, counts or returns.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { waitFor, freePort, withHome, rows, online, FIXTURES } = require('./helpers')

/** Follows `pmr logs <name>` from now on and collects what it prints. */
async function follow (home, name) {
  const child = home.spawn(['logs', name, '--lines', '0'])
  const out = { text: '' }
  child.stdout.on('data', (d) => { out.text += d })
  await waitFor('the follower', () => out.text.includes('following new lines'))
  out.stop = () => child.kill('SIGINT')
  return out
}

/** A private directory for files a test writes, removed afterwards. */
function scratch (t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmr-trip-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('reload event lines name the old and the new pid for what they are', withHome(async (home) => {
  const port = await freePort()
  home.ok(['start', 'server.js', '--name', 'api', '-i', '1'], { env: { PORT: String(port) } })
  const [before] = await online(home, 'api', 1)
  const seen = await follow(home, 'api')
  await home.okAsync(['reload', 'api'])
  const [after] = rows(home, 'api')
  assert.notEqual(after.pid, before.pid)
  const pids = `old pid ${before.pid}, new pid ${after.pid}`
  await waitFor('the old process exited line', () => seen.text.includes('reload: old process exited'))
  seen.stop()
  const lines = seen.text.split('\n').filter((l) => l.includes('reload'))
  for (const want of [
    `reload: replacement started: ${pids}`,
    `reload: replacement ready: ${pids}`,
    `reload: stopping the old process: ${pids}`,
  ]) {
    assert.ok(lines.some((l) => l.includes(want)), `"${want}" in:\n${lines.join('\n')}`)
  }
  const exited = new RegExp(`reload: old process exited: old pid ${before.pid} (killed by SIG\\w+|exited with code \\d+), new pid ${after.pid}$`)
  assert.ok(lines.some((l) => exited.test(l)), lines.join('\n'))
  // No bracketed pid whose meaning changes from one line to the next.
  assert.ok(!lines.some((l) => /\(pid \d+\)/.test(l)), lines.join('\n'))
  assert.match(home.ok(['describe', 'api']).stdout, new RegExp(`reload: stopping the old process: ${pids}`))
}))

test('pmr reload <ecosystem file> says what it reloaded, as pmr reload <name> does', withHome(async (home, t) => {
  const dir = scratch(t)
  const port = await freePort()
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), `module.exports = { apps: [
    { name: 'web', script: ${JSON.stringify(path.join(FIXTURES, 'server.js'))}, instances: 1, exec_mode: 'cluster', env: { PORT: '${port}' } },
  ] }\n`)
  home.ok(['start', 'ecosystem.config.js'], { cwd: dir })
  await online(home, 'web', 1)
  const byFile = home.ok(['reload', 'ecosystem.config.js'], { cwd: dir })
  assert.match(byFile.stdout + byFile.stderr, /^\[pmr\] reloaded web$/m)
  const byName = home.ok(['reload', 'web'])
  assert.match(byName.stdout + byName.stderr, /^\[pmr\] reloaded web$/m)
  const restarted = home.ok(['restart', 'ecosystem.config.js'], { cwd: dir })
  assert.match(restarted.stdout + restarted.stderr, /^\[pmr\] restarted web$/m)
}))

test('crash loop: errored and describe give the count in the setting\'s terms', withHome(async (home) => {
  home.ok(['start', 'crash.js', '--name', 'loop', '--max-restarts', '3'])
  const seen = await follow(home, 'loop')
  const row = await waitFor('errored', () => {
    const [r] = rows(home, 'loop')
    return r.status === 'errored' ? r : null
  })
  assert.equal(row.restarts, 3)
  assert.equal(row.unstable_restarts, 3)
  const line = 'errored: 3 unstable restarts (max_restarts 3), each run shorter than min_uptime (1000 ms); the last one exited with code 1'
  await waitFor('the errored line', () => seen.text.includes(line))
  seen.stop()
  assert.doesNotMatch(seen.text, /consecutive exits/)
  const desc = home.ok(['describe', 'loop']).stdout
  assert.match(desc, /unstable restarts +│ 3 of max 3 +│/)
  assert.ok(desc.includes('3 unstable restarts (max_restarts 3)'), desc)
}))

test('restart of a stopped app counts as a restart in list, describe and the events', withHome(async (home) => {
  home.ok(['start', 'idle.js', '--name', 'parked'])
  await online(home, 'parked', 1, { listening: false })
  home.ok(['stop', 'parked'])
  assert.equal(rows(home, 'parked')[0].restarts, 0)
  const seen = await follow(home, 'parked')
  home.ok(['restart', 'parked'])
  const [r] = await online(home, 'parked', 1, { listening: false })
  assert.equal(r.restarts, 1)
  assert.equal(r.restart_reasons.user, 1)
  const line = home.ok(['list']).stdout.split('\n').find((l) => /│ parked /.test(l))
  assert.equal(line.split('│')[6].trim(), '1', line)
  assert.match(home.ok(['describe', 'parked']).stdout, /restarts +│ 1 \(crash 0, memory 0, watch 0, cron 0, user 1\)/)
  await waitFor('the restart event', () => seen.text.includes('restarting (reason: user)'))
  seen.stop()
}))

test('logs --lines N: N lines of each file, said so; stderr lines marked in a pipe; --raw stays raw', withHome(async (home) => {
  home.ok(['start', 'lines.js', '--name', 'talk'], { env: { COUNT: '40' } })
  await waitFor('all lines', () => fs.existsSync(home.logFile('talk-error.log')) &&
    fs.readFileSync(home.logFile('talk-error.log'), 'utf8').includes('err 39'))
  const shown = home.ok(['logs', 'talk', '--lines', '20', '--nostream']).stdout
  assert.match(shown, /^last 20 lines of each of .*talk-out\.log, .*talk-error\.log, in the order they were written:$/m)
  const body = shown.split('\n').filter((l) => l.startsWith('0|'))
  const outs = body.filter((l) => /^0\|talk +\| out \d+$/.test(l))
  const errs = body.filter((l) => /^0\|talk +\| err \| err \d+$/.test(l))
  assert.equal(outs.length, 20, shown)
  assert.equal(errs.length, 20, shown)
  assert.equal(body.length, 40, shown)
  assert.match(errs[0], /err 20$/)
  assert.match(errs[19], /err 39$/)
  // The two pipes' lines interleave as they arrived, in whichever order.
  const raw = home.ok(['logs', 'talk', '--lines', '2', '--nostream', '--raw']).stdout
  assert.deepEqual(raw.split('\n').sort(), ['', 'err 38', 'err 39', 'out 38', 'out 39'])

  // Instances that share their files (merge_logs): still N of each file.
  home.ok(['start', 'lines.js', '--name', 'both', '-i', '2', '--merge-logs'], { env: { COUNT: '10' } })
  await waitFor('both instances\' lines', () => fs.existsSync(home.logFile('both-error.log')) &&
    fs.readFileSync(home.logFile('both-error.log'), 'utf8').split('err 9\n').length === 3)
  const merged = home.ok(['logs', 'both', '--lines', '3', '--nostream', '--raw']).stdout.split('\n').filter(Boolean)
  assert.equal(merged.filter((l) => l.startsWith('out ')).length, 3, merged.join('\n'))
  assert.equal(merged.filter((l) => l.startsWith('err ')).length, 3, merged.join('\n'))
}))

test('after a crash loop the log history has pmr\'s own errored line, after the crash', withHome(async (home) => {
  home.ok(['start', 'crash.js', '--name', 'loop', '--max-restarts', '2'])
  await waitFor('errored', () => rows(home, 'loop')[0].status === 'errored')
  const past = home.ok(['logs', 'loop', '--lines', '20', '--nostream']).stdout
  const lines = past.split('\n')
  const errored = lines.findIndex((l) => /^PMR \| loop#0: errored: 2 unstable restarts \(max_restarts 2\)/.test(l))
  assert.ok(errored >= 0, past)
  const lastCrash = lines.findLastIndex((l) => /exited with code 1 \(crash\)/.test(l))
  const lastOutput = lines.findLastIndex((l) => /\| (err \| )?(out|err) line from \d+$/.test(l))
  assert.ok(lastOutput >= 0 && lastOutput < lastCrash && lastCrash < errored, past)
  // Not twice when the live stream follows the history.
  const follower = home.spawn(['logs', 'loop', '--lines', '20'])
  let seen = ''
  follower.stdout.on('data', (d) => { seen += d })
  await waitFor('the follower', () => seen.includes('following new lines'))
  follower.kill('SIGINT')
  assert.equal(seen.split('errored: 2 unstable restarts').length, 2, seen)
  // --raw is the app's output only.
  assert.doesNotMatch(home.ok(['logs', 'loop', '--lines', '20', '--nostream', '--raw']).stdout, /errored/)
}))

test('start returns once online; an exit within min_uptime fails it with the code and the last line; --no-wait', withHome(async (home) => {
  const port = await freePort()
  const ok = home.ok(['start', 'server.js', '--name', 'api', '-i', '1'], { env: { PORT: String(port) }, wait: true })
  const row = ok.stdout.split('\n').find((l) => /│ api /.test(l))
  assert.equal(row.split('│')[5].trim(), 'online', ok.stdout)
  assert.notEqual(row.split('│')[9].trim(), '0b', ok.stdout)

  const began = Date.now()
  // A long min_uptime: the CLI's own start on a loaded machine can take a
  // second, so only a wait for the whole min_uptime is told apart.
  const boom = home.run(['start', 'crash.js', '--name', 'boom', '--min-uptime', '20s'], { env: { EXIT_CODE: '3' }, wait: true })
  assert.equal(boom.code, 1, boom.stdout + boom.stderr)
  assert.match(boom.stderr, /boom \(id \d+\) exited with code 3 within min_uptime \(20000 ms\) of its start; its last log line: (out|err) line from \d+/)
  assert.ok(Date.now() - began < 10000, 'it fails as soon as the exit is seen, not after min_uptime')

  const quick = home.run(['start', '--no-wait', 'crash.js', '--name', 'quick'], { wait: true })
  assert.equal(quick.code, 0, quick.stderr)
  // A stopped app started again is watched the same way.
  await waitFor('quick errored', () => rows(home, 'quick')[0].status === 'errored', { timeout: 15000 })
  const again = home.run(['start', 'quick'], { wait: true })
  assert.equal(again.code, 1)
  assert.match(again.stderr, /quick \(id \d+\) exited with code 1 within min_uptime/)
  // An app that is done (exit code 0, not restarted) did not fail.
  const done = home.run(['start', 'crash.js', '--name', 'done', '--no-autorestart'], { env: { EXIT_CODE: '0' }, wait: true })
  assert.equal(done.code, 0, done.stderr)
}))
