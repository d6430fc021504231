'use strict'
// logs: 200k lines of 90 bytes written as fast as stdout takes them, under
// pmr, under PM2, and redirected straight to a file (the ceiling). The
// writer reports its own elapsed time. pmr's log files must receive every
// line: the 18 MB burst passes pmr's default max_size (10M), so lines are
// counted across the current file and its rotated ones. The daemons' CPU
// time for the burst comes from /proc/<pid>/stat.
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')
const { fixture } = require('../lib/managers')
const u = require('../lib/util')

const LINES = 200000

/** The files pmr rotated `base` into (`<stem>__<UTC time>Z[-n].<ext>[.gz]`). */
function rotatedFiles(base) {
  const ext = path.extname(base)
  const stem = path.basename(base, ext)
  const re = /^__\d{4}-\d\d-\d\d_\d\d-\d\d-\d\dZ(-\d+)?$/
  let names = []
  try {
    names = fs.readdirSync(path.dirname(base))
  } catch {}
  return names
    .filter((n) => n.startsWith(stem) && (n.endsWith(ext) || n.endsWith(ext + '.gz')))
    .filter((n) => re.test(n.slice(stem.length, n.endsWith('.gz') ? -(ext.length + 3) : -ext.length || undefined)))
    .map((n) => path.join(path.dirname(base), n))
}

/** Lines in `base` and in its rotated files (gunzipped). */
function countAll(base) {
  let n = u.countLines(base)
  const rotated = rotatedFiles(base)
  for (const f of rotated) {
    if (f.endsWith('.gz')) {
      const text = zlib.gunzipSync(fs.readFileSync(f))
      for (let i = 0; i < text.length; i++) if (text[i] === 10) n++
    } else {
      n += u.countLines(f)
    }
  }
  return { lines: n, rotated: rotated.length }
}

