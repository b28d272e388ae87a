// CPU time (not wall time) of one thread per call, from `perf record -g -e cpu-clock` samples of it
// (spawn-http-cpu.mjs with BENCH_PERF=<dir> writes them for the issuer's event loop): each sample
// is given to the first component (rules below) that a frame of its stack matches, from the leaf
// up, and every JS function on the stack is counted once (inclusive time).
//   perf script -i <dir>/perf-<pid>.data | node bench/perf-groups.mjs --calls 5000 [--top 40]
//   perf script -i gw.data | node bench/perf-groups.mjs --gateway --calls N   # the gateway's components (gateway-cpu.mjs)
// Without V8's names for JIT code, JS frames are addresses: the issuer must run with
// --perf-basic-prof-only-functions (spawn-http-cpu.mjs sets it). V8's map file is only appended to,
// so code moved or collected can leave a stale name on a frame (a node:path or module_job frame
// inside a request is one): read single names with care, the components are steadier. perf's own
// sampling costs the sampled thread CPU (its event loop figure is ~100 µs higher than without).
import { createInterface } from 'node:readline'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const calls = Number(arg('calls', NaN))
const top = Number(arg('top', 40))
if (!Number.isFinite(calls)) throw new TypeError('--calls <n> is required')

// [component, test on a frame's symbol], first match from the leaf up wins. The frame a sample is
// given to is the most specific one: the Ed25519 submission is counted where node:crypto's
// sign/verify is entered, whatever it calls.
const RULES = [
  ['proof of possession (decode, did:key, key import, pool verify submitted)', (s) => /JS:.*(verifyProofOfPossession|proofNames|decodeProofOfPossession) /.test(s)],
  ['credential issuance (engine: encode, sign submitted)', (s) => /JS:.*(issueJwtCredential|keyManagerSign|encodeJwtVc|signOneShot) /.test(s)],
  ['self-check of the credential (@agentid/verifier)', (s) => /packages\/verifier\/dist/.test(s)],
  ['SQLite reads on the event loop (orchestrator, agent, nonce)', (s) => /better_sqlite3|JS:.*(seen|byKeyHash) .*store\.js/.test(s)],
  ['writer thread messages (post the batch, read outcomes)', (s) => /JS:.*(flush|settle) .*domain\/store\.js|worker::Message|MessagePort/.test(s)],
  ['transparency log', (s) => /issuer\/dist\/log\//.test(s)],
  ['request body parse (JSON, limits)', (s) => /JS:.*(parseStrictJson|jsonBody|defaultJsonParser|rawBody|content-type-parser)/.test(s)],
  ['spawn request checks (claims, input)', (s) => /JS:.*(parseSpawnRequest|parseAgentClaims|takeGrantToolProfile) /.test(s)],
  ['issuer domain (spawn, issue, audit, answer)', (s) => /apps\/issuer\/dist\/(domain|http|veramo)\//.test(s)],
  ['HTTP (node:http, fastify, sockets)', (s) => /fastify|find-my-way|avvio|light-my-request|_http_|node:net|node:internal\/stream|llhttp|node::TCPWrap|node::StreamBase|LibuvStreamWrap|uv__read|uv__write|uv__server_io/.test(s)],
  ['garbage collection', (s) => /v8::internal::(Heap|Scavenger|MarkCompact|ConcurrentMarking|IncrementalMarking)|GarbageCollect/.test(s)],
  ['promises, microtasks, timers (runtime)', (s) => /RunMicrotasks|PromiseReactionJob|processImmediate|processTicksAndRejections|listOnTimeout/.test(s)],
  ['kernel (other)', (s) => /\[kernel|entry_SYSCALL|do_syscall/.test(s)],
  ['other', () => true],
]

// `--gateway`: the components of the MCP gateway's process (bench/gateway-cpu.mjs; every thread of it
// when perf records the process, -p).
const GATEWAY_RULES = [
  ['Ed25519 verify of the DPoP proof (node:crypto)', (s) => /JS:.*verifyOneShot /.test(s)],
  ['token and DPoP checks beside the signature (@agentid/verifier, core JSON/base64url)', (s) => /packages\/(verifier|core)\/dist/.test(s)],
  ['Cedar decision (@agentid/policy)', (s) => /packages\/policy\/dist|cedar/.test(s)],
  ['audit and log lines, redaction (gateway logger, redact)', (s) => /apps\/gateway\/dist\/(logger|redact)\.js/.test(s)],
  ['result check (SDK CallToolResultSchema, zod)', (s) => /zod|modelcontextprotocol/.test(s)],
  ['upstream request (gateway raw-call, node-fetch, forward)', (s) => /apps\/gateway\/dist\/(raw-call|node-fetch|forward)\.js/.test(s)],
  ['guard (@agentid/mcp: session, body, JSON-RPC gate, answer)', (s) => /packages\/mcp\/dist/.test(s)],
  ['HTTP (node:http both sides, streams, sockets)', (s) => /_http_|node:net|node:internal\/stream|llhttp|node::TCPWrap|node::StreamBase|LibuvStreamWrap|uv__read|uv__write|uv__io/.test(s)],
  ['garbage collection', (s) => /v8::internal::(Heap|Scavenger|MarkCompact|ConcurrentMarking|IncrementalMarking|Sweeper|MarkingVisitor)|GarbageCollect/.test(s)],
  ['JIT compiler (V8 TurboFan/Maglev)', (s) => /v8::internal::(compiler|maglev)::/.test(s)],
  ['promises, microtasks, timers (runtime)', (s) => /RunMicrotasks|PromiseReactionJob|processImmediate|processTicksAndRejections|listOnTimeout/.test(s)],
  ['kernel (other)', (s) => /\[kernel|entry_SYSCALL|do_syscall/.test(s)],
  ['other', () => true],
]
if (process.argv.includes('--gateway')) RULES.splice(0, RULES.length, ...GATEWAY_RULES)

const groups = new Map()
const inclusive = new Map()
let samples = 0
let stack = []
let period = 0
function flush() {
  if (stack.length === 0) return
  samples++
  const match = stack.map((s) => RULES.find(([, test]) => test(s))?.[0]).find((g) => g !== undefined && g !== 'other') ?? 'other'
  groups.set(match, (groups.get(match) ?? 0) + 1)
  const seen = new Set()
  for (const s of stack) {
    const m = /JS:[*^~]?(\S*) (\S+)/.exec(s)
    if (!m) continue
    const key = `${m[1] || '(anonymous)'} ${m[2].replace(/^file:\/\//, '').replace(/.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '').replace(/.*\/(packages|apps)\//, '$1/')}`
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + 1)
  }
  stack = []
}
for await (const line of createInterface({ input: process.stdin })) {
  const head = /cpu-clock:/.test(line) ? /\s(\d+) cpu-clock:/.exec(line) : null
  if (head) {
    flush()
    period = Number(head[1]) / 1000 // µs per sample
    continue
  }
  const t = line.trim()
  if (t === '') continue
  // "addr symbol+off (dso)": keep "symbol (dso)".
  const m = /^[0-9a-f]+ (.*?)(\+0x[0-9a-f]+)? \((.*)\)$/.exec(t)
  if (m) stack.push(`${m[1]} (${m[3]})`)
}
flush()
const us = (n) => ((n * period) / calls).toFixed(1).padStart(7)
console.log(`${samples} samples of ${period.toFixed(0)} µs, ${calls} calls: ${us(samples).trim()} µs of CPU per call`)
console.log('\nby component (first match from the leaf up), µs per call:')
for (const [g, n] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${us(n)}  ${g}`)
console.log(`\nJS functions, inclusive, µs per call (top ${top}):`)
for (const [k, n] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${us(n)}  ${k}`)
