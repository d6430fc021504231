'use strict'
// Per-instance HTTP health checks, loaded by preload/drain.js. In cluster
// mode every worker shares one port held by pmr, so a request to that port
// reaches *some* worker and says nothing about one instance. The check of a
// path is therefore carried out here, inside the instance, on pmr's request
// (an internal `health-check` message with an id, the path and the timeout,
// sent only to apps that have an HTTP health check of a path): a GET to a
// private listener on 127.0.0.1 (`exclusive`, so it bypasses the cluster
// primary) that hands each of its connections to the app's own HTTP server,
// the way Node's cluster hands a connection to a worker:
// `server.emit('connection')`. The answer comes from this very instance's
// request handlers, and goes back as a `health-result` with the same id.
// pmr keeps its own timeout: an instance whose event loop is stuck never
// answers. Doing the request here rather than from the daemon keeps the TCP
// connect and close of every check out of the daemon (Docker's HEALTHCHECK
// runs inside the container for the same reason). Apps without such a
// check pay nothing but the wrapped listen() below.

const { isMainThread } = require('node:worker_threads')

if (isMainThread && typeof process.send === 'function') {
  const net = require('node:net')
  const http = require('node:http')
  const noop = () => {}
  const servers = []
  // The private listener: null, a promise of its port while it opens, or
  // its port.
  let own = null
  let ownPort = null
  // What of a failing answer's body is shown (pmr shows it in `describe`).
  const BODY_SHOWN = 200

  const originalListen = net.Server.prototype.listen
  net.Server.prototype.listen = function (...args) {
    if (this !== own && this instanceof http.Server) servers.push(new WeakRef(this))
    return originalListen.apply(this, args)
  }

  const target = () => {
    for (const ref of servers) {
      const s = ref.deref()
      if (s && s.listening) return s
    }
    return null
  }

  // The private port, opened on first use; calls back with null when it
  // cannot be opened.
  const withOwnPort = (cb) => {
    if (ownPort !== null) return cb(ownPort)
    if (own !== null) return own.once('pmr-port', cb)
    own = net.createServer((socket) => {
      const server = target()
      if (server) server.emit('connection', socket)
      else socket.destroy()
    })
    own.once('pmr-port', cb)
    own.on('error', () => {
      const failed = own
      own = null
      failed.emit('pmr-port', null)
    })
    own.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      ownPort = own.address().port
      own.emit('pmr-port', ownPort)
    })
    // The check port never keeps the app alive.
    own.unref()
  }

  const check = (id, path, timeout) => {
    const reply = (result) => {
      try {
        process.send({ cmd: 'NODE_PMR', act: 'health-result', id, ...result }, noop)
      } catch {}
    }
    if (!target()) return reply({ waiting: true })
    withOwnPort((port) => {
      if (port === null) return reply({ error: 'the instance could not open its check port' })
      let done = false
      // The whole check, not only a quiet socket, is bounded.
      const timer = setTimeout(() => {
        once({ error: `no answer within ${timeout} ms` })
        req.destroy()
      }, timeout)
      const once = (result) => {
        if (done) return
        done = true
        clearTimeout(timer)
        reply(result)
      }
      const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { 'user-agent': 'pmr-health' } }, (res) => {
        const status = res.statusCode
        if (status >= 200 && status < 300) {
          res.resume()
          once({ status })
          return
        }
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          body += chunk
          if (body.length > BODY_SHOWN) res.destroy()
        })
        const end = () => once({ status, body: body.trim().slice(0, BODY_SHOWN) })
        res.on('end', end)
        res.on('close', end)
      })
      req.on('error', (e) => once({ error: e.message }))
    })
  }

  process.on('internalMessage', (msg) => {
    if (!msg || msg.cmd !== 'NODE_PMR' || msg.act !== 'health-check') return
    const timeout = Number.isFinite(msg.timeout) && msg.timeout > 0 ? msg.timeout : 2000
    check(msg.id, typeof msg.path === 'string' ? msg.path : '/', timeout)
  })
}
