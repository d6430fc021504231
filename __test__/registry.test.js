'use strict'
// Issue: `npm install pmr` works on a machine with only Node. Every platform
// package that `npm run release:build` laid out in npm/<platform>/ and the
// main package are published to a real registry (verdaccio, on a free port,
// storage in a temp dir, no uplinks), then installed the way a user does,
// into an empty project that cannot see this repository and with no Rust
// toolchain on PATH: locally (`npm install pmr`, `npx pmr`) and globally
// (`npm install -g pmr` into a temp prefix).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { Home, ROOT, freePort, waitFor } = require('./helpers')
const { linuxTargets, platformOf, pkg } = require('../scripts/platforms')

const HOST = `${process.platform}-${process.arch}-${process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'}`
const hostAddon = path.join(ROOT, 'npm', HOST, `pmr.${HOST}.node`)
const built = linuxTargets().map(platformOf).filter((p) => fs.existsSync(path.join(ROOT, 'npm', p, `pmr.${p}.node`)))

/** PATH without the directories that hold cargo or rustc: the user has no Rust. */
function pathWithoutRust () {
  return process.env.PATH.split(path.delimiter)
    .filter((d) => !['cargo', 'rustc'].some((exe) => fs.existsSync(path.join(d, exe))))
    .join(path.delimiter)
}

function run (cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180000, ...opts })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** A verdaccio registry of our own; resolves once it answers. */
async function startRegistry (dir) {
  const port = await freePort()
  const config = path.join(dir, 'config.yaml')
  fs.writeFileSync(config, [
    `storage: ${path.join(dir, 'storage')}`,
    'auth:',
    '  htpasswd:',
    `    file: ${path.join(dir, 'htpasswd')}`,
    'uplinks: {}',
    'packages:',
    "  '**':",
    '    access: $all',
    '    publish: $authenticated',
    'max_body_size: 100mb',
    'log: { type: stdout, format: pretty, level: warn }',
    '',
  ].join('\n'))
  const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'verdaccio', 'bin', 'verdaccio'),
    '--config', config, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => { output += d })
  child.stderr.on('data', (d) => { output += d })
  const url = `http://127.0.0.1:${port}/`
  await waitFor(`verdaccio to answer on ${url}\n${output}`, async () => {
    if (child.exitCode !== null) throw new Error(`verdaccio exited ${child.exitCode}: ${output}`)
    try { return (await fetch(`${url}-/ping`)).ok } catch { return false }
  }, { timeout: 30000, interval: 100 })
  // A user of our own, so that `npm publish` has a token.
  const res = await fetch(`${url}-/user/org.couchdb.user:ci`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'ci', password: 'ci-password', type: 'user', roles: [] }),
  })
  const { token } = await res.json()
  assert.ok(token, `verdaccio gave no token (HTTP ${res.status})`)
  return { child, url, token }
}

