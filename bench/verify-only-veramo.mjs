// Peak RSS of a process that verifies with a plain Veramo 7 agent and nothing else, on the
// workload of verify-only.mjs: `count` distinct credentials, then `count` more (Veramo has no memo,
// so the second pass costs what the first did). Prints one JSON line.
//   node bench/verify-only-veramo.mjs [--count 20000] [--dids file.json]
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { readTokens } from './lib/token-stream.mjs'
import { agentDids, keyFromLabel, nthCredential } from './lib/tokens.mjs'
import { veramoAgent, veramoVerify } from './lib/veramo.mjs'

const i = process.argv.indexOf('--count')
const count = i === -1 ? 20_000 : Number(process.argv[i + 1])
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
// Agent DIDs come from a file (written by verify.mjs) when given: making keys here would leave
// thousands of KeyObjects' native memory to the garbage collector and inflate this process's peak.
const tokensAt = process.argv.indexOf('--tokens')
const tokenFile = tokensAt === -1 ? null : process.argv[tokensAt + 1]
const didsAt = process.argv.indexOf('--dids')
const dids = tokenFile ? [] : didsAt === -1 ? agentDids(count) : JSON.parse(readFileSync(process.argv[didsAt + 1], 'utf8')).slice(0, count)
if (!tokenFile && dids.length < count) throw new Error(`--dids holds fewer than ${count} DIDs`)
const agent = veramoAgent()

const t0 = performance.now()
const pass = async () => {
  if (tokenFile) for (const jwt of readTokens(tokenFile, count)) await veramoVerify(agent, jwt)
  else for (let i = 0; i < count; i++) await veramoVerify(agent, nthCredential(issuer, dids, i, now))
}
await pass()
const t1 = performance.now()
await pass()
const t2 = performance.now()

process.stdout.write(JSON.stringify({
  impl: 'veramo',
  count,
  coldMs: Math.round(t1 - t0),
  warmMs: Math.round(t2 - t1),
  maxRssMB: process.resourceUsage().maxRSS / 1024,
  retained: typeof agent.verifyCredential,
}) + '\n')
