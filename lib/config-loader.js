'use strict'
// Evaluates JavaScript ecosystem files for the CLI and the JS API. Answers
// JSON text and never throws: the CLI calls it from inside the addon, where a
// pending JavaScript exception would be lost.
const { execFileSync } = require('node:child_process')
const { pathToFileURL } = require('node:url')

/** The config a module exports: `module.exports`, or an ES module's default
 * export (or its named exports when it has no default). */
function exported (mod) {
  if (mod && (mod[Symbol.toStringTag] === 'Module' || mod.__esModule)) {
    return mod.default !== undefined ? mod.default : { ...mod }
  }
  return mod
}

/** One line for the user, and the line of the config file it points at. */
function describeError (e, file) {
  const first = String((e && e.message) || e).split('\n')[0]
  const message = e && e.name && e.name !== 'Error' ? `${e.name}: ${first}` : first
  const stack = String((e && e.stack) || '')
  const at = stack.split(file + ':')[1]
  const line = at && /^\d+/.test(at) ? Number(at.match(/^\d+/)[0]) : null
  return { error: message, line }
}

/** An ES module's syntax error carries no position; `node --check` prints
 * it as `file:line` on its first line. */
function syntaxErrorLine (file) {
  try {
    execFileSync(process.execPath, ['--check', file], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  } catch (e) {
    const m = String(e.stderr || '').split('\n')[0].match(/:(\d+)$/)
    if (m) return Number(m[1])
  }
  return null
}

/** Modules that `require` cannot load synchronously (top-level await, or
 * a Node without require(esm)) are imported by a child node; its answer is
 * the last line of its output, anything the config printed comes before. */
function importInChild (file) {
  const code = `
    const describeError = ${describeError.toString()}
    const exported = ${exported.toString()}
    const file = ${JSON.stringify(file)}
    import(${JSON.stringify(pathToFileURL(file).href)}).then(
      (m) => JSON.stringify({ config: exported(m) }),
      (e) => JSON.stringify(describeError(e, file)),
    ).then((answer) => process.stdout.write('\\n' + answer + '\\n'))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
  }).replace(/\n$/, '')
  const cut = out.lastIndexOf('\n')
  const printed = out.slice(0, cut)
  if (printed) process.stdout.write(printed.endsWith('\n') ? printed : printed + '\n')
  return out.slice(cut + 1)
}

/** Evaluates a JS config file for the Rust CLI; answers JSON text and never
 * throws (see the `Host` trait in src/cli/mod.rs). */
function loadConfig (file) {
  try {
    let mod
    try {
      mod = require(file)
    } catch (e) {
      if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
        const answer = JSON.parse(importInChild(file))
        if (answer.error && answer.line === null && /^SyntaxError/.test(answer.error)) answer.line = syntaxErrorLine(file)
        return JSON.stringify(answer)
      }
      throw e
    }
    return JSON.stringify({ config: exported(mod) })
  } catch (e) {
    const answer = describeError(e, file)
    if (answer.line === null && e instanceof SyntaxError) answer.line = syntaxErrorLine(file)
    return JSON.stringify(answer)
  }
}

module.exports = { loadConfig }
