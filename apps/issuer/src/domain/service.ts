import { hash, randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  AGENT_IDENTITY_CREDENTIAL,
  AGENTID_CONTEXT_V1,
  AgentIdError,
  agentSpiffeId,
  decodeJwt,
  parseTrustDomain,
  generateEd25519KeyPair,
  VC_CONTEXT_V1,
  verifyProofOfPossession,
  type AgentClaims,
  type Ed25519PrivateJwk,
} from '@agentid/core'
import { Resolver } from 'did-resolver'
import { getResolver as getKeyDidResolver } from 'key-did-resolver'
import { createVerifier, type DelegationRequest, type DidResolver, type VerifiedDelegation, type Verifier } from '@agentid/verifier'
import { parseTrustedIdps, type TrustedIdpConfig } from '../oauth/trusted-idps.js'
import { Approvals, type ApprovalsOptions } from '../approvals/approvals.js'
import { openDatabase } from '../db/open.js'
import { loadMasterSecret } from '../secret.js'
import { createIssuerEngine, type IssuerEngine } from '../veramo/engine.js'
import { hashApiKey, isApiKeyShape, newApiKey, sameHash } from './api-keys.js'
import { timeOrderedUuid } from './ids.js'
import {
  encodeCursor,
  parseAgentDid,
  parseCredentialId,
  parseListQuery,
  parseOrchestratorName,
  parseReason,
  parseRenewRequest,
  parseSpawnRequest,
} from './input.js'
import { agentCredentialDocument, DataIntegritySigner } from './di.js'
import type { CredentialFormat } from './input.js'
import { parseDelegationId, parseGrantRequest, parseRegisterDelegationRequest, takeGrantToolProfile, toolProfileCapabilities } from './delegation-input.js'
import { Delegations } from './delegations.js'
import { revocationCascade, type RevocationEffect, type RevocationTarget } from './revocation.js'
import { StatusLists, type SignedDiStatusList, type SignedStatusList } from './status-lists.js'
import { createMemoryEventBus, type EventBus } from '../events/bus.js'
import { RevocationEvents } from '../events/recorder.js'
import { Attestation, type AttestationConfigInput } from '../attestation/index.js'
import { SvidAuthority } from '../svid/authority.js'
import { SvidIssuer } from '../svid/issuer.js'
import { SqliteStorage } from '../storage/sqlite.js'
import { openPgStorage } from '../storage/pg.js'
import type { IssuerStorage } from '../storage/types.js'
import { Store, type AgentRow, type CredentialRow, type OrchestratorRow, type WriteOp } from './store.js'

/** Who is calling: decides what they may see and do. */
export type Principal = { kind: 'admin' } | { kind: 'orchestrator'; id: string; name: string } | { kind: 'cli' }

export interface IssuerServiceOptions {
  /** Folder for the database and the generated master secret (created 0700 if missing). */
  dataDir: string
  /**
   * PostgreSQL instead of the SQLite file (AGENTID_DATABASE_URL, postgres://…): several issuer
   * processes may share the database.
   */
  databaseUrl?: string
  /** Database file; default `<dataDir>/issuer.db`. */
  dbFile?: string
  /** Public base URL of the issuer, used in status-list URLs. */
  baseUrl: string
  /** Run as did:web:<domain>. */
  didWebDomain?: string
  /** Clock in milliseconds (default Date.now). */
  clock?: () => number
  /** Default and maximum credential lifetimes, seconds (3,600 and 86,400). */
  credentialTtlSec?: number
  maxCredentialTtlSec?: number
  /** Lifetime of an issued challenge, seconds (120). */
  challengeTtlSec?: number
  /** Entries per status list (131,072). */
  statusListEntries?: number
  /** Identity providers whose users' tokens the token endpoint exchanges (RFC 8693). Default: none. */
  trustedIdps?: readonly TrustedIdpConfig[]
  /** Fetch for the identity providers' JWKS URIs. Default: `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch
  /**
   * SPIFFE trust domain: each agent spawned gets `spiffe://<trustDomain>/agent/<orchestrator>/<key>`
   * (claim `spiffeId`). Default: none.
   */
  trustDomain?: string
  /** Trust anchors of attestation evidence (EAT attesters, Sigstore root and identities, Nitro root and PCRs). Default: none. */
  attestation?: AttestationConfigInput
  /** Announces revocation events to every instance's event stream. Default: in-process only. */
  eventBus?: EventBus
  /** Human approvals: origin/RP id of the approval pages, lifetimes, webhook (apps/issuer/src/approvals). */
  approvals?: Omit<ApprovalsOptions, 'storage' | 'engine' | 'statusLists' | 'now' | 'verifier' | 'revocationEvents'>
}

