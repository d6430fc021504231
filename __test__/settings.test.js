'use strict'
// Daemon-wide settings: `pmr set` validates, persists in config.json and
// survives a daemon restart.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Home, waitFor } = require('./helpers')

test('set, get, persistence and errors', async () => {
  const home = new Home()
  try {
    assert.match(home.ok(['set', 'log.max_size', '50M']).stdout, /log\.max_size = 52428800/)
    home.ok(['set', 'metrics.interval', '2s'])
    assert.equal(home.ok(['get', 'log.max_size']).stdout.trim(), '52428800')
    const file = path.join(home.dir, 'config.json')
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).metrics.interval_ms, 2000)

    const typo = home.run(['set', 'log.max_sise', '5M'])
    assert.equal(typo.code, 1)
    assert.equal(typo.stderr.trim(), "[pmr] error: unknown setting 'log.max_sise' — did you mean log.max_size?")
    const unit = home.run(['set', 'log.max_size', '1GB'])
    assert.match(unit.stderr, /log\.max_size: '1GB' is not a size/)

    home.ok(['kill'])
    assert.match(home.ok(['get']).stdout, /log\.max_size = 52428800\nlog\.retain = 10/)
  } finally {
    await home.cleanup()
  }
})

test('a PM2 user\'s rotation setup: pmr install pm2-logrotate and pm2-logrotate:* keys drive the built-in rotation', async () => {
  const home = new Home()
  try {
    const off = home.ok(['uninstall', 'pm2-logrotate'])
    assert.match(off.stdout, /built-in log rotation is off: log\.max_size = 0 \(off\)/)
    assert.equal(home.ok(['get', 'log.max_size']).stdout.trim(), '0')
    const on = home.ok(['install', 'pm2-logrotate@latest'])
    assert.match(on.stdout, /log rotation is built into pmr, nothing to install; it is on: log\.max_size = 10\.0mb/)

    assert.match(home.ok(['set', 'pm2-logrotate:max_size', '1K']).stdout, /log\.max_size = 1024/)
    assert.match(home.ok(['set', 'pm2-logrotate:rotateInterval', '0 0 * * *']).stdout, /log\.rotate_interval = "daily"/)
    const foreign = home.run(['set', 'pm2-logrotate:workerInterval', '30'])
    assert.equal(foreign.code, 1)
    assert.match(foreign.stderr, /pm2-logrotate:workerInterval has no pmr counterpart/)
    const other = home.run(['install', 'pm2-server-monit'])
    assert.equal(other.code, 1)
    assert.match(other.stderr, /^\[pmr\] error: pmr has no module system: pm2-server-monit cannot be installed; .*pmr monit/)

    // The size set through the module's key is the one the app's log rotates at.
    fs.writeFileSync(path.join(home.dir, 'chatty.js'), `
      for (let i = 0; i < 100; i++) console.log('line ' + i + ' ' + 'x'.repeat(60))
      setInterval(() => {}, 1 << 30)`)
    home.ok(['start', path.join(home.dir, 'chatty.js'), '--name', 'chatty'])
    const logs = path.join(home.dir, 'logs')
    // Rotation renames the file, then opens a new one: wait for both, or the
    // stat below can fall in between.
    const rotated = await waitFor('a rotated file and the new current one', () => {
      const names = fs.readdirSync(logs)
      const found = names.filter((f) => /^chatty-out__.*\.log$/.test(f))
      return found.length > 0 && names.includes('chatty-out.log') ? found : null
    })
    for (const f of [...rotated, 'chatty-out.log']) assert.ok(fs.statSync(path.join(logs, f)).size <= 1024, f)
  } finally {
    await home.cleanup()
  }
})
