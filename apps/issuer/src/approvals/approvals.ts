// Human approvals on the issuer (DESIGN.md "Approvals"): approvers enrol a passkey (WebAuthn registration,
// user verification required, @simplewebauthn/server) and get an issuer-signed approver credential that
// certifies it; guarded services ask for approvals of canonical calls; an approver approves or denies on the
// issuer's page with the passkey, whose challenge is the SHA-256 of the RFC 8785 canonical call; the result
// is a receipt any verifier re-checks offline (`verifyApproval` of @agentid/verifier).
import { createPublicKey, randomBytes, randomUUID } from 'node:crypto'
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { cose, decodeCredentialPublicKey } from '@simplewebauthn/server/helpers'
import { AgentIdError, VC_CONTEXT_V1, AGENTID_CONTEXT_V1 } from '@agentid/core'
import {
  APPROVAL_CALL_TYPE,
  APPROVAL_RECEIPT_TYPE,
  APPROVER_CREDENTIAL,
  approvalChallenge,
  argumentsDigest,
  canonicalJson,
  type ApprovalCall,
  type ApprovalReceipt,
  type ApprovalUser,
  type Verifier,
} from '@agentid/verifier'
import type { IssuerEngine } from '../veramo/engine.js'
import type { StatusLists } from '../domain/status-lists.js'
import type { IssuerStorage, StorageTx } from '../storage/types.js'
import type { RevocationEvents } from '../events/recorder.js'
import { parseApprovalRequest, parseApproverRequest, parseDecision, parseEnrolToken, parseId } from './input.js'
import type { ApprovalRequestRow, ApproverRow } from './store.js'
import { sha256Hex } from '../domain/issue.js'
import { approvalLogRef } from './log-ref.js'
import { parseWebhookConfig, type WebhookConfig } from '../webhooks/config.js'
import { WebhookSender } from '../webhooks/sender.js'

/** Who calls an approval route (the issuer's principals). */
export type ApprovalActor = { kind: 'admin' } | { kind: 'cli' } | { kind: 'orchestrator'; id: string; name: string }

/** An issuer event about approvals, for the audit log and any other sink (the transparency log). */
export interface ApprovalEvent {
  at: number
  actor: string
  action: 'approver.added' | 'approver.enrolled' | 'approver.revoked' | 'approval.requested' | 'approval.approved' | 'approval.denied'
  subject: string
  details: Record<string, unknown>
}

export interface ApprovalsOptions {
  /** The issuer's storage (SQLite or PostgreSQL). */
  storage: IssuerStorage
  engine: IssuerEngine
  statusLists: StatusLists
  /** Unix seconds. */
  now: () => number
  /** The issuer's own verifier (self-check of every receipt before it is stored). */
  verifier: Verifier
  /** The origin of the approval pages (WebAuthn origin). Default: the base URL's origin. */
  origin?: string
  /** The WebAuthn RP id. Default: the origin's host name. */
  rpId?: string
  /** Default and largest lifetime of an approval request, seconds (900 and 86,400). */
  requestTtlSec?: number
  maxRequestTtlSec?: number
  /** Lifetime of an enrolment link, seconds (86,400). */
  enrolTtlSec?: number
  /** Lifetime of an approver credential, seconds (365 days). */
  approverTtlSec?: number
  /**
   * Announce each new request and each decision to this receiver: a POST of
   * `{ type, timestamp, id, status, url, call, approver, decidedAt }` signed per Standard Webhooks with
   * `webhook.secret`, written to the outbox in the transaction of the write, retried until delivered or
   * `webhook.giveUpSec` has passed (src/webhooks).
   */
  webhook?: WebhookConfig
  /** The webhook sender's fetch. Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch
  /** The webhook sender's longest sleep between looks at the outbox, ms (default 1,000). */
  webhookPollMs?: number
  /** Called after each approval event has committed (e.g. the transparency log's hook). Errors are ignored. */
  onEvent?: (event: ApprovalEvent) => void
  /**
   * The issuer's security events: an approver's revocation publishes a CAEP credential-change SET for the
   * approver credential on the event stream (`GET /v1/events`), so subscribed verifiers refuse its receipts
   * at once.
   */
  revocationEvents?: Pick<RevocationEvents, 'revoked' | 'announce'>
}