export interface OrchestratorView { id: string; name: string; createdAt: string; removedAt: string | null; activeAgents?: number }
export interface CredentialView {
  id: string; status: 'active' | 'revoked' | 'expired'; issuedAt: string; expiresAt: string
  revokedAt: string | null; revocationReason: string | null; statusListCredential: string; statusListIndex: number
}
export interface AgentView {
  did: string; orchestrator: string; keyCustody: 'agent' | 'issuer'; status: 'active' | 'revoked'; claims: AgentClaims
  createdAt: string; revokedAt: string | null; revocationReason: string | null; credentials: CredentialView[]
}
export interface IssuedCredential {
  /** `jwt`: `credential` is a compact JWT VC; `di`: a VC 2.0 credential object with a Data Integrity proof. */
  did: string; format: CredentialFormat; credential: string | Record<string, unknown>; credentialId: string; expiresAt: string
  status: { statusListCredential: string; statusListIndex: number }
}

const iso = (sec: number) => new Date(sec * 1000).toISOString()
/** SHA-256 (hex) of what was issued, in its audit event: a holder can ask the issuer log for its proof. */
const sha256Hex = (text: string) => hash('sha256', text, 'hex')
const isoOrNull = (sec: number | null) => (sec === null ? null : iso(sec))

function notFound(what: string): never {
  throw new AgentIdError('ERR_NOT_FOUND', `${what} not found`)
}

/**
 * The issuer's domain: every operation the HTTP routes and the CLI (`--db`) perform, on one
 * SQLite database, with one transaction per operation that writes.
 */
export class IssuerService {
  private readonly statusLists: StatusLists
  private readonly di: DataIntegritySigner
  private readonly selfCheck: Verifier
  private readonly delegations: Delegations
  private readonly ttl: number
  private readonly maxTtl: number
  private readonly challengeTtl: number
  private readonly purgeTimer: NodeJS.Timeout
  /** The validated trusted identity providers (token exchange). */
  readonly trustedIdps: readonly TrustedIdpConfig[]
  /** The fetch for identity providers' keys, when injected. */
  readonly fetch: typeof globalThis.fetch | undefined
  /** Security events of revocations (events/), written in each revocation's transaction. */
  readonly events: RevocationEvents
  /** Approvers, approval requests and decisions (apps/issuer/src/approvals). */
  readonly approvals: Approvals
  /** The SPIFFE trust domain of the agents' SPIFFE IDs, when configured. */
  readonly trustDomain: string | undefined
  /** Verifies attestation evidence of spawn and renew (attestation/). */
  private readonly attestation: Attestation

  private constructor(
    private readonly sqliteStore: Store | undefined,
    /** The same database behind the asynchronous storage interface (storage/), which the domain is moving to. */
    readonly storage: IssuerStorage,
    readonly engine: IssuerEngine,
    private readonly clock: () => number,
    options: IssuerServiceOptions,
    /** The SVID issuer (SPIFFE CA), when a trust domain is configured (`svid/issuer.ts`). */
    readonly svid?: SvidIssuer,
  ) {
    this.ttl = options.credentialTtlSec ?? 3600
    this.maxTtl = options.maxCredentialTtlSec ?? 86_400
    this.challengeTtl = options.challengeTtlSec ?? 120
    this.trustedIdps = parseTrustedIdps(options.trustedIdps ?? [])
    this.attestation = Attestation.from(options.attestation)
    this.fetch = options.fetch
    this.trustDomain = options.trustDomain === undefined ? undefined : parseTrustDomain(options.trustDomain, { code: 'ERR_INVALID_INPUT' })
    this.di = new DataIntegritySigner({ did: engine.issuer.did, keyId: engine.issuer.keyId, signBytes: (data) => engine.signBytes(data) })
    this.statusLists = new StatusLists({
      storage,
      baseUrl: engine.baseUrl,
      issuerDid: engine.issuer.did,
      sign: (payload) => engine.signJwt({ typ: 'JWT' }, payload),
      ...(engine.issuer.did.startsWith('did:key:') ? { signDi: (credential: Record<string, unknown>, nowSec: number) => this.di.sign(credential, nowSec) } : {}),
      now: () => this.now(),
      ...(options.statusListEntries === undefined ? {} : { entries: options.statusListEntries }),
    })
    this.events = new RevocationEvents(storage, engine.issuer.did, options.eventBus ?? createMemoryEventBus())
    this.delegations = new Delegations({ store: storage, statusLists: this.statusLists, engine, now: () => this.now() })
    // The issuer checks its own output with the same verifier services use, before storing or
    // returning it. Its status lists come from memory, not over HTTP.
    const doc = engine.didDocument()
    // A did:web issuer resolves itself from memory; the agents' did:keys (delegation links they sign) offline.
    const keyDids = new Resolver(getKeyDidResolver())
    const resolver: DidResolver | undefined = doc
      ? {
          resolve: async (did: string) => did === doc.id
            ? { didResolutionMetadata: {}, didDocument: doc as never, didDocumentMetadata: {} }
            : did.startsWith('did:key:') ? keyDids.resolve(did) : { didResolutionMetadata: { error: 'notFound' }, didDocument: null, didDocumentMetadata: {} },
        }
      : undefined
    this.selfCheck = createVerifier({
      trustedIssuers: [engine.issuer.did],
      clock,
      memoSize: 1,
      offloadSignatures: true,
      statusTtlMs: 1000,
      statusGraceMs: 0,
      // Delegation links (signed by agents) may name only this issuer's own status lists.
      trustedStatusLists: [`${engine.baseUrl}/v1/status-lists/`],
      ...(resolver ? { resolver } : {}),
      fetch: async (url: string) => {
        const id = url.startsWith(`${engine.baseUrl}/v1/status-lists/`) ? url.slice(`${engine.baseUrl}/v1/status-lists/`.length) : ''
        try {
          const list = await this.statusLists.get(id)
          return { ok: true, status: 200, text: async () => list.jwt }
        } catch {
          return { ok: false, status: 404, text: async () => '' }
        }
      },
    })
    this.approvals = new Approvals({ ...options.approvals, storage, engine, statusLists: this.statusLists, now: () => this.now(), verifier: this.selfCheck, revocationEvents: this.events })
    this.purgeTimer = setInterval(() => this.purge(), 60_000)
    this.purgeTimer.unref()
  }

