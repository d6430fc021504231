'use strict'
// The pmr daemon: a Node process that only hosts the addon. The supervisor,
// the control socket and every policy run in Rust on their own threads; this
// file forwards the signals Node receives (libuv owns signal handling here).
const path = require('node:path')
const { startDaemon, daemonSignal } = require('./native.js')

const home = process.env.PMR_HOME
if (!home) {
  process.stdout.write('error PMR_HOME is not set\n')
  process.exit(1)
}

// Every Node app loads this first: it drains connections on stop.
const preload = path.join(__dirname, 'preload', 'drain.js')

startDaemon(home, preload, (err) => {
  process.exit(err ? 1 : 0)
})

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2']) {
  process.on(sig, () => daemonSignal(sig))
}
