'use strict'
// The daemon runs ahead of its apps where the OS lets it (root or
// CAP_SYS_NICE): `DAEMON_BOOST` (5) nice levels above the level it was
// started at, while every app runs at that level, as it would without pmr.
// Elsewhere the daemon and the apps share the level.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const { withHome, online, FIXTURES } = require('./helpers')
const path = require('node:path')

/** Field 19 of /proc/<pid>/stat: the nice level of the process's main thread. */
function niceOf (pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
}

test('the daemon runs 5 nice levels ahead of its apps when allowed; the apps keep the level pmr was started at', { skip: process.platform !== 'linux' }, withHome(async (home) => {
  home.ok(['start', path.join(FIXTURES, 'idle.js'), '--name', 'app', '-i', '2'])
  const apps = await online(home, 'app', 2, { listening: false })
  const daemon = home.daemonPid()
  const started = os.getPriority()
  const root = process.getuid() === 0
  for (const a of apps) assert.equal(niceOf(a.pid), started, `app pid ${a.pid} runs at the level pmr was started at`)
  assert.equal(niceOf(daemon), root ? Math.max(started - 5, -20) : started, `daemon pid ${daemon}`)
}))
