import { isDidKeySyntax } from './did-key.js'
import { isPrintableText } from './text.js'
import { CLAIM_LIMITS } from './limits.js'
import { throwFieldError as invalid, type AgentIdErrorCode } from './errors.js'
import { parseSpiffeId } from './spiffe-id.js'

/** The VC 1.1 base context: JWT VCs keep it so that did-jwt-vc and Veramo accept our credentials. */
export const VC_CONTEXT_V1 = 'https://www.w3.org/2018/credentials/v1'
/** The agentid vocabulary context. */
export const AGENTID_CONTEXT_V1 = 'https://w3id.org/agentid/v1'
export const AGENT_IDENTITY_CREDENTIAL = 'AgentIdentityCredential'
export const STATUS_LIST_CREDENTIAL = 'BitstringStatusListCredential'

/** Ordered data access classes: each one grants everything below it. */
export const DATA_ACCESS_CLASSES = Object.freeze(['public', 'internal', 'confidential', 'restricted'] as const)
export type DataAccessClass = (typeof DATA_ACCESS_CLASSES)[number]

/** The model an agent runs on. */
export interface AgentModel {
  provider?: string
  name: string
  version: string
}

/** Tool/resource identifiers the agent may use, or the name of a profile the operator defined. */
export type ToolProfile = string | readonly string[]

/** What an identity credential says about an agent (its `credentialSubject`, less `id`). */
export interface AgentClaims {
  purpose: string
  /** Who answers for the agent: the orchestrator or owning team (a DID, URI or name). */
  controller: string
  model: AgentModel
  toolProfile: ToolProfile
  /** The operator-defined policy tier, e.g. `standard`. */
  policyTier: string
  dataAccessClass: DataAccessClass
  /** Optional runtime attestation evidence (free-form JSON object). */
  attestation?: Record<string, unknown>
  /**
   * The agent's SPIFFE ID (`spiffe://<trust domain>/agent/<orchestrator>/<key>`), set by the issuer
   * when it runs with a trust domain; checked exactly (SPIFFE-ID.md) wherever it is read.
   */
  spiffeId?: string
}

/** The `credentialStatus` of an agentid credential. */
export interface BitstringStatusListEntry {
  id?: string
  type: 'BitstringStatusListEntry'
  statusPurpose: 'revocation'
  statusListIndex: string
  statusListCredential: string
}

/** The JWT claims of an agent identity credential (JWT VC encoding). */
export interface AgentIdentityCredentialPayload {
  iss: string
  sub: string
  nbf: number
  exp: number
  iat?: number
  jti: string
  vc: {
    '@context': string[]
    type: string[]
    credentialSubject: AgentClaims & { id: string }
    credentialStatus: BitstringStatusListEntry
  }
}

const LIMITS = CLAIM_LIMITS
const CLAIM_KEYS = new Set(['id', 'purpose', 'controller', 'model', 'toolProfile', 'policyTier', 'dataAccessClass', 'attestation', 'spiffeId'])
const MODEL_KEYS = new Set(['provider', 'name', 'version'])
const TIER = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/

export interface ParseClaimsOptions {
  /** Refuse members that agentid does not define (default true: input from an API caller). */
  strict?: boolean
  /** Error code to throw (default ERR_INVALID_INPUT; verifiers pass ERR_MALFORMED). */
  code?: AgentIdErrorCode
}


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `index`: the value is item `index` of the list `field` (the error names `field[index]`). */
function text(value: unknown, field: string, max: number, code: AgentIdErrorCode, index?: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || value.trim() !== value || !isPrintableText(value)) {
    invalid(code, index === undefined ? field : `${field}[${index}]`, `must be a non-empty string of at most ${max} characters, without control or bidirectional formatting characters or surrounding spaces`)
  }
  return value
}

/**
 * Validates untrusted input as agent claims and returns a clean copy holding only known members.
 * @example
 * parseAgentClaims({ purpose: 'triage', controller: 'did:web:acme.example', model: { name: 'gpt', version: '5' },
 *   toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' })
 */
