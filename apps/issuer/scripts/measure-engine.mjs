// Throughput of the issuer engine (run against the built dist):
//   cd apps/issuer && npx tsc -b && node scripts/measure-engine.mjs [seconds-per-run]
// Prints ops/s (median of 5 runs, cases interleaved so machine drift hits all alike) for: raw
// node:crypto Ed25519 sign, engine.signJwt, engine.issueJwtCredential, the same credential through a
// stock Veramo agent built on the same stores and KMS (no adapter shortcuts), and the spawn path
// (issue + Ed25519 verify of the result with @agentid/core + one SQLite commit of the agent and
// credential rows, synchronous=FULL), one at a time and 16 in flight sharing one commit (group
// commit, as the domain store does per event-loop turn). Absolute figures drift on shared
// machines: compare ratios measured in the same run.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto'
import { decodeJwt, verifyJwsSignature, publicKeyFromRaw, decodeDidKey, generateEd25519KeyPair, VC_CONTEXT_V1 } from '@agentid/core'
import { openDatabase } from '../dist/db/open.js'
import { createIssuerEngine, ISSUER_ALIAS, PRIVATE_KEY_BOX_INFO } from '../dist/veramo/engine.js'
import { SqliteDIDStore } from '../dist/veramo/sqlite-did-store.js'
import { SqliteKeyStore } from '../dist/veramo/sqlite-key-store.js'
import { SqlitePrivateKeyStore } from '../dist/veramo/sqlite-private-key-store.js'
import { NodeEd25519KMS } from '../dist/veramo/node-kms.js'
import { createCryptoBox } from '../dist/crypto-box.js'
import { createAgent } from '@veramo/core'
import { KeyManager } from '@veramo/key-manager'
import { DIDManager } from '@veramo/did-manager'
import { KeyDIDProvider } from '@veramo/did-provider-key'
import { CredentialPlugin } from '@veramo/credential-w3c'
import { CredentialProviderJWT } from '@veramo/credential-jwt'

const seconds = Number(process.argv[2] ?? 1)
const dir = mkdtempSync(join(tmpdir(), 'agentid-measure-'))
const db = openDatabase(join(dir, 'issuer.db'))
const secret = randomBytes(32)
const engine = await createIssuerEngine({ db, secret, baseUrl: 'https://issuer.example' })
// A stock Veramo agent on the same database and issuer key, for comparison.
const stock = createAgent({
  plugins: [
    new KeyManager({ store: new SqliteKeyStore(db), kms: { local: new NodeEd25519KMS(new SqlitePrivateKeyStore(db, createCryptoBox(secret, PRIVATE_KEY_BOX_INFO))) } }),
    new DIDManager({ store: new SqliteDIDStore(db), defaultProvider: 'did:key', providers: { 'did:key': new KeyDIDProvider({ defaultKms: 'local' }) } }),
    new CredentialPlugin([new CredentialProviderJWT()]),
  ],
})
const issuerKid = (await stock.didManagerGetByAlias({ alias: ISSUER_ALIAS })).controllerKeyId
const issuerKey = publicKeyFromRaw(decodeDidKey(engine.issuer.did).publicKey)

const subjects = Array.from({ length: 64 }, () => generateEd25519KeyPair().did)
let n = 0
function credential() {
  const now = Date.now()
  const i = n++
  return {
    '@context': [VC_CONTEXT_V1, 'https://w3id.org/agentid/v1'],
    type: ['VerifiableCredential', 'AgentIdentityCredential'],
    id: `urn:uuid:${randomUUID()}`,
    credentialSubject: {
      id: subjects[i % subjects.length],
      purpose: 'triage support tickets',
      controller: 'orchestrator:support',
      model: { provider: 'acme', name: 'm', version: '1' },
      toolProfile: ['crm.read', 'tickets.write'],
      policyTier: 'standard',
      dataAccessClass: 'internal',
    },
    credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(i), statusListCredential: 'https://issuer.example/v1/status-lists/1' },
    issuanceDate: new Date(now).toISOString(),
    expirationDate: new Date(now + 3600_000).toISOString(),
  }
}

