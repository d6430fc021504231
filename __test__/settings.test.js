'use strict'
// Daemon-wide settings: `pmr set` validates, persists in config.json and
// survives a daemon restart.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Home } = require('./helpers')

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
