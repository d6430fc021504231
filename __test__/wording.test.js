'use strict'
// Issue: what a demanding user trips over. Texts that must say exactly what
// pmr does.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { withHome } = require('./helpers')

// Issue 17: update now hands over in place; the help says so (it used to say the apps restart).
test('update: the help says the apps keep running, and when they do not', withHome(async (home) => {
  const summary = home.ok(['--help']).stdout.split('\n').find((l) => /^\s+update\s/.test(l))
  assert.ok(summary, 'pmr --help lists update')
  assert.match(summary, /in place: the apps/)
  assert.doesNotMatch(summary, /restarted/)
  const full = home.ok(['update', '--help']).stdout
  assert.match(full, /The old daemon then hands over in place/)
  assert.match(full, /has\s+no\s+keeper:\s+it\s+is\s+replaced\s+the\s+old\s+way/)
}))
