// Peak RSS of a process that verifies with @agentid/verifier (+ @agentid/core) and nothing else.
//   node bench/verify-only.mjs [--count 20000] [--memo 10000] [--dids file.json] [--baseline]
// Cold: `count` distinct credentials of distinct agents (each misses the memo). Warm: `count` more
// verifications cycling over the last min(count, memo) of them (the first cycle admits them to the
// memo, a second sight; the next cycles hit it). Credentials
// are signed on the fly and dropped, so the process holds only its agent DIDs and what the
// verifier retains. --baseline: the same agent DIDs and token signing, no verifier imported.
// Prints one JSON line: { impl, count, memoSize, maxRssMB, ... }.
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { lineOffset, readTokens } from './lib/token-stream.mjs'
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
let warmHit = null
let t1
// Once the memo is full, a credential enters it on its second verification: the first warm cycle
// admits the kept tokens, the next ones hit. warmHit: the second and third cycles returned the same
// memoized object for the first kept token (a real hit; null when the pass is too short to tell).
let seen
const sameAgain = (n, result) => {
  if (!verifier || n % kept !== 0) return
  if (n === kept) seen = result
  if (n === 2 * kept) warmHit = result === seen
}
if (tokenFile) {
  // Cold: every token once, streamed. Warm: `count` more over the last `kept`, streamed again from
  // the file each cycle: each token arrives as a new string and is dropped after its verification,
  // as requests bring them to a service (an array of the kept tokens was harness memory, ≈ 1.35 MB
  // of young strings that every young-generation collection of the warm pass copied, then promoted).
  for (const jwt of readTokens(tokenFile, count)) await verify(jwt)
  t1 = performance.now()
  const keptAt = lineOffset(tokenFile, count - kept)
  for (let n = 0; n < count;) {
    for (const jwt of readTokens(tokenFile, Math.min(kept, count - n), keptAt)) sameAgain(n, await verify(jwt)), n++
  }
} else {
  for (let i = 0; i < count; i++) await verify(nthCredential(issuer, dids, i, now))
  t1 = performance.now()
  for (let n = 0; n < count; n++) sameAgain(n, await verify(nthCredential(issuer, dids, count - kept + (n % kept), now)))
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
