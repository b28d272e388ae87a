// Suite "verify": how fast and how small verification of an agent identity credential is, beside
// raw node:crypto, jose and Veramo measured in the same run. See README.md for each figure.
import { verify as cryptoVerify } from 'node:crypto'
import sodium from 'sodium-native'
import { ed25519Backend } from '@agentid/core'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { importJWK, jwtVerify } from 'jose'
import { measureInterleaved } from './lib/measure.mjs'
import { verifySetup } from './lib/setup.mjs'
import { writeTokens } from './lib/token-stream.mjs'
import { progress, report } from './lib/suite.mjs'
import { veramoAgent, veramoVerify } from './lib/veramo.mjs'

const ROUNDS = 5
const POOL = 40_000
const MEMORY_COUNT = 20_000
const log = (m) => progress('verify', m)
const here = (f) => fileURLToPath(new URL(f, import.meta.url))

log(`signing ${POOL.toLocaleString('en-US')} distinct credentials for distinct agents`)
const s = await verifySetup({ pool: POOL })

// The same credential for every peer: its signing input and signature for raw node:crypto.
const dot = s.same.lastIndexOf('.')
const signingInput = Buffer.from(s.same.slice(0, dot), 'ascii')
const signature = Buffer.from(s.same.slice(dot + 1), 'base64url')
if (!cryptoVerify(null, signingInput, s.issuer.publicKey, signature)) throw new Error('raw verify setup is wrong')
// Information: the same credential under libsodium, the verifier's own primitive (core's ed25519Backend).
const issuerRaw = Buffer.from(s.issuer.publicJwk.x, 'base64url')
if (!sodium.crypto_sign_verify_detached(signature, signingInput, issuerRaw)) throw new Error('libsodium verify setup is wrong')
const joseKey = await importJWK({ ...s.issuer.publicJwk, alg: 'EdDSA' }, 'EdDSA')
await jwtVerify(s.same, joseKey, { algorithms: ['EdDSA'] })
const veramo = veramoAgent()
await veramoVerify(veramo, s.same)

log(`timing: ${ROUNDS} interleaved rounds of ≥ 1 s per case after a 0.5 s warm-up`)
const r = await measureInterleaved({
  raw: { fn: () => cryptoVerify(null, signingInput, s.issuer.publicKey, signature), sync: true },
  rawSodium: { fn: () => sodium.crypto_sign_verify_detached(signature, signingInput, issuerRaw), sync: true },
  jose: { fn: () => jwtVerify(s.same, joseKey, { algorithms: ['EdDSA'] }) },
  cold: { fn: s.cold },
  warm: { fn: () => s.verifier.verifyAgentCredential(s.same), batch: 1024 },
  veramo: { fn: () => veramoVerify(veramo, s.same), batch: 8 },
}, { rounds: ROUNDS, log })

// Peak RSS of separate processes, each doing the same 2 × 20,000 verifications.
log('peak RSS: child processes (the Veramo one takes about two minutes)')
const dir = mkdtempSync(join(tmpdir(), 'agentid-bench-'))
// Pre-signed credentials streamed from a file: the child processes verify and do nothing else.
const tokensFile = join(dir, 'tokens.txt')
writeTokens(tokensFile, s.dids.slice(0, MEMORY_COUNT), Math.floor(Date.now() / 1000))
const child = async (file, ...args) => {
  const { stdout } = await promisify(execFile)(process.execPath, [here(file), '--count', String(MEMORY_COUNT), '--tokens', tokensFile, ...args], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout.trim().split('\n').pop())
}
let memory
try {
  const veramoChild = child('verify-only-veramo.mjs') // runs beside the others: only its peak RSS counts
  // The baseline is the same harness with the same --memo (which sets how many tokens it keeps for the
  // warm pass), minus the verifier: their difference is what the verifier itself costs.
  const baseline = await child('verify-only.mjs', '--baseline', '--memo', '1000')
  const agentid = await child('verify-only.mjs', '--memo', '1000')
  const agentidAll = await child('verify-only.mjs', '--memo', String(MEMORY_COUNT))
  memory = { baseline, agentid, agentidAll, veramo: await veramoChild }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const n = (k) => r[k].median
const k = `${MEMORY_COUNT / 1000}k`
report({
  suite: 'verify',
  title: `verify an agent identity credential (one process; median of ${ROUNDS} rounds ≥ 1 s; Node ${process.version})`,
  rows: [
    { figure: 'node:crypto Ed25519 verify (raw, same signing input)', value: n('raw'), unit: 'ops/s' },
    { figure: 'jose jwtVerify EdDSA (peer, same credential)', value: n('jose'), unit: 'ops/s' },
    { figure: 'verifyAgentCredential cold (new credential per call)', value: n('cold'), unit: 'ops/s' },
    { figure: 'verifyAgentCredential warm (same credential again)', value: n('warm'), unit: 'ops/s', target: { min: 50_000 } },
    { figure: 'Veramo verifyCredential (same credential, JWT)', value: n('veramo'), unit: 'ops/s' },
    { figure: 'cold / raw node:crypto', value: n('cold') / n('raw'), unit: 'x', target: { min: 0.6 } },
    { figure: `libsodium Ed25519 verify (information; the verifier's backend: ${ed25519Backend()})`, value: n('rawSodium'), unit: 'ops/s' },
    { figure: 'cold / raw libsodium (information)', value: n('cold') / n('rawSodium'), unit: 'x' },
    { figure: 'cold / jose', value: n('cold') / n('jose'), unit: 'x' },
    { figure: 'cold / Veramo', value: n('cold') / n('veramo'), unit: 'x', target: { min: 10 } },
    { figure: `peak RSS agentid: ${k} cold + ${k} warm, memoSize 1,000 (default)`, value: memory.agentid.maxRssMB, unit: 'MB' },
    { figure: 'verifier\'s own cost: agentid − baseline peak RSS', value: memory.agentid.maxRssMB - memory.baseline.maxRssMB, unit: 'MB', target: { max: 15 } },
    { figure: `peak RSS agentid: same, memoSize ${k} (all memoized)`, value: memory.agentidAll.maxRssMB, unit: 'MB' },
    { figure: `peak RSS Veramo: ${k} + ${k}`, value: memory.veramo.maxRssMB, unit: 'MB' },
    { figure: 'peak RSS baseline: same tokens read, no verifier', value: memory.baseline.maxRssMB, unit: 'MB' },
    { figure: 'Veramo\'s own cost: Veramo − baseline peak RSS', value: memory.veramo.maxRssMB - memory.baseline.maxRssMB, unit: 'MB' },
  ],
  notes: [
    `cold: ${s.coldCalls().toLocaleString('en-US')} calls over a pool of ${POOL.toLocaleString('en-US')} distinct credentials (default memoSize 1,000: every call misses); status list and issuer DID cached.`,
    'Veramo is given the compact JWT string: it then skips credentialStatus (see the interop test), so its figure includes no status work; ours does.',
    'peak RSS: each figure is a separate process (verify-only*.mjs) reading pre-signed tokens from a file; bare node is about 40 MB; the baseline row reads the same tokens and verifies nothing. V8 doubles its young generation whenever the bytes surviving its scavenges add up to its size: agentid ends with 4 MB semi-spaces, the baseline (which allocates little) with 1 MB (see bench/README.md).',
  ],
  data: { rounds: r, memory, pool: POOL, memoryCount: MEMORY_COUNT, warmHit: memory.agentid.warmHit },
})
