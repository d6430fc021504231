#!/usr/bin/env node
'use strict'
// pmr vs PM2 (vs the ceiling) on the same fixtures, in one run.
//
//   node bench/run.js                 every scenario, full length
//   node bench/run.js cluster logs    only these
//   node bench/run.js --quick cli     short smoke run
//
// Prints a table per scenario and writes bench/results/<timestamp>.json.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { Scope, BENCH, REPO, PM2_BIN } = require('./lib/managers')
const load = require('./lib/load')
const u = require('./lib/util')

const SCENARIOS = ['cli', 'memory', 'restart', 'cluster', 'spread', 'crash', 'reload', 'logs', 'monitor', 'dashboard', 'health', 'many', 'cpu', 'socketio', 'daemon']
const NEEDS_WRK = new Set(['cluster', 'spread', 'reload', 'daemon'])

function usage(code) {
  const text = `usage: node bench/run.js [--quick] [scenario...]

scenarios (default: all, in this order): ${SCENARIOS.join(', ')}
  --quick     short smoke run: fewer rounds, shorter loads (figures are noisy)
  --help      this text

Results: a table per scenario on stdout, JSON in bench/results/<timestamp>.json.
Needs: npm install inside bench/ (PM2 7.0.4, autocannon) and wrk (apt-get install -y wrk).`
  ;(code ? process.stderr : process.stdout).write(text + '\n')
  process.exit(code)
}

function parseArgs(argv) {
  const opts = { quick: false, scenarios: [] }
  for (const a of argv) {
    if (a === '--quick' || a === '-q') opts.quick = true
    else if (a === '--help' || a === '-h') usage(0)
    else if (a.startsWith('-')) {
      process.stderr.write(`unknown option ${a}\n`)
      usage(2)
    } else if (SCENARIOS.includes(a)) opts.scenarios.push(a)
    else {
      process.stderr.write(`unknown scenario '${a}' (known: ${SCENARIOS.join(', ')})\n`)
      process.exit(2)
    }
  }
  if (opts.scenarios.length === 0) opts.scenarios = SCENARIOS.slice()
  return opts
}

function tryExec(cmd, args, opts) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], ...opts }).trim()
  } catch {
    return null
  }
}

function environment() {
  const readVersion = (p) => {
    try {
      return JSON.parse(fs.readFileSync(p, 'utf8')).version
    } catch {
      return null
    }
  }
  const dirty = tryExec('git', ['status', '--porcelain', '--', 'src', 'binding', 'bin', 'daemon.js', 'index.js'], { cwd: REPO })
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpu_model: (os.cpus()[0] || {}).model,
    kernel: os.release(),
    total_mem_mb: Math.round(os.totalmem() / 1048576),
    pmr_commit: tryExec('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO }),
    pmr_worktree_dirty: dirty === null ? null : dirty.length > 0,
    pmr_addon_mtime: (() => {
      try {
        const f = fs.readdirSync(REPO).find((n) => n.endsWith('.node'))
        return f ? fs.statSync(path.join(REPO, f)).mtime.toISOString() : null
      } catch {
        return null
      }
    })(),
    pm2: readVersion(path.join(BENCH, 'node_modules', 'pm2', 'package.json')),
    autocannon: readVersion(path.join(BENCH, 'node_modules', 'autocannon', 'package.json')),
    wrk: load.wrkVersion(),
  }
}

