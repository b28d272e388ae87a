// Human approvals (DESIGN.md "Approvals"): a person's passkey signs, as its WebAuthn challenge, the SHA-256
// of the RFC 8785 canonical form of the exact call; the passkey's public key is certified by the issuer in
// an approver credential, so a receipt is re-verified offline, here, with node:crypto.
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { decodeJwt, parseStatusEntry, VerificationError, type DecodedJwt } from '@agentid/core'
import type { ReplayCache } from './replay-cache.js'
import { BoundedCache } from './lru.js'
import { deepFreeze, isRecord, statusIndexOf } from './util.js'

// canonicalize 2.x is CommonJS (`module.exports = serialize`), typed as an ES default export. Required,
// as @agentid/lineage does, not imported: an ES import of a CommonJS module makes Node load and run its
// CommonJS export lexer over the source (and TurboFan compile the lexer) in every process that loads this.
type Serialize = (input: unknown) => string | undefined
const canonicalize = createRequire(import.meta.url)('canonicalize') as Serialize

/** The `type` member of every canonical call: a call object can never be confused with anything else signed. */
export const APPROVAL_CALL_TYPE = 'agentid/approval-call/v1'
/** The `vc.type` of an approver credential. */
export const APPROVER_CREDENTIAL = 'AgentIdApproverCredential'
/** The `type` member of an approval receipt. */
export const APPROVAL_RECEIPT_TYPE = 'agentid/approval-receipt/v1'
/** Largest canonical `arguments` an approval request may carry (16 KiB). */
export const MAX_APPROVAL_ARGUMENTS_BYTES = 16 * 1024

/** The user an agent acts for, as the verifier established it (token exchange). */
export interface ApprovalUser {
  readonly id: string
  readonly issuer?: string
}

/**
 * The canonical call a human approves: everything the service will act on and nothing the agent can
 * phrase. Its RFC 8785 form is what the passkey signs (through its SHA-256 as the WebAuthn challenge).
 */
export interface ApprovalCall {
  readonly type: typeof APPROVAL_CALL_TYPE
  /** The approval request id (`apr_...`): an approval is spent once. */
  readonly id: string
  /** The DID of the issuer that holds the request and certifies the approvers. */
  readonly issuer: string
  /** The transaction this call belongs to (the lineage's transaction id, or one the service chose). */
  readonly transactionId: string
  /** The calling agent's DID. */
  readonly agent: string
  /** The agent's `controller` claim: who answers for it, and whose approvers may approve. */
  readonly controller: string
  /** The user the agent acts for, or null. */
  readonly user: ApprovalUser | null
  /** Where the call goes: the MCP endpoint or service URL (the guard's `resource`). */
  readonly target: string
  /** What is done there: `tools/call <name>` for MCP, `<METHOD> <path>` for HTTP. */
  readonly command: string
  /** The call's arguments, as data (JSON). */
  readonly arguments: unknown
  /** `sha-256:` + base64url of the SHA-256 of the RFC 8785 form of `arguments`. */
  readonly argumentsDigest: string
  /** The approver group a policy named (`@approvers("...")`): only its approvers may approve; null: the controller's approvers. */
  readonly group: string | null
  /** Unix seconds. */
  readonly createdAt: number
  /** Unix seconds: the approval must be used before then. */
  readonly expiresAt: number
}

/** What an approver may approve, as certified in their credential. */
export interface ApproverScope {
  readonly controllers: readonly string[]
  readonly groups: readonly string[]
}

/** An approval receipt: the call, the WebAuthn assertion over it, and the approver's credential. */
export interface ApprovalReceipt {
  readonly type: typeof APPROVAL_RECEIPT_TYPE
  readonly decision: 'approve' | 'deny'
  readonly call: ApprovalCall
  /** The WebAuthn credential id (base64url). */
  readonly credentialId: string
  /** base64url. */
  readonly authenticatorData: string
  /** base64url of the exact clientDataJSON bytes. */
  readonly clientDataJSON: string
  /** base64url of the assertion signature. */
  readonly signature: string
  /** The approver credential (a JWT VC signed by the issuer). */
  readonly approverCredential: string
}

