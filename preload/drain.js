'use strict'
// Loaded by pmr into every Node.js app (`node --require <this file> app.js`).
// When pmr asks an instance to stop (its kill signal, SIGINT by default), the
// instance must stop taking new connections at once and finish what it has
// without cutting a keep-alive client off mid-request:
//
// - every server stops listening (the supervisor keeps the port open, so new
//   connections go to the other or the replacement worker);
// - every response from then on carries `Connection: close`, so clients move
//   their next request to a fresh connection;
// - a keep-alive connection with no request in progress is closed only after
//   it has stayed idle for a grace period;
// - in a cluster worker, upgraded connections (websockets) stay until they
//   close, or are ended cleanly just before pmr's kill_timeout runs out, so
//   their clients reconnect (to the other or the new workers). Node's own server.close() closes
//   "idle" connections at once, and a connection looks idle to Node while
//   the client's next request is still unread in the socket buffer: that
//   request would be reset. The grace period avoids exactly that.
//
// When the last connection is gone the process ends the way the signal would
// have ended it. An app that handles the signal itself stays in charge: the
// drain still happens, but the app decides when to exit.

const { isMainThread } = require('node:worker_threads')

if (isMainThread && !process.env.PMR_NO_DRAIN) {
  const net = require('node:net')
  const http = require('node:http')

  const GRACE_MS = Number(process.env.PMR_DRAIN_IDLE_MS) || 500
  const KILL_TIMEOUT_MS = Number(process.env.PMR_KILL_TIMEOUT_MS) || 1600
  // Ends upgraded connections this long before kill_timeout.
  const UPGRADED_MARGIN_MS = 200
  const SIGNALS = [...new Set(['SIGINT', 'SIGTERM', process.env.PMR_KILL_SIGNAL].filter(Boolean))]
  const servers = new Set()
  const upgraded = new Set()
  // Filled when the drain starts: socket -> last time a request or a
  // response moved on it. Nothing is tracked before, so an app that is not
  // stopping pays nothing per connection or per request.
  const sockets = new Map()
  let draining = false
  let sweeper = null

  const touch = (socket) => { if (sockets.has(socket)) sockets.set(socket, Date.now()) }

  const originalListen = net.Server.prototype.listen
  net.Server.prototype.listen = function (...args) {
    servers.add(this)
    return originalListen.apply(this, args)
  }

  // An HTTP server's open connections: Node keeps them in a list of its own
  // (behind a symbol; Node 20, the oldest pmr supports, has it).
  function connectionsOf (server) {
    const sym = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections')
    const list = sym && server[sym]
    if (!list || typeof list.all !== 'function') return null
    return list.all().map((c) => c.socket).filter(Boolean)
  }

  // HTTP connections are drained and waited for; upgraded ones (a cluster
  // worker's websockets, which the connection counts below see) are waited
  // for until they close or kill_timeout is near; other protocols (raw TCP)
  // have no way to be told to go elsewhere, and end with the process as
  // they would without pmr.
  function track (socket, now) {
    if (sockets.has(socket) || socket.destroyed) return
    sockets.set(socket, now)
    socket.once('close', () => {
      sockets.delete(socket)
      maybeDone()
    })
  }

  function onDrainRequest (req, res) {
    track(req.socket, Date.now())
    touch(req.socket)
    res.shouldKeepAlive = false
    res.once('finish', () => touch(req.socket))
  }

  // Node 19+ closes "idle" connections inside server.close(); during a drain
  // an app's own server.close() must not reset a request still in the socket
  // buffer either, so idle connections are left to the sweeper.
  const originalCloseIdle = http.Server.prototype.closeIdleConnections
  http.Server.prototype.closeIdleConnections = function (...args) {
    if (draining) return
    return originalCloseIdle.apply(this, args)
  }

  const busy = (socket) => {
    const res = socket._httpMessage
    return Boolean(res && !res.finished)
  }

  function sweep () {
    const now = Date.now()
    for (const [socket, last] of sockets) {
      if (socket.destroyed) continue
      // Upgraded (a WebSocket): not an HTTP connection to drain; waited for
      // if it is a worker's (ended before kill_timeout), else let go.
      if (!socket.parser && !socket._httpMessage) {
        if (!upgraded.has(socket)) sockets.delete(socket)
        continue
      }
      if (busy(socket)) {
        // In progress: its response will carry Connection: close.
        if (!socket._httpMessage.headersSent) socket._httpMessage.shouldKeepAlive = false
        continue
      }
      if (now - last >= GRACE_MS) socket.destroy()
    }
    maybeDone()
  }

  let exitSignal = null
  function maybeDone () {
    if (!draining || exitSignal === null) return
    for (const s of servers) if (s.listening) return
    if (sockets.size > 0) return
    const sig = exitSignal
    exitSignal = null
    if (sweeper) clearInterval(sweeper)
    // End the way the signal would have ended us without a handler.
    for (const s of SIGNALS) process.removeListener(s, onSignal)
    process.kill(process.pid, sig)
  }

  function drain () {
    if (draining) return
    draining = true
    const now = Date.now()
    for (const s of servers) {
      if (s instanceof http.Server) {
        const open = connectionsOf(s)
        if (open) for (const socket of open) track(socket, now)
        s.prependListener('request', onDrainRequest)
      }
      if (s.listening) {
        // net's close, not http's: it stops accepting and leaves connections be.
        net.Server.prototype.close.call(s, () => maybeDone())
      }
    }
    for (const socket of sockets.keys()) {
      const res = socket._httpMessage
      if (res && !res.headersSent) res.shouldKeepAlive = false
    }
    // A cluster worker's upgraded connections: its server-side sockets that
    // no HTTP parser serves any more. Looked up now, among the process's
    // handles, so that no connection pays for being tracked before.
    const handles = require('node:cluster').isWorker && typeof process._getActiveHandles === 'function' ? process._getActiveHandles() : []
    for (const socket of handles) {
      if (socket instanceof net.Socket && socket.server instanceof http.Server && !socket.parser && !socket._httpMessage && !socket.destroyed) {
        upgraded.add(socket)
        track(socket, now)
      }
    }
    if (upgraded.size > 0) {
      const t = setTimeout(() => { for (const s of upgraded) s.end() }, Math.max(0, KILL_TIMEOUT_MS - UPGRADED_MARGIN_MS))
      t.unref()
    }
    sweeper = setInterval(sweep, Math.max(20, Math.min(100, GRACE_MS / 5)))
    sweeper.unref()
  }

  function onSignal (sig) {
    try {
      drain()
    } catch (err) {
      process.emitWarning(`pmr drain failed: ${err && err.message}`)
    }
    // The app listens for this signal itself: it decides when to exit.
    if (process.listenerCount(sig) > 1) return
    exitSignal = sig
    maybeDone()
  }

  for (const s of SIGNALS) process.on(s, onSignal)

  // With shutdown_with_message pmr sends this before the app's 'shutdown'
  // message: drain, and let the app's own handler decide when to exit.
  // (An 'internalMessage' listener, unlike 'message', does not keep the IPC
  // channel, and so the process, alive.)
  process.on('internalMessage', (msg) => {
    if (msg && msg.cmd === 'NODE_PMR' && msg.act === 'drain') {
      try {
        drain()
      } catch (err) {
        process.emitWarning(`pmr drain failed: ${err && err.message}`)
      }
    }
  })
}

