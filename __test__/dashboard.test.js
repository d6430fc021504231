'use strict'
// `pmr dashboard`: the daemon serves a page behind a token. Plain HTTP
// checks the access rules (token, cookie, Host, Origin); a real Chromium
// (Debian's, driven by puppeteer-core) checks what a person sees: live
// rows, a crash showing up, a reload and a scale clicked in the page, the
// log tail, the charts. Screenshots go to a temp dir (or PMR_SCREENSHOTS).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const zlib = require('node:zlib')
const { spawn } = require('node:child_process')
const { withHome, waitFor, freePort, get, rows, online, FIXTURES, ROOT } = require('./helpers')

const APP = path.join(FIXTURES, 'dashboard', 'app.js')
const CHROMIUM = [process.env.PMR_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser']
  .find((p) => p && fs.existsSync(p))
let puppeteer = null
try { puppeteer = require('puppeteer-core') } catch {}
const noBrowser = !puppeteer
  ? 'puppeteer-core is not installed: run npm install'
  : !CHROMIUM
      ? 'no Chromium found: install it (apt-get install chromium) or set PMR_CHROMIUM'
      : false

/** `pmr dashboard --no-open`, and the link it printed. */
function openDashboard (home, args = []) {
  const r = home.ok(['dashboard', '--no-open', ...args])
  const m = r.stdout.match(/^http:\/\/127\.0\.0\.1:(\d+)\/\?token=([0-9a-f]{64})$/m)
  assert.ok(m, r.stdout)
  return { link: m[0], port: Number(m[1]), token: m[2], stdout: r.stdout }
}

function request (port, { method = 'GET', path: p = '/', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false, timeout: 5000, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks = []
      res.on('data', (d) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    if (body) req.end(body); else req.end()
  })
}

test('dashboard access: token → cookie, 401 without, wrong Host and cross-origin actions refused', withHome(async (home) => {
  const d = openDashboard(home)
  assert.match(d.stdout, /ssh -L \d+:127\.0\.0\.1:\d+/)
  assert.equal(fs.statSync(path.join(home.dir, 'dashboard.token')).mode & 0o777, 0o600)
  assert.equal(home.ok(['get', 'dashboard.port']).stdout.trim(), String(d.port), 'the port is kept')
  assert.equal(openDashboard(home).link, d.link, 'a second call finds the same dashboard')

  assert.equal((await request(d.port)).status, 401, 'no token')
  assert.equal((await request(d.port, { path: '/api/events' })).status, 401)
  assert.equal((await request(d.port, { path: '/?token=' + '0'.repeat(64) })).status, 401, 'bad token')
  const login = await request(d.port, { path: '/?token=' + d.token })
  assert.equal(login.status, 303)
  assert.equal(login.headers.location, '/', 'the token leaves the address bar')
  const cookie = login.headers['set-cookie'][0]
  assert.match(cookie, /HttpOnly/)
  assert.match(cookie, /SameSite=Strict/)
  const session = cookie.split(';')[0]
  const page = await request(d.port, { headers: { cookie: session, 'accept-encoding': 'gzip' } })
  assert.equal(page.status, 200)
  assert.equal(page.headers['content-encoding'], 'gzip')
  assert.match(zlib.gunzipSync(page.body).toString(), /<title>pmr dashboard<\/title>/)
  assert.match(page.headers['content-security-policy'], /script-src 'self'/)

  // DNS rebinding: a page on another name that resolves here gets nothing.
  const rebound = await request(d.port, { headers: { cookie: session, host: `evil.example:${d.port}` } })
  assert.equal(rebound.status, 403)
  assert.match(rebound.body.toString(), /wrong Host/)

  home.ok(['start', APP, '--name', 'web'], { env: { PORT: String(await freePort()) } })
  const action = (headers) => request(d.port, {
    method: 'POST', path: '/api/action',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ action: 'reset', target: 'web' })
  })
  const csrf = await action({ cookie: session, origin: 'http://evil.example' })
  assert.equal(csrf.status, 403, 'cross-origin POST')
  assert.match(csrf.body.toString(), /cross-origin request refused/)
  assert.equal((await action({ cookie: session })).status, 403, 'a cookie without an Origin is not a page of ours')
  assert.equal((await action({ origin: `http://127.0.0.1:${d.port}` })).status, 401, 'no credentials')
  const same = await action({ cookie: session, origin: `http://127.0.0.1:${d.port}` })
  assert.equal(same.status, 200, same.body.toString())
  const script = await action({ authorization: 'Bearer ' + d.token })
  assert.equal(script.status, 200)
  const unknown = await request(d.port, {
    method: 'POST', path: '/api/action', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + d.token },
    body: JSON.stringify({ action: 'reload', target: 'nope' })
  })
  assert.equal(unknown.status, 404)
  assert.equal(JSON.parse(unknown.body).code, 'PMR_NOT_FOUND')

  // Beyond loopback only when asked (on the same port: its own listener
  // lets go first), and pmr says what that exposes.
  const wide = home.ok(['dashboard', '--no-open', '--host', '0.0.0.0'])
  assert.match(wide.stdout, /warning: the dashboard on 0\.0\.0\.0:\d+ is reachable from other machines/)
  assert.match(wide.stdout, new RegExp(`^http://127\\.0\\.0\\.1:${d.port}/\\?token=${d.token}$`, 'm'))
  assert.equal(home.ok(['get', 'dashboard.host']).stdout.trim(), '"0.0.0.0"')
  assert.equal((await request(d.port, { headers: { authorization: 'Bearer ' + d.token } })).status, 200)
  assert.doesNotMatch(home.ok(['dashboard', '--no-open', '--host', '127.0.0.1']).stdout, /warning/)
  assert.equal((await request(d.port, { headers: { authorization: 'Bearer ' + d.token } })).status, 200)
  // A --host that is no address is refused by name.
  const badHost = home.run(['dashboard', '--no-open', '--host', 'everywhere'])
  assert.equal(badHost.code, 1)
  assert.match(badHost.stderr, /--host: 'everywhere' is not an IP address/)

  // Off again: the port is free, and the setting says so.
  assert.match(home.ok(['set', 'dashboard.port', 'none']).stdout, /the dashboard is off/)
  await assert.rejects(request(d.port), /ECONNREFUSED/)
}))

