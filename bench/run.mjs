#!/usr/bin/env node
// Runs benchmark suites one after another, each in its own child process, and prints one table per
// suite; writes each result to bench/results/<suite>.json.
//   node bench/run.mjs            every suite
//   node bench/run.mjs verify     only the named ones
// A suite is a script that calls report() from lib/suite.mjs (or prints its own table: `prints`).
// To add one, add a line to SUITES.
import { fork, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'

// One line per suite. `prints: true`: the suite prints its own table and writes its own results file
// (no report() over IPC); run.mjs only runs it in turn.
const SUITES = [
  { name: 'verify', file: 'verify.mjs' },
  { name: 'chain', file: 'chain.mjs' },
  { name: 'spawn', file: 'spawn.mjs', prints: true },
  { name: 'di', file: 'di.mjs' },
  { name: 'request', file: 'request.mjs' },
  { name: 'token', file: 'token.mjs' },
  { name: 'policy', file: 'policy.mjs' },
  { name: 'gateway', file: 'gateway.mjs' },
  { name: 'revocation', file: 'revocation.mjs' },
  { name: 'lineage', file: 'lineage.mjs' },
  { name: 'tlog', file: 'tlog.mjs' },
  { name: 'pg', file: 'pg.mjs' },
]

const here = (f) => fileURLToPath(new URL(f, import.meta.url))

/** Runs one suite in a child process; resolves with its report() result (null for `prints` suites). */
function runSuite({ name, file, prints }) {
  return new Promise((resolve, reject) => {
    let result
    const child = prints
      ? spawn(process.execPath, [here(file)], { stdio: ['ignore', 'inherit', 'inherit'] })
      : fork(here(file), [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.on('message', (m) => { result = m })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (result) resolve(result)
      else if (prints && code === 0) resolve(null)
      else reject(new Error(`suite ${name} exited (${signal ?? code}) without a result`))
    })
  })
}

const fmt = {
  'ops/s': (v) => `${Math.round(v).toLocaleString('en-US')} ops/s`,
  x: (v) => (v >= 10 ? `${v.toFixed(1)}×` : `${v.toFixed(2)}×`),
  MB: (v) => `${v.toFixed(1)} MB`,
  ms: (v) => `${v.toFixed(1)} ms`,
  µs: (v) => `${v.toFixed(1)} µs`,
}
const format = (value, unit) => (fmt[unit] ?? String)(value)

function targetText(row) {
  const t = row.target
  if (!t) return ['', '']
  const text = t.min !== undefined ? `≥ ${format(t.min, row.unit)}` : `≤ ${format(t.max, row.unit)}`
  // A suite marks a row `noisy` (with the reason) when its reference measurement is unstable or
  // meaningless (high spread across rounds, a negative difference): such a run decides nothing.
  if (row.noisy) return [text, 'noisy']
  const met = (t.min === undefined || row.value >= t.min) && (t.max === undefined || row.value <= t.max)
  return [text, met ? 'met' : 'MISSED']
}

function printTable(result) {
  const head = ['figure', 'value', 'target', '']
  const body = result.rows.map((row) => [row.figure, format(row.value, row.unit), ...targetText(row)])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd()
  console.log(`\n${result.suite}: ${result.title}`)
  console.log(line(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of body) console.log(line(r))
  for (const row of result.rows) if (row.noisy) console.log(`  · noisy: ${row.figure}: ${row.noisy}`)
  for (const note of result.notes ?? []) console.log(`  · ${note}`)
}

const wanted = process.argv.slice(2)
const suites = wanted.length ? SUITES.filter((s) => wanted.includes(s.name)) : SUITES
if (wanted.length && suites.length !== wanted.length) {
  console.error(`unknown suite; known: ${SUITES.map((s) => s.name).join(', ')}`)
  process.exit(2)
}
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, date: new Date().toISOString() }
console.log(`agentid bench: Node ${machine.node}, ${machine.cores} × ${machine.cpu}`)
mkdirSync(here('results/'), { recursive: true })
let failed = false
for (const suite of suites) {
  console.error(`running ${suite.name} …`)
  try {
    const result = await runSuite(suite)
    if (result) {
      printTable(result)
      writeFileSync(here(`results/${suite.name}.json`), JSON.stringify({ machine, ...result }, null, 2) + '\n')
    }
  } catch (error) {
    failed = true
    console.error(`suite ${suite.name} failed: ${error.message}`)
  }
}
console.log(`\nresults: bench/results/<suite>.json`)
process.exitCode = failed ? 1 : 0