/** The call as the service received it, which the receipt must be for. */
export interface ReceivedCall {
  agent: string
  target: string
  command: string
  /** The arguments received (a JSON value). Give this or `argumentsDigest`. */
  arguments?: unknown
  /** Instead of `arguments`: their digest (`argumentsDigest(args)`, `sha-256:...`), e.g. a lineage hop's `arg`. */
  argumentsDigest?: string
  /** When given, must equal the receipt's. */
  controller?: string
  /** When given, must equal the receipt's. */
  transactionId?: string
  /** When given (null: acts for nobody), must equal the receipt's. */
  user?: ApprovalUser | null
}

/** Options of `verifier.verifyApproval`. */
export interface VerifyApprovalOptions {
  /** The call actually received. */
  call: ReceivedCall
  /**
   * Origins the assertion may come from. Default: the one the issuer certified in the approver credential
   * (the issuer's approval page).
   */
  origins?: readonly string[]
  /** The WebAuthn RP id. Default: the one certified in the approver credential. */
  rpId?: string
  /**
   * Whether the receipt is spent (recorded in the verifier's replay cache until the call's expiry). Default
   * true; false only re-checks a receipt (a third party auditing it, a tool checking its lineage again).
   */
  consume?: boolean
}

/** A verified approval. */
export interface VerifiedApproval {
  readonly requestId: string
  readonly call: ApprovalCall
  readonly approver: {
    /** The approver id at the issuer (`apv_...`). */
    readonly id: string
    readonly name: string
    /** The approver credential's id (`jti`). */
    readonly credentialId: string
    readonly user: ApprovalUser | null
    readonly scope: ApproverScope
  }
  /** True when the approver is the user the agent acts for (policies may forbid it). */
  readonly selfApproval: boolean
  /** The SHA-256 of the canonical call (base64url): the WebAuthn challenge that was signed. */
  readonly callHash: string
}

/** What `verifyApproval` needs from its verifier. */
export interface ApprovalContext {
  now: () => number
  clockSkewSec: number
  maxTokenBytes: number
  trustedIssuers: ReadonlySet<string>
  replayCache: ReplayCache
  verifyIssuerSignature: (jwt: DecodedJwt, iss: string) => Promise<void>
  statusOf: (url: string, issuer: string, index: number) => Promise<number>
  /** True when a revocation event (the verifier's revocation stream) revoked the credential `jti` of `issuer`. */
  revoked: (issuer: string, jti: string) => boolean
  /**
   * Approver credentials verified before, by the SHA-256 (base64url) of their exact bytes: a hit skips the
   * parse, the issuer's signature and the key import; time, revocation and status are still checked per call.
   */
  memo: BoundedCache<string, Approver>
}

/** A bounded memo of verified approver credentials (`ApprovalContext.memo`). */
export function createApproverMemo(size: number): BoundedCache<string, Approver> {
  return new BoundedCache(size)
}

function malformed(message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError('ERR_MALFORMED', message, { details })
}

function mismatch(field: string): never {
  throw new VerificationError('ERR_APPROVAL_MISMATCH', `the receipt is not for this call: ${field} differs`, { details: { field } })
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

const B64U = /^[A-Za-z0-9_-]*$/

function bytesOf(value: unknown, field: string, max: number): Buffer {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || !B64U.test(value)) malformed(`${field} must be base64url`, { field })
  const bytes = Buffer.from(value, 'base64url')
  if (b64u(bytes) !== value) malformed(`${field} is not canonical base64url`, { field })
  return bytes
}

