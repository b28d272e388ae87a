// Import cost of @agentid/verifier, in a fresh process: import it, verify one JWT agent credential,
// and with --di one Data Integrity credential too (its first one loads the JSON-LD stack lazily).
//   node bench/import-cost.mjs --input file.json [--di]
// The input (written by di.mjs): { issuer, now, listJwt, jwt, di }. Read before timing starts.
// Prints one JSON line: { di, importMs, jwtMs, diMs, totalMs, maxRssMB }.
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

const at = process.argv.indexOf('--input')
const input = JSON.parse(readFileSync(process.argv[at + 1], 'utf8'))
const withDi = process.argv.includes('--di')
const listUrl = input.di.credentialStatus.statusListCredential
const fetch = async (url) => (url === listUrl ? { ok: true, status: 200, text: async () => input.listJwt } : { ok: false, status: 404, text: async () => 'not found' })

const t0 = performance.now()
const { createVerifier } = await import('@agentid/verifier')
const t1 = performance.now()
const verifier = createVerifier({ trustedIssuers: [input.issuer], fetch })
const a = await verifier.verifyAgentCredential(input.jwt)
const t2 = performance.now()
let b = null
if (withDi) b = await verifier.verifyAgentCredential(input.di)
const t3 = performance.now()
if (!a.did || (withDi && !b.did)) throw new Error('verification returned no agent')
process.stdout.write(JSON.stringify({
  di: withDi,
  importMs: t1 - t0,
  jwtMs: t2 - t1,
  diMs: t3 - t2,
  totalMs: t3 - t0,
  maxRssMB: process.resourceUsage().maxRSS / 1024,
}) + '\n')