db.prepare("INSERT INTO orchestrators (id, name, key_hash, created_at) VALUES ('o1', 'bench', 'h', 0)").run()
db.prepare("INSERT INTO status_lists (id, purpose, entries, next_index, bits, version, updated_at) VALUES ('1', 'revocation', 131072, 0, zeroblob(16384), 1, 0)").run()
const insertAgent = db.prepare("INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at) VALUES (?, 'o1', 'c', 'p', '{}', 'agent', 'active', 0)")
const insertCredential = db.prepare("INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at) VALUES (?, ?, 'identity', 'jwt', ?, '1', ?, 0, 0)")
const nextIndex = db.prepare("UPDATE status_lists SET next_index = next_index + 1 WHERE id = '1' RETURNING next_index - 1 AS i")
const commit = db.transaction((did, id, jwt) => {
  const { i } = nextIndex.get()
  insertAgent.run(did)
  insertCredential.run(id, did, jwt, i)
})

// Fresh agent DIDs (primary key of agents), generated before timing.
const agentDids = Array.from({ length: 150_000 }, () => generateEd25519KeyPair().did)
async function issueAndVerify() {
  const c = credential()
  const did = agentDids.pop()
  if (did === undefined) throw new Error('out of agent DIDs: lower the seconds per run')
  c.credentialSubject.id = did
  const jwt = await engine.issueJwtCredential(c)
  verifyJwsSignature(decodeJwt(jwt), issuerKey)
  return [did, c.id, jwt]
}
async function spawnOnce() {
  commit(...(await issueAndVerify()))
}
const commitMany = db.transaction((rows) => { for (const row of rows) commit(...row) })
async function spawnBatch16() {
  commitMany(await Promise.all(Array.from({ length: 16 }, issueAndVerify)))
  return 16
}

const { privateKey } = generateKeyPairSync('ed25519')
const msg = randomBytes(300)
const cases = {
  'node:crypto Ed25519 sign (raw)': async () => { sign(null, msg, privateKey) },
  'engine.signJwt': () => engine.signJwt({ typ: 'vc+jwt' }, { iss: engine.issuer.did, sub: 'x', iat: 1 }),
  'engine.issueJwtCredential': () => engine.issueJwtCredential(credential()),
  'stock Veramo createVerifiableCredential (same KMS)': () => {
    const c = credential()
    return stock.createVerifiableCredential({ credential: { ...c, issuer: { id: engine.issuer.did } }, proofFormat: 'jwt', keyRef: issuerKid, header: { kid: engine.issuer.keyId } })
  },
  'Ed25519 verify of a credential (@agentid/core)': async () => { verifyJwsSignature(decodeJwt(sample), issuerKey) },
  'SQLite commit of agent + credential rows (FULL)': async () => {
    const did = agentDids.pop()
    if (did === undefined) throw new Error('out of agent DIDs: lower the seconds per run')
    commit(did, `urn:uuid:${randomUUID()}`, sample)
  },
  'spawn path: issue + verify + SQLite commit': spawnOnce,
  'spawn path, 16 in flight, one commit per 16': spawnBatch16,
}

async function run(fn, ms) {
  const end = performance.now() + ms
  let ops = 0
  const start = performance.now()
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) {
      const done = await fn()
      ops += typeof done === 'number' ? done : 1
    }
  }
  return ops / ((performance.now() - start) / 1000)
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const sample = await engine.issueJwtCredential(credential())
console.log(`node ${process.version}, ${seconds}s x 5 interleaved runs per case, one operation in flight`)
const runs = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
for (const fn of Object.values(cases)) await run(fn, 200) // warm-up
for (let r = 0; r < 5; r++) for (const [name, fn] of Object.entries(cases)) runs[name].push(await run(fn, seconds * 1000))
for (const name of Object.keys(cases)) console.log(`${name.padEnd(52)} ${Math.round(median(runs[name])).toLocaleString('en-US').padStart(8)} ops/s`)
await engine.close()
db.close()
rmSync(dir, { recursive: true, force: true })
