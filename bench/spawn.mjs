// Spawn suite: agent-held-key spawns over real HTTP against the real issuer process (concurrency 32,
// 10 s, each 201 durably committed), beside Veramo's default pipeline (createIdentifier +
// createVerifiableCredential on its TypeORM store, SQLite WAL) measured in the same run.
import { spawn as spawnProcess, fork } from 'node:child_process'
import http from 'node:http'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'

const CONCURRENCY = 32
const DURATION_MS = Number(process.env.BENCH_SPAWN_MS ?? 10_000)
const here = fileURLToPath(new URL('.', import.meta.url))
const claims = { purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN
}

/** Runs `op` with `concurrency` in flight for `ms`; returns throughput and latency percentiles. */
async function load(op, { concurrency, ms, max = Infinity }) {
  let started = 0
  let done = 0
  let errors = 0
  let firstError
  const latencies = []
  const t0 = performance.now()
  const deadline = t0 + ms
  async function worker() {
    while (performance.now() < deadline && started < max) {
      const i = started++
      const s = performance.now()
      try {
        await op(i)
        latencies.push(performance.now() - s)
        done++
      } catch (e) {
        errors++
        firstError ??= e
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - t0) / 1000
  latencies.sort((a, b) => a - b)
  return { opsPerSec: done / elapsed, done, errors, firstError: firstError ? String(firstError.message ?? firstError) : null, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
}

// utime + stime of a process, from /proc (Linux), in seconds; NaN elsewhere.
function cpuSeconds(pid, which = 'both') {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    const user = Number(fields[11]) / 100
    const system = Number(fields[12]) / 100
    return which === 'user' ? user : which === 'system' ? system : user + system
  } catch {
    return NaN
  }
}

async function startIssuer(dataDir) {
  const adminKey = 'aid_admin_' + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')
  // Port 0: the issuer binds a free port and says which in its start-up line on stderr, so the
  // bench never talks to some other process that happens to hold a port it guessed.
  const child = spawnProcess(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []), join(here, '../apps/issuer/dist/main.js')], {
    env: { ...process.env, AGENTID_DATA_DIR: dataDir, AGENTID_PORT: '0', AGENTID_ADMIN_KEY: adminKey, AGENTID_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const url = await new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error('issuer did not start within 30 s')), 30_000)
    child.stderr.on('data', (chunk) => {
      seen += chunk
      process.stderr.write(chunk)
      const m = /"msg":"agentid issuer listening","url":"([^"]+)"/.exec(seen)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    child.once('exit', (code) => reject(new Error(`issuer exited with ${code}`)))
  })
  return { child, url, adminKey }
}

async function agentid() {
  const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-spawn-'))
  const { child, url, adminKey } = await startIssuer(dataDir)
  try {
    const orch = await (await fetch(`${url}/v1/orchestrators`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ name: 'bench' }), signal: AbortSignal.timeout(10_000) })).json()
    const issuerDid = (await (await fetch(`${url}/v1/issuer`, { signal: AbortSignal.timeout(10_000) })).json()).did
    // Keys and proofs are made before timing: the agents' work is not the issuer's.
    const n = Math.ceil((DURATION_MS / 1000) * 4000) + 1000
    const bodies = []
    for (let i = 0; i < n; i++) {
      const k = generateEd25519KeyPair()
      const proof = await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
      bodies.push(JSON.stringify({ did: k.did, proof, ...claims }))
    }
    // Node's http client with keep-alive: undici's fetch costs the load generator ~4x more CPU per
    // request, and on a 2-core machine the generator's CPU is taken from the issuer.
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
    const { hostname, port } = new URL(url)
    const op = (i) => new Promise((resolve, reject) => {
      const body = bodies[i]
      const req = http.request({ host: hostname, port, path: '/v1/agents', method: 'POST', agent, headers: {
        'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${orch.apiKey}` } }, (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`HTTP ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`))))
      })
      req.on('error', reject)
      req.end(body)
    })
    await load(op, { concurrency: CONCURRENCY, ms: 1000, max: 500 }) // warm-up
    const cpu0 = cpuSeconds(child.pid)
    const sys0 = cpuSeconds(child.pid, 'system')
    const self0 = process.cpuUsage()
    const result = await load((i) => op(i + 500), { concurrency: CONCURRENCY, ms: DURATION_MS, max: n - 500 })
    // The issuer's CPU time per spawn (all its threads): steadier than throughput on a shared machine.
    result.issuerCpuUsPerSpawn = ((cpuSeconds(child.pid) - cpu0) * 1e6) / result.done
    result.issuerSystemUsPerSpawn = ((cpuSeconds(child.pid, 'system') - sys0) * 1e6) / result.done
    const self = process.cpuUsage(self0)
    result.loadGeneratorCpuUsPerSpawn = (self.user + self.system) / result.done
    return result
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    rmSync(dataDir, { recursive: true, force: true })
  }
}