export interface ApproverView {
  id: string; name: string; approves: { controllers: string[]; groups: string[] }; user: ApprovalUser | null
  status: 'pending-enrolment' | 'enrolment-expired' | 'active' | 'revoked'
  createdAt: string; enrolledAt: string | null; revokedAt: string | null; revocationReason: string | null
  credentialId: string | null; passkeyId: string | null
}

export interface ApprovalView {
  id: string; status: 'pending' | 'approved' | 'denied' | 'expired'; call: ApprovalCall; url: string
  requestedBy: string; createdAt: string; expiresAt: string; decidedAt: string | null; approver: { id: string; name: string } | null
  receipt: ApprovalReceipt | null
}

const iso = (sec: number) => new Date(sec * 1000).toISOString()
const isoOrNull = (sec: number | null) => (sec === null ? null : iso(sec))
const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
const newId = (prefix: 'apv' | 'apr') => `${prefix}_${randomBytes(16).toString('base64url')}`

/**
 * Checks the approvals options that can be wrong before anything opens (the webhook's URL and secret).
 * @example
 * checkApprovalsOptions({ webhook: { url, secret } })
 */
export function checkApprovalsOptions(o: Partial<ApprovalsOptions> | undefined): void {
  if (o === undefined) return
  // The unsigned option of earlier releases: refused rather than silently sending nothing.
  if ((o as { webhookUrl?: unknown }).webhookUrl !== undefined) {
    throw new AgentIdError('ERR_INVALID_INPUT', 'approvals.webhookUrl is replaced by approvals.webhook: { url, secret } (deliveries are signed)', { details: { field: 'approvals.webhookUrl', reason: 'webhook_secret_missing' } })
  }
  if (o.webhook !== undefined) parseWebhookConfig(o.webhook)
}

function actorName(actor: ApprovalActor): string {
  return actor.kind === 'orchestrator' ? `orchestrator:${actor.id}` : actor.kind
}

function requireAdmin(actor: ApprovalActor): void {
  if (actor.kind !== 'admin' && actor.kind !== 'cli') throw new AgentIdError('ERR_FORBIDDEN', 'admin key required')
}

/** The COSE public key of a passkey as a JWK (EC2 P-256, OKP Ed25519 or RSA), checked by node:crypto. */
export function coseToJwk(coseKey: Uint8Array): { jwk: Record<string, string>; alg: number } {
  const key = decodeCredentialPublicKey(Uint8Array.from(coseKey))
  const alg = key.get(cose.COSEKEYS.alg)
  let jwk: Record<string, string>
  if (cose.isCOSEPublicKeyEC2(key) && key.get(cose.COSEKEYS.crv) === cose.COSECRV.P256 && alg === cose.COSEALG.ES256) {
    jwk = { kty: 'EC', crv: 'P-256', x: b64u(key.get(cose.COSEKEYS.x)!), y: b64u(key.get(cose.COSEKEYS.y)!) }
  } else if (cose.isCOSEPublicKeyOKP(key) && key.get(cose.COSEKEYS.crv) === cose.COSECRV.ED25519 && alg === cose.COSEALG.EdDSA) {
    jwk = { kty: 'OKP', crv: 'Ed25519', x: b64u(key.get(cose.COSEKEYS.x)!) }
  } else if (cose.isCOSEPublicKeyRSA(key) && alg === cose.COSEALG.RS256) {
    jwk = { kty: 'RSA', n: b64u(key.get(cose.COSEKEYS.n)!), e: b64u(key.get(cose.COSEKEYS.e)!) }
  } else {
    throw new AgentIdError('ERR_UNSUPPORTED_ALG', 'the passkey uses a key type or algorithm agentid does not accept (ES256, EdDSA, RS256)')
  }
  createPublicKey({ key: jwk, format: 'jwk' }) // throws on a point off the curve and the like
  return { jwk, alg: alg as number }
}

/** The approval side of the issuer. Rare writes: each in one storage transaction with its audit event. */
export class Approvals {
  readonly origin: string
  readonly rpId: string
  private readonly ttl: number
  private readonly maxTtl: number
  private readonly enrolTtl: number
  private readonly approverTtl: number
  private readonly waiters = new Map<string, Set<() => void>>()
  private closing = false
  /** Delivers the webhook's outbox, when a webhook is configured. */
  readonly webhooks: WebhookSender | undefined