/**
 * RFC 8785 (JCS) form of a JSON value. Throws ERR_MALFORMED for what JSON cannot hold (undefined, a
 * function, a non-finite number, a bigint).
 * @example
 * canonicalJson({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  let text: string | undefined
  try {
    text = canonicalize(value)
  } catch {
    text = undefined
  }
  if (typeof text !== 'string') malformed('the value is not JSON')
  // canonicalize leaves undefined members and non-finite numbers to JSON.stringify (null): refuse them.
  if (!sameJson(value)) malformed('the value is not JSON')
  return text
}

function sameJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (Array.isArray(value)) return value.every((v) => sameJson(v, depth + 1))
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return false
    return Object.values(value as Record<string, unknown>).every((v) => sameJson(v, depth + 1))
  }
  return false
}

/**
 * The digest of a call's arguments: `sha-256:` + base64url(SHA-256(RFC 8785 form)).
 * @example
 * argumentsDigest({ amount: 10, to: 'acme' }) // 'sha-256:...'
 */
export function argumentsDigest(args: unknown): string {
  return `sha-256:${createHash('sha256').update(canonicalJson(args), 'utf8').digest('base64url')}`
}

/**
 * The WebAuthn challenge for approving (`decision: 'approve'`, the default) or denying a call: the SHA-256
 * of the RFC 8785 form of the call, or for a denial of `{ "call": <call>, "decision": "deny" }`, so that a
 * denial can never be read as an approval.
 * @example
 * const challenge = approvalChallenge(call) // 32 bytes; the approval page passes them to navigator.credentials.get
 */
export function approvalChallenge(call: ApprovalCall, decision: 'approve' | 'deny' = 'approve'): Uint8Array {
  const text = decision === 'approve' ? canonicalJson(call) : canonicalJson({ call, decision: 'deny' })
  return new Uint8Array(createHash('sha256').update(text, 'utf8').digest())
}

const CALL_KEYS = ['type', 'id', 'issuer', 'transactionId', 'agent', 'controller', 'user', 'target', 'command', 'arguments', 'argumentsDigest', 'group', 'createdAt', 'expiresAt'] as const

function text(value: unknown, field: string, max = 2048): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) malformed(`call.${field} must be a non-empty string`, { field: `call.${field}` })
  return value
}

function seconds(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) malformed(`call.${field} must be unix seconds`, { field: `call.${field}` })
  return value
}

function userOf(value: unknown, field: string): ApprovalUser | null {
  if (value === null) return null
  if (!isRecord(value) || typeof value.id !== 'string' || value.id === '' || value.id.length > 1024) malformed(`${field} must be null or { id, issuer? }`, { field })
  if (Object.keys(value).some((k) => k !== 'id' && k !== 'issuer')) malformed(`${field} has unknown members`, { field })
  if (value.issuer !== undefined && (typeof value.issuer !== 'string' || value.issuer === '')) malformed(`${field}.issuer must be a string`, { field })
  return value.issuer === undefined ? { id: value.id } : { id: value.id, issuer: value.issuer as string }
}

/**
 * Checks the shape of a canonical call (exactly its members, each of its type, the digest matching the
 * arguments). Throws ERR_MALFORMED.
 * @example
 * const call = parseApprovalCall(JSON.parse(body).call)
 */
export function parseApprovalCall(value: unknown): ApprovalCall {
  if (!isRecord(value)) malformed('call must be an object', { field: 'call' })
  const keys = Object.keys(value)
  if (keys.length !== CALL_KEYS.length || !CALL_KEYS.every((k) => Object.hasOwn(value, k))) malformed('call must have exactly the members of a canonical call', { field: 'call' })
  if (value.type !== APPROVAL_CALL_TYPE) malformed('call.type is not an approval call', { field: 'call.type' })
  const createdAt = seconds(value.createdAt, 'createdAt')
  const expiresAt = seconds(value.expiresAt, 'expiresAt')
  if (expiresAt <= createdAt) malformed('call.expiresAt must be after createdAt', { field: 'call.expiresAt' })
  if (value.group !== null) text(value.group, 'group', 128)
  const digest = text(value.argumentsDigest, 'argumentsDigest', 64)
  if (Buffer.byteLength(canonicalJson(value.arguments), 'utf8') > MAX_APPROVAL_ARGUMENTS_BYTES) malformed('call.arguments is too large', { field: 'call.arguments' })
  if (argumentsDigest(value.arguments) !== digest) malformed('call.argumentsDigest does not match call.arguments', { field: 'call.argumentsDigest' })
  const call: ApprovalCall = {
    type: APPROVAL_CALL_TYPE,
    id: text(value.id, 'id', 64),
    issuer: text(value.issuer, 'issuer'),
    transactionId: text(value.transactionId, 'transactionId', 256),
    agent: text(value.agent, 'agent'),
    controller: text(value.controller, 'controller', 256),
    user: userOf(value.user, 'call.user'),
    target: text(value.target, 'target'),
    command: text(value.command, 'command', 512),
    arguments: value.arguments,
    argumentsDigest: digest,
    group: value.group as string | null,
    createdAt,
    expiresAt,
  }
  return call
}