  /**
   * The synchronous SQLite store underneath the SQLite storage (tests and tools that read the file).
   * Throws ERR_UNAVAILABLE on PostgreSQL.
   */
  get store(): Store {
    if (!this.sqliteStore) throw new AgentIdError('ERR_UNAVAILABLE', 'not available on PostgreSQL yet (SQLite only)', { details: { reason: 'not_on_postgres' } })
    return this.sqliteStore
  }

  /** Opens (or creates) the issuer's database, master secret and signing engine. */
  static async open(options: IssuerServiceOptions): Promise<IssuerService> {
    parseTrustedIdps(options.trustedIdps ?? []) // a bad configuration stops the start before anything opens
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
    if (options.databaseUrl !== undefined) return IssuerService.openPostgres(options, options.databaseUrl)
    const db = openDatabase(options.dbFile ?? join(options.dataDir, 'issuer.db'))
    try {
      // Keys already sealed in the database: their secret must be there; a new one would open nothing.
      const sealed = db.prepare('SELECT 1 FROM private_keys LIMIT 1').get() !== undefined
      const secret = loadMasterSecret({ dataDir: options.dataDir, mustExist: sealed })
      const clock = options.clock ?? Date.now
      const engine = await createIssuerEngine({
        db,
        secret: secret.key,
        baseUrl: options.baseUrl,
        now: () => Math.floor(clock() / 1000),
        ...(options.didWebDomain ? { didWebDomain: options.didWebDomain } : {}),
      })
      const store = new Store(db)
      const storage = new SqliteStorage(store)
      const now = () => Math.floor(clock() / 1000)
      const svid = options.trustDomain === undefined ? undefined : new SvidIssuer({
        store: storage, issuerDid: engine.issuer.did, now,
        authority: await SvidAuthority.open({ storage, secret: secret.key, trustDomain: parseTrustDomain(options.trustDomain, { code: 'ERR_INVALID_INPUT' }), now }),
      })
      return new IssuerService(store, storage, engine, clock, options, svid)
    } catch (error) {
      db.close()
      throw error
    }
  }

  /**
   * A random 32-byte key kept in the database (settings `name`, hex), created on first use: every
   * instance on the same database gets the same key (DPoP nonces one instance issues, the others accept).
   */
  async sharedKey(name: 'dpop_nonce_key'): Promise<Buffer> {
    const fresh = randomBytes(32).toString('hex')
    const hex = await this.storage.transaction(async (tx) => {
      const kept = await tx.settings.get(name)
      if (kept !== undefined) return kept
      await tx.settings.put(name, fresh)
      return fresh
    })
    return Buffer.from(hex, 'hex')
  }

  private static async openPostgres(options: IssuerServiceOptions, url: string): Promise<IssuerService> {
    const storage = await openPgStorage(url)
    try {
      // Every instance must open the keys the first one sealed: share AGENTID_SECRET (or the secret file).
      const sealed = (await storage.veramo.privateKeys()).length > 0
      const secret = loadMasterSecret({ dataDir: options.dataDir, mustExist: sealed })
      const clock = options.clock ?? Date.now
      const engine = await createIssuerEngine({
        storage,
        secret: secret.key,
        baseUrl: options.baseUrl,
        now: () => Math.floor(clock() / 1000),
        ...(options.didWebDomain ? { didWebDomain: options.didWebDomain } : {}),
      })
      const now = () => Math.floor(clock() / 1000)
      const svid = options.trustDomain === undefined ? undefined : new SvidIssuer({
        store: storage, issuerDid: engine.issuer.did, now,
        authority: await SvidAuthority.open({ storage, secret: secret.key, trustDomain: parseTrustDomain(options.trustDomain, { code: 'ERR_INVALID_INPUT' }), now }),
      })
      return new IssuerService(undefined, storage, engine, clock, options, svid)
    } catch (error) {
      await storage.close()
      throw error
    }
  }

  /** Unix seconds. */
  now(): number {
    return Math.floor(this.clock() / 1000)
  }

  get issuer(): { did: string; keyId: string } {
    return { did: this.engine.issuer.did, keyId: this.engine.issuer.keyId }
  }

  async close(): Promise<void> {
    clearInterval(this.purgeTimer)
    this.approvals.wakeAll()
    await this.sqliteStore?.closeWriter() // pending spawns and renewals commit first
    await this.engine.close()
    await this.storage.close()
  }

