'use strict'
// Issue: npm distribution. The package and this platform's binary package,
// packed as npm would publish them, installed into an empty project that
// cannot see this repository, must give a working CLI and API.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { Home, ROOT } = require('./helpers')

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

function run (cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000, ...opts })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

const PLATFORM = 'linux-x64-gnu'
const binary = path.join(ROOT, `pmr.${PLATFORM}.node`)

test('pack, install into an empty project, run the CLI and the API there', {
  skip: !fs.existsSync(binary) && `no ${PLATFORM} binary built here (${process.platform}-${process.arch})`,
}, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pmr-pack-'))
  const home = new Home()
  try {
    const dist = path.join(tmp, 'dist')
    const plat = path.join(tmp, 'platform')
    const project = path.join(tmp, 'project')
    for (const d of [dist, plat, project]) fs.mkdirSync(d)
    run(NPM, ['pack', '--ignore-scripts', '--pack-destination', dist], { cwd: ROOT })
    fs.copyFileSync(path.join(ROOT, 'npm', PLATFORM, 'package.json'), path.join(plat, 'package.json'))
    fs.copyFileSync(binary, path.join(plat, path.basename(binary)))
    fs.copyFileSync(path.join(ROOT, 'pmr-daemon'), path.join(plat, 'pmr-daemon'))
    run(NPM, ['pack', '--ignore-scripts', '--pack-destination', dist], { cwd: plat })
    const tarballs = fs.readdirSync(dist).map((f) => path.join(dist, f)).sort()
    assert.deepEqual(tarballs.map((t) => path.basename(t)), ['pmr-0.1.0.tgz', `pmr-${PLATFORM}-0.1.0.tgz`])

    const listed = run('tar', ['tzf', tarballs[0]]).split('\n').filter(Boolean).sort()
    assert.deepEqual(listed, [
      'package/README.md', 'package/bin/pmr-runtime.js', 'package/bin/pmr.js', 'package/daemon.js', 'package/index.d.ts', 'package/index.js',
      'package/index.mjs', 'package/lib/api.js', 'package/lib/config-loader.js', 'package/lib/pm2.js', 'package/native.d.ts',
      'package/native.js', 'package/package.json', 'package/pm2.d.ts', 'package/preload/drain.js', 'package/preload/health.js',
    ], 'the package holds exactly its files (no sources, no binaries of a build tree)')

    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({
      name: 'consumer',
      version: '1.0.0',
      private: true,
      scripts: { 'start:prod': 'pmr start ecosystem.config.js --env production', stop: 'pmr delete ecosystem.config.js' },
    }))
    fs.writeFileSync(path.join(project, 'ecosystem.config.js'), `module.exports = { apps: [{
      name: 'scripted', script: 'app.js', env_production: { NODE_ENV: 'production' } }] }\n`)
    run(NPM, ['install', '--offline', '--no-audit', '--no-fund', ...tarballs], { cwd: project })
    assert.ok(!fs.lstatSync(path.join(project, 'node_modules', 'pmr')).isSymbolicLink())
    assert.deepEqual(fs.readdirSync(path.join(project, 'node_modules', `pmr-${PLATFORM}`)).sort(),
      ['package.json', 'pmr-daemon', `pmr.${PLATFORM}.node`])
    fs.writeFileSync(path.join(project, 'app.js'), "console.log('consumer app'); setInterval(() => {}, 1 << 30)\n")

    const env = { ...process.env, PMR_HOME: home.dir, NO_COLOR: '1' }
    const bin = path.join(project, 'node_modules', '.bin', 'pmr')
    assert.equal(run(bin, ['--version'], { cwd: project, env }).trim(), 'pmr 0.1.0')
    assert.match(run(bin, ['start', 'app.js', '--name', 'consumer'], { cwd: project, env }), /│ consumer +│ fork +│ \d+ +│ online/)
    const rows = JSON.parse(run(bin, ['jlist'], { cwd: project, env }))
    for (const r of rows) home.pids.add(r.pid)
    home.notePids()
    // The native daemon from the platform package runs, not the Node host.
    const daemonExe = fs.readlinkSync(`/proc/${home.daemonPid()}/exe`)
    assert.equal(daemonExe, path.join(project, 'node_modules', `pmr-${PLATFORM}`, 'pmr-daemon'))
    assert.equal(rows[0].name, 'consumer')
    assert.match(run(bin, ['list'], { cwd: project, env }), /consumer/)
    // package.json scripts find the package's bin, as users run them.
    assert.match(run(NPM, ['run', 'start:prod'], { cwd: project, env }), /starting .*app\.js as scripted/)
    const scripted = JSON.parse(run(bin, ['jlist'], { cwd: project, env })).find((r) => r.name === 'scripted')
    home.pids.add(scripted.pid)
    assert.equal(scripted.status, 'online')
    assert.match(run(bin, ['env', 'scripted'], { cwd: project, env }), /NODE_ENV=production/)
    run(NPM, ['run', 'stop'], { cwd: project, env })
    run(bin, ['kill'], { cwd: project, env })

    const script = `
      const pmr = require('pmr')
      ;(async () => {
        const pm = await pmr.connect({ home: ${JSON.stringify(home.dir)} })
        await pm.start({ name: 'api-app', script: 'app.js' })
        const rows = await pm.list()
        console.log(JSON.stringify(rows.map((r) => [r.name, r.status, r.pid])))
        await pm.kill()
      })()`
    const out = JSON.parse(run(process.execPath, ['-e', script], { cwd: project, env }).trim())
    home.pids.add(out[0][2])
    assert.deepEqual(out.map((r) => r.slice(0, 2)), [['api-app', 'online']])
    const esm = run(process.execPath, ['--input-type=module', '-e', "import pmr, { connect } from 'pmr'; console.log(typeof pmr.Supervisor, typeof connect)"], { cwd: project, env })
    assert.equal(esm.trim(), 'function function')
    // PM2's programmatic API, by its own path in the installed package.
    const pm2 = run(process.execPath, ['-e', "const pm2 = require('pmr/pm2'); console.log(typeof pm2.connect, typeof pm2.launchBus, typeof pm2.custom)"], { cwd: project, env })
    assert.equal(pm2.trim(), 'function function function')
  } finally {
    await home.cleanup()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