/** The certified part of an approver credential. */
export interface Approver {
  id: string
  name: string
  credentialId: string
  user: ApprovalUser | null
  scope: ApproverScope
  key: KeyObject
  alg: number
  webauthnId: string
  rpId: string
  origin: string
  issuer: string
  status: { url: string; index: number }
  exp: number
  nbf: number | null
}

function strings(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length > 256 || !value.every((v) => typeof v === 'string' && v !== '' && v.length <= 256)) malformed(`${field} must be a list of strings`, { field })
  return [...(value as string[])]
}

/** The COSE algorithms an approver key may use, with how node:crypto verifies each. */
const COSE_ALGS: Record<number, { kty: string; crv?: string; hash: string | null }> = {
  [-7]: { kty: 'EC', crv: 'P-256', hash: 'sha256' }, // ES256 (DER-encoded signature, as WebAuthn sends it)
  [-8]: { kty: 'OKP', crv: 'Ed25519', hash: null }, // EdDSA
  [-257]: { kty: 'RSA', hash: 'sha256' }, // RS256
}

async function verifyApproverCredential(ctx: ApprovalContext, token: unknown): Promise<Approver> {
  if (typeof token !== 'string') malformed('approverCredential must be a compact JWT', { field: 'approverCredential' })
  if (token.length > ctx.maxTokenBytes) malformed('approverCredential is too large', { field: 'approverCredential' })
  // SHA-256 names the exact bytes; what is cached passed every check below, none of which depends on time.
  const memoKey = createHash('sha256').update(token).digest('base64url')
  const known = ctx.memo.get(memoKey)
  if (known !== undefined) return known
  const jwt = decodeJwt(token, ctx.maxTokenBytes)
  if (jwt.header.typ !== undefined && jwt.header.typ !== 'JWT' && jwt.header.typ !== 'vc+jwt') malformed('unexpected typ for an approver credential')
  const p = jwt.payload
  if (typeof p.iss !== 'string') malformed('approverCredential: iss is missing')
  if (!ctx.trustedIssuers.has(p.iss)) throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'the approver credential\'s issuer is not trusted', { details: { iss: p.iss } })
  await ctx.verifyIssuerSignature(jwt, p.iss)
  const vc = p.vc
  if (!isRecord(vc) || !Array.isArray(vc.type) || !vc.type.includes(APPROVER_CREDENTIAL)) malformed('not an approver credential')
  const s = vc.credentialSubject
  if (!isRecord(s)) malformed('approverCredential: credentialSubject must be an object')
  // JWT VCs carry the subject's id as `sub` (did-jwt-vc moves it there); when kept in the subject it must agree.
  if (typeof p.sub !== 'string' || (s.id !== undefined && s.id !== p.sub)) malformed('approverCredential: sub must equal credentialSubject.id')
  if (typeof p.jti !== 'string') malformed('approverCredential: jti is missing')
  if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) malformed('approverCredential: exp is required')
  if (p.nbf !== undefined && (typeof p.nbf !== 'number' || !Number.isFinite(p.nbf))) malformed('approverCredential: nbf must be a NumericDate')
  if (typeof s.approverId !== 'string' || typeof s.name !== 'string') malformed('approverCredential: approverId and name are required')
  const approves = s.approves
  if (!isRecord(approves)) malformed('approverCredential: approves must be an object')
  const scope = { controllers: strings(approves.controllers, 'approves.controllers'), groups: strings(approves.groups, 'approves.groups') }
  const w = s.webauthn
  if (!isRecord(w)) malformed('approverCredential: webauthn is required')
  if (typeof w.credentialId !== 'string' || typeof w.rpId !== 'string' || typeof w.origin !== 'string' || !isRecord(w.publicKeyJwk)) malformed('approverCredential: webauthn { credentialId, publicKeyJwk, rpId, origin } is required')
  const alg = COSE_ALGS[w.alg as number]
  if (alg === undefined) throw new VerificationError('ERR_UNSUPPORTED_ALG', 'the approver key\'s algorithm is not supported', { details: { alg: w.alg } })
  const jwk = w.publicKeyJwk
  if (jwk.kty !== alg.kty || (alg.crv !== undefined && jwk.crv !== alg.crv) || 'd' in jwk || 'p' in jwk) malformed('approverCredential: publicKeyJwk does not match its algorithm')
  let key: KeyObject
  try {
    key = createPublicKey({ key: jwk as never, format: 'jwk' })
  } catch {
    malformed('approverCredential: publicKeyJwk is not a valid public key')
  }
  if (alg.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) malformed('approverCredential: RSA key shorter than 2048 bits')
  const entry = parseStatusEntry(vc.credentialStatus)
  // Frozen (shared by every receipt of this approver), the KeyObject left as node:crypto made it.
  const approver: Approver = Object.freeze({
    id: s.approverId,
    name: s.name,
    credentialId: p.jti,
    user: deepFreeze(s.user === undefined ? null : userOf(s.user, 'approverCredential.user')),
    scope: deepFreeze(scope),
    key,
    alg: w.alg as number,
    webauthnId: w.credentialId,
    rpId: w.rpId,
    origin: w.origin,
    issuer: p.iss,
    status: Object.freeze({ url: entry.statusListCredential, index: statusIndexOf(entry.statusListIndex) }),
    exp: p.exp,
    nbf: (p.nbf as number | undefined) ?? null,
  })
  ctx.memo.set(memoKey, approver)
  return approver
}

