#!/usr/bin/env node
'use strict'
// pmr-runtime: the supervisor in the foreground, as a container entrypoint.
// The runtime lives in Rust on its own thread; this shim forwards the
// signals Node receives (libuv owns signal handling in this process).
const path = require('node:path')
const { runRuntime, runtimeSignal } = require('../native.js')

const ROOT = path.join(__dirname, '..')
const loadConfig = (file) => require('../lib/config-loader.js').loadConfig(file)

const code = runRuntime(process.argv.slice(2), {
  node: process.execPath,
  daemonScript: path.join(ROOT, 'daemon.js'),
}, path.join(ROOT, 'preload', 'drain.js'), loadConfig, (exitCode) => process.exit(exitCode))

if (code !== 0) {
  process.exitCode = code
} else {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2']) process.on(sig, () => runtimeSignal(sig))
}