function printResult(name, title, res) {
  const out = []
  out.push('')
  out.push(`== ${name}: ${title}${res.quick ? '  [--quick: short, noisy]' : ''}`)
  if (res.error) {
    out.push(`  FAILED: ${res.error}`)
  }
  for (const t of res.tables || []) {
    if (t.title) out.push(`  ${t.title}`)
    out.push(u.table(t.headers, t.rows))
    out.push('')
  }
  for (const g of res.goals || []) {
    const mark = g.met === true ? 'MET    ' : g.met === false ? 'NOT MET' : 'n/a    '
    out.push(`  [${mark}] ${g.goal}: ${g.value}`)
  }
  for (const n of res.notes || []) out.push(`  note: ${n}`)
  const lo = (res.cleanup && res.cleanup.leftovers) || []
  if (lo.length) {
    out.push(`  cleanup: ${lo.length} process(es) survived pmr kill / pm2 kill and were killed by pid:`)
    for (const l of lo) out.push(`    ${l.pid || ''} ${l.cmd || l.error || ''}`)
  }
  out.push(
    `  (${(res.seconds || 0).toFixed(1)} s; load average before ${res.loadavg_before.map((x) => x.toFixed(2)).join(' ')}, after ${res.loadavg_after
      .map((x) => x.toFixed(2))
      .join(' ')})`
  )
  process.stdout.write(out.join('\n') + '\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  try {
    load.requireBenchDeps()
    if (opts.scenarios.some((s) => NEEDS_WRK.has(s))) load.requireWrk()
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n`)
    process.exit(1)
  }

  const started = new Date()
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const runId = `${stamp}-${process.pid}`
  const resultsDir = path.join(BENCH, 'results')
  fs.mkdirSync(resultsDir, { recursive: true })
  const resultsFile = path.join(resultsDir, `${stamp}${opts.quick ? '-quick' : ''}.json`)
  const report = {
    started_at: started.toISOString(),
    finished_at: null,
    quick: opts.quick,
    argv: process.argv.slice(2),
    environment: environment(),
    scenarios: {},
  }
  const save = () => fs.writeFileSync(resultsFile, JSON.stringify(report, null, 2) + '\n')

  const env = report.environment
  process.stdout.write(
    `pmr bench${opts.quick ? ' (--quick)' : ''}: ${opts.scenarios.join(', ')}\n` +
      `  node ${env.node}, ${env.cpus} CPUs (${env.cpu_model}), pmr ${env.pmr_commit}${env.pmr_worktree_dirty ? ' (+ uncommitted changes)' : ''}, ` +
      `PM2 ${env.pm2}, autocannon ${env.autocannon}, wrk ${env.wrk || 'not installed'}\n` +
      `  load average now: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}${os.loadavg()[0] > env.cpus * 0.5 ? '  (busy machine: expect noise)' : ''}\n`
  )

  let current = null
  const onSignal = (sig) => {
    process.stderr.write(`\nbench: ${sig}, killing every benchmark process\n`)
    if (current) current.killAllSync()
    report.interrupted = sig
    save()
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  let failures = 0
  for (const name of opts.scenarios) {
    const scenario = require(`./scenarios/${name}`)
    const scope = new Scope(runId, name)
    current = scope
    const t0 = Date.now()
    const log = (msg) => process.stdout.write(`${msg}\n`)
    process.stdout.write(`\n-- ${name}: running${opts.quick ? ' (quick)' : ''}...\n`)
    const loadBefore = os.loadavg()
    let res
    try {
      res = await scenario.run({ scope, quick: opts.quick, log })
    } catch (err) {
      failures++
      res = { error: err.stack || String(err) }
    }
    try {
      res.cleanup = await scope.cleanup()
    } catch (err) {
      scope.killAllSync()
      res.cleanup = { error: String(err) }
    }
    current = null
    res.quick = opts.quick
    res.seconds = (Date.now() - t0) / 1000
    res.loadavg_before = loadBefore
    res.loadavg_after = os.loadavg()
    report.scenarios[name] = { title: scenario.title, ...res, error: res.error ? String(res.error).split('\n')[0] : undefined, error_stack: res.error }
    printResult(name, scenario.title, { ...res, error: res.error ? String(res.error).split('\n').slice(0, 3).join('\n  ') : undefined })
    save()
  }

  report.finished_at = new Date().toISOString()
  save()
  const goals = Object.entries(report.scenarios).flatMap(([s, r]) => (r.goals || []).map((g) => ({ s, ...g })))
  process.stdout.write(`\n== summary${opts.quick ? ' (--quick: noisy)' : ''}\n`)
  process.stdout.write(
    u.table(
      ['scenario', 'goal', 'value', 'status'],
      goals.map((g) => [g.s, g.goal, g.value, g.met === true ? 'met' : g.met === false ? 'NOT met' : 'n/a'])
    ) + '\n'
  )
  for (const [s, r] of Object.entries(report.scenarios)) if (r.error) process.stdout.write(`  ${s}: FAILED (${r.error})\n`)
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), resultsFile)}\n`)
  process.exit(failures ? 1 : 0)
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack || err}\n`)
  process.exit(1)
})