async function stopRegistry (child) {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

test('publish to a real registry, install with only Node, run the CLI, the API and a global install', {
  skip: !fs.existsSync(hostAddon) && `no ${HOST} platform package built (run \`npm run release:build\` first)`,
  timeout: 600000,
}, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pmr-registry-'))
  const home = new Home()
  const registry = await startRegistry(tmp)
  try {
    const npmrc = path.join(tmp, 'npmrc')
    const host = new URL(registry.url).host
    fs.writeFileSync(npmrc, `registry=${registry.url}\n//${host}/:_authToken=${registry.token}\n`)
    const npmEnv = {
      ...process.env,
      PATH: pathWithoutRust(),
      npm_config_userconfig: npmrc,
      npm_config_cache: path.join(tmp, 'npm-cache'),
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    }
    for (const k of Object.keys(npmEnv)) if (k.startsWith('npm_') && !k.startsWith('npm_config_')) delete npmEnv[k]
    // Keys npm sets for the running `npm test` (e.g. npm_config_registry) would win over the userconfig.
    for (const k of ['npm_config_registry', 'npm_config_prefix', 'npm_config_global', 'npm_config_local_prefix']) delete npmEnv[k]
    assert.equal(spawnSync('cargo', ['--version'], { env: npmEnv }).error?.code, 'ENOENT', 'cargo must not be on the PATH of the install')

    for (const platform of built) {
      run('npm', ['publish', '--ignore-scripts'], { cwd: path.join(ROOT, 'npm', platform), env: npmEnv })
    }
    run('npm', ['publish', '--ignore-scripts'], { cwd: ROOT, env: npmEnv })

    const project = path.join(tmp, 'project')
    fs.mkdirSync(project)
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
    fs.writeFileSync(path.join(project, 'app.js'), "console.log('consumer app'); setInterval(() => {}, 1 << 30)\n")
    run('npm', ['install', 'pmr'], { cwd: project, env: npmEnv })
    const installed = fs.readdirSync(path.join(project, 'node_modules')).filter((d) => d.startsWith('pmr-'))
    assert.deepEqual(installed, [`pmr-${HOST}`], 'npm picked exactly the platform package of this machine')
    assert.deepEqual(fs.readdirSync(path.join(project, 'node_modules', `pmr-${HOST}`)).sort(),
      ['README.md', 'package.json', 'pmr-daemon', `pmr.${HOST}.node`])

    const env = { ...npmEnv, PMR_HOME: home.dir, NO_COLOR: '1' }
    assert.equal(run('npx', ['pmr', '--version'], { cwd: project, env }).trim(), `pmr ${pkg.version}`)
    assert.match(run('npx', ['pmr', 'start', 'app.js', '--name', 'consumer'], { cwd: project, env }), /│ consumer +│ fork +│ \d+ +│ online/)
    home.notePids()
    const daemonExe = fs.readlinkSync(`/proc/${home.daemonPid()}/exe`)
    assert.equal(daemonExe, path.join(project, 'node_modules', `pmr-${HOST}`, 'pmr-daemon'), 'the daemon of the platform package runs')
    const rows = JSON.parse(run('npx', ['pmr', 'jlist'], { cwd: project, env }))
    assert.deepEqual(rows.map((r) => [r.name, r.status]), [['consumer', 'online']])

    const script = `
      const pmr = require('pmr')
      ;(async () => {
        const pm = await pmr.connect()
        await pm.start({ name: 'api-app', script: 'app.js' })
        const rows = await pm.list()
        console.log(JSON.stringify(rows.map((r) => [r.name, r.status])))
        pm.close()
      })()`
    const listed = JSON.parse(run(process.execPath, ['-e', script], { cwd: project, env }).trim())
    home.notePids()
    assert.deepEqual(listed.sort(), [['api-app', 'online'], ['consumer', 'online']])
    run('npx', ['pmr', 'kill'], { cwd: project, env })

    const prefix = path.join(tmp, 'global')
    run('npm', ['install', '-g', '--prefix', prefix, 'pmr'], { cwd: tmp, env })
    const globalEnv = { ...env, PATH: `${path.join(prefix, 'bin')}${path.delimiter}${env.PATH}` }
    assert.equal(run('pmr', ['--version'], { cwd: tmp, env: globalEnv }).trim(), `pmr ${pkg.version}`)
    assert.match(run('pmr', ['start', path.join(project, 'app.js'), '--name', 'global'], { cwd: tmp, env: globalEnv }), /│ global +│ fork/)
    home.notePids()
    const globalDaemon = fs.readlinkSync(`/proc/${home.daemonPid()}/exe`)
    assert.ok(globalDaemon.startsWith(prefix + path.sep) && globalDaemon.endsWith(path.join(`pmr-${HOST}`, 'pmr-daemon')),
      `the daemon of the globally installed platform package runs (${globalDaemon})`)
    run('pmr', ['kill'], { cwd: tmp, env: globalEnv })
  } finally {
    await stopRegistry(registry.child)
    await home.cleanup()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
