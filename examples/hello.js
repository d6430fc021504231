'use strict'
// The quick-start app: `npx pmr start examples/hello.js -i max`, then
// `curl localhost:3000`. Each worker answers with its pid.
const http = require('node:http')

const port = Number(process.env.PORT || 3000)
http
  .createServer((req, res) => {
    res.end(`hello from worker ${process.env.NODE_APP_INSTANCE} (pid ${process.pid})\n`)
  })
  .listen(port, () => console.log(`worker ${process.env.NODE_APP_INSTANCE} listening on ${port}`))
