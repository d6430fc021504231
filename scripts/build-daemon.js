'use strict'
// Builds the native daemon (pmr-daemon) and puts it next to the addon, where
// the launcher looks for it. Same target triple as `napi build`, so cargo
// reuses the core it has just compiled for the addon.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const release = !process.argv.includes('--debug')
const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)[1]
const args = ['build', '--bin', 'pmr-daemon', '--target', host]
if (release) args.push('--release')
execFileSync('cargo', args, { cwd: root, stdio: 'inherit' })
fs.copyFileSync(path.join(root, 'target', host, release ? 'release' : 'debug', 'pmr-daemon'), path.join(root, 'pmr-daemon'))