// Figures for `pmr list`, `pmr monit` and the Prometheus metrics, which
// only the app's own runtime knows: how late the event loop runs a timer,
// the V8 heap, and the handles keeping the loop alive. Sent as an internal
// message (a `NODE_` cmd, which the app's 'message' listeners never see) on
// an unref'd timer, so reporting never keeps an app alive. pmr answers a
// report with the pace it wants when that differs from this one.
if (isMainThread && typeof process.send === 'function') {
  const v8 = require('node:v8')
  const MIN_INTERVAL_MS = 100
  const noop = () => {}
  let interval = 1000
  let timer = null
  let probe = null
  let expected = 0
  let lag = 0

  // Reports fall on multiples of the interval in wall-clock time, so the
  // instances of a machine report together and pmr wakes once for all of
  // them rather than once per instance.
  const nextReport = () => {
    const now = Date.now()
    timer = setTimeout(report, interval - (now % interval))
    timer.unref()
  }

  // The lag is measured apart, at a moment of this process's own: at the
  // shared moment of the reports, every instance of a busy machine wakes at
  // once and they would all see each other's start-up as lag.
  const measure = () => {
    const now = performance.now()
    // A blocked loop runs this timer late by as long as it was blocked.
    lag = Math.max(0, now - expected)
    expected = now + interval
    probe = setTimeout(measure, interval)
    probe.unref()
  }

  const report = () => {
    nextReport()
    if (!process.connected) return
    const heap = v8.getHeapStatistics()
    const handles = typeof process._getActiveHandles === 'function' ? process._getActiveHandles().length : 0
    try {
      // With a callback, a channel closing meanwhile is not an 'error' event.
      process.send({
        cmd: 'NODE_PMR',
        act: 'metrics',
        interval,
        lag: Math.round(lag * 100) / 100,
        heap_used: heap.used_heap_size,
        heap_total: heap.total_heap_size,
        handles,
      }, noop)
    } catch {}
  }

  const schedule = (ms) => {
    clearTimeout(timer)
    clearTimeout(probe)
    interval = ms
    nextReport()
    const first = Math.random() * ms
    expected = performance.now() + first
    probe = setTimeout(measure, first)
    probe.unref()
  }

  schedule(interval)

  // Connections that began and ended, for pmr's least-connections policy
  // and the counts in `describe`: pmr counts what it hands a worker, the
  // worker says what it accepted (a kernel-steered socket's connections
  // never pass through pmr) and what closed, in batches (one message per
  // burst, never one per connection), on an unref'd timer. Closes are read
  // off Node's own count of each server's connections, every 100 ms while
  // some are open: a listener on every connection cost 5 % of the
  // requests a worker serves over short connections.
  // (Node removes NODE_UNIQUE_ID from the environment before preloads run.)
  if (require('node:cluster').isWorker) {
    const net = require('node:net')
    const FLUSH_MS = 20
    // While connections are open, how often their closes are looked for.
    const POLL_MS = 100
    const counted = Symbol('pmr.counted')
    // The servers that called listen(): Node counts each one's open
    // connections (`_connections`), so a connection costs one increment
    // here and no listener of its own.
    const listening = new Set()
    let accepted = 0
    // Connections setupWorker emits on a server that never listened, which
    // Node does not count: counted here as they close.
    let handedOpen = 0
    let sentOpened = 0
    let sentClosed = 0
    let flush = null
    const openNow = () => {
      let n = handedOpen
      for (const s of listening) n += s._connections || 0
      return n
    }
    const sendCounts = () => {
      flush = null
      const open = openNow()
      const closedTotal = Math.max(sentClosed, accepted - open)
      const counts = { cmd: 'NODE_PMR', act: 'conns', opened: accepted - sentOpened, closed: closedTotal - sentClosed }
      sentOpened = accepted
      sentClosed = closedTotal
      if (open > 0) later(POLL_MS)
      if ((counts.opened === 0 && counts.closed === 0) || !process.connected) return
      try {
        process.send(counts, noop)
      } catch {}
    }
    const later = (ms = FLUSH_MS) => {
      if (flush === null) {
        flush = setTimeout(sendCounts, ms)
        flush.unref()
      }
    }
    const onConnection = () => {
      accepted++
      later()
    }
    const onHandedClose = () => {
      handedOpen--
      later()
    }
    const onHanded = (socket) => {
      accepted++
      handedOpen++
      socket.on('close', onHandedClose)
      later()
    }
    const listen = net.Server.prototype.listen
    net.Server.prototype.listen = function (...args) {
      if (!this[counted]) {
        this[counted] = true
        this.on('connection', onConnection)
        this.on('close', () => listening.delete(this))
      }
      listening.add(this)
      return listen.apply(this, args)
    }
    stickyWorker(counted, onHanded)
    process.on('internalMessage', (msg, handle) => {
      if (msg && msg.cmd === 'NODE_PMR' && msg.act === 'overflow' && handle) shareOverflow(msg.key, handle, listening)
    })
  }

  process.on('internalMessage', (msg) => {
    if (msg && msg.cmd === 'NODE_PMR' && msg.act === 'metrics' && Number.isFinite(msg.interval) &&
        msg.interval >= MIN_INTERVAL_MS && msg.interval !== interval) {
      schedule(msg.interval)
    }
  })
}

