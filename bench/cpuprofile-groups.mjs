// Groups a .cpuprofile's self time over a window (as cpuprofile-summary.mjs) into components, in µs
// per call: where an issuer's event loop spends its time per spawn, or (--gateway) the gateway's per
// tool call.
//   node bench/cpuprofile-groups.mjs [--gateway] file.cpuprofile window.json
import { readFileSync } from 'node:fs'

const argv = process.argv.slice(2)
const gatewayRules = argv.includes('--gateway')
const [file, windowFile] = argv.filter((a) => a !== '--gateway')
const win = JSON.parse(readFileSync(windowFile, 'utf8').trim().split('\n').pop())
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
// First matching rule wins: [component, test on "function url"].
const ISSUER_RULES = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['Ed25519 sign/verify (submitted to the thread pool; wall time includes preemption by its threads)', (f) => /crypto\/sig/.test(f.url)],
  ['other node:crypto (hash, key import)', (f) => /crypto\//.test(f.url)],
  ['Veramo + did-jwt-vc + did-jwt (building and encoding the JWT)', (f) => /@veramo|did-jwt|uint8arrays|multiformats/.test(f.url)],
  ['issuer log (transparency log)', (f) => /issuer\/dist\/log\//.test(f.url)],
  ['SQLite and the writer worker (store, postMessage)', (f) => /better-sqlite3|domain\/store|node:internal\/worker|postMessage/.test(f.url + f.functionName)],
  ['JSON, claims and proof parsing (@agentid/core)', (f) => /packages\/core\/|canonicalize/.test(f.url)],
  ['self-check (@agentid/verifier)', (f) => /packages\/verifier\//.test(f.url)],
  ['issuer domain and HTTP handlers', (f) => /apps\/issuer\/dist/.test(f.url)],
  ['HTTP (node:http, fastify, sockets)', (f) => /fastify|avvio|find-my-way|_http|net\.js|node:net|stream|writev|light-my-request|content-type/.test(f.url + f.functionName)],
  ['other', () => true],
]
// The gateway's per-call path, in the order a call meets it.
const GATEWAY_RULES = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['Ed25519 verify (DPoP proof; the token is cached)', (f) => /crypto\/sig/.test(f.url)],
  ['other node:crypto (SHA-256: ath, token cache key, jkt)', (f) => /crypto\//.test(f.url)],
  ['token and DPoP verification (@agentid/verifier, core JSON/base64url)', (f) => /packages\/(verifier|core)\//.test(f.url)],
  ['Cedar policy decision (@agentid/policy, cedar-wasm)', (f) => /packages\/policy\/|cedar/.test(f.url)],
  ['lineage (@agentid/lineage)', (f) => /packages\/lineage\//.test(f.url)],
  ['guard: authentication, JSON-RPC gate, audit event (@agentid/mcp)', (f) => /packages\/mcp\//.test(f.url)],
  ['audit and log lines (gateway logger, redaction)', (f) => /gateway\/dist\/(logger|redact)/.test(f.url)],
  ['MCP SDK server and zod validation (forwarding server)', (f) => /@modelcontextprotocol|zod/.test(f.url)],
  ['upstream request (gateway raw-call, node-fetch, forward)', (f) => /gateway\/dist\//.test(f.url)],
  ['node:http client (to the upstream)', (f) => /_http_client|_http_agent/.test(f.url)],
  ['node:http server (from the agent)', (f) => /_http_server|_http_incoming/.test(f.url)],
  ['HTTP/sockets/streams (both directions)', (f) => /_http|net|stream|writev|writeUtf8|close|socket|tcp|buffer/i.test(f.url + f.functionName)],
  ['promises, timers, events (runtime)', (f) => /runMicrotasks|task_queues|timers|events|event_target|abort_controller|async_hooks/.test(f.url + f.functionName)],
  ['other', () => true],
]
const RULES = gatewayRules ? GATEWAY_RULES : ISSUER_RULES
const times = []
let clock = profile.startTime
for (const d of profile.timeDeltas) times.push((clock += d))
const groups = new Map()
let total = 0
for (let i = 0; i < times.length; i++) {
  if (times[i] < win.fromUs || times[i] > win.toUs) continue
  const dt = (times[i + 1] ?? times[i]) - times[i]
  const f = byId.get(profile.samples[i]).callFrame
  const [name] = RULES.find(([, test]) => test(f))
  groups.set(name, (groups.get(name) ?? 0) + dt)
  total += dt
}
console.log(`window ${(total / 1000).toFixed(0)} ms, ${win.calls} calls: ${(total / win.calls).toFixed(0)} µs of wall time per call (idle included)`)
for (const [name, us] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${(us / win.calls).toFixed(0).padStart(6)} µs  ${((100 * us) / total).toFixed(1).padStart(5)} %  ${name}`)