  // ---- admin key ---------------------------------------------------------------------------

  /**
   * Sets the admin key. With `key` (from AGENTID_ADMIN_KEY) its hash replaces the stored one;
   * without, a key is generated only if none exists, and returned once for the operator to keep.
   */
  async ensureAdminKey(key?: string): Promise<{ generated: string | null }> {
    if (key !== undefined) {
      if (!isApiKeyShape(key, 'admin')) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_ADMIN_KEY must be a key made by `agentid admin-key` (aid_admin_…)')
      const hash = hashApiKey(key)
      // A replaced admin key is audited like a generated one; the same key at each start writes nothing.
      await this.storage.transaction(async (tx) => {
        if ((await tx.settings.get('admin_key_hash')) === hash) return
        await tx.settings.put('admin_key_hash', hash)
        await tx.audit.append(this.now(), 'issuer', 'admin_key.replaced', null)
      })
      return { generated: null }
    }
    const generated = newApiKey('admin')
    // Several instances starting together: the first one's key is kept, the others generate none.
    const made = await this.storage.transaction(async (tx) => {
      if (await tx.settings.get('admin_key_hash')) return false
      await tx.settings.put('admin_key_hash', hashApiKey(generated))
      await tx.audit.append(this.now(), 'issuer', 'admin_key.generated', null)
      return true
    })
    return { generated: made ? generated : null }
  }

  /** Authenticates a bearer key as the admin or an orchestrator; throws ERR_UNAUTHENTICATED. */
  async authenticate(bearer: string | undefined): Promise<Principal> {
    if (bearer !== undefined && isApiKeyShape(bearer, 'admin')) {
      const stored = await this.storage.settings.get('admin_key_hash')
      if (stored && sameHash(stored, hashApiKey(bearer))) return { kind: 'admin' }
    } else if (bearer !== undefined && isApiKeyShape(bearer, 'orch')) {
      const row = await this.storage.orchestrators.byKeyHash(hashApiKey(bearer))
      if (row) return { kind: 'orchestrator', id: row.id, name: row.name }
    }
    throw new AgentIdError('ERR_UNAUTHENTICATED', 'a valid API key is required (Authorization: Bearer …)')
  }

  // ---- orchestrators -----------------------------------------------------------------------

  /** Registers an orchestrator; its API key is returned once and stored only as a hash. */
  async addOrchestrator(actor: Principal, name: unknown): Promise<OrchestratorView & { apiKey: string }> {
    requireAdmin(actor)
    const valid = parseOrchestratorName(name)
    const apiKey = newApiKey('orch')
    const row = { id: `orch_${randomBytes(9).toString('base64url')}`, name: valid, key_hash: hashApiKey(apiKey), created_at: this.now() }
    await this.storage.transaction(async (tx) => {
      if (await tx.orchestrators.byName(valid)) throw new AgentIdError('ERR_CONFLICT', `an orchestrator named ${valid} exists`)
      await tx.orchestrators.insert(row)
      await tx.audit.append(row.created_at, actorName(actor), 'orchestrator.added', row.id, { name: valid })
    })
    return { ...orchestratorView({ ...row, removed_at: null }), apiKey }
  }

  async listOrchestrators(actor: Principal): Promise<OrchestratorView[]> {
    requireAdmin(actor)
    const rows = await this.storage.orchestrators.list()
    return Promise.all(rows.map(async (row) => ({ ...orchestratorView(row), activeAgents: await this.storage.orchestrators.activeAgentCount(row.id) })))
  }

  /** Disables an orchestrator's key (by id or name). Its agents stay; revoke them explicitly. */
  async removeOrchestrator(actor: Principal, idOrName: unknown): Promise<OrchestratorView> {
    requireAdmin(actor)
    if (typeof idOrName !== 'string' || idOrName.length === 0 || idOrName.length > 128) throw new AgentIdError('ERR_INVALID_INPUT', 'an orchestrator id or name is required')
    return this.storage.transaction(async (tx) => {
      const row = (await tx.orchestrators.byId(idOrName)) ?? (await tx.orchestrators.byName(idOrName))
      if (!row || row.removed_at !== null) notFound('orchestrator')
      const at = this.now()
      await tx.orchestrators.remove(row.id, at)
      await tx.audit.append(at, actorName(actor), 'orchestrator.removed', row.id)
      return orchestratorView({ ...row, removed_at: at })
    })
  }

  // ---- challenges --------------------------------------------------------------------------

  /** A single-use nonce for a proof of possession, valid `challengeTtlSec`. */
  async createChallenge(): Promise<{ nonce: string; expiresAt: string }> {
    const nonce = randomBytes(24).toString('base64url')
    const exp = this.now() + this.challengeTtl
    await this.storage.challenges.insert(nonce, exp)
    return { nonce, expiresAt: iso(exp) }
  }

  // ---- agents ------------------------------------------------------------------------------

