'use strict'
// `npm run release:build`: the addon and `pmr-daemon` for every Linux target
// in package.json's `napi.targets`, cross-compiled on this machine with
// cargo-zigbuild (zig comes from PATH or from the Python package `ziglang`),
// laid out in npm/<platform>/ exactly as each platform package publishes
// them. Darwin targets are built by the release workflow on macOS runners.
//
//   npm run release:build                      every Linux target
//   npm run release:build -- --target aarch64-unknown-linux-musl [--target ...]
//
// glibc targets are linked against glibc 2.17 (zig's `.2.17` suffix), so the
// packages run on any distribution of the last ten years, not only on one as
// new as the build machine. musl builds drop `crt-static`: Rust cannot make
// a cdylib with a static C runtime, and the Node.js that loads the addon on
// Alpine is linked against musl dynamically anyway.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, linuxTargets, platformOf } = require('./platforms')

function fail (message) {
  process.stderr.write(`release:build: ${message}\n`)
  process.exit(1)
}

/** The directory holding a `zig` binary: PATH first, then pip's ziglang. */
function zigDir () {
  const onPath = spawnSync('zig', ['version'], { encoding: 'utf8' })
  if (onPath.status === 0) return null
  const py = spawnSync('python3', ['-c', 'import ziglang, os; print(os.path.dirname(ziglang.__file__))'], { encoding: 'utf8' })
  const dir = py.status === 0 ? py.stdout.trim() : ''
  if (dir && fs.existsSync(path.join(dir, 'zig'))) return dir
  fail('zig not found: install it with `pip install ziglang` (or put zig on PATH)')
}

function checkZigbuild () {
  const r = spawnSync('cargo', ['zigbuild', '--help'], { encoding: 'utf8' })
  if (r.status !== 0) fail('cargo-zigbuild not found: install it with `cargo install --locked cargo-zigbuild`')
}

function ensureRustTarget (target) {
  const installed = execFileSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).split('\n')
  if (installed.includes(target)) return
  console.log(`adding the Rust standard library for ${target}`)
  execFileSync('rustup', ['target', 'add', target], { stdio: 'inherit' })
}

function requestedTargets () {
  const all = linuxTargets()
  const asked = []
  for (let i = 2; i < process.argv.length; i++) {
    if (process.argv[i] === '--target') asked.push(process.argv[++i])
    else fail(`unknown argument '${process.argv[i]}' (use --target <triple>)`)
  }
  for (const t of asked) if (!all.includes(t)) fail(`'${t}' is not a Linux target of package.json (${all.join(', ')})`)
  return asked.length ? asked : all
}

function build (target, env) {
  const zigTarget = target.endsWith('-gnu') ? `${target}.2.17` : target
  const args = ['zigbuild', '--release', '--target', zigTarget, '-p', 'pmr', '-p', 'pmr-node', '--lib', '--bin', 'pmr-daemon']
  const targetEnv = { ...env }
  if (target.endsWith('-musl')) {
    targetEnv[`CARGO_TARGET_${target.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`] = '-C target-feature=-crt-static'
  }
  execFileSync('cargo', args, { cwd: ROOT, stdio: 'inherit', env: targetEnv })
  const out = path.join(ROOT, 'target', target, 'release')
  const platform = platformOf(target)
  const dir = path.join(ROOT, 'npm', platform)
  const addon = path.join(dir, `pmr.${platform}.node`)
  const daemon = path.join(dir, 'pmr-daemon')
  fs.copyFileSync(path.join(out, 'libpmr_node.so'), addon)
  fs.copyFileSync(path.join(out, 'pmr-daemon'), daemon)
  fs.chmodSync(daemon, 0o755)
  return { platform, addon: fs.statSync(addon).size, daemon: fs.statSync(daemon).size }
}

function main () {
  const targets = requestedTargets()
  checkZigbuild()
  const zig = zigDir()
  const env = { ...process.env }
  if (zig) env.PATH = `${zig}${path.delimiter}${env.PATH}`
  const started = Date.now()
  const built = []
  targets.forEach((target, i) => {
    console.log(`[${i + 1}/${targets.length}] ${target}`)
    ensureRustTarget(target)
    const t0 = Date.now()
    const r = build(target, env)
    built.push({ ...r, seconds: (Date.now() - t0) / 1000 })
  })
  const mb = (n) => `${(n / 1e6).toFixed(1)} MB`
  console.log('\nplatform            addon     pmr-daemon  build')
  for (const b of built) {
    console.log(`${b.platform.padEnd(20)}${mb(b.addon).padEnd(10)}${mb(b.daemon).padEnd(12)}${b.seconds.toFixed(0)} s`)
  }
  console.log(`\nall ${built.length} targets in ${((Date.now() - started) / 1000).toFixed(0)} s; packages in npm/<platform>/`)
}

main()
