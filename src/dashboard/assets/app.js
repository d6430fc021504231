// pmr dashboard: the page. One live feed (Server-Sent Events from
// /api/events) keeps every row current; one instance's history and the
// kept log lines are fetched when shown; actions are POSTed and their
// progress comes back on the same feed. Untrusted text (names, log
// lines) only ever goes into textContent.
'use strict'

const $ = (sel, root = document) => root.querySelector(sel)
const el = (tag, props = {}, ...kids) => {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v
    else if (k === 'text') e.textContent = v
    else if (k.startsWith('data-')) e.setAttribute(k, v)
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn)
    else e[k] = v
  }
  for (const c of kids) if (c != null) e.append(c)
  return e
}

const SPARK = 60
const MAX_LOG_LINES = 5000
const state = {
  instances: [],
  sparks: new Map(), // id -> { cpu: [], memory: [] }
  filter: '',
  ns: '',
  selected: null,
  detail: null,
  range: 'fine',
  logs: [],
  paused: false,
  ops: []
}

// ---- formatting ---------------------------------------------------------
const fmtBytes = (b) => {
  if (b == null) return '–'
  const u = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++ }
  return (b >= 100 || i === 0 ? b.toFixed(0) : b.toFixed(1)) + ' ' + u[i]
}
const fmtDur = (ms) => {
  if (ms == null) return '–'
  const s = Math.floor(ms / 1000)
  if (s < 60) return s + 's'
  const m = Math.floor(s / 60)
  if (m < 60) return m + 'm ' + (s % 60) + 's'
  const h = Math.floor(m / 60)
  if (h < 48) return h + 'h ' + (m % 60) + 'm'
  return Math.floor(h / 24) + 'd ' + (h % 24) + 'h'
}
const fmtCpu = (c) => c == null ? '–' : c.toFixed(1) + '%'
const fmtLag = (l) => l == null ? '–' : l.toFixed(1) + ' ms'
const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false })
const reasonsText = (r) => Object.entries(r || {}).filter(([, n]) => n > 0).map(([k, n]) => k + ' ' + n).join(', ')

// ---- the process table --------------------------------------------------
function visible (i) {
  if (state.ns && i.namespace !== state.ns) return false
  const f = state.filter.trim().toLowerCase()
  return !f || i.name.toLowerCase().includes(f) || String(i.id) === f || i.status.includes(f)
}

function sparkOf (id) {
  let s = state.sparks.get(id)
  if (!s) { s = { cpu: [], memory: [] }; state.sparks.set(id, s) }
  return s
}

function renderNamespaces () {
  const sel = $('#ns')
  const have = new Set([...sel.options].map((o) => o.value))
  for (const ns of new Set(state.instances.map((i) => i.namespace))) {
    if (!have.has(ns)) sel.append(el('option', { value: ns, text: ns }))
  }
}

function renderSummary () {
  const all = state.instances
  const apps = new Set(all.map((i) => i.name)).size
  const online = all.filter((i) => i.status === 'online').length
  const errored = all.filter((i) => i.status === 'errored').length
  const cpu = all.reduce((a, i) => a + (i.cpu || 0), 0)
  const mem = all.reduce((a, i) => a + (i.memory || 0), 0)
  const s = $('#summary')
  s.replaceChildren(...[
    el('span', {}, el('b', { text: String(apps) }), ' apps'),
    el('span', {}, el('b', { text: String(all.length) }), ' instances'),
    el('span', {}, el('b', { text: String(online) }), ' online'),
    errored ? el('span', { class: 's-errored' }, el('b', { text: String(errored) }), ' errored') : null,
    el('span', {}, 'CPU ', el('b', { text: fmtCpu(cpu) })),
    el('span', {}, 'memory ', el('b', { text: fmtBytes(mem) }))
  ].filter(Boolean))
}

function actionButtons (app, list) {
  const active = list.some((i) => ['online', 'launching', 'waiting-restart', 'stopping'].includes(i.status))
  const b = (act, label, cls) => el('button', {
    type: 'button', class: cls || '', text: label, 'data-act': act, 'data-app': app,
    on: { click: (e) => { e.stopPropagation(); ask(act, app, list.length) } }
  })
  return el('span', { class: 'acts' },
    b('reload', 'Reload'), b('restart', 'Restart'),
    active ? b('stop', 'Stop') : b('start', 'Start'),
    b('scale', 'Scale'), b('reset', 'Reset'), b('flush', 'Flush logs'), b('delete', 'Delete', 'danger'))
}