  constructor(private readonly o: ApprovalsOptions) {
    checkApprovalsOptions(o)
    const base = new URL(o.engine.baseUrl)
    this.origin = o.origin ?? base.origin
    this.rpId = o.rpId ?? new URL(this.origin).hostname
    this.ttl = o.requestTtlSec ?? 900
    this.maxTtl = o.maxRequestTtlSec ?? 86_400
    this.enrolTtl = o.enrolTtlSec ?? 86_400
    this.approverTtl = o.approverTtlSec ?? 365 * 86_400
    if (o.webhook) {
      this.webhooks = new WebhookSender({ storage: o.storage, config: o.webhook, ...(o.fetch ? { fetch: o.fetch } : {}), ...(o.webhookPollMs ? { pollMs: o.webhookPollMs } : {}) })
      this.webhooks.start() // first: whatever a previous run left pending
    }
  }

  // The event, in the transaction of the write that causes it: both commit, or neither.
  private async enqueue(tx: StorageTx, type: 'approval.requested' | 'approval.approved' | 'approval.denied', at: number, data: {
    id: string; status: 'pending' | 'approved' | 'denied'; call: ApprovalCall; approver: { id: string; name: string } | null; decidedAt: number | null
  }): Promise<void> {
    if (!this.webhooks) return
    const body = { type, timestamp: iso(at), id: data.id, status: data.status, url: this.url(`/approvals/${data.id}`), call: data.call, approver: data.approver, decidedAt: isoOrNull(data.decidedAt) }
    await tx.webhooks.enqueue(this.webhooks.event(type, data.id, JSON.stringify(body)))
  }

  private url(path: string): string {
    return `${this.o.engine.baseUrl}${path}`
  }

  // Audit row inside the caller's transaction; the event sink after commit.
  private async record(tx: StorageTx, events: ApprovalEvent[], e: ApprovalEvent): Promise<void> {
    // A request's id is the capability to read it: the public log names it by its hash (log-ref.ts).
    const subject = e.action.startsWith('approval.') ? approvalLogRef(e.subject) : e.subject
    await tx.audit.append(e.at, e.actor, e.action, subject, e.details)
    events.push(e)
  }

  private get db(): IssuerStorage {
    return this.o.storage
  }

  private emit(events: readonly ApprovalEvent[]): void {
    for (const e of events) {
      try {
        this.o.onEvent?.(e)
      } catch {
        // A failing sink does not undo a committed decision.
      }
    }
  }

  // ---- approvers -----------------------------------------------------------------------------

  /** Registers an approver and returns the one-time enrolment link (shown once; only its hash is stored). */
  async addApprover(actor: ApprovalActor, body: unknown): Promise<ApproverView & { enrolmentUrl: string; enrolmentExpiresAt: string }> {
    requireAdmin(actor)
    const input = parseApproverRequest(body)
    const token = randomBytes(32).toString('base64url')
    const at = this.o.now()
    const row = {
      id: newId('apv'), name: input.name, scope_json: JSON.stringify({ controllers: input.controllers, groups: input.groups }),
      user_json: input.user === null ? null : JSON.stringify(input.user), enrol_hash: sha256Hex(token), enrol_expires_at: at + this.enrolTtl, created_at: at,
    }
    const events: ApprovalEvent[] = []
    await this.db.transaction(async (tx) => {
      await tx.approvers.insert(row)
      await this.record(tx, events, { at, actor: actorName(actor), action: 'approver.added', subject: row.id, details: { name: input.name, controllers: input.controllers, groups: input.groups } })
    })
    this.emit(events)
    return { ...this.approverView((await this.db.approvers.get(row.id))!), enrolmentUrl: this.url(`/approvals/enrol#${token}`), enrolmentExpiresAt: iso(row.enrol_expires_at) }
  }

  async listApprovers(actor: ApprovalActor): Promise<ApproverView[]> {
    requireAdmin(actor)
    return (await this.db.approvers.list()).map((r) => this.approverView(r))
  }