const RECEIPT_KEYS = new Set(['type', 'decision', 'call', 'credentialId', 'authenticatorData', 'clientDataJSON', 'signature', 'approverCredential'])

/**
 * Parses an approval receipt (an object, or its JSON text) without checking it. Throws ERR_MALFORMED.
 * @example
 * const receipt = parseApprovalReceipt(JSON.parse(text))
 */
export function parseApprovalReceipt(value: unknown): ApprovalReceipt {
  let r = value
  if (typeof r === 'string') {
    if (r.length > 128 * 1024) malformed('the receipt is too large')
    try {
      r = JSON.parse(r)
    } catch {
      malformed('the receipt is not JSON')
    }
  }
  if (!isRecord(r)) malformed('the receipt must be an object')
  for (const k of Object.keys(r)) if (!RECEIPT_KEYS.has(k)) malformed(`the receipt has an unknown member ${JSON.stringify(k.slice(0, 40))}`)
  if (r.type !== APPROVAL_RECEIPT_TYPE) malformed('not an approval receipt', { field: 'type' })
  if (r.decision !== 'approve' && r.decision !== 'deny') malformed('decision must be approve or deny', { field: 'decision' })
  const call = parseApprovalCall(r.call)
  for (const f of ['credentialId', 'authenticatorData', 'clientDataJSON', 'signature'] as const) bytesOf(r[f], f, 16 * 1024)
  if (typeof r.approverCredential !== 'string') malformed('approverCredential must be a compact JWT', { field: 'approverCredential' })
  return {
    type: APPROVAL_RECEIPT_TYPE,
    decision: r.decision,
    call,
    credentialId: r.credentialId as string,
    authenticatorData: r.authenticatorData as string,
    clientDataJSON: r.clientDataJSON as string,
    signature: r.signature as string,
    approverCredential: r.approverCredential,
  }
}

function sameUser(a: ApprovalUser | null, b: ApprovalUser | null): boolean {
  if (a === null || b === null) return a === b
  return a.id === b.id && (a.issuer ?? null) === (b.issuer ?? null)
}