function cell (cls, text, title) { return el('td', title ? { class: cls, text, title } : { class: cls, text }) }

function instanceRow (i) {
  const sp = sparkOf(i.id)
  const cpuCanvas = el('canvas', { 'data-spark': 'cpu' })
  const memCanvas = el('canvas', { 'data-spark': 'memory' })
  const restarts = el('td', { class: 'restarts' }, String(i.restarts),
    reasonsText(i.restart_reasons) ? el('span', { class: 'reasons', text: ' (' + reasonsText(i.restart_reasons) + ')' }) : null)
  const why = i.errored_reason || (i.last_exit && !i.last_exit.expected ? lastExitText(i.last_exit) : '')
  const tr = el('tr', { class: 'inst' + (state.selected === i.id ? ' sel' : ''), 'data-id': String(i.id), 'data-app': i.name },
    cell('opt mono', String(i.id)),
    el('td', { class: 'name' }, i.name + (i.instance ? ' #' + i.instance : '')),
    el('td', { class: 'status' }, el('span', { class: 'badge s-' + i.status, text: i.status, title: why || '' })),
    cell('pid mono', i.pid == null ? '–' : String(i.pid)),
    cell('uptime', i.pid == null ? '–' : fmtDur(i.uptime_ms)),
    restarts,
    el('td', { class: 'num cpu' }, el('span', { text: fmtCpu(i.pid == null ? null : i.cpu) }), cpuCanvas),
    el('td', { class: 'num memory' }, el('span', { text: fmtBytes(i.pid == null ? null : i.memory) }), memCanvas),
    cell('num lag', fmtLag(i.node && i.node.event_loop_lag_ms)),
    cell('num heap opt', i.node ? fmtBytes(i.node.heap_used) : '–'),
    cell('num handles opt', i.node ? String(i.node.active_handles) : '–'),
    cell('num conns', i.connections ? String(i.connections.open) : '–', i.connections ? i.connections.accepted + ' accepted since start' : ''))
  tr.addEventListener('click', () => openDetail(i.id))
  requestAnimationFrame(() => { Plot.spark(cpuCanvas, sp.cpu); Plot.spark(memCanvas, sp.memory) })
  return tr
}

function lastExitText (e) {
  if (!e) return ''
  return e.signal ? 'killed by ' + e.signal : e.code != null ? 'exited with code ' + e.code : 'exited'
}

function render () {
  renderSummary()
  renderNamespaces()
  const byApp = new Map()
  for (const i of state.instances) {
    if (!byApp.has(i.name)) byApp.set(i.name, [])
    byApp.get(i.name).push(i)
  }
  const rows = []
  for (const [app, list] of byApp) {
    const shown = list.filter(visible)
    if (!shown.length) continue
    const first = list[0]
    const meta = first.mode + ' · ' + list.length + ' instance' + (list.length === 1 ? '' : 's') + (first.namespace && first.namespace !== 'default' ? ' · ' + first.namespace : '')
    rows.push(el('tr', { class: 'app', 'data-app': app },
      el('td', { colSpan: 11 }, app, el('span', { class: 'meta', text: meta }), actionButtons(app, list))))
    for (const i of shown) rows.push(instanceRow(i))
  }
  $('#rows').replaceChildren(...rows)
  $('#empty').hidden = state.instances.length > 0
  const sel = $('#log-app')
  const have = new Set([...sel.options].map((o) => o.value))
  for (const app of byApp.keys()) if (!have.has(app)) sel.append(el('option', { value: app, text: app }))
}

function applyTick (t) {
  for (const f of t.figures) {
    const i = state.instances.find((x) => x.id === f.id)
    if (!i) continue
    i.cpu = f.cpu; i.memory = f.memory; i.uptime_ms = f.uptime_ms
    if (i.node) { i.node.event_loop_lag_ms = f.lag ?? i.node.event_loop_lag_ms; i.node.heap_used = f.heap ?? i.node.heap_used }
    const sp = sparkOf(f.id)
    sp.cpu.push(f.cpu); sp.memory.push(f.memory)
    if (sp.cpu.length > SPARK) { sp.cpu.shift(); sp.memory.shift() }
    const tr = document.querySelector('tr.inst[data-id="' + f.id + '"]')
    if (tr) {
      $('.cpu span', tr).textContent = fmtCpu(f.cpu)
      $('.memory span', tr).textContent = fmtBytes(f.memory)
      $('.uptime', tr).textContent = fmtDur(f.uptime_ms)
      $('.lag', tr).textContent = fmtLag(f.lag)
      $('.heap', tr).textContent = f.heap == null ? '–' : fmtBytes(f.heap)
      Plot.spark($('canvas[data-spark=cpu]', tr), sp.cpu)
      Plot.spark($('canvas[data-spark=memory]', tr), sp.memory)
    }
    if (state.detail && state.detail.info.id === f.id) {
      const s = state.detail.fine
      const sec = Math.floor(t.time / 1000)
      if (!s.t.length || s.t[s.t.length - 1] < sec) {
        s.t.push(sec); s.cpu.push(f.cpu); s.memory.push(f.memory); s.heap.push(f.heap); s.lag.push(f.lag)
        if (s.t.length > 900) for (const k of ['t', 'cpu', 'memory', 'heap', 'lag']) s[k].shift()
      }
      drawCharts()
    }
  }
  renderSummary()
}

