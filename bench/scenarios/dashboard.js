'use strict'
// dashboard: what `pmr dashboard` costs. The same 50 idle instances with
// the dashboard off, then on with one page open (Chromium when it is
// installed, otherwise a client of the page's event stream, which is what
// costs the daemon anything): daemon CPU and RSS in both; the first page
// load's bytes and time; how long a crash takes to reach the page.
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { fixture, REPO } = require('../lib/managers')
const u = require('../lib/util')

const CHROMIUM = [process.env.PMR_CHROMIUM, '/usr/lib/chromium/chromium'].find((p) => p && fs.existsSync(p))
const puppeteer = (() => {
  try {
    return require(path.join(REPO, 'node_modules', 'puppeteer-core'))
  } catch {
    return null
  }
})()

function request(port, p, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent: false, headers }, (res) => {
      let bytes = 0
      res.on('data', (d) => (bytes += d.length))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, bytes }))
    }).on('error', reject)
  })
}

/** A page's live feed, as the browser holds it: resolves `waitExit()` on the next crash event. */
function feed(port, cookie) {
  let buf = ''
  let waiting = null
  const req = http.get({ host: '127.0.0.1', port, path: '/api/events?logs=true', agent: false, headers: { cookie } }, (res) => {
    res.setEncoding('utf8')
    res.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i)
        buf = buf.slice(i + 2)
        if (waiting && /^event: event$/m.test(msg) && /"type":"exit"/.test(msg) && /"expected":false/.test(msg)) {
          const w = waiting
          waiting = null
          w(performance.now())
        }
      }
    })
  })
  req.on('error', () => {})
  return {
    waitExit: () => new Promise((resolve) => (waiting = resolve)),
    close: () => req.destroy(),
  }
}

async function window(daemon, ms) {
  const c0 = u.cpuMs(daemon)
  const t0 = performance.now()
  await u.sleep(ms)
  const cpu = u.cpuMs(daemon) - c0
  return { cpu_ms: cpu, pct: (cpu * 100) / (performance.now() - t0), rss: u.rssBytes(daemon) }
}