// Veramo's default pipeline, in a child process of its own so that neither run slows the other.
async function veramoChild() {
  const { createAgent } = await import('@veramo/core')
  const { DIDManager } = await import('@veramo/did-manager')
  const { KeyManager } = await import('@veramo/key-manager')
  const { KeyManagementSystem, SecretBox } = await import('@veramo/kms-local')
  const { KeyDIDProvider } = await import('@veramo/did-provider-key')
  const { DIDResolverPlugin } = await import('@veramo/did-resolver')
  const { CredentialPlugin } = await import('@veramo/credential-w3c')
  const { CredentialProviderJWT } = await import('@veramo/credential-jwt')
  const { DIDStore, KeyStore, PrivateKeyStore, Entities, migrations } = await import('@veramo/data-store')
  const { DataSource } = await import('typeorm')
  const { getResolver } = await import('key-did-resolver')
  const dir = mkdtempSync(join(tmpdir(), 'veramo-bench-'))
  const db = await new DataSource({
    type: 'better-sqlite3', database: join(dir, 'veramo.db'), synchronize: false, migrationsRun: true, migrations, entities: Entities, logging: false,
    prepareDatabase: (d) => { d.pragma('journal_mode = WAL') },
  }).initialize()
  const secret = await SecretBox.createSecretKey()
  const agent = createAgent({
    plugins: [
      new KeyManager({ store: new KeyStore(db), kms: { local: new KeyManagementSystem(new PrivateKeyStore(db, new SecretBox(secret))) } }),
      new DIDManager({ store: new DIDStore(db), defaultProvider: 'did:key', providers: { 'did:key': new KeyDIDProvider({ defaultKms: 'local' }) } }),
      new DIDResolverPlugin({ ...getResolver() }),
      new CredentialPlugin([new CredentialProviderJWT()]),
    ],
  })
  if (process.env.BENCH_DEBUG) console.error('veramo: db ready')
  const issuer = await agent.didManagerCreate({ provider: 'did:key', options: { keyType: 'Ed25519' } })
  if (process.env.BENCH_DEBUG) console.error('veramo: issuer', issuer.did)
  const op = async () => {
    const subject = await agent.didManagerCreate({ provider: 'did:key', options: { keyType: 'Ed25519' } })
    await agent.createVerifiableCredential({
      credential: { issuer: { id: issuer.did }, type: ['VerifiableCredential', 'AgentIdentityCredential'], credentialSubject: { id: subject.did, ...claims } },
      proofFormat: 'jwt',
    })
  }
  await load(op, { concurrency: CONCURRENCY, ms: 1000 })
  const result = await load(op, { concurrency: CONCURRENCY, ms: DURATION_MS })
  await db.destroy()
  rmSync(dir, { recursive: true, force: true })
  process.send(result)
}

async function veramo() {
  const child = fork(fileURLToPath(import.meta.url), ['--veramo-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const result = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`veramo child exited ${code}`)))
  })
  child.kill()
  return result
}

if (process.argv.includes('--veramo-child')) {
  await veramoChild()
} else {
  const ours = await agentid()
  const theirs = await veramo()
  const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-')
  console.log(`\nspawn (agent-held key, HTTP, concurrency ${CONCURRENCY}, ${DURATION_MS / 1000} s, 201 after a durable commit)`)
  console.log('| pipeline | spawns/s | p50 ms | p99 ms | errors |')
  console.log('|---|---:|---:|---:|---:|')
  console.log(`| agentid issuer (HTTP) | ${Math.round(ours.opsPerSec)} | ${f(ours.p50)} | ${f(ours.p99)} | ${ours.errors} |`)
  console.log(`| Veramo createIdentifier + createVerifiableCredential (TypeORM, WAL, in-process) | ${Math.round(theirs.opsPerSec)} | ${f(theirs.p50)} | ${f(theirs.p99)} | ${theirs.errors} |`)
  console.log(`\nCPU per spawn: issuer ${Math.round(ours.issuerCpuUsPerSpawn)} µs (all threads; ${Math.round(ours.issuerSystemUsPerSpawn)} µs in the kernel), load generator ${Math.round(ours.loadGeneratorCpuUsPerSpawn)} µs`)
  console.log(`ratio agentid / Veramo: ${(ours.opsPerSec / theirs.opsPerSec).toFixed(2)} (target >= 4); targets: >= 1,500 spawns/s, p99 <= 50 ms`)
  if (ours.firstError) console.log(`first agentid error: ${ours.firstError}`)
  if (theirs.firstError) console.log(`first Veramo error: ${theirs.firstError}`)
  mkdirSync(join(here, 'results'), { recursive: true })
  writeFileSync(join(here, 'results', 'spawn.json'), JSON.stringify({ at: new Date().toISOString(), agentid: ours, veramo: theirs }, null, 2))
}
