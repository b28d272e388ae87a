import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { AgentIdError, parseTrustDomain } from '@agentid/core'
import type { DelegationRequest, VerifiedDelegation, Verifier } from '@agentid/verifier'
import { parseTrustedIdps, type TrustedIdpConfig } from '../oauth/trusted-idps.js'
import { Approvals, checkApprovalsOptions, type ApprovalsOptions } from '../approvals/approvals.js'
import type { IssuerEngine } from '../veramo/engine.js'
import { DataIntegritySigner } from './di.js'
import { Delegations } from './delegations.js'
import type { RevocationEffect, RevocationTarget } from './revocation.js'
import { StatusLists, type SignedDiStatusList, type SignedStatusList } from './status-lists.js'
import { createMemoryEventBus, type EventBus } from '../events/bus.js'
import { RevocationEvents } from '../events/recorder.js'
import { Attestation, type AttestationConfigInput } from '../attestation/index.js'
import type { SvidIssuer } from '../svid/issuer.js'
import type { IssuerStorage } from '../storage/types.js'
import type { Store } from './store.js'
import type { ServiceDeps } from './deps.js'
import { openPostgresBackend, openSqliteBackend, type Backend } from './open.js'
import { createSelfCheck } from './self-check.js'
import { authenticate, ensureAdminKey } from './access.js'
import { addOrchestrator, listOrchestrators, removeOrchestrator } from './orchestrators.js'
import { createChallenge, purgeExpired } from './challenges.js'
import { spawn, spawnWithKey, type EarlyReads, type SpawnAnswer } from './spawn.js'
import { renew } from './renewal.js'
import { getAgent, listAgents, statusList, statusListDi } from './reads.js'
import { previewRevocation, revokeAgent, revokeCredential, revokeDelegation } from './revoke.js'
import { grant, registerDelegation } from './grants.js'
import type { Principal } from './principal.js'
import type { AgentView, IssuedCredential, OrchestratorView } from './views.js'

// IssuerService is the facade; each operation lives in a module named for its resource (access,
// orchestrators, challenges, spawn, renewal, reads, revoke, grants), taking the shared dependencies
// (deps.ts) explicitly. These re-exports keep the service's types where callers import them.
export { requireAdmin, type Principal } from './principal.js'
export type { AgentView, CredentialView, IssuedCredential, OrchestratorView } from './views.js'

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

/**
 * The issuer's domain: every operation the HTTP routes and the CLI (`--db`) perform, on one
 * SQLite database, with one transaction per operation that writes.
 */
export class IssuerService {
  private readonly statusLists: StatusLists
  private readonly di: DataIntegritySigner
  private readonly selfCheck: Verifier
  private readonly delegations: Delegations
  private readonly purgeTimer: NodeJS.Timeout
  /** What each operation module takes (deps.ts). */
  private readonly deps: ServiceDeps
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
    const ttl = options.credentialTtlSec ?? 3600
    const maxTtl = options.maxCredentialTtlSec ?? 86_400
    const challengeTtl = options.challengeTtlSec ?? 120
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
    // The issuer checks its own output with the same verifier services use (self-check.ts).
    this.selfCheck = createSelfCheck(engine, clock, this.statusLists)
    this.approvals = new Approvals({ ...options.approvals, storage, engine, statusLists: this.statusLists, now: () => this.now(), verifier: this.selfCheck, revocationEvents: this.events })
    this.deps = {
      storage, engine, statusLists: this.statusLists, di: this.di, selfCheck: this.selfCheck, delegations: this.delegations,
      events: this.events, attestation: this.attestation, trustDomain: this.trustDomain,
      clock, now: () => this.now(), ttl, maxTtl, challengeTtl,
    }
    this.purgeTimer = setInterval(() => purgeExpired(this.deps), 60_000)
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