// The Socket.IO docs' setup for `@socket.io/pm2`: the worker calls
// `@socket.io/sticky`'s setupWorker(io) and never listen(), because the
// process manager's daemon listens and hands each connection over as a
// `sticky:connection` message with its first bytes. When an app does that
// (its server has not called listen() once its main module has run), ask
// pmr to serve the port the way @socket.io/pm2 does: the app's PORT, else
// PM2_PORT, else 8080. Connections handed over this way are counted like
// the others, and belong to the server for the drain.
function stickyWorker (listenCalled, onHanded) {
  const Module = require('node:module')
  const load = Module._load
  const wrapped = Symbol('pmr.sticky')
  Module._load = function (request, ...rest) {
    const exports = load.call(this, request, ...rest)
    if (request === '@socket.io/sticky' && exports && typeof exports.setupWorker === 'function' && !exports[wrapped]) {
      const setupWorker = exports.setupWorker
      exports.setupWorker = function (io, ...more) {
        const result = setupWorker.call(this, io, ...more)
        const server = io && io.httpServer
        if (server) setImmediate(() => askForPort(server))
        reportJoins(io)
        return result
      }
      exports[wrapped] = true
    }
    return exports
  }
  // setupWorker reports each Engine.IO session at its handshake; its
  // client is reached by a broadcast only once it has joined a namespace,
  // a round trip later. pmr's reload waits for replaced workers' clients to
  // be back, and so needs to hear of the join too (once per session).
  const joinReported = Symbol('pmr.joined')
  const onJoin = (socket) => {
    const conn = socket && socket.conn
    if (!conn || conn[joinReported] || !process.connected) return
    conn[joinReported] = true
    try {
      process.send({ cmd: 'NODE_PMR', act: 'joined', sid: conn.id }, () => {})
    } catch {}
  }
  const reportJoins = (io) => {
    if (!io || typeof io.on !== 'function') return
    if (io._nsps instanceof Map) for (const nsp of io._nsps.values()) nsp.on('connection', onJoin)
    io.on('new_namespace', (nsp) => nsp.on('connection', onJoin))
  }
  const askForPort = (server) => {
    if (server[listenCalled] || !process.connected) return
    server.on('connection', (socket) => {
      if (!socket.server) socket.server = server
      onHanded(socket)
    })
    const port = [process.env.PORT, process.env.PM2_PORT].map(Number).find((p) => Number.isInteger(p) && p > 0 && p < 65536) || 8080
    try {
      process.send({ cmd: 'NODE_PMR', act: 'sticky', port }, () => {})
    } catch {}
  }
}