// ---- one instance -------------------------------------------------------
async function openDetail (id) {
  state.selected = id
  document.querySelectorAll('tr.inst.sel').forEach((r) => r.classList.remove('sel'))
  const tr = document.querySelector('tr.inst[data-id="' + id + '"]')
  if (tr) tr.classList.add('sel')
  await loadDetail(id)
}

async function loadDetail (id) {
  const r = await fetch('/api/instances/' + id)
  if (!r.ok) { closeDetail(); return }
  state.detail = await r.json()
  renderDetail()
}

function closeDetail () {
  state.selected = null
  state.detail = null
  $('#detail').hidden = true
  document.querySelectorAll('tr.inst.sel').forEach((r) => r.classList.remove('sel'))
}

function fact (k, v) { return el('div', {}, el('span', { text: k }), v) }

function renderDetail () {
  const d = state.detail
  if (!d) return
  const i = d.info
  $('#detail').hidden = false
  $('#detail-title').textContent = i.name + (i.instance ? ' #' + i.instance : '') + ' (id ' + i.id + ')'
  $('#detail-facts').replaceChildren(...[
    fact('status', el('span', { class: 'badge s-' + i.status, text: i.status })),
    fact('pid', i.pid == null ? '–' : String(i.pid)),
    fact('uptime', i.pid == null ? '–' : fmtDur(i.uptime_ms)),
    fact('restarts', String(i.restarts) + (reasonsText(i.restart_reasons) ? ' (' + reasonsText(i.restart_reasons) + ')' : '')),
    fact('mode', i.mode),
    fact('namespace', i.namespace),
    fact('last exit', i.last_exit ? lastExitText(i.last_exit) + ' at ' + fmtTime(i.last_exit.at) : '–'),
    fact('listening', i.listening.length ? i.listening.join(', ') : '–'),
    fact('memory limit', i.memory_limit ? fmtBytes(i.memory_limit) : '–'),
    i.errored_reason ? fact('errored', i.errored_reason) : null].filter(Boolean))
  const tl = d.events.filter((e) => !['message', 'listening'].includes(e.type)).slice(-200).reverse()
  $('#timeline').replaceChildren(...tl.map((e) => el('li', { class: e.type === 'exit' && !e.expected ? 'crash' : e.type },
    el('span', { class: 't', text: fmtTime(e.time) }), e.text)))
  $('#crashes').replaceChildren(...(d.crashes.length ? d.crashes.slice().reverse().map((c) => el('div', { class: 'crash-rec' },
    el('div', { class: 'h', text: fmtTime(c.event.time) + ' — ' + crashText(c.event) }),
    el('div', { class: 'loglines' }, ...c.lines.map(logLine)))) : [el('p', { class: 'muted', text: 'No crash recorded since the dashboard was turned on.' })]))
  drawCharts()
}

function crashText (e) {
  return (e.signal ? 'killed by ' + e.signal : e.code != null ? 'exited with code ' + e.code : 'exited') + (e.pid ? ' (pid ' + e.pid + ')' : '')
}

function drawCharts () {
  const d = state.detail
  if (!d || $('#detail').hidden) return
  const s = state.range === 'fine' ? d.fine : d.coarse
  const step = state.range === 'fine' ? 1 : 60
  const digits = (top) => top < 1 ? 2 : top < 4 ? 1 : 0
  const fmts = { cpu: (v, top) => v.toFixed(digits(top)) + '%', memory: fmtBytes, heap: fmtBytes, lag: (v, top) => v.toFixed(digits(top)) + ' ms' }
  document.querySelectorAll('canvas.chart').forEach((c) => {
    const k = c.dataset.series
    Plot.line(c, s.t, s[k] || [], { step, format: fmts[k] })
  })
}