export function parseAgentClaims(input: unknown, options: ParseClaimsOptions = {}): AgentClaims {
  const code = options.code ?? 'ERR_INVALID_INPUT'
  const strict = options.strict ?? true
  if (!isRecord(input)) invalid(code, 'claims', 'must be an object')
  if (strict) {
    for (const key of Object.keys(input)) if (!CLAIM_KEYS.has(key) || key === 'id') invalid(code, key, 'is not a known claim')
  }
  const model = input.model
  if (!isRecord(model)) invalid(code, 'model', 'must be an object { provider?, name, version }')
  if (strict) for (const key of Object.keys(model)) if (!MODEL_KEYS.has(key)) invalid(code, `model.${key}`, 'is not a known member')
  const purpose = text(input.purpose, 'purpose', LIMITS.text, code)
  const controller = text(input.controller, 'controller', LIMITS.name, code)
  // Built without spreads: parseAgentClaims runs on every verification, and each spread is an object.
  const provider = model.provider === undefined ? undefined : text(model.provider, 'model.provider', LIMITS.name, code)
  const name = text(model.name, 'model.name', LIMITS.name, code)
  const version = text(model.version, 'model.version', LIMITS.name, code)
  const claims: AgentClaims = {
    purpose,
    controller,
    model: provider === undefined ? { name, version } : { provider, name, version },
    toolProfile: parseToolProfile(input.toolProfile, code),
    policyTier: text(input.policyTier, 'policyTier', 64, code),
    dataAccessClass: parseDataAccessClass(input.dataAccessClass, code),
  }
  if (!TIER.test(claims.policyTier)) invalid(code, 'policyTier', 'must be letters, digits and . _ : -')
  if (input.spiffeId !== undefined) {
    try {
      claims.spiffeId = parseSpiffeId(input.spiffeId).id
    } catch {
      invalid(code, 'spiffeId', 'must be a SPIFFE ID (spiffe://trust-domain/path)')
    }
  }
  if (input.attestation !== undefined) {
    if (!isRecord(input.attestation)) invalid(code, 'attestation', 'must be an object')
    let serialized: unknown
    try {
      serialized = JSON.stringify(input.attestation)
    } catch {
      invalid(code, 'attestation', 'must be JSON data')
    }
    if (typeof serialized !== 'string') invalid(code, 'attestation', 'must be JSON data')
    if (Buffer.byteLength(serialized, 'utf8') > LIMITS.attestationBytes) invalid(code, 'attestation', `must serialize to at most ${LIMITS.attestationBytes} bytes`)
    // A JSON copy: nothing aliased with the caller's object, nothing that would not survive signing.
    const copy: unknown = JSON.parse(serialized)
    if (!isRecord(copy)) invalid(code, 'attestation', 'must be an object')
    const values = checkAttestation(copy, code)
    const tools = typeof claims.toolProfile === 'string' ? 1 : claims.toolProfile.length
    if (values + tools > LIMITS.values) invalid(code, 'attestation', `toolProfile entries and attestation values together must be at most ${LIMITS.values}`)
    claims.attestation = copy
  }
  // Whole claims: the signed credential must stay within what a verifier reads (CLAIM_LIMITS).
  if (claimsJsonBytes(claims) > LIMITS.claimsBytes) invalid(code, 'claims', `must serialize to at most ${LIMITS.claimsBytes} bytes`)
  return claims
}

/**
 * Buffer.byteLength(JSON.stringify(claims)) without building the string (it ran on every verification).
 * Every string of the claims passed text() (or is a SPIFFE ID, or a data class): no control character,
 * no lone surrogate, so JSON escapes only `"` and `\`, one byte more each. An attestation is arbitrary
 * JSON: then the claims are serialized as before.
 */
function claimsJsonBytes(claims: AgentClaims): number {
  if (claims.attestation !== undefined) return Buffer.byteLength(JSON.stringify(claims), 'utf8')
  let bytes = 0
  let members = 0
  for (const key in claims) {
    if (!Object.hasOwn(claims, key)) continue
    const value = (claims as unknown as Record<string, unknown>)[key]
    if (value === undefined) continue
    members++
    bytes += key.length + 3 // "key":
    if (typeof value === 'string') bytes += jsonTextBytes(value)
    else if (Array.isArray(value)) {
      bytes += 2 + Math.max(0, value.length - 1) // [ ] and commas
      for (let i = 0; i < value.length; i++) bytes += jsonTextBytes(value[i] as string)
    } else {
      let inner = 0
      const model = value as Record<string, string | undefined>
      for (const k in model) {
        const v = model[k]
        if (!Object.hasOwn(model, k) || v === undefined) continue
        bytes += k.length + 3 + jsonTextBytes(v)
        inner++
      }
      bytes += 2 + Math.max(0, inner - 1)
    }
  }
  return bytes + 2 + Math.max(0, members - 1)
}

