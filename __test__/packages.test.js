'use strict'
// Issue: npm distribution. The main package and its platform packages agree
// on their version, each platform package declares the os/cpu/libc of its
// target (npm picks one by them), and each publishes exactly its files.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { ROOT, pkg, allTargets, platformOf, packageOf } = require('../scripts/platforms')

const CPU = { x86_64: 'x64', aarch64: 'arm64' }

function platformPackage (target) {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', platformOf(target), 'package.json'), 'utf8'))
}

/** What `npm pack` would put in the tarball of the package in `dir`. */
function packedFiles (dir) {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)[0].files.map((f) => f.path).sort()
}

test('every package has the main version, and the main package depends on each platform package at exactly it', () => {
  const expected = Object.fromEntries(allTargets().map((t) => [packageOf(t), pkg.version]))
  assert.deepEqual(pkg.optionalDependencies, expected)
  for (const t of allTargets()) {
    const p = platformPackage(t)
    assert.equal(p.name, packageOf(t))
    assert.equal(p.version, pkg.version, `${p.name} has version ${p.version}, the main package ${pkg.version}`)
  }
  assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), allTargets().map(platformOf).sort(),
    'npm/ holds a folder for each target of package.json, and no other')
})

test('each platform package declares the os, cpu and libc of its target', () => {
  for (const t of allTargets()) {
    const [arch, , os, abi] = t.split('-')
    const p = platformPackage(t)
    assert.deepEqual(p.os, [os], `${p.name} os`)
    assert.deepEqual(p.cpu, [CPU[arch]], `${p.name} cpu`)
    if (os === 'linux') assert.deepEqual(p.libc, [abi === 'gnu' ? 'glibc' : 'musl'], `${p.name} libc`)
    else assert.equal(p.libc, undefined, `${p.name} has no libc field`)
    assert.equal(p.main, `pmr.${platformOf(t)}.node`)
    assert.deepEqual(p.engines, pkg.engines)
    assert.equal(p.license, pkg.license)
  }
  assert.deepEqual(pkg.os, ['linux', 'darwin'])
  assert.deepEqual(pkg.cpu, ['x64', 'arm64'])
})

test('each platform package publishes exactly its addon, its daemon, package.json and README', () => {
  for (const t of allTargets()) {
    const platform = platformOf(t)
    const dir = path.join(ROOT, 'npm', platform)
    const files = packedFiles(dir)
    const built = fs.existsSync(path.join(dir, `pmr.${platform}.node`))
    // Not built here (darwin, or before `npm run release:build`): then the
    // package would hold only its metadata, which must never be published.
    const expected = built
      ? ['README.md', 'package.json', 'pmr-daemon', `pmr.${platform}.node`]
      : ['README.md', 'package.json']
    assert.deepEqual(files, expected, `npm/${platform}`)
  }
})

test('the main package publishes no binaries and no sources', () => {
  const files = packedFiles(ROOT)
  assert.ok(!files.some((f) => f.endsWith('.node') || f === 'pmr-daemon' || f.startsWith('src/') || f.startsWith('npm/')), files.join(' '))
  for (const f of pkg.files) assert.ok(files.some((p) => p === f || p.startsWith(f)), `${f} is in the package`)
})