// ---- logs ---------------------------------------------------------------
function logLine (l) {
  const kind = l.stream || 'pmr'
  return el('div', { class: 'line ' + kind },
    el('span', { class: 't', text: fmtTime(l.time) }),
    el('span', { class: 'k', text: kind }),
    el('span', { class: 'a', text: l.app + (l.id != null ? '/' + l.id : '') }),
    l.line != null ? l.line : l.text)
}

function logShown (l) {
  const kind = l.stream || 'pmr'
  if (kind === 'out' && !$('#log-out').checked) return false
  if (kind === 'err' && !$('#log-err').checked) return false
  const app = $('#log-app').value
  if (app && l.app !== app) return false
  const f = $('#log-filter').value.trim().toLowerCase()
  return !f || (l.line || l.text || '').toLowerCase().includes(f)
}

function renderLogs () {
  const shown = state.logs.filter(logShown)
  const box = $('#log-lines')
  box.replaceChildren(...shown.slice(-1000).map(logLine))
  box.scrollTop = box.scrollHeight
  $('#log-count').textContent = shown.length + ' of ' + state.logs.length + ' kept lines'
}

function addLog (l) {
  state.logs.push(l)
  if (state.logs.length > MAX_LOG_LINES) state.logs.splice(0, state.logs.length - MAX_LOG_LINES)
  if (state.paused || $('#logs').hidden || !logShown(l)) return
  const box = $('#log-lines')
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 30
  box.append(logLine(l))
  while (box.childElementCount > 1000) box.firstElementChild.remove()
  if (atEnd) box.scrollTop = box.scrollHeight
}

async function loadLogs () {
  const r = await fetch('/api/logs?lines=200')
  if (!r.ok) return
  const body = await r.json()
  const merged = [...body.lines, ...body.events].sort((a, b) => a.time - b.time)
  const seen = new Set(state.logs.map((l) => l.seq + '/' + l.id + '/' + l.line))
  state.logs = [...merged.filter((l) => !seen.has(l.seq + '/' + l.id + '/' + l.line)), ...state.logs].slice(-MAX_LOG_LINES)
  renderLogs()
}

function download () {
  const text = state.logs.filter(logShown).map((l) =>
    new Date(l.time).toISOString() + ' ' + (l.stream || 'pmr') + ' ' + l.app + '/' + l.id + ' ' + (l.line != null ? l.line : l.text)).join('\n') + '\n'
  const a = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/plain' })), download: 'pmr-logs.txt' })
  document.body.append(a); a.click(); a.remove()
  setTimeout(() => URL.revokeObjectURL(a.href), 1000)
}

// ---- actions ------------------------------------------------------------
const VERBS = {
  reload: ['Reload', 'Replace each instance of {app} once its replacement is ready (zero downtime in cluster mode).'],
  restart: ['Restart', 'Stop every instance of {app} and start it again (a brief gap in service).'],
  stop: ['Stop', 'Stop every instance of {app}. It stays in the list; Start brings it back.'],
  start: ['Start', 'Start the stopped instances of {app}.'],
  scale: ['Scale', 'Run this many instances of {app} (4, +1 or -1):'],
  reset: ['Reset', 'Zero the restart counts of {app}.'],
  flush: ['Flush logs', 'Empty the log files of {app} in place.'],
  delete: ['Delete', 'Stop {app} and remove it from the list.']
}

function ask (act, app, count) {
  const [title, text] = VERBS[act]
  const d = $('#confirm')
  $('#confirm-title').textContent = title + ' ' + app + '?'
  $('#confirm-text').textContent = text.replace('{app}', app)
  $('#confirm-ok').textContent = title
  $('#confirm-ok').className = act === 'delete' || act === 'stop' ? 'primary danger' : 'primary'
  $('#scale-label').hidden = act !== 'scale'
  $('#scale-to').value = String(count)
  d.returnValue = ''
  d.onclose = () => { if (d.returnValue === 'ok') run(act, app, act === 'scale' ? $('#scale-to').value.trim() : undefined) }
  d.showModal()
  if (act === 'scale') $('#scale-to').select()
}