  /**
   * Authenticates `bearer` and spawns (as `authenticate` then `spawn`), with one database read for
   * the orchestrator's key and the spawn's early refusals: the DID and jti it looks up are read from
   * the proof before it is verified (no signature check for an unauthenticated caller), and serve
   * only when the verified proof names the same. A removed orchestrator is refused as by
   * `authenticate`: the key is read before anything is signed.
   */
  async spawnWithKey(bearer: string | undefined, body: unknown): Promise<SpawnAnswer> {
    if (!isApiKeyShape(bearer, 'orch')) return this.spawn(await this.authenticate(bearer), body)
    const named = proofNames(body)
    const read = await this.storage.agents.seen(named?.did ?? null, named ? `pop:${named.jti}` : null, hashApiKey(bearer))
    const row = read.orchestrator
    if (!row) throw new AgentIdError('ERR_UNAUTHENTICATED', 'a valid API key is required (Authorization: Bearer …)')
    return this.spawn({ kind: 'orchestrator', id: row.id, name: row.name }, body, named ? { ...named, agent: read.agent, nonce: read.nonce } : undefined)
  }

  /**
   * Spawns an agent: registers its DID (agent-held key, proven by a proof of possession) or mints
   * one (issuer-generated key, returned once and never stored), and issues its identity credential.
   * Agent, credential, status index, proof nonce and audit event commit in one transaction.
   */
  async spawn(actor: Principal, body: unknown, early?: EarlyReads): Promise<SpawnAnswer> {
    if (actor.kind !== 'orchestrator') throw new AgentIdError('ERR_FORBIDDEN', 'only an orchestrator spawns agents')
    const { grant, rest } = takeGrantToolProfile(body)
    const request = parseSpawnRequest(rest, this.maxTtl)
    const grantCapabilities = grant ? toolProfileCapabilities(request.claims.toolProfile) : undefined
    let did: string
    let privateJwk: Ed25519PrivateJwk | undefined
    let proof: { jti: string; nonce: string | null; exp: number } | undefined
    if (request.keyCustody === 'agent') {
      const verified = await verifyProofOfPossession(request.proof, { audience: this.engine.issuer.did, purpose: 'spawn', now: this.now() })
      if (request.did !== undefined && request.did !== verified.did) throw new AgentIdError('ERR_KEY_MISMATCH', 'did does not match the proof of possession')
      did = verified.did
      proof = verified
    } else {
      const key = generateEd25519KeyPair()
      did = key.did
      privateJwk = key.privateJwk
    }
    // One read for both early refusals (the commit checks both again); none for a DID minted just now,
    // which no agent has, with no proof. spawnWithKey's read serves when it named this DID and jti.
    const seen = !proof ? { agent: false, nonce: false }
      : early && early.did === did && early.jti === proof.jti ? early
      : await this.storage.agents.seen(did, `pop:${proof.jti}`)
    if (seen.nonce) throw new AgentIdError('ERR_REPLAY', 'this proof of possession was used before')
    if (seen.agent) throw new AgentIdError('ERR_CONFLICT', 'an agent with this DID exists; renew its credential instead')
    // grantToolProfile: a root link for the agent's tool profile, committed with the agent.
    const root = grantCapabilities
      ? await this.delegations.rootLink(did, grantCapabilities, { maxDataClass: request.claims.dataAccessClass }, request.lifetimeSec ?? this.ttl)
      : undefined
    const named = this.trustDomain === undefined ? request.claims : { ...request.claims, spiffeId: agentSpiffeId(this.trustDomain, actor.name, did) }
    const claims = await this.attestation.apply(named, request.evidence, proof?.nonce ?? null, this.now())
    const issued = await this.issue(did, claims, request.lifetimeSec, request.format, (row, at) => [
      ...(proof
        ? [
            this.storage.ops.nonceUse(`pop:${proof.jti}`, proof.exp, { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }),
            ...(proof.nonce !== null ? [this.storage.ops.challengeUse(proof.nonce, at, { code: 'ERR_REPLAY', message: 'the challenge is unknown, expired or used' })] : []),
          ]
        : []),
      // An agent of this DID committed since the early read: the primary key refuses the insert.
      this.storage.ops.agentInsert({
        did,
        orchestrator_id: actor.id,
        controller: request.claims.controller,
        purpose: request.claims.purpose,
        claims_json: JSON.stringify(claims),
        key_custody: request.keyCustody,
        created_at: at,
      }, { code: 'ERR_CONFLICT', message: 'an agent with this DID exists; renew its credential instead' }),
      this.storage.ops.credentialInsert(row),
      ...(root ? root.ops : []),
      this.storage.ops.audit(at, actorName(actor), 'agent.spawned', did, { credentialId: row.id, credentialSha256: sha256Hex(row.jwt), status: { list: row.status_list_id, index: row.status_index }, keyCustody: request.keyCustody, ...(root ? { delegationId: root.id, delegationSha256: sha256Hex(root.jwt), delegationStatus: root.status } : {}) }),
    ])
    return { ...issued, keyCustody: request.keyCustody, ...(claims.spiffeId ? { spiffeId: claims.spiffeId } : {}), ...(privateJwk ? { privateJwk } : {}), ...(root ? { delegationChain: [root.jwt] } : {}) }
  }

