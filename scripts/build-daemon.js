'use strict'
// Builds the native daemon (pmr-daemon) and puts it next to the addon, where
// the launcher looks for it. Same target triple as `napi build`, and both
// packages selected so cargo unifies features exactly as it did for the
// addon: it then reuses the core it has just compiled instead of building
// it (and tokio) a second time.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const release = !process.argv.includes('--debug')
const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
const args = ['build', '-p', 'pmr', '-p', 'pmr-node', '--bin', 'pmr-daemon', '--target', host]
if (release) args.push('--release')
execFileSync('cargo', args, { cwd: root, stdio: 'inherit' })
fs.copyFileSync(path.join(root, 'target', host, release ? 'release' : 'debug', 'pmr-daemon'), path.join(root, 'pmr-daemon'))
