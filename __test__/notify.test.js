'use strict'
// Issue 20: alerts. Real node:http receivers: one that answers 200 (and
// records what it got), one that answers 500, one that hangs, one that is
// down. Supervision goes on whatever they do; failures are retried,
// counted and logged in pmr.log; a crash loop is one alert and a summary;
// the Slack body and the command hook get the same event.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { waitFor, freePort, get, withHome, rows, receiver, FIXTURES } = require('./helpers')

const CRASH = path.join(FIXTURES, 'health', 'crash.js')
const APP = path.join(FIXTURES, 'health', 'app.js')

const daemonLog = (home) => fs.readFileSync(path.join(home.dir, 'pmr.log'), 'utf8')

test('webhooks that answer, fail, hang or are down: alerts go out, supervision goes on, failures are retried and logged', withHome(async (home) => {
  const ok = await receiver('ok')
  const bad = await receiver('500')
  const hang = await receiver('hang')
  const down = `http://127.0.0.1:${await freePort()}/gone`
  const slack = await receiver('ok')
  try {
    const port = await freePort()
    home.ok(['start', APP, '--name', 'web'], { env: { PORT: String(port) } })
    home.ok(['set', 'notify.webhook', `${ok.url},${bad.url},${hang.url},${down}`])
    home.ok(['set', 'notify.slack', slack.url])
    home.ok(['set', 'notify.timeout', '2s'])
    home.ok(['set', 'notify.throttle', '1m'])
    await home.okAsync(['start', CRASH, '--name', 'crashy', '--min-uptime', '10ms', '--max-restarts', '1000', '--restart-delay', '100ms'],
      { env: { CRASH_AFTER_MS: '150' } })

    const [alert] = await waitFor('the crash alert', () => ok.got.length > 0 && ok.got)
    const a = alert.body
    assert.equal(alert.type, 'application/json')
    assert.equal(a.event, 'crash')
    assert.equal(a.app, 'crashy')
    assert.equal(typeof a.pid, 'number')
    assert.equal(a.instance, 0)
    assert.equal(a.host, require('node:os').hostname())
    assert.match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.equal(a.details.exit_code, 3)
    assert.ok(a.details.uptime_ms >= 100, `uptime ${a.details.uptime_ms}`)
    assert.ok(a.logs.includes(`started pid ${a.pid}`), JSON.stringify(a.logs))
    assert.ok(a.logs.includes('[err] Error: lost the database connection'), JSON.stringify(a.logs))
    assert.ok(a.logs.length <= 20)
    assert.equal(a.message, 'crashed: exited with code 3')

    const [s] = await waitFor('the Slack alert', () => slack.got.length > 0 && slack.got)
    assert.match(s.body.text, /^\*pmr\* crash: crashy \(instance 0, pid \d+\) on .+: crashed: exited with code 3\n```\n/)

    // The failing receivers: 3 attempts each (500 and hang), then a logged failure.
    await waitFor('3 attempts at the 500 receiver', () => bad.got.length >= 3)
    await waitFor('3 attempts at the hanging receiver', () => hang.got.length >= 3)
    await waitFor('failures in pmr.log', () => {
      const log = daemonLog(home)
      return /alert crash for crashy not delivered to webhook http:\/\/127\.0\.0\.1:\d+\/… after 3 attempt\(s\): HTTP 500: internal error \(1 failed so far, 0 delivered\)/.test(log) &&
        /not delivered to .* after 3 attempt\(s\): no answer within 2000 ms/.test(log) &&
        /not delivered to .* after 3 attempt\(s\): .*[Cc]onnection refused/.test(log)
    }, { timeout: 15000 })
    assert.equal(bad.got.length, 3, 'a failed alert is tried 3 times, not more')

    // Meanwhile supervision went on: the loop kept restarting, the other app served.
    assert.ok(rows(home, 'crashy')[0].restarts >= 3)
    assert.equal((await get(port, '/')).status, 200)
    // The rate limit held the loop's later crashes for a summary.
    assert.equal(ok.got.filter((g) => g.body.event === 'crash').length, 1)

    // Not spawnSync: the receivers live in this process and must answer.
    const t = await home.runAsync(['notify', 'test'])
    assert.notEqual(t.code, 0, 'some receivers fail')
    const lines = t.stdout.trim().split('\n')
    assert.equal(lines.length, 5, t.stdout)
    assert.match(t.stdout, /^ok {5}webhook http:\/\/127\.0\.0\.1:\d+\/…: HTTP 200: ok$/m)
    assert.match(t.stdout, /^failed webhook http:\/\/127\.0\.0\.1:\d+\/…: HTTP 500: internal error$/m)
    assert.match(t.stdout, /^failed webhook http:\/\/127\.0\.0\.1:\d+\/…: no answer within 2000 ms$/m)
    assert.match(t.stdout, /^ok {5}slack http:\/\/127\.0\.0\.1:\d+\/…: HTTP 200: ok$/m)
    assert.match(t.stderr, /3 of 5 alert receivers did not take the test alert/)
    assert.equal(ok.got.at(-1).body.event, 'test')
  } finally {
    for (const r of [ok, bad, hang, slack]) await r.close()
  }
}))

test('a crash loop sends one alert, then one summary per window; the command hook gets the event on stdin', withHome(async (home) => {
  const ok = await receiver('ok')
  try {
    const out = path.join(home.dir, 'hook.out')
    const eco = path.join(home.dir, 'eco.json')
    fs.writeFileSync(eco, JSON.stringify({
      apps: [{
        name: 'loop',
        script: CRASH,
        min_uptime: 10,
        max_restarts: 1000,
        env: { CRASH_AFTER_MS: '20' },
        notify: {
          webhook: ok.url,
          command: `{ cat; echo; echo "$PMR_EVENT_NAME $PMR_APP"; } > ${out}.tmp && mv ${out}.tmp ${out}`,
          events: ['crash', 'errored'],
          throttle: '1500ms',
        },
      }],
    }))
    home.ok(['start', eco])
    await waitFor('the hook output', () => fs.existsSync(out))
    const [json, line] = fs.readFileSync(out, 'utf8').split('\n')
    assert.equal(JSON.parse(json).event, 'crash')
    assert.equal(line.trim(), 'crash loop')

    const summary = await waitFor('the summary', () => ok.got.find((g) => g.body.suppressed > 0))
    assert.match(summary.body.message, /^\d+ more crash alerts in the last 1\.5 s \(the last: crashed: exited with code 3\)$/)
    const restarts = rows(home, 'loop')[0].restarts
    assert.ok(restarts > 5, `${restarts} restarts`)
    const crashes = ok.got.filter((g) => g.body.event === 'crash')
    assert.equal(crashes.length, 2, 'the first crash and one summary')
    assert.ok(summary.at - crashes[0].at >= 1400, 'the summary comes when the window ends')
    home.ok(['stop', 'loop'])
  } finally {
    await ok.close()
  }
}))

test('bad alert settings are refused with one line naming the key', withHome(async (home) => {
  const cases = [
    [['notify.webhook', 'hooks.example.com/x'], /^\[pmr\] error: notify\.webhook: 'hooks\.example\.com\/x' is not a URL/],
    [['notify.events', 'crash,crashes'], /notify\.events: 'crashes' is not an alert event — did you mean crash\?/],
    [['notify.throttle', '-1m'], /notify\.throttle: '-1m' is negative/],
    [['notify.hook', 'x'], /unknown setting 'notify\.hook'/],
  ]
  for (const [args, re] of cases) {
    const r = home.run(['set', ...args])
    assert.notEqual(r.code, 0)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, re)
  }
  const eco = path.join(home.dir, 'eco.json')
  fs.writeFileSync(eco, JSON.stringify({ apps: [{ name: 'x', script: APP, notify: { events: ['crash', 'boom'] } }] }))
  assert.match(home.run(['start', eco]).stderr, /notify\.events.*'boom' is not an alert event/)
  fs.writeFileSync(eco, JSON.stringify({ apps: [{ name: 'x', script: APP, notify: { slak: 'https://x/y' } }] }))
  assert.match(home.run(['start', eco]).stderr, /notify\.slak.*did you mean slack\?/)
  assert.match((await home.runAsync(['notify', 'test'])).stderr, /no alert receivers/)
}))