  /** Renews an active agent's identity credential; the agent proves possession of its key. */
  async renew(did: unknown, body: unknown): Promise<IssuedCredential & { logIndex: number }> {
    const agentDid = parseAgentDid(did)
    const request = parseRenewRequest(body, this.maxTtl)
    const proof = await verifyProofOfPossession(request.proof, { audience: this.engine.issuer.did, purpose: 'renew', now: this.now(), expectedDid: agentDid })
    const agent = await this.storage.agents.get(agentDid)
    if (!agent) notFound('agent')
    if (agent.status !== 'active') throw new AgentIdError('ERR_REVOKED', 'the agent has been revoked')
    const stored = JSON.parse(agent.claims_json) as AgentClaims
    // New evidence replaces the attestation recorded at spawn (for this credential); without, it is kept.
    const claims = request.evidence === undefined ? stored : await this.attestation.apply({ ...stored, attestation: undefined } as AgentClaims, request.evidence, proof.nonce, this.now())
    return this.issue(agentDid, claims, request.lifetimeSec, request.format, (row, at) => [
      this.storage.ops.nonceUse(`pop:${proof.jti}`, proof.exp, { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }),
      ...(proof.nonce !== null ? [this.storage.ops.challengeUse(proof.nonce, at, { code: 'ERR_REPLAY', message: 'the challenge is unknown, expired or used' })] : []),
      this.storage.ops.agentActive(agentDid, { code: 'ERR_REVOKED', message: 'the agent has been revoked' }),
      this.storage.ops.credentialInsert(row),
      this.storage.ops.audit(at, `agent:${agentDid}`, 'agent.renewed', agentDid, { credentialId: row.id, credentialSha256: sha256Hex(row.jwt), status: { list: row.status_list_id, index: row.status_index } }),
    ])
  }

  // Builds, signs, self-verifies, then stores (the ops `write` returns, plus the status index, as
  // one group-committed job) an identity credential. `write` puts the issuance's audit event last
  // among its audit ops: `logIndex` is its index in the issuer log, as the commit returned it.
  private async issue(
    did: string,
    claims: AgentClaims,
    lifetimeSec: number | undefined,
    format: CredentialFormat,
    write: (row: CredentialRow, at: number) => WriteOp[],
  ): Promise<IssuedCredential & { logIndex: number }> {
    if (format === 'di') this.di.assertSupported()
    const at = this.now()
    const exp = at + (lifetimeSec ?? this.ttl)
    const id = `urn:uuid:${timeOrderedUuid(this.clock())}` // time-ordered: appended to its indexes
    const slot = await this.statusLists.reserve()
    const status = {
      id: `${slot.url}#${slot.index}`,
      type: 'BitstringStatusListEntry',
      statusPurpose: 'revocation',
      statusListIndex: String(slot.index),
      statusListCredential: slot.url,
    } as const
    // Data Integrity: a VC 2.0 credential signed by the same key, checked and stored as JSON text.
    const credential = format === 'di'
      ? await this.di.sign(agentCredentialDocument(this.engine.issuer.did, { id, subject: { id: did, ...claims }, validFrom: at, validUntil: exp, status }), at)
      : await this.engine.issueJwtCredential({
      '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
      type: ['VerifiableCredential', AGENT_IDENTITY_CREDENTIAL],
      id,
      issuanceDate: iso(at),
      expirationDate: iso(exp),
      credentialSubject: { id: did, ...claims },
      credentialStatus: status,
    })
    const jwt = typeof credential === 'string' ? credential : JSON.stringify(credential)
    try {
      await this.selfCheck.verifyAgentCredential(credential)
    } catch (cause) {
      throw new AgentIdError('ERR_INTERNAL', 'the issuer refused its own credential', { cause })
    }
    const row: CredentialRow = {
      id, agent_did: did, kind: 'identity', format, jwt, status_list_id: slot.listId, status_index: slot.index,
      issued_at: at, expires_at: exp, revoked_at: null, revocation_reason: null,
    }
    const logIndices = await this.storage.commit([...write(row, at), this.statusLists.commitOp(slot.listId, slot.index)])
    return { did, format, credential, credentialId: id, expiresAt: iso(exp), status: { statusListCredential: slot.url, statusListIndex: slot.index }, logIndex: logIndices[logIndices.length - 1]! }
  }

  /** The agent record with its credentials. An orchestrator sees only its own agents. */
  async getAgent(actor: Principal, did: unknown): Promise<AgentView> {
    const agentDid = parseAgentDid(did)
    const row = await this.storage.agents.get(agentDid)
    // Another orchestrator's agent is "not found": existence is not disclosed.
    if (!row || (actor.kind === 'orchestrator' && row.orchestrator_id !== actor.id)) notFound('agent')
    return this.agentView(row)
  }