const FLAG_UP = 0x01
const FLAG_UV = 0x04

/**
 * Verifies an approval receipt for the call actually received, offline: the receipt's shape; that it
 * approves (not denies); that its call is this call (agent, target, command, arguments and, when given,
 * controller, transaction and user); the approver credential (trusted issuer, signature, time, not
 * revoked) and that it may approve this controller or group; the WebAuthn assertion (challenge = SHA-256
 * of the canonical call, type `webauthn.get`, origin, RP id hash, UP and UV flags, signature with the
 * certified key via node:crypto); the expiry; and, unless `consume: false`, that the receipt was not
 * used before (replay cache, until the call's expiry).
 */
export async function verifyApprovalWith(ctx: ApprovalContext, input: unknown, options: VerifyApprovalOptions): Promise<VerifiedApproval> {
  if (!options || !isRecord(options.call)) throw new TypeError('verifyApproval: options.call (the call received) is required')
  const received = options.call
  const byDigest = !('arguments' in received) && typeof received.argumentsDigest === 'string'
  if (typeof received.agent !== 'string' || typeof received.target !== 'string' || typeof received.command !== 'string' || (!('arguments' in received) && !byDigest)) {
    throw new TypeError('verifyApproval: options.call needs agent, target, command and arguments (or argumentsDigest)')
  }
  const receipt = parseApprovalReceipt(input)
  const call = receipt.call
  if (receipt.decision !== 'approve') throw new VerificationError('ERR_APPROVAL_DENIED', 'the approver denied this call', { details: { requestId: call.id } })

  // 1. The receipt is for this call. (The challenge below binds all of it again.)
  if (call.agent !== received.agent) mismatch('agent')
  if (call.target !== received.target) mismatch('target')
  if (call.command !== received.command) mismatch('command')
  const receivedDigest = byDigest ? received.argumentsDigest! : argumentsDigest(received.arguments)
  if (receivedDigest !== call.argumentsDigest) mismatch('arguments')
  if (received.controller !== undefined && received.controller !== call.controller) mismatch('controller')
  if (received.transactionId !== undefined && received.transactionId !== call.transactionId) mismatch('transactionId')
  if (received.user !== undefined && !sameUser(received.user, call.user)) mismatch('user')
  // Rebuilt from the call received (by digest: the receipt's arguments, whose digest is the one received).
  const expected: ApprovalCall = { ...call, agent: received.agent, target: received.target, command: received.command, arguments: byDigest ? call.arguments : received.arguments, argumentsDigest: receivedDigest }
  const challenge = b64u(approvalChallenge(expected))

  // 2. The approver: certified by a trusted issuer (the one holding the request), in time, unrevoked, allowed.
  const approver = await verifyApproverCredential(ctx, receipt.approverCredential)
  if (approver.issuer !== call.issuer) throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'the approver credential is not from the issuer of the request', { details: { iss: approver.issuer } })
  const t = ctx.now() / 1000
  if (approver.exp + ctx.clockSkewSec <= t) throw new VerificationError('ERR_EXPIRED', 'the approver credential has expired', { details: { exp: approver.exp } })
  if (approver.nbf !== null && approver.nbf - ctx.clockSkewSec > t) throw new VerificationError('ERR_NOT_YET_VALID', 'the approver credential is not yet valid', { details: { nbf: approver.nbf } })
  if (receipt.credentialId !== approver.webauthnId) throw new VerificationError('ERR_KEY_MISMATCH', 'the assertion was made with another passkey than the certified one')
  // A request naming a group (a policy's @approvers) needs an approver of that group; otherwise one of the controller's.
  const allowed = call.group !== null ? approver.scope.groups.includes(call.group) : approver.scope.controllers.includes(call.controller)
  if (!allowed) throw new VerificationError('ERR_NOT_AUTHORIZED', 'the approver may not approve calls of this controller or group', { details: { approver: approver.id, controller: call.controller, group: call.group } })

  // 3. The WebAuthn assertion (W3C WebAuthn §7.2, the steps that apply offline).
  const clientDataBytes = bytesOf(receipt.clientDataJSON, 'clientDataJSON', 16 * 1024)
  let clientData: unknown
  try {
    clientData = JSON.parse(clientDataBytes.toString('utf8'))
  } catch {
    malformed('clientDataJSON is not JSON', { field: 'clientDataJSON' })
  }
  if (!isRecord(clientData)) malformed('clientDataJSON must be an object', { field: 'clientDataJSON' })
  if (clientData.type !== 'webauthn.get') malformed('clientDataJSON.type must be webauthn.get', { field: 'clientDataJSON.type' })
  if (clientData.challenge !== challenge) mismatch('challenge')
  const origins = options.origins ?? [approver.origin]
  if (typeof clientData.origin !== 'string' || !origins.includes(clientData.origin)) {
    throw new VerificationError('ERR_AUDIENCE_MISMATCH', 'the assertion was made on another origin', { details: { field: 'clientDataJSON.origin' } })
  }
  if (clientData.crossOrigin === true || clientData.topOrigin !== undefined) {
    throw new VerificationError('ERR_AUDIENCE_MISMATCH', 'the assertion was made in a cross-origin frame', { details: { field: 'clientDataJSON.crossOrigin' } })
  }
  const authData = bytesOf(receipt.authenticatorData, 'authenticatorData', 16 * 1024)
  if (authData.length < 37) malformed('authenticatorData is too short', { field: 'authenticatorData' })
  const rpIdHash = createHash('sha256').update(options.rpId ?? approver.rpId, 'utf8').digest()
  if (!authData.subarray(0, 32).equals(rpIdHash)) throw new VerificationError('ERR_AUDIENCE_MISMATCH', 'the assertion is for another RP id', { details: { field: 'authenticatorData.rpIdHash' } })
  const flags = authData[32]!
  if ((flags & FLAG_UP) === 0) throw new VerificationError('ERR_USER_NOT_VERIFIED', 'the authenticator did not test user presence', { details: { flag: 'UP' } })
  if ((flags & FLAG_UV) === 0) throw new VerificationError('ERR_USER_NOT_VERIFIED', 'the authenticator did not verify the user', { details: { flag: 'UV' } })
  const signature = bytesOf(receipt.signature, 'signature', 1024)
  const signed = Buffer.concat([authData, createHash('sha256').update(clientDataBytes).digest()])
  let valid = false
  try {
    valid = cryptoVerify(COSE_ALGS[approver.alg]!.hash, signed, approver.key, signature)
  } catch {
    valid = false
  }
  if (!valid) throw new VerificationError('ERR_SIGNATURE_INVALID', 'the approver\'s assertion signature is invalid')

  // 4. Time, revocation, single use.
  if (call.expiresAt + ctx.clockSkewSec <= t) throw new VerificationError('ERR_EXPIRED', 'the approval has expired', { details: { exp: call.expiresAt } })
  if (ctx.revoked(approver.issuer, approver.credentialId)) {
    throw new VerificationError('ERR_REVOKED', 'the approver credential has been revoked (revocation event)', { details: { credentialId: approver.credentialId } })
  }
  const bit = await ctx.statusOf(approver.status.url, approver.issuer, approver.status.index)
  if (bit !== 0) throw new VerificationError('ERR_REVOKED', 'the approver credential has been revoked', { details: { credentialId: approver.credentialId } })
  if (options.consume !== false) {
    const fresh = await ctx.replayCache.checkAndStore(`approval:${call.issuer}:${call.id}`, (call.expiresAt + ctx.clockSkewSec) * 1000)
    if (!fresh) throw new VerificationError('ERR_REPLAY', 'this approval was used before', { details: { requestId: call.id } })
  }

  return deepFreeze({
    requestId: call.id,
    call,
    approver: { id: approver.id, name: approver.name, credentialId: approver.credentialId, user: approver.user, scope: approver.scope },
    selfApproval: approver.user !== null && call.user !== null && sameUser(approver.user, call.user),
    callHash: challenge,
  })
}