/** UTF-8 bytes of JSON.stringify(value) for text without control characters or lone surrogates. */
function jsonTextBytes(value: string): number {
  let escapes = 0
  for (let i = value.indexOf('"'); i !== -1; i = value.indexOf('"', i + 1)) escapes++
  for (let i = value.indexOf('\\'); i !== -1; i = value.indexOf('\\', i + 1)) escapes++
  return Buffer.byteLength(value, 'utf8') + escapes + 2
}

/** Nesting (at most CLAIM_LIMITS.attestationDepth, the attestation itself level 1) and no `@context` member; returns the number of JSON values. */
function checkAttestation(root: Record<string, unknown>, code: AgentIdErrorCode): number {
  const stack: Array<[unknown, number]> = [[root, 1]]
  let values = 0
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!
    values++
    if (typeof value !== 'object' || value === null) continue
    if (depth > LIMITS.attestationDepth) invalid(code, 'attestation', `must nest at most ${LIMITS.attestationDepth} levels`)
    if (!Array.isArray(value) && Object.hasOwn(value, '@context')) invalid(code, 'attestation', 'must not hold a member named @context')
    for (const v of Object.values(value)) stack.push([v, depth + 1])
  }
  return values
}

function parseToolProfile(value: unknown, code: AgentIdErrorCode): ToolProfile {
  if (typeof value === 'string') return text(value, 'toolProfile', LIMITS.name, code)
  if (!Array.isArray(value) || value.length > LIMITS.tools) invalid(code, 'toolProfile', `must be a profile name or a list of at most ${LIMITS.tools} identifiers`)
  // A few tools (the usual case) are compared pairwise; a Set only for longer lists. The field name of
  // an error is built when there is one.
  const seen = value.length > 8 ? new Set<string>() : undefined
  for (let i = 0; i < value.length; i++) {
    const tool: unknown = value[i]
    text(tool, 'toolProfile', LIMITS.tool, code, i)
    if (seen ? seen.has(tool as string) : value.indexOf(tool) < i) invalid(code, `toolProfile[${i}]`, 'is listed twice')
    seen?.add(tool as string)
  }
  return Object.freeze(value.slice() as string[])
}

/** Validates a data access class name. */
export function parseDataAccessClass(value: unknown, code: AgentIdErrorCode = 'ERR_INVALID_INPUT'): DataAccessClass {
  if (typeof value !== 'string' || !(DATA_ACCESS_CLASSES as readonly string[]).includes(value)) {
    invalid(code, 'dataAccessClass', `must be one of ${DATA_ACCESS_CLASSES.join(', ')}`)
  }
  return value as DataAccessClass
}

/** True when `held` grants at least `needed` (public < internal < confidential < restricted). */
export function dataClassCovers(held: DataAccessClass, needed: DataAccessClass): boolean {
  const h = DATA_ACCESS_CLASSES.indexOf(held)
  const n = DATA_ACCESS_CLASSES.indexOf(needed)
  // An unknown class on either side denies (an unknown requirement must not rank below public).
  return h !== -1 && n !== -1 && h >= n
}

/** Validates a `credentialStatus` member as a revocation BitstringStatusListEntry. */
export function parseStatusEntry(value: unknown, code: AgentIdErrorCode = 'ERR_MALFORMED'): BitstringStatusListEntry {
  if (!isRecord(value)) invalid(code, 'credentialStatus', 'must be a BitstringStatusListEntry object')
  if (value.type !== 'BitstringStatusListEntry') invalid(code, 'credentialStatus.type', 'must be BitstringStatusListEntry')
  if (value.statusPurpose !== 'revocation') invalid(code, 'credentialStatus.statusPurpose', 'must be revocation')
  if (typeof value.statusListIndex !== 'string' || !/^(0|[1-9][0-9]*)$/.test(value.statusListIndex)) invalid(code, 'credentialStatus.statusListIndex', 'must be a string of decimal digits')
  if (typeof value.statusListCredential !== 'string' || !/^https?:\/\/[^\s]+$/.test(value.statusListCredential) || value.statusListCredential.length > 2048) {
    invalid(code, 'credentialStatus.statusListCredential', 'must be an http(s) URL')
  }
  if (value.id !== undefined && typeof value.id !== 'string') invalid(code, 'credentialStatus.id', 'must be a string')
  const entry: BitstringStatusListEntry = value.id === undefined
    ? { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: value.statusListIndex, statusListCredential: value.statusListCredential }
    : { id: value.id as string, type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: value.statusListIndex, statusListCredential: value.statusListCredential }
  return entry
}

/** True when `did` is a syntactically valid Ed25519 did:key (cheap; no curve arithmetic). */
export function isAgentDid(did: unknown): did is string {
  return isDidKeySyntax(did)
}
