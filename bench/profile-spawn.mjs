// The issuer's CPU per spawn by component and by thread, in-process (no HTTP): IssuerService.spawn
// (agent-held key, 32 in flight, group commit on its SQLite writer thread), and each part of it alone
// — the proof of possession's check, the credential's issuance (encode + sign), the self-check of a
// fresh credential, the orchestrator key's check — in interleaved rounds (medians printed).
//   node bench/profile-spawn.mjs [--rounds 5] [--n 1500] [--root <repo>]   (--root: another checkout's build)
// Threads (Linux /proc): the event loop; libuv's pool (node:crypto's callback form: the Ed25519
// signatures); worker threads (the SQLite writer, …); V8's platform threads (GC, compilation). They are
// told apart by when they appear: V8's at start-up, libuv's at the first pool job (made here before
// the issuer opens), workers after. /proc counts in 10 ms ticks: keep --n large (1500: ±7 µs). CPU time, not wall time: on a shared machine it is the steadier figure.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { generateKeyPairSync, sign } from 'node:crypto'
import { promisify } from 'node:util'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const ROUNDS = Number(arg('rounds', 5))
const N = Number(arg('n', 1500))
const root = arg('root', new URL('..', import.meta.url).pathname)
const { IssuerService } = await import(pathToFileURL(join(root, 'apps/issuer/dist/index.js')).href)
const core = await import(pathToFileURL(join(root, 'packages/core/dist/index.js')).href)

const pid = process.pid
function threadCpu() {
  const out = new Map()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(tid, { comm, us: (Number(f[11]) + Number(f[12])) * 10_000 })
    } catch {
      // the thread ended
    }
  }
  return out
}
// libuv's pool starts at its first job (here, or already while modules load), after V8's platform
// threads: its threads are the last UV_THREADPOOL_SIZE (4) made before the issuer opens.
await promisify(sign)(null, Buffer.from('x'), generateKeyPairSync('ed25519').privateKey)
const early = [...threadCpu().keys()].filter((tid) => tid !== String(pid)).sort((x, y) => Number(x) - Number(y))
const poolThreads = new Set(early.slice(-Number(process.env.UV_THREADPOOL_SIZE ?? 4)))
const v8Threads = new Set(early.filter((tid) => !poolThreads.has(tid)))
const classOf = (tid, comm) =>
  tid === String(pid) ? 'event loop' : comm.startsWith('v8:') ? 'profiler' : poolThreads.has(tid) ? 'libuv pool' : v8Threads.has(tid) ? 'V8 platform (GC)' : 'worker threads'

const dataDir = mkdtempSync(join(tmpdir(), 'agentid-profile-spawn-'))
const svc = await IssuerService.open({ dataDir, baseUrl: 'http://127.0.0.1:1' })
const orch = await svc.addOrchestrator({ kind: 'admin' }, 'bench')
const actor = await svc.authenticate(orch.apiKey)
const claims = { purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }
const bodies = []
async function makeBodies(n) {
  for (let i = 0; i < n; i++) {
    const k = core.generateEd25519KeyPair()
    const proof = await core.createProofOfPossession({ signer: core.signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: svc.issuer.did, purpose: 'spawn', ttlSec: 300 })
    bodies.push(JSON.stringify({ did: k.did, proof, ...claims }))
  }
}
let next = 0
// Proofs live at most 300 s: each round signs its own, before its cases run.
async function freshBodies(n) {
  bodies.length = 0
  next = 0
  await makeBodies(n)
}
const body = () => JSON.parse(bodies[next++])

async function measure(n, op) {
  let i = 0
  const run = async () => {
    while (i < n) await op(i++)
  }
  const before = threadCpu()
  await Promise.all(Array.from({ length: 32 }, run))
  const after = threadCpu()
  const perClass = {}
  for (const [tid, t] of after) {
    const cls = classOf(tid, t.comm)
    perClass[cls] = (perClass[cls] ?? 0) + (t.us - (before.get(tid)?.us ?? 0)) / n
  }
  return perClass
}

const cases = {
  'spawn (IssuerService.spawn, no HTTP)': async () => measure(N, () => svc.spawn(actor, body())),
  'proof of possession check': async () => {
    const proofs = Array.from({ length: N }, () => body().proof)
    return measure(N, (i) => core.verifyProofOfPossession(proofs[i], { audience: svc.issuer.did, purpose: 'spawn', now: svc.now() }))
  },
  'credential issuance (engine.issueJwtCredential)': async () => {
    const at = svc.now()
    const input = (i) => ({
      '@context': [core.VC_CONTEXT_V1, core.AGENTID_CONTEXT_V1], type: ['VerifiableCredential', core.AGENT_IDENTITY_CREDENTIAL], id: `urn:uuid:${crypto.randomUUID()}`,
      issuanceDate: new Date(at * 1000).toISOString(), expirationDate: new Date((at + 3600) * 1000).toISOString(),
      credentialSubject: { id: `did:key:z6Mk${i}`, ...claims },
      credentialStatus: { id: 'http://127.0.0.1:1/v1/status-lists/1#0', type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '0', statusListCredential: 'http://127.0.0.1:1/v1/status-lists/1' },
    })
    return measure(N, (i) => svc.engine.issueJwtCredential(input(i)))
  },
  'self-check of a fresh credential': async () => {
    // Fresh credentials from real spawns (their status entries exist); each checked once, as in a spawn.
    const credentials = []
    for (let i = 0; i < N; i += 32) credentials.push(...(await Promise.all(Array.from({ length: Math.min(32, N - i) }, () => svc.spawn(actor, body())))).map((r) => r.credential))
    return measure(N, (i) => svc.selfCheck.verifyAgentCredential(credentials[i]))
  },
  'orchestrator key check (authenticate)': async () => measure(N, () => svc.authenticate(orch.apiKey)),
}

await freshBodies(300)
await measure(300, () => svc.spawn(actor, body())) // warm-up
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
for (let r = 0; r < ROUNDS; r++) {
  await freshBodies(3 * N)
  for (const [name, run] of Object.entries(cases)) results[name].push(await run())
}
await svc.close()
rmSync(dataDir, { recursive: true, force: true })

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const classes = ['event loop', 'libuv pool', 'worker threads', 'V8 platform (GC)']
console.log(`CPU µs per call by thread, median of ${ROUNDS} interleaved rounds of ${N} (32 in flight); ${root}`)
console.log(`| part | ${classes.join(' | ')} | all threads |`)
console.log(`|---|${classes.map(() => '---:').join('|')}|---:|`)
for (const [name, rounds] of Object.entries(results)) {
  const cells = classes.map((c) => Math.round(median(rounds.map((x) => x[c] ?? 0))))
  const total = Math.round(median(rounds.map((x) => Object.entries(x).filter(([c]) => c !== 'profiler').reduce((a, [, v]) => a + v, 0))))
  console.log(`| ${name} | ${cells.join(' | ')} | ${total} |`)
}
