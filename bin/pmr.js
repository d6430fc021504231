#!/usr/bin/env node
'use strict'
// The pmr CLI lives in Rust; this shim hands it the arguments and what only
// Node knows: which node binary runs us and where the daemon's entry is.
const path = require('node:path')
const { runCli } = require('../index.js')

process.exitCode = runCli(process.argv.slice(2), {
  node: process.execPath,
  daemonScript: path.join(__dirname, '..', 'daemon.js'),
})
