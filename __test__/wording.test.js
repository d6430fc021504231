'use strict'
// Issue: what a demanding user trips over. Texts that must say exactly what
// pmr does.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { withHome } = require('./helpers')

test('update: the help says the apps are restarted, not kept', withHome(async (home) => {
  const summary = home.ok(['--help']).stdout.split('\n').find((l) => /^\s+update\s/.test(l))
  assert.ok(summary, 'pmr --help lists update')
  assert.match(summary, /the apps are restarted/)
  assert.doesNotMatch(summary, /keeping/)
  const full = home.ok(['update', '--help']).stdout
  assert.match(full, /The apps are down between their stop and their\s+start again/)
}))