module.exports = {
  name: 'dashboard',
  title: 'Dashboard cost: daemon CPU and RSS off vs on with a page open, first load, crash to page',
  async run({ scope, quick, log }) {
    const instances = quick ? 10 : 50
    const windowMs = quick ? 10000 : 30000
    const settleMs = quick ? 3000 : 8000
    const m = scope.pmr()
    const [port] = await u.freePorts(1)
    await m.start(fixture('hello.js'), { name: 'idle', instances, env: { PORT: String(port) } })
    await m.waitOnline('idle', instances, { timeout: 120000 })
    const daemon = m.daemonPid()
    log(`  ${instances} instances online; dashboard off: settling ${settleMs} ms, measuring ${windowMs / 1000} s`)
    await u.sleep(settleMs)
    const off = await window(daemon, windowMs)

    const r = m.cliSync(['dashboard', '--no-open'])
    const link = (r.stdout.match(/^http:\/\/\S+$/m) || [])[0]
    if (!link) throw new Error(`pmr dashboard printed no link: ${r.stdout} ${r.stderr}`)
    const url = new URL(link)
    const dport = Number(url.port)
    const login = await request(dport, url.pathname + url.search)
    const cookie = String(login.headers['set-cookie']).split(';')[0]

    // First load, as a browser with an empty cache fetches it (gzip).
    const files = ['/', '/assets/app.css', '/assets/plot.js', '/assets/app.js', '/assets/icon.svg']
    const t0 = performance.now()
    const got = await Promise.all(files.map((f) => request(dport, f, { cookie, 'accept-encoding': 'gzip' })))
    const loadMs = performance.now() - t0
    const loadBytes = u.sum(got.map((g) => g.bytes))

    let browser = null
    let pageLoadMs = null
    const client = feed(dport, cookie)
    if (puppeteer && CHROMIUM) {
      browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
      const page = await browser.newPage()
      // The first visit logs in (token → cookie); the figure is a later
      // visit in a new tab with the cache off, by that page's own Navigation
      // Timing: every asset fetched, the browser's start-up left out. A new
      // tab rather than a reload: a reload's figure includes unloading the
      // live page before it, which is not what a user opening it waits for.
      await page.goto(link, { waitUntil: 'load' })
      const loads = []
      for (let i = 0; i < 5; i++) {
        const tab = await browser.newPage()
        await tab.setCacheEnabled(false)
        await tab.goto(url.origin + '/', { waitUntil: 'load' })
        loads.push(await tab.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd))
        await tab.close()
      }
      pageLoadMs = u.median(loads)
      await page.waitForSelector('body[data-live=on]', { timeout: 15000 })
    }
    log(`  dashboard on with ${browser ? 'Chromium' : 'an event-stream client'} open: settling ${settleMs} ms, measuring ${windowMs / 1000} s`)
    await u.sleep(settleMs)
    const on = await window(daemon, windowMs)

    // Crash to page: SIGKILL an instance, time until its exit reaches the feed.
    const crashes = []
    for (let i = 0; i < (quick ? 3 : 5); i++) {
      const victim = (await m.waitOnline('idle', instances, { timeout: 30000 }))[i]
      const seen = client.waitExit()
      const k0 = performance.now()
      process.kill(victim.pid, 'SIGKILL')
      crashes.push((await Promise.race([seen, u.sleep(5000).then(() => NaN)])) - k0)
    }
    client.close()
    if (browser) await browser.close()
    await m.delete('idle')
    await m.kill()

    const crashMs = u.median(crashes.filter((x) => !Number.isNaN(x)))
    const cpuDelta = on.pct - off.pct
    const rssDelta = on.rss - off.rss
    // (900 + 1440) samples of 20 bytes per instance (src/dashboard/history.rs).
    const ringBytes = instances * 46800
    return {
      tables: [
        {
          headers: ['dashboard', 'daemon CPU', 'of one core', 'daemon RSS'],
          rows: [
            ['off', `${u.fmtNum(off.cpu_ms, 0)} ms`, `${u.fmtNum(off.pct, 2)} %`, u.fmtMB(off.rss)],
            ['on, page open', `${u.fmtNum(on.cpu_ms, 0)} ms`, `${u.fmtNum(on.pct, 2)} %`, u.fmtMB(on.rss)],
          ],
        },
        {
          headers: ['figure', 'value'],
          rows: [
            ['first load (5 files, gzip)', `${u.fmtNum(loadBytes / 1024, 1)} KB in ${u.fmtNum(loadMs, 0)} ms`],
            ['Chromium page load (new tab, cache off, to the load event, median of 5)', pageLoadMs == null ? 'no Chromium' : `${u.fmtNum(pageLoadMs, 0)} ms`],
            ['crash → page (median)', `${u.fmtNum(crashMs, 0)} ms (${crashes.map((c) => u.fmtNum(c, 0)).join(', ')})`],
            ['history rings (computed)', `${u.fmtNum(ringBytes / 1048576, 2)} MB for ${instances} instances`],
          ],
        },
      ],
      goals: [
        { goal: `daemon CPU with the dashboard on and a page open, above off (${instances} instances)`, value: `+${u.fmtNum(cpuDelta, 2)} % of a core`, met: cpuDelta < 1 },
        {
          goal: `daemon RSS growth with 24 h of history for ${instances} instances under 10 MB (measured growth + the rings' computed full size)`,
          value: `${u.fmtNum(rssDelta / 1048576, 1)} MB measured + ${u.fmtNum(ringBytes / 1048576, 2)} MB`,
          met: rssDelta + ringBytes < 10 * 1048576,
        },
        { goal: 'first load under 200 KB compressed and 300 ms', value: `${u.fmtNum(loadBytes / 1024, 1)} KB, ${u.fmtNum(pageLoadMs ?? loadMs, 0)} ms`, met: loadBytes < 200 * 1024 && (pageLoadMs ?? loadMs) < 300 },
        { goal: 'a crash reaches the open page within 1 s', value: `${u.fmtNum(crashMs, 0)} ms`, met: crashMs < 1000 },
      ],
      notes: [
        browser ? 'a headless Chromium held the page open' : 'no Chromium: an event-stream client stood in for the page',
        'the rings fill over 24 h, so a short run measures only part of them: the goal adds their computed full size to the measured growth',
      ],
      data: { instances, off, on, load_bytes: loadBytes, load_ms: loadMs, page_load_ms: pageLoadMs, crash_ms: crashes },
    }
  },
}