  /** Lists agents with filters and keyset paging. An orchestrator sees only its own. */
  async listAgents(actor: Principal, query: unknown): Promise<{ agents: AgentView[]; nextCursor: string | null }> {
    const q = parseListQuery(query)
    let orchestratorId: string | undefined
    if (actor.kind === 'orchestrator') {
      if (q.orchestrator !== undefined && q.orchestrator !== actor.id && q.orchestrator !== actor.name) throw new AgentIdError('ERR_FORBIDDEN', 'an orchestrator lists only its own agents')
      orchestratorId = actor.id
    } else if (q.orchestrator !== undefined) {
      orchestratorId = ((await this.storage.orchestrators.byId(q.orchestrator)) ?? (await this.storage.orchestrators.byName(q.orchestrator)))?.id ?? '-'
    }
    const rows = await this.storage.agents.list({
      limit: q.limit + 1,
      ...(orchestratorId === undefined ? {} : { orchestratorId }),
      ...(q.status === undefined ? {} : { status: q.status }),
      ...(q.controller === undefined ? {} : { controller: q.controller }),
      ...(q.purpose === undefined ? {} : { purpose: q.purpose }),
      ...(q.cursor === undefined ? {} : { after: q.cursor }),
    })
    const page = rows.slice(0, q.limit)
    const last = page[page.length - 1]
    return { agents: await Promise.all(page.map((r) => this.agentView(r))), nextCursor: rows.length > q.limit && last ? encodeCursor(last.created_at, last.did) : null }
  }

  /**
   * Revokes an agent, every credential it holds and every delegation it signed or received (with the
   * links below them), in one transaction (`revocationCascade`). Revoking a revoked agent changes nothing.
   */
  async revokeAgent(actor: Principal, did: unknown, reason: unknown): Promise<{ did: string; revokedCredentials: string[]; revokedDelegations: string[]; alreadyRevoked: boolean }> {
    requireAdmin(actor)
    const agentDid = parseAgentDid(did)
    const e = await this.revoke(actor, { kind: 'agent', did: agentDid }, parseReason(reason))
    return { did: agentDid, revokedCredentials: e.credentials.map((c) => c.id), revokedDelegations: e.delegations.map((d) => d.id), alreadyRevoked: e.alreadyRevoked }
  }

  /** Revokes one credential (its row and its status bit, in one transaction). */
  async revokeCredential(actor: Principal, id: unknown, reason: unknown): Promise<{ id: string; agent: string; alreadyRevoked: boolean }> {
    requireAdmin(actor)
    const credentialId = parseCredentialId(id)
    const e = await this.revoke(actor, { kind: 'credential', id: credentialId }, parseReason(reason))
    return { id: credentialId, agent: e.owner!, alreadyRevoked: e.alreadyRevoked }
  }

  /**
   * What revoking `target` would take down (every credential, delegation link and downstream agent),
   * computed by the same cascade that performs the revocation, without changing anything. Admin only.
   */
  previewRevocation(actor: Principal, target: RevocationTarget): Promise<RevocationEffect> {
    requireAdmin(actor)
    return this.storage.transaction((tx) => revocationCascade({ tx, statusLists: this.statusLists, events: this.events }, target, { dryRun: true }))
  }

  private async revoke(actor: Principal, target: RevocationTarget, reason: string): Promise<RevocationEffect> {
    const effect = await this.storage.transaction((tx) => revocationCascade({ tx, statusLists: this.statusLists, events: this.events }, target, { dryRun: false, at: this.now(), reason, actor: actorName(actor) }))
    this.events.announce()
    return effect
  }

  // ---- delegation --------------------------------------------------------------------------

  /**
   * Signs a root capability link from the issuer to an active agent (`{ capabilities, caveats?,
   * lifetimeSec? }`); the link's row and status index commit with a check that the agent is active.
   */
  async grant(actor: Principal, did: unknown, body: unknown): Promise<{ id: string; delegationChain: string[]; expiresAt: string }> {
    requireAdmin(actor)
    const agentDid = parseAgentDid(did)
    const request = parseGrantRequest(body, this.maxTtl)
    const agent = await this.storage.agents.get(agentDid)
    if (!agent) notFound('agent')
    if (agent.status !== 'active') throw new AgentIdError('ERR_REVOKED', 'the agent has been revoked')
    const lifetime = request.lifetimeSec ?? this.ttl
    const root = await this.delegations.rootLink(agentDid, request.capabilities, request.caveats, lifetime)
    const at = this.now()
    await this.storage.commit([
      this.storage.ops.agentActive(agentDid, { code: 'ERR_REVOKED', message: 'the agent has been revoked' }),
      ...root.ops,
      this.storage.ops.audit(at, actorName(actor), 'delegation.granted', agentDid, { delegationId: root.id, delegationSha256: sha256Hex(root.jwt), status: root.status }),
    ])
    const exp = decodeJwt(root.jwt).payload.exp as number
    return { id: root.id, delegationChain: [root.jwt], expiresAt: iso(exp) }
  }

  /** Registers a link an agent is about to sign below `parentId` (proof of possession, purpose `delegate`): its id and status entry. */
  async registerDelegation(body: unknown): Promise<{ id: string; statusEntry: Record<string, unknown>; expiresAt: string }> {
    const registered = await this.delegations.register(parseRegisterDelegationRequest(body))
    return { id: registered.id, statusEntry: { ...registered.statusEntry }, expiresAt: iso(registered.expiresAt) }
  }

