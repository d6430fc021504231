'use strict'
// The platform packages of pmr, from package.json's `napi.targets`: one
// place that maps a Rust target triple to its npm platform name, shared by
// the release build, the version check and the tests.
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const pkg = require(path.join(ROOT, 'package.json'))

const ARCH = { x86_64: 'x64', aarch64: 'arm64' }
const OS = { linux: 'linux', darwin: 'darwin' }

/** `aarch64-unknown-linux-musl` → `linux-arm64-musl`, `x86_64-apple-darwin` → `darwin-x64`. */
function platformOf (target) {
  const [arch, , os, abi] = target.split('-')
  if (!ARCH[arch] || !OS[os]) throw new Error(`unsupported target '${target}'`)
  return [OS[os], ARCH[arch], abi].filter(Boolean).join('-')
}

function allTargets () {
  return pkg.napi.targets
}

function linuxTargets () {
  return allTargets().filter((t) => t.includes('-linux-'))
}

/** npm package name of a target's platform package. */
function packageOf (target) {
  return `${pkg.name}-${platformOf(target)}`
}

module.exports = { ROOT, pkg, platformOf, allTargets, linuxTargets, packageOf }
