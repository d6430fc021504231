'use strict'
// pmr's JS API. See index.d.ts for the types and README "JS API" for examples.
module.exports = require('./lib/api.js')