  /** Opens (or creates) the issuer's database, master secret and signing engine (open.ts). */
  static async open(options: IssuerServiceOptions): Promise<IssuerService> {
    parseTrustedIdps(options.trustedIdps ?? []) // a bad configuration stops the start before anything opens
    checkApprovalsOptions(options.approvals)
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
    const build = (b: Backend) => new IssuerService(b.sqliteStore, b.storage, b.engine, b.clock, options, b.svid)
    if (options.databaseUrl !== undefined) return openPostgresBackend(options, options.databaseUrl, build)
    return openSqliteBackend(options, build)
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

  /** Unix seconds. */
  now(): number {
    return Math.floor(this.clock() / 1000)
  }

  get issuer(): { did: string; keyId: string } {
    return { did: this.engine.issuer.did, keyId: this.engine.issuer.keyId }
  }

  async close(): Promise<void> {
    clearInterval(this.purgeTimer)
    await this.approvals.close() // long polls end; the webhook sender records its attempts in flight
    await this.sqliteStore?.closeWriter() // pending spawns and renewals commit first
    await this.engine.close()
    await this.storage.close()
  }

  // ---- admin key (access.ts) ---------------------------------------------------------------

  /**
   * Sets the admin key. With `key` (from AGENTID_ADMIN_KEY) its hash replaces the stored one;
   * without, a key is generated only if none exists, and returned once for the operator to keep.
   */
  ensureAdminKey(key?: string): Promise<{ generated: string | null }> {
    return ensureAdminKey(this.deps, key)
  }

  /** Authenticates a bearer key as the admin or an orchestrator; throws ERR_UNAUTHENTICATED. */
  authenticate(bearer: string | undefined): Promise<Principal> {
    return authenticate(this.deps, bearer)
  }

  // ---- orchestrators (orchestrators.ts) ----------------------------------------------------

  /** Registers an orchestrator; its API key is returned once and stored only as a hash. */
  addOrchestrator(actor: Principal, name: unknown): Promise<OrchestratorView & { apiKey: string }> {
    return addOrchestrator(this.deps, actor, name)
  }

  listOrchestrators(actor: Principal): Promise<OrchestratorView[]> {
    return listOrchestrators(this.deps, actor)
  }

  /** Disables an orchestrator's key (by id or name). Its agents stay; revoke them explicitly. */
  removeOrchestrator(actor: Principal, idOrName: unknown): Promise<OrchestratorView> {
    return removeOrchestrator(this.deps, actor, idOrName)
  }

  // ---- challenges (challenges.ts) ----------------------------------------------------------

  /** A single-use nonce for a proof of possession, valid `challengeTtlSec`. */
  createChallenge(): Promise<{ nonce: string; expiresAt: string }> {
    return createChallenge(this.deps)
  }

  // ---- agents (spawn.ts, renewal.ts, reads.ts) ---------------------------------------------

  /**
   * Authenticates `bearer` and spawns (as `authenticate` then `spawn`), with one database read for
   * the orchestrator's key and the spawn's early refusals (spawn.ts).
   */
  spawnWithKey(bearer: string | undefined, body: unknown): Promise<SpawnAnswer> {
    return spawnWithKey(this.deps, bearer, body)
  }

  /**
   * Spawns an agent: registers its DID (agent-held key, proven by a proof of possession) or mints
   * one (issuer-generated key, returned once and never stored), and issues its identity credential.
   * Agent, credential, status index, proof nonce and audit event commit in one transaction.
   */
  spawn(actor: Principal, body: unknown, early?: EarlyReads): Promise<SpawnAnswer> {
    return spawn(this.deps, actor, body, early)
  }

  /** Renews an active agent's identity credential; the agent proves possession of its key. */
  renew(did: unknown, body: unknown): Promise<IssuedCredential & { logIndex: number }> {
    return renew(this.deps, did, body)
  }

  /** The agent record with its credentials. An orchestrator sees only its own agents. */
  getAgent(actor: Principal, did: unknown): Promise<AgentView> {
    return getAgent(this.deps, actor, did)
  }

  /** Lists agents with filters and keyset paging. An orchestrator sees only its own. */
  listAgents(actor: Principal, query: unknown): Promise<{ agents: AgentView[]; nextCursor: string | null }> {
    return listAgents(this.deps, actor, query)
  }

  // ---- revocation (revoke.ts) --------------------------------------------------------------

  /**
   * Revokes an agent, every credential it holds and every delegation it signed or received (with the
   * links below them), in one transaction (`revocationCascade`). Revoking a revoked agent changes nothing.
   */
  revokeAgent(actor: Principal, did: unknown, reason: unknown): Promise<{ did: string; revokedCredentials: string[]; revokedDelegations: string[]; alreadyRevoked: boolean }> {
    return revokeAgent(this.deps, actor, did, reason)
  }

  /** Revokes one credential (its row and its status bit, in one transaction). */
  revokeCredential(actor: Principal, id: unknown, reason: unknown): Promise<{ id: string; agent: string; alreadyRevoked: boolean }> {
    return revokeCredential(this.deps, actor, id, reason)
  }

  /**
   * What revoking `target` would take down (every credential, delegation link and downstream agent),
   * computed by the same cascade that performs the revocation, without changing anything. Admin only.
   */
  previewRevocation(actor: Principal, target: RevocationTarget): Promise<RevocationEffect> {
    return previewRevocation(this.deps, actor, target)
  }

  // ---- delegation (grants.ts, revoke.ts) ---------------------------------------------------

  /**
   * Signs a root capability link from the issuer to an active agent (`{ capabilities, caveats?,
   * lifetimeSec? }`); the link's row and status index commit with a check that the agent is active.
   */
  grant(actor: Principal, did: unknown, body: unknown): Promise<{ id: string; delegationChain: string[]; expiresAt: string }> {
    return grant(this.deps, actor, did, body)
  }

  /** Registers a link an agent is about to sign below `parentId` (proof of possession, purpose `delegate`): its id and status entry. */
  registerDelegation(body: unknown): Promise<{ id: string; statusEntry: Record<string, unknown>; expiresAt: string }> {
    return registerDelegation(this.deps, body)
  }

  /** Revokes a delegation and every link below it (rows and status bits, one transaction). */
  revokeDelegation(actor: Principal, id: unknown, reason: unknown): Promise<{ id: string; revokedDelegations: string[]; alreadyRevoked: boolean }> {
    return revokeDelegation(this.deps, actor, id, reason)
  }

  /**
   * Verifies a delegation chain with the issuer's own verifier (root: this issuer; status lists read
   * from memory, cached at most a second). Throws VerificationError.
   */
  verifyDelegation(chain: readonly string[], request: DelegationRequest): Promise<VerifiedDelegation> {
    return this.selfCheck.verifyDelegation(chain, request)
  }

  // ---- status lists (reads.ts) -------------------------------------------------------------

  /** The signed status-list credential `id`. */
  statusList(id: unknown): Promise<SignedStatusList> {
    return statusList(this.deps, id)
  }

  /** The status-list credential `id` as VC 2.0 with a Data Integrity proof (did:key issuers; else ERR_NOT_FOUND). */
  statusListDi(id: unknown): Promise<SignedDiStatusList> {
    return statusListDi(this.deps, id)
  }
}