async function run (act, app, to) {
  const card = el('div', { class: 'op', 'data-act': act, 'data-app': app },
    el('div', { class: 'title' }, VERBS[act][0] + ' ' + app + (to ? ' to ' + to : '') + '…',
      el('button', { type: 'button', text: '×', title: 'dismiss', on: { click: () => card.remove() } })),
    el('div', { class: 'steps' }), el('div', { class: 'result' }))
  $('#progress').append(card)
  const op = { app, card }
  state.ops.push(op)
  try {
    const r = await fetch('/api/action', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: act, target: app, to })
    })
    const body = await r.json().catch(() => ({ error: r.status + ' ' + r.statusText }))
    if (r.ok) {
      card.classList.add('ok')
      const n = body.instances.length
      $('.result', card).textContent = 'done' + (n ? ': ' + n + ' instance' + (n === 1 ? '' : 's') : '') + (body.notices.length ? ' — ' + body.notices.join('; ') : '')
      setTimeout(() => card.remove(), 8000)
    } else {
      card.classList.add('failed')
      $('.result', card).textContent = body.error + (body.code ? ' (' + body.code + ')' : '')
    }
  } catch (e) {
    card.classList.add('failed')
    $('.result', card).textContent = String(e)
  } finally {
    // The reply and the feed travel apart: the last steps may come just after it.
    setTimeout(() => { state.ops = state.ops.filter((o) => o !== op) }, 2000)
  }
}

function onEvent (e) {
  for (const op of state.ops) {
    if (op.app === e.app) $('.steps', op.card).append(el('div', { class: 'step', text: fmtTime(e.time) + ' ' + (e.instance != null ? '#' + e.instance + ' ' : '') + e.text }))
  }
  addLog(e)
  if (e.type === 'exit' && !e.expected) {
    const tr = document.querySelector('tr.inst[data-id="' + e.id + '"]')
    if (tr) { tr.classList.remove('flash'); void tr.offsetWidth; tr.classList.add('flash') }
  }
  if (state.detail && state.detail.info.id === e.id) {
    clearTimeout(onEvent.timer)
    onEvent.timer = setTimeout(() => loadDetail(e.id), 300)
  }
}

// ---- the live feed ------------------------------------------------------
function connect () {
  const live = $('#live')
  const src = new EventSource('/api/events?logs=true')
  const on = (name, fn) => src.addEventListener(name, (m) => fn(JSON.parse(m.data)))
  on('hello', (h) => {
    state.instances = h.instances
    state.sparks = new Map(Object.entries(h.sparks).map(([id, s]) => [Number(id), { cpu: s.cpu.slice(), memory: s.memory.slice() }]))
    live.textContent = 'live'; live.className = 'live on'
    document.body.dataset.live = 'on'
    render()
    loadLogs()
  })
  on('list', (l) => {
    state.instances = l.instances
    render()
    if (state.selected != null && !state.instances.some((i) => i.id === state.selected)) closeDetail()
  })
  on('tick', applyTick)
  on('event', onEvent)
  on('log', addLog)
  on('lagged', (n) => addLog({ app: 'pmr', id: null, time: Date.now(), text: n + ' lines or events were skipped (the page fell behind)' }))
  src.onerror = () => {
    document.body.dataset.live = 'off'
    if (src.readyState === EventSource.CLOSED) {
      live.textContent = 'disconnected: run pmr dashboard for a new link'
    } else {
      live.textContent = 'reconnecting'
    }
    live.className = 'live off'
  }
}

// ---- wiring -------------------------------------------------------------
function showTab (logs) {
  $('#tab-procs').classList.toggle('on', !logs)
  $('#tab-logs').classList.toggle('on', logs)
  $('#procs').hidden = logs
  $('#logs').hidden = !logs
  if (logs) renderLogs()
}

$('#tab-procs').addEventListener('click', () => showTab(false))
$('#tab-logs').addEventListener('click', () => showTab(true))
$('#filter').addEventListener('input', (e) => { state.filter = e.target.value; render() })
$('#ns').addEventListener('change', (e) => { state.ns = e.target.value; render() })
for (const id of ['#log-filter', '#log-app', '#log-out', '#log-err']) $(id).addEventListener('input', renderLogs)
$('#log-pause').addEventListener('click', (e) => {
  state.paused = !state.paused
  e.target.textContent = state.paused ? 'Resume' : 'Pause'
  if (!state.paused) renderLogs()
})
$('#log-download').addEventListener('click', download)
$('#detail-close').addEventListener('click', closeDetail)
$('#range-fine').addEventListener('click', () => { state.range = 'fine'; $('#range-fine').classList.add('on'); $('#range-coarse').classList.remove('on'); drawCharts() })
$('#range-coarse').addEventListener('click', () => { state.range = 'coarse'; $('#range-coarse').classList.add('on'); $('#range-fine').classList.remove('on'); drawCharts() })
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('#confirm').open) closeDetail() })
window.addEventListener('resize', drawCharts)
$('#home').textContent = location.host
connect()
