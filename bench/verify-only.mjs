// Peak RSS of a process that verifies with @agentid/verifier (+ @agentid/core) and nothing else.
//   node bench/verify-only.mjs [--count 20000] [--memo 10000] [--dids file.json] [--baseline]
// Cold: `count` distinct credentials of distinct agents (each misses the memo). Warm: `count` more
// verifications cycling over the last min(count, memo) of them (each hits the memo). Credentials
// are signed on the fly and dropped, so the process holds only its agent DIDs and what the
// verifier retains. --baseline: the same agent DIDs and token signing, no verifier imported.
// Prints one JSON line: { impl, count, memoSize, maxRssMB, ... }.
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { readTokens } from './lib/token-stream.mjs'
import { agentDids, keyFromLabel, localFetch, nthCredential, statusListJwt } from './lib/tokens.mjs'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const count = arg('--count', 20_000)
const memoSize = arg('--memo', 10_000)
const baseline = process.argv.includes('--baseline')
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
// Agent DIDs come from a file (written by verify.mjs) when given: making keys here would leave
// thousands of KeyObjects' native memory to the garbage collector and inflate this process's peak.
// With --tokens FILE the credentials come pre-signed, streamed from the file (see lib/token-stream.mjs).
const tokensAt = process.argv.indexOf('--tokens')
const tokenFile = tokensAt === -1 ? null : process.argv[tokensAt + 1]
const didsAt = process.argv.indexOf('--dids')
const dids = tokenFile ? [] : didsAt === -1 ? agentDids(count) : JSON.parse(readFileSync(process.argv[didsAt + 1], 'utf8')).slice(0, count)
if (!tokenFile && dids.length < count) throw new Error(`--dids holds fewer than ${count} DIDs`)

let verifier = null
if (!baseline) {
  const { createVerifier } = await import('@agentid/verifier')
  verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), memoSize, statusTtlMs: 3_600_000 })
}
const verify = async (jwt) => (verifier ? verifier.verifyAgentCredential(jwt) : jwt.length)

const kept = Math.min(count, memoSize)
const t0 = performance.now()
let firstKept
let warmHit = null
let t1
if (tokenFile) {
  // Cold: every token once, streamed. Warm: `count` more over the last `kept` (each a memo hit).
  const ring = []
  let i = 0
  for (const jwt of readTokens(tokenFile, count)) {
    const result = await verify(jwt)
    if (i >= count - kept) ring.push(jwt)
    if (i === count - kept) firstKept = result
    i++
  }
  t1 = performance.now()
  for (let n = 0; n < count; n++) {
    const result = await verify(ring[n % ring.length])
    if (n === 0 && verifier) warmHit = result === firstKept
  }
} else {
  for (let i = 0; i < count; i++) {
    const result = await verify(nthCredential(issuer, dids, i, now))
    if (i === count - kept) firstKept = result
  }
  t1 = performance.now()
  for (let n = 0; n < count; n++) {
    const i = count - kept + (n % kept)
    const result = await verify(nthCredential(issuer, dids, i, now))
    if (n === 0 && verifier) warmHit = result === firstKept // the memoized object came back: a real hit
  }
}
const t2 = performance.now()

process.stdout.write(JSON.stringify({
  impl: baseline ? 'baseline' : 'agentid',
  count,
  memoSize: baseline ? null : memoSize,
  warmHit,
  coldMs: Math.round(t1 - t0),
  warmMs: Math.round(t2 - t1),
  maxRssMB: process.resourceUsage().maxRSS / 1024,
  // Read after the work, so that the verifier stays reachable until the figure is taken.
  retained: verifier ? typeof verifier.verifyAgentCredential : null,
}) + '\n')