// A kernel-steered address (round-robin) has, beside each worker's own
// socket, one that every worker accepts from: the kernel puts connections
// there while they arrive faster than turns are worth (see pmr's
// src/cluster/reuseport.rs), so that a worker with nothing to do never
// waits while the other's queue holds connections. pmr sends it after the
// server's own socket; it feeds that server's connection handler, closes
// with the server's socket (a draining worker takes no more from it), and
// pmr counts the worker as accepting from it only once told so here.
function shareOverflow (key, handle, listening) {
  const addressOf = (h) => {
    const out = {}
    return h && typeof h.getsockname === 'function' && h.getsockname(out) === 0 ? `${out.address}|${out.port}` : null
  }
  const wanted = addressOf(handle)
  let server = null
  for (const s of listening) if (s._handle && addressOf(s._handle) === wanted) server = s
  const own = server && server._handle
  if (!wanted || !own || typeof handle.listen !== 'function' || handle.listen(511) !== 0) {
    handle.close()
    return
  }
  // Node's own handler, which finds its server on the handle (as on the
  // server's own socket): no extra call per connection.
  const owner = Object.getOwnPropertySymbols(own).find((s) => s.description === 'owner_symbol')
  if (owner && typeof own.onconnection === 'function') {
    handle[owner] = server
    handle.onconnection = own.onconnection
  } else {
    handle.onconnection = (err, client) => {
      const h = server._handle
      if (h && typeof h.onconnection === 'function') h.onconnection(err, client)
      else if (client) client.close()
    }
  }
  const close = own.close
  own.close = function (...args) {
    handle.close()
    return close.apply(this, args)
  }
  try {
    process.send({ cmd: 'NODE_PMR', act: 'overflow', key }, () => {})
  } catch {}
}

// A cluster worker whose IPC channel closes without a `disconnect` from
// pmr (the daemon and its keeper both died) would exit at once: Node's
// cluster/child.js exits on an unexpected disconnect unless
// `worker.exitedAfterDisconnect` is already true. It keeps serving the
// connections it has instead; the next daemon replaces it gracefully.
function surviveChannelLoss () {
  const cluster = require('node:cluster')
  if (!cluster.isWorker || !cluster.worker) return
  process.prependListener('disconnect', () => {
    if (cluster.worker.exitedAfterDisconnect === undefined) {
      cluster.worker.exitedAfterDisconnect = true
    }
  })
}
if (isMainThread && !process.env.PMR_NO_DRAIN) surviveChannelLoss()

// Per-instance HTTP health checks (issue 20): apart, in its own file.
require('./health.js')