module.exports = {
  name: 'logs',
  title: `Log throughput: ${LINES / 1000}k stdout lines of 90 bytes`,
  async run({ scope, quick, log }) {
    const rounds = quick ? 2 : 5
    const dir = scope.tmpdir('bench-logs-')
    const pmr = scope.pmr()
    const pm2 = scope.pm2()
    // Start both daemons first (their start-up is not part of any burst).
    for (const m of [pmr, pm2]) {
      const r = await m.cli(['ping'])
      if (r.code !== 0) throw new Error(`${m.label} ping failed: ${r.stderr}`)
      scope.track(m.daemonPid())
    }
    const daemon = { pmr: pmr.daemonPid(), pm2: pm2.daemonPid() }
    const samples = { pmr: [], pm2: [], file: [] }

    async function underManager(key, m, r) {
      const name = `writer${r}`
      const resultFile = path.join(dir, `${key}-${r}.json`)
      const cpu0 = u.cpuMs(daemon[key])
      const t0 = Date.now()
      await m.start(fixture('writer.js'), { name, env: { LINES: String(LINES), BENCH_RESULT_FILE: resultFile }, args: ['--no-autorestart'] })
      const res = await u.waitFor(() => fs.existsSync(resultFile) && JSON.parse(fs.readFileSync(resultFile, 'utf8') || 'null'), {
        timeout: 120000,
        interval: 20,
        what: `the writer under ${m.label} to finish`,
      })
      const [proc] = m.app(name)
      const out = proc && proc.out
      // Wait until the manager has written every line (or it stops growing).
      let lines = 0
      let rotated = 0
      let last = -1
      let still = 0
      while (Date.now() - t0 < 120000) {
        ;({ lines, rotated } = out ? countAll(out) : { lines: 0, rotated: 0 })
        if (lines >= LINES) break
        still = lines === last ? still + 1 : 0
        if (still >= 20 && !(proc && u.isAlive(proc.pid))) break // 2 s without progress after exit
        last = lines
        await u.sleep(100)
      }
      const cpu1 = u.cpuMs(daemon[key])
      const dropped = proc && proc.raw && proc.raw.log_dropped_bytes
      const afterList = m.app(name)[0]
      await m.delete(name)
      return {
        elapsed_ms: res.elapsed_ms,
        stdout_is: res.stdout_is,
        lines_in_log: lines,
        rotated_files: rotated,
        daemon_cpu_ms: cpu1 - cpu0,
        log_dropped_bytes: afterList && afterList.raw ? afterList.raw.log_dropped_bytes : dropped,
        log_file: out,
      }
    }

    async function toFile(r) {
      const resultFile = path.join(dir, `file-${r}.json`)
      const outFile = path.join(dir, `file-${r}.out`)
      const fd = fs.openSync(outFile, 'w')
      const child = scope.spawn(process.execPath, [fixture('writer.js')], {
        env: { ...scope.env, LINES: String(LINES), BENCH_RESULT_FILE: resultFile },
        stdio: ['ignore', fd, 'ignore'],
      })
      fs.closeSync(fd)
      await new Promise((resolve) => child.on('exit', resolve))
      const res = JSON.parse(fs.readFileSync(resultFile, 'utf8'))
      const lines = u.countLines(outFile)
      fs.rmSync(outFile, { force: true })
      return { elapsed_ms: res.elapsed_ms, stdout_is: res.stdout_is, lines_in_log: lines }
    }

    log(`  ${rounds} interleaved rounds: pmr, PM2, node writer.js > file`)
    for (let r = 0; r < rounds; r++) {
      samples.pmr.push(await underManager('pmr', pmr, r))
      samples.pm2.push(await underManager('pm2', pm2, r))
      samples.file.push(await toFile(r))
      log(`    round ${r + 1}/${rounds}: pmr ${u.fmtMs(samples.pmr[r].elapsed_ms)}, PM2 ${u.fmtMs(samples.pm2[r].elapsed_ms)}, file ${u.fmtMs(samples.file[r].elapsed_ms)}`)
    }
    const med = (k, f) => u.median(samples[k].map((x) => x[f]))
    const el = { pmr: med('pmr', 'elapsed_ms'), pm2: med('pm2', 'elapsed_ms'), file: med('file', 'elapsed_ms') }
    const cpu = { pmr: med('pmr', 'daemon_cpu_ms'), pm2: med('pm2', 'daemon_cpu_ms') }
    const missing = { pmr: samples.pmr.filter((s) => s.lines_in_log !== LINES).length, pm2: samples.pm2.filter((s) => s.lines_in_log !== LINES).length }
    const vsFile = u.ratio(el.pmr, el.file)
    const lineText = (k) => {
      const counts = [...new Set(samples[k].map((s) => s.lines_in_log))]
      return counts.length === 1 && counts[0] === LINES ? `all ${LINES} (${rounds}/${rounds} rounds)` : `${samples[k].map((s) => s.lines_in_log).join(', ')}`
    }
    const notes = []
    if (missing.pmr) notes.push(`pmr: ${missing.pmr} of ${rounds} rounds did not get all ${LINES} lines into the log file`)
    if (missing.pm2) notes.push(`PM2: ${missing.pm2} of ${rounds} rounds did not get all ${LINES} lines into the log file`)
    const dropped = samples.pmr.map((s) => s.log_dropped_bytes).filter((x) => x)
    if (dropped.length) notes.push(`pmr reported log_dropped_bytes: ${dropped.join(', ')}`)
    notes.push(`pmr rotated files per round (default max_size 10M): ${samples.pmr.map((s) => s.rotated_files).join(', ')}; lines are counted across them`)
    notes.push("the writer's stdout was: " + [...new Set(['pmr', 'pm2', 'file'].map((k) => `${k} ${samples[k][0].stdout_is}`))].join(', '))
    return {
      tables: [
        {
          headers: ['target', 'writer elapsed (median)', '÷ file', 'lines in log files', 'daemon CPU for the burst (median)'],
          rows: [
            ['pmr', u.fmtMs(el.pmr), u.fmtX(vsFile), lineText('pmr'), u.fmtMs(cpu.pmr)],
            ['PM2', u.fmtMs(el.pm2), u.fmtX(u.ratio(el.pm2, el.file)), lineText('pm2'), u.fmtMs(cpu.pm2)],
            ['node writer.js > file (ceiling)', u.fmtMs(el.file), '1.00×', lineText('file'), '—'],
          ],
        },
        { headers: ['ratio', 'value'], rows: [['pmr ÷ PM2 (writer elapsed)', u.fmtX(u.ratio(el.pmr, el.pm2))], ['pmr ÷ PM2 (daemon CPU)', u.fmtX(u.ratio(cpu.pmr, cpu.pm2))]] },
      ],
      goals: [
        { goal: 'pmr writer elapsed ≤ 1.1× plain redirect to a file', value: u.fmtX(vsFile, 3), met: vsFile !== null && vsFile <= 1.1 },
        { goal: `every line reaches pmr's log files (rotated ones included)`, value: `${rounds - missing.pmr}/${rounds} rounds complete`, met: missing.pmr === 0 },
      ],
      notes,
      data: { lines: LINES, rounds, median_elapsed_ms: el, median_daemon_cpu_ms: cpu, daemon_pids: daemon, samples },
    }
  },
}
