#!/usr/bin/env node
'use strict'
// The pmr CLI lives in Rust; this shim hands it the arguments and what only
// Node knows: which node binary runs us, where the daemon's entry is, and
// how to evaluate a JavaScript ecosystem file.
const path = require('node:path')
const { runCli } = require('../native.js')

// Only configs written in JavaScript need the loader: keep it off the path
// of every other command.
const loadConfig = (file) => require('../lib/config-loader.js').loadConfig(file)

process.exitCode = runCli(process.argv.slice(2), {
  node: process.execPath,
  daemonScript: path.join(__dirname, '..', 'daemon.js'),
}, loadConfig)