test('pmr-runtime serves the dashboard when asked, behind the token it is given', withHome(async (home) => {
  const port = await freePort()
  const token = 'a'.repeat(16) + 'b'.repeat(16) + 'c'.repeat(16)
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'pmr-runtime.js'), 'idle.js', '--name', 'job', '--dashboard-port', String(port)],
    { cwd: FIXTURES, env: home.env({ PMR_DASHBOARD_TOKEN: token }) })
  home.pids.add(child.pid)
  let err = ''
  child.stderr.on('data', (d) => { err += d })
  child.stdout.on('data', (d) => { err += d })
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  try {
    await waitFor('the dashboard line', () => err.includes(`dashboard at http://127.0.0.1:${port}/?token=<PMR_DASHBOARD_TOKEN>`))
    assert.ok(!err.includes(token), 'a given token is not printed')
    assert.equal((await request(port)).status, 401)
    const page = await request(port, { headers: { authorization: 'Bearer ' + token } })
    assert.equal(page.status, 200)
    assert.match(page.body.toString(), /pmr dashboard/)
  } finally {
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
  }
}))

test('dashboard in Chromium: live rows, a crash, reload and scale clicked, log tail, charts', { skip: noBrowser, timeout: 120000 }, withHome(async (home, t) => {
  const shots = process.env.PMR_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'pmr-shots-'))
  const appPort = await freePort()
  home.ok(['start', APP, '--name', 'web', '-i', '2'], { env: { PORT: String(appPort) } })
  home.ok(['start', path.join(FIXTURES, 'idle.js'), '--name', 'worker', '--namespace', 'jobs'])
  await online(home, 'web', 2)
  const d = openDashboard(home)

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run']
  })
  try {
    const page = await browser.newPage()
    await page.setViewport({ width: 1280, height: 760 })
    const t0 = Date.now()
    await page.goto(d.link, { waitUntil: 'load' })
    const loadMs = Date.now() - t0
    assert.equal(new URL(page.url()).search, '', 'the token left the URL')
    await page.waitForSelector('body[data-live=on]', { timeout: 10000 })
    const bytes = await page.evaluate(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
      .reduce((a, e) => a + e.transferSize, 0))
    t.diagnostic(`first load: ${bytes} bytes transferred, ${loadMs} ms`)
    assert.ok(bytes < 200 * 1024, `first load ${bytes} bytes`)

    const before = rows(home, 'web')
    await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`tr.inst[data-id="${id}"] .status`)?.textContent === 'online'),
      { timeout: 10000 }, before.map((r) => r.id))
    assert.ok(await page.$('tr.app[data-app=worker]'))
    // The cluster workers' open connections (pmr hands them out) have a column.
    await page.waitForFunction((ids) => ids.every((id) => /^\d+$/.test(document.querySelector(`tr.inst[data-id="${id}"] .conns`)?.textContent || '')),
      { timeout: 10000 }, before.map((r) => r.id))

    // A crash shows up on the open page: the restart count of the worker
    // that took the request moves.
    const t1 = Date.now()
    await get(appPort, '/crash').catch(() => {})
    await page.waitForFunction((ids) => ids.some((id) => /^1\b/.test(document.querySelector(`tr.inst[data-id="${id}"] .restarts`)?.textContent || '')),
      { timeout: 5000, polling: 'mutation' }, before.map((r) => r.id))
    const crashMs = Date.now() - t1
    t.diagnostic(`a crash appeared on the page ${crashMs} ms after the request that caused it`)
    assert.ok(crashMs < 3000, `${crashMs} ms`)
    await online(home, 'web', 2)

    // The log tail shows a line the app printed, on its stream.
    await page.click('#tab-logs')
    const mark = 'dashboard-mark-' + process.pid
    await get(appPort, `/say?m=${mark}&stream=err`)
    const line = await page.waitForFunction((m) => [...document.querySelectorAll('#log-lines .line')].find((l) => l.textContent.includes(m)),
      { timeout: 5000 }, mark)
    assert.equal(await line.evaluate((l) => l.querySelector('.k').textContent), 'err')
    await page.screenshot({ path: path.join(shots, 'dashboard-logs.png') })
    await page.click('#tab-procs')

    // Reload from the page: confirm, see its steps, get new pids.
    const pidsBefore = rows(home, 'web').map((r) => r.pid)
    await page.click('button[data-act=reload][data-app=web]')
    await page.waitForSelector('#confirm[open]')
    await page.click('#confirm-ok')
    await page.waitForSelector('.op[data-act=reload].ok', { timeout: 20000 })
    const steps = await page.$$eval('.op[data-act=reload] .step', (s) => s.map((x) => x.textContent))
    assert.ok(steps.some((s) => /reload: replacement ready/.test(s)), steps.join('\n'))
    assert.ok(steps.some((s) => /reload: old process exited/.test(s)), steps.join('\n'))
    const pidsAfter = rows(home, 'web').map((r) => r.pid)
    assert.ok(pidsAfter.every((p) => !pidsBefore.includes(p)), `${pidsBefore} → ${pidsAfter}`)
    await page.waitForFunction((pids) => pids.every((p) => [...document.querySelectorAll('tr.inst .pid')].some((c) => c.textContent === String(p))),
      { timeout: 5000 }, pidsAfter)

    // Scale from the page.
    await page.click('button[data-act=scale][data-app=web]')
    await page.waitForSelector('#confirm[open]')
    await page.$eval('#scale-to', (i) => { i.value = '3' })
    await page.click('#confirm-ok')
    await page.waitForFunction(() => document.querySelectorAll('tr.inst[data-app=web]').length === 3, { timeout: 15000 })
    await online(home, 'web', 3)

    // Dismiss the finished actions' cards: the screenshots show the page.
    await page.$$eval('.op .title button', (bs) => bs.forEach((b) => b.click()))

    // The instance that crashed: its charts have data, its timeline shows
    // the crash, and the lines it printed before it are kept.
    const first = rows(home, 'web').find((r) => r.restart_reasons.crash === 1)
    assert.ok(first, 'the crashed instance')
    await page.click(`tr.inst[data-id="${first.id}"]`)
    await page.waitForSelector('#detail:not([hidden])')
    await page.waitForFunction(() => ['cpu', 'memory'].every((k) => Number(document.querySelector(`canvas.chart[data-series=${k}]`).dataset.points) > 1),
      { timeout: 10000 })
    assert.match(await page.$eval('#timeline', (e) => e.textContent), /exited with code 3 \(crash\)/)
    const crash = await page.waitForSelector('#crashes .crash-rec', { timeout: 5000 })
    assert.match(await crash.evaluate((c) => c.textContent), /exited with code 3[\s\S]*listening on/)
    await page.screenshot({ path: path.join(shots, 'dashboard-instance.png') })
    await page.click('#detail-close')
    await page.screenshot({ path: path.join(shots, 'dashboard.png') })

    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }])
    await page.screenshot({ path: path.join(shots, 'dashboard-dark.png') })
    await page.setViewport({ width: 390, height: 760, isMobile: true })
    await page.screenshot({ path: path.join(shots, 'dashboard-phone.png') })
    t.diagnostic(`screenshots in ${shots}`)
  } finally {
    await browser.close()
  }
}))