  /** Revokes a delegation and every link below it (rows and status bits, one transaction). */
  async revokeDelegation(actor: Principal, id: unknown, reason: unknown): Promise<{ id: string; revokedDelegations: string[]; alreadyRevoked: boolean }> {
    requireAdmin(actor)
    const delegationId = parseDelegationId(id)
    const e = await this.revoke(actor, { kind: 'delegation', id: delegationId }, parseReason(reason))
    return { id: delegationId, revokedDelegations: e.delegations.map((d) => d.id), alreadyRevoked: e.alreadyRevoked }
  }

  /**
   * Verifies a delegation chain with the issuer's own verifier (root: this issuer; status lists read
   * from memory, cached at most a second). Throws VerificationError.
   */
  verifyDelegation(chain: readonly string[], request: DelegationRequest): Promise<VerifiedDelegation> {
    return this.selfCheck.verifyDelegation(chain, request)
  }

  /** The signed status-list credential `id`. */
  statusList(id: unknown): Promise<SignedStatusList> {
    if (typeof id !== 'string' || !/^[1-9][0-9]{0,8}$/.test(id)) notFound('status list')
    return this.statusLists.get(id)
  }

  /** The status-list credential `id` as VC 2.0 with a Data Integrity proof (did:key issuers; else ERR_NOT_FOUND). */
  statusListDi(id: unknown): Promise<SignedDiStatusList> {
    if (typeof id !== 'string' || !/^[1-9][0-9]{0,8}$/.test(id)) notFound('status list')
    return this.statusLists.getDi(id)
  }

  private async agentView(row: AgentRow): Promise<AgentView> {
    const now = this.now()
    const credentials = await this.storage.credentials.byAgent(row.did)
    return {
      did: row.did,
      orchestrator: row.orchestrator_id,
      keyCustody: row.key_custody,
      status: row.status,
      claims: JSON.parse(row.claims_json) as AgentClaims,
      createdAt: iso(row.created_at),
      revokedAt: isoOrNull(row.revoked_at),
      revocationReason: row.revocation_reason,
      credentials: credentials.map((c) => ({
        id: c.id,
        status: c.revoked_at !== null ? 'revoked' : c.expires_at <= now ? 'expired' : 'active',
        issuedAt: iso(c.issued_at),
        expiresAt: iso(c.expires_at),
        revokedAt: isoOrNull(c.revoked_at),
        revocationReason: c.revocation_reason,
        statusListCredential: statusListUrlOf(c.jwt, c.format) ?? this.statusLists.url(c.status_list_id),
        statusListIndex: c.status_index,
      })),
    }
  }

  private purge(): void {
    const now = this.now()
    this.storage.transaction(async (tx) => {
      await tx.nonces.purge(now - 300)
      await tx.challenges.purge(now - 300)
    }).catch(() => {
      // A busy database is retried at the next tick; expired rows are harmless meanwhile.
    })
  }
}

// The status-list URL a credential carries: the base URL may have changed since it was issued.
function statusListUrlOf(jwt: string, format: string): string | undefined {
  try {
    if (format === 'di') {
      const url = (JSON.parse(jwt) as { credentialStatus?: { statusListCredential?: unknown } }).credentialStatus?.statusListCredential
      return typeof url === 'string' ? url : undefined
    }
    const payload = decodeJwt(jwt).payload as { vc?: { credentialStatus?: { statusListCredential?: unknown } } }
    const url = payload.vc?.credentialStatus?.statusListCredential
    return typeof url === 'string' ? url : undefined
  } catch {
    return undefined
  }
}

/** Throws ERR_FORBIDDEN unless `actor` is the admin (or the local CLI). */
export function requireAdmin(actor: Principal): void {
  if (actor.kind !== 'admin' && actor.kind !== 'cli') throw new AgentIdError('ERR_FORBIDDEN', 'admin key required')
}

function actorName(actor: Principal): string {
  return actor.kind === 'orchestrator' ? `orchestrator:${actor.id}` : actor.kind
}

function orchestratorView(row: OrchestratorRow): OrchestratorView {
  return { id: row.id, name: row.name, createdAt: iso(row.created_at), removedAt: isoOrNull(row.removed_at) }
}


type SpawnAnswer = IssuedCredential & { logIndex: number; privateJwk?: Ed25519PrivateJwk; keyCustody: 'agent' | 'issuer'; spiffeId?: string; delegationChain?: string[] }
/** A spawn's early refusals read with its key (spawnWithKey), for the DID and jti its proof named. */
interface EarlyReads { did: string; jti: string; agent: boolean; nonce: boolean }

// The agent DID and jti a spawn body's proof names, decoded without verifying it (undefined when it
// names none: issuer-held keys, or a body the spawn will refuse anyway).
function proofNames(body: unknown): { did: string; jti: string } | undefined {
  const proof = typeof body === 'object' && body !== null ? (body as { proof?: unknown }).proof : undefined
  if (typeof proof !== 'string') return undefined
  try {
    const { payload } = decodeJwt(proof, 8 * 1024)
    return typeof payload.iss === 'string' && typeof payload.jti === 'string' ? { did: payload.iss, jti: payload.jti } : undefined
  } catch {
    return undefined
  }
}
