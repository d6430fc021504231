'use strict'
// Per-instance HTTP health checks, loaded by preload/drain.js. In cluster
// mode every worker shares one port held by pmr, so a request to that port
// reaches *some* worker and says nothing about one instance. On pmr's
// request (an internal `health-port` message, sent only to apps that have an
// HTTP health check of a path), this opens a private listener on 127.0.0.1
// on a port of its own (`exclusive`, so it bypasses the cluster primary) and
// hands each of its connections to the app's own HTTP server, the way Node's
// cluster hands a connection to a worker: `server.emit('connection')`. pmr
// then GETs the check path on that port: the answer comes from this very
// instance's request handlers. Apps without such a check pay nothing but
// the wrapped listen() below.

const { isMainThread } = require('node:worker_threads')

if (isMainThread && typeof process.send === 'function') {
  const net = require('node:net')
  const http = require('node:http')
  const noop = () => {}
  const servers = []
  let own = null
  let ownPort = null

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

  const answer = (port) => {
    try {
      process.send({ cmd: 'NODE_PMR', act: 'health-port', port }, noop)
    } catch {}
  }

  process.on('internalMessage', (msg) => {
    if (!msg || msg.cmd !== 'NODE_PMR' || msg.act !== 'health-port') return
    if (!target()) return answer(null)
    if (ownPort !== null) return answer(ownPort)
    if (own !== null) return // opening: its 'listening' answers
    own = net.createServer((socket) => {
      const server = target()
      if (server) server.emit('connection', socket)
      else socket.destroy()
    })
    own.on('error', () => {
      own = null
      answer(null)
    })
    own.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      ownPort = own.address().port
      answer(ownPort)
    })
    // The check port never keeps the app alive.
    own.unref()
  })
}