  async getApprover(actor: ApprovalActor, id: unknown): Promise<ApproverView & { credential: string | null }> {
    requireAdmin(actor)
    const row = await this.db.approvers.get(parseId(id, 'apv'))
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'approver not found')
    return { ...this.approverView(row), credential: row.credential_jwt }
  }

  /** Revokes an approver: the status bit of their credential (verifiers refuse their receipts) and any pending enrolment. */
  async revokeApprover(actor: ApprovalActor, id: unknown, reason: string): Promise<{ id: string; alreadyRevoked: boolean }> {
    requireAdmin(actor)
    const approverId = parseId(id, 'apv')
    const events: ApprovalEvent[] = []
    const result = await this.db.transaction(async (tx) => {
      const row = await tx.approvers.get(approverId)
      if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'approver not found')
      const at = this.o.now()
      const changed = await tx.approvers.revoke(approverId, at, reason)
      if (changed) {
        if (row.status_list_id !== null && row.status_index !== null) await this.o.statusLists.setRevoked(tx, [{ listId: row.status_list_id, index: row.status_index }])
        // Its SET in the same transaction: the revocation and its event commit together or not at all.
        if (row.credential_id !== null) await this.o.revocationEvents?.revoked(tx, { at, credentials: [row.credential_id], delegations: [] })
        await this.record(tx, events, { at, actor: actorName(actor), action: 'approver.revoked', subject: approverId, details: { reason, credentialId: row.credential_id } })
      }
      return { id: approverId, alreadyRevoked: !changed }
    })
    this.o.revocationEvents?.announce()
    this.emit(events)
    return result
  }

  private async pendingEnrolment(token: string): Promise<ApproverRow> {
    const row = await this.db.approvers.byEnrolHash(sha256Hex(token))
    if (!row || row.revoked_at !== null || row.enrol_expires_at <= this.o.now()) throw new AgentIdError('ERR_NOT_FOUND', 'unknown, used or expired enrolment link')
    return row
  }

  /** What the enrolment page shows: who enrols and for what. */
  async enrolment(body: unknown): Promise<{ name: string; approves: { controllers: string[]; groups: string[] }; rpId: string; expiresAt: string }> {
    const row = await this.pendingEnrolment(parseEnrolToken(body))
    return { name: row.name, approves: JSON.parse(row.scope_json), rpId: this.rpId, expiresAt: iso(row.enrol_expires_at) }
  }

  /** WebAuthn registration options for an enrolment link (a discoverable passkey, user verification required). */
  async enrolmentOptions(body: unknown): Promise<Record<string, unknown>> {
    const row = await this.pendingEnrolment(parseEnrolToken(body))
    const options = await generateRegistrationOptions({
      rpName: 'agentid approvals',
      rpID: this.rpId,
      userName: row.name,
      userDisplayName: row.name,
      userID: new TextEncoder().encode(row.id),
      attestationType: 'none',
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      supportedAlgorithmIDs: [-7, -8, -257],
      timeout: 120_000,
    })
    await this.db.approvers.setChallenge(row.id, options.challenge)
    return options as unknown as Record<string, unknown>
  }

  /**
   * Verifies the registration (origin, RP id, challenge, user presence and verification) and issues the
   * approver credential certifying the passkey, with a status entry. Spends the enrolment link.
   */
  async enrol(body: unknown): Promise<{ approverId: string; credential: string; credentialId: string }> {
    const b = body as { token?: unknown; response?: unknown }
    const token = parseEnrolToken(body)
    const row = await this.pendingEnrolment(token)
    if (row.reg_challenge === null) throw new AgentIdError('ERR_INVALID_INPUT', 'ask for registration options first', { details: { field: 'response' } })
    if (typeof b.response !== 'object' || b.response === null) throw new AgentIdError('ERR_INVALID_INPUT', 'response: must be the WebAuthn registration response', { details: { field: 'response' } })
    let verified
    try {
      verified = await verifyRegistrationResponse({
        response: b.response as RegistrationResponseJSON,
        expectedChallenge: row.reg_challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        requireUserVerification: true,
        supportedAlgorithmIDs: [-7, -8, -257],
      })
    } catch (cause) {
      throw new AgentIdError('ERR_SIGNATURE_INVALID', 'the passkey registration does not verify', { cause, details: { reason: (cause as Error).message?.slice(0, 200) } })
    }
    if (!verified.verified || !verified.registrationInfo) throw new AgentIdError('ERR_SIGNATURE_INVALID', 'the passkey registration does not verify')
    const { credential } = verified.registrationInfo
    if (await this.db.approvers.byWebauthnId(credential.id)) throw new AgentIdError('ERR_CONFLICT', 'this passkey is already enrolled')
    const { jwk, alg } = coseToJwk(credential.publicKey)
    const at = this.o.now()
    const id = `urn:uuid:${randomUUID()}`
    const slot = await this.o.statusLists.reserve()
    const scope = JSON.parse(row.scope_json) as { controllers: string[]; groups: string[] }
    const user = row.user_json === null ? null : (JSON.parse(row.user_json) as ApprovalUser)
    const jwt = await this.o.engine.issueJwtCredential({
      '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
      type: ['VerifiableCredential', APPROVER_CREDENTIAL],
      id,
      issuanceDate: iso(at),
      expirationDate: iso(at + this.approverTtl),
      credentialSubject: {
        id: `urn:agentid:approver:${row.id}`,
        approverId: row.id,
        name: row.name,
        approves: scope,
        ...(user === null ? {} : { user }),
        webauthn: { credentialId: credential.id, alg, publicKeyJwk: jwk, rpId: this.rpId, origin: this.origin },
      },
      credentialStatus: {
        id: `${slot.url}#${slot.index}`, type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(slot.index), statusListCredential: slot.url,
      },
    })
    const events: ApprovalEvent[] = []
    await this.db.transaction(async (tx) => {
      const done = await tx.approvers.enrol(row.id, sha256Hex(token), {
        webauthnId: credential.id, cose: credential.publicKey, alg, counter: credential.counter, credentialId: id, jwt, listId: slot.listId, index: slot.index, at,
      })
      if (!done) throw new AgentIdError('ERR_NOT_FOUND', 'unknown, used or expired enrolment link')
      await tx.statusLists.advance(slot.listId, slot.index + 1)
      await this.record(tx, events, { at, actor: `approver:${row.id}`, action: 'approver.enrolled', subject: row.id, details: { credentialId: id, passkeyId: credential.id, alg, status: { list: slot.listId, index: slot.index } } })
    })
    this.emit(events)
    return { approverId: row.id, credential: jwt, credentialId: id }
  }

  // ---- requests ------------------------------------------------------------------------------

  /** A guarded service asks for an approval of a canonical call (orchestrator or admin key). */
  async createRequest(actor: ApprovalActor, body: unknown): Promise<ApprovalView> {
    const input = parseApprovalRequest(body, this.maxTtl)
    // The page shows the controller as the issuer's statement: for an agent of this issuer it must be the
    // agent's own, or a caller could have another controller's approvers approve its agent's call.
    const known = await this.db.agents.get(input.agent)
    if (known !== undefined && known.controller !== input.controller) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'controller: is not the controller of this agent', { details: { field: 'controller' } })
    }
    const at = this.o.now()
    const id = newId('apr')
    const call: ApprovalCall = {
      type: APPROVAL_CALL_TYPE,
      id,
      issuer: this.o.engine.issuer.did,
      transactionId: input.transactionId || `tx_${randomBytes(12).toString('base64url')}`,
      agent: input.agent,
      controller: input.controller,
      user: input.user,
      target: input.target,
      command: input.command,
      arguments: input.arguments,
      argumentsDigest: argumentsDigest(input.arguments),
      group: input.group,
      createdAt: at,
      expiresAt: at + (input.ttlSec ?? this.ttl),
    }
    const events: ApprovalEvent[] = []
    await this.db.transaction(async (tx) => {
      await tx.approvalRequests.insert({ id, requested_by: actorName(actor), agent: call.agent, controller: call.controller, call_json: canonicalJson(call), created_at: at, expires_at: call.expiresAt })
      await this.record(tx, events, { at, actor: actorName(actor), action: 'approval.requested', subject: id, details: { agent: call.agent, target: call.target, command: call.command, argumentsDigest: call.argumentsDigest, group: call.group, transactionId: call.transactionId } })
      await this.enqueue(tx, 'approval.requested', at, { id, status: 'pending', call, approver: null, decidedAt: null })
    })
    this.emit(events)
    this.webhooks?.wake()
    return this.requestView((await this.db.approvalRequests.get(id))!)
  }

  /** The request and its decision (anyone holding its unguessable id). `waitSec` long-polls for a decision. */
  async getRequest(id: unknown, waitSec = 0): Promise<ApprovalView> {
    const requestId = parseId(id, 'apr')
    let row = await this.db.approvalRequests.get(requestId)
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'approval request not found')
    const left = row.expires_at - this.o.now()
    if (row.status === 'pending' && waitSec > 0 && left > 0) {
      // Woken at once by a decision made through this instance; one made through another instance on
      // the same database is read within a second.
      const deadline = Date.now() + Math.min(waitSec, left) * 1000
      while (row.status === 'pending' && !this.closing) {
        const ms = deadline - Date.now()
        if (ms <= 0) break
        await this.waitFor(requestId, Math.min(ms, 1000))
        if (this.closing) break
        row = (await this.db.approvalRequests.get(requestId))!
      }
    }
    return this.requestView(row)
  }

  private waitFor(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiters.get(id) ?? new Set()
      this.waiters.set(id, set)
      const done = () => {
        clearTimeout(timer)
        set.delete(done)
        if (set.size === 0) this.waiters.delete(id)
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref()
      set.add(done)
    })
  }

  /** Wakes every long poll and ends them (for shutdown). */
  wakeAll(): void {
    this.closing = true
    for (const set of [...this.waiters.values()]) for (const done of [...set]) done()
  }

  /** Ends the long polls and stops the webhook sender (attempts in flight are recorded): before the storage closes. */
  async close(): Promise<void> {
    this.wakeAll()
    await this.webhooks?.stop()
  }

  async listRequests(actor: ApprovalActor, query: unknown): Promise<{ approvals: ApprovalView[] }> {
    requireAdmin(actor)
    const q = (query ?? {}) as Record<string, unknown>
    const status = q.status === undefined ? null : q.status
    if (status !== null && status !== 'pending' && status !== 'approved' && status !== 'denied') throw new AgentIdError('ERR_INVALID_INPUT', 'status: must be pending, approved or denied', { details: { field: 'status' } })
    const limit = q.limit === undefined ? 50 : Number(q.limit)
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 500) throw new AgentIdError('ERR_INVALID_INPUT', 'limit: must be 1 to 500', { details: { field: 'limit' } })
    const rows = await this.db.approvalRequests.list(status as string | null, limit)
    return { approvals: await Promise.all(rows.map((r) => this.requestView(r))) }
  }

  /** WebAuthn authentication options for approving and for denying (two challenges: the call, and the call denied). */
  async decisionOptions(id: unknown): Promise<{ approve: Record<string, unknown>; deny: Record<string, unknown> }> {
    const row = await this.pendingRequest(parseId(id, 'apr'))
    const call = JSON.parse(row.call_json) as ApprovalCall
    // No allowCredentials: the approver's authenticator offers its discoverable passkey for this RP; whether
    // that approver may approve this call is checked on the answer, not disclosed here.
    const options = async (decision: 'approve' | 'deny') => (await generateAuthenticationOptions({
      rpID: this.rpId,
      challenge: Uint8Array.from(approvalChallenge(call, decision)),
      userVerification: 'required',
      timeout: 120_000,
    })) as unknown as Record<string, unknown>
    return { approve: await options('approve'), deny: await options('deny') }
  }

  private async pendingRequest(id: string): Promise<ApprovalRequestRow> {
    const row = await this.db.approvalRequests.get(id)
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'approval request not found')
    if (row.status !== 'pending') throw new AgentIdError('ERR_CONFLICT', `the request is already ${row.status}`)
    if (row.expires_at <= this.o.now()) throw new AgentIdError('ERR_EXPIRED', 'the approval request has expired')
    return row
  }

  /**
   * Records an approver's decision: the WebAuthn assertion must verify (@simplewebauthn/server: challenge =
   * the call's hash for the decision, origin, RP id, UP and UV, signature with the enrolled passkey, counter)
   * and the approver be active and allowed for the call; an approval's receipt is then checked by the
   * issuer's own verifier, exactly as services will, before it is stored.
   */
  async decide(id: unknown, body: unknown): Promise<ApprovalView> {
    const requestId = parseId(id, 'apr')
    const { decision, response } = parseDecision(body)
    const row = await this.pendingRequest(requestId)
    const call = JSON.parse(row.call_json) as ApprovalCall
    const approver = await this.db.approvers.byWebauthnId(response.id as string)
    if (!approver || approver.enrolled_at === null || approver.public_key_cose === null) throw new AgentIdError('ERR_UNAUTHENTICATED', 'this passkey is not enrolled as an approver')
    if (approver.revoked_at !== null) throw new AgentIdError('ERR_REVOKED', 'this approver has been revoked')
    let verified
    try {
      verified = await verifyAuthenticationResponse({
        response: response as unknown as AuthenticationResponseJSON,
        expectedChallenge: b64u(approvalChallenge(call, decision)),
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        expectedType: 'webauthn.get',
        requireUserVerification: true,
        credential: { id: approver.webauthn_id!, publicKey: new Uint8Array(approver.public_key_cose), counter: approver.sign_count },
      })
    } catch (cause) {
      throw new AgentIdError('ERR_SIGNATURE_INVALID', 'the passkey assertion does not verify', { cause, details: { reason: (cause as Error).message?.slice(0, 200) } })
    }
    if (!verified.verified || !verified.authenticationInfo.userVerified) throw new AgentIdError('ERR_USER_NOT_VERIFIED', 'the approver was not verified by the authenticator')
    const scope = JSON.parse(approver.scope_json) as { controllers: string[]; groups: string[] }
    const allowed = call.group !== null ? scope.groups.includes(call.group) : scope.controllers.includes(call.controller)
    if (!allowed) throw new AgentIdError('ERR_NOT_AUTHORIZED', 'this approver may not approve calls of this controller or group')
    const r = response.response as Record<string, unknown>
    const receipt: ApprovalReceipt = {
      type: APPROVAL_RECEIPT_TYPE,
      decision,
      call,
      credentialId: approver.webauthn_id!,
      authenticatorData: String(r.authenticatorData),
      clientDataJSON: String(r.clientDataJSON),
      signature: String(r.signature),
      approverCredential: approver.credential_jwt!,
    }
    if (decision === 'approve') {
      try {
        await this.o.verifier.verifyApproval(receipt, { call: { agent: call.agent, target: call.target, command: call.command, arguments: call.arguments }, consume: false })
      } catch (cause) {
        throw new AgentIdError('ERR_INTERNAL', 'the issuer refused its own approval receipt', { cause })
      }
    }
    const at = this.o.now()
    const events: ApprovalEvent[] = []
    await this.db.transaction(async (tx) => {
      if (!(await tx.approvalRequests.decide(requestId, decision === 'approve' ? 'approved' : 'denied', at, approver.id, JSON.stringify(receipt)))) {
        throw new AgentIdError('ERR_CONFLICT', 'the request was decided or expired meanwhile')
      }
      if (verified.authenticationInfo.newCounter > approver.sign_count) await tx.approvers.setCounter(approver.id, verified.authenticationInfo.newCounter)
      await this.record(tx, events, {
        at, actor: `approver:${approver.id}`, action: decision === 'approve' ? 'approval.approved' : 'approval.denied', subject: requestId,
        details: { approver: approver.id, agent: call.agent, command: call.command, argumentsDigest: call.argumentsDigest, receiptDigest: argumentsDigest(receipt) },
      })
      const status = decision === 'approve' ? 'approved' : 'denied'
      await this.enqueue(tx, `approval.${status}`, at, { id: requestId, status, call, approver: { id: approver.id, name: approver.name }, decidedAt: at })
    })
    this.emit(events)
    this.webhooks?.wake()
    for (const done of [...(this.waiters.get(requestId) ?? [])]) done()
    return this.requestView((await this.db.approvalRequests.get(requestId))!)
  }

  private async requestView(row: ApprovalRequestRow): Promise<ApprovalView> {
    const approver = row.approver_id === null ? undefined : await this.db.approvers.get(row.approver_id)
    const expired = row.status === 'pending' && row.expires_at <= this.o.now()
    return {
      id: row.id,
      status: expired ? 'expired' : row.status,
      call: JSON.parse(row.call_json) as ApprovalCall,
      url: this.url(`/approvals/${row.id}`),
      requestedBy: row.requested_by,
      createdAt: iso(row.created_at),
      expiresAt: iso(row.expires_at),
      decidedAt: isoOrNull(row.decided_at),
      approver: approver ? { id: approver.id, name: approver.name } : null,
      receipt: row.receipt_json === null ? null : (JSON.parse(row.receipt_json) as ApprovalReceipt),
    }
  }

  private approverView(row: ApproverRow): ApproverView {
    const scope = JSON.parse(row.scope_json) as { controllers: string[]; groups: string[] }
    const status = row.revoked_at !== null ? 'revoked' : row.enrolled_at !== null ? 'active' : row.enrol_expires_at <= this.o.now() ? 'enrolment-expired' : 'pending-enrolment'
    return {
      id: row.id, name: row.name, approves: scope, user: row.user_json === null ? null : (JSON.parse(row.user_json) as ApprovalUser), status,
      createdAt: iso(row.created_at), enrolledAt: isoOrNull(row.enrolled_at), revokedAt: isoOrNull(row.revoked_at), revocationReason: row.revocation_reason,
      credentialId: row.credential_id, passkeyId: row.webauthn_id,
    }
  }
}
