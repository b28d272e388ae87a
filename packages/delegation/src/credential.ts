import { hash, randomUUID } from 'node:crypto'
import {
  AGENTID_CONTEXT_V1,
  AgentIdError,
  decodeJwt,
  isDidKeySyntax,
  parseStatusEntry,
  signJwt,
  throwFieldError as fail,
  VC_CONTEXT_V1,
  VerificationError,
  type AgentIdErrorCode,
  type BitstringStatusListEntry,
  type Signer,
  isNumericDate,
} from '@agentid/core'
import { isAttenuation, markParsedGrant, parseCapabilities, parseCaveats, type AttenuationResult, type Capability, type Caveats } from './capability.js'

/** The VC type of a delegation link. */
export const AGENT_CAPABILITY_CREDENTIAL = 'AgentCapabilityCredential'
/** Default (and safe) upper bound of a chain's length, links counted root included. */
export const DEFAULT_MAX_CHAIN_LENGTH = 10

/** One link of a chain, read from its JWT payload (signature not checked). */
export interface CapabilityLink {
  /** The delegator: the previous link's `sub`, or the root. */
  iss: string
  /** The delegatee's did:key. */
  sub: string
  nbf: number
  exp: number
  /** `iat`, when the link states one. */
  iat: number | null
  jti: string | null
  capabilities: readonly Capability[]
  /** The link's caveats, `notBefore`/`expiresAt` always set (from `nbf`/`exp`). */
  caveats: Caveats
  /** base64url SHA-256 of the parent link's compact JWT; absent on the root. */
  parentHash: string | null
  credentialStatus: BitstringStatusListEntry | null
}


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function numericDate(value: unknown, claim: string, code: AgentIdErrorCode): number {
  if (!isNumericDate(value)) fail(code, claim, 'must be a NumericDate (0 to 9999-12-31)')
  return value
}

/**
 * The hash a child link carries of its parent: base64url SHA-256 of the parent's compact JWT.
 * @example
 * linkHash(chain[0]) // 'n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg'
 */
export function linkHash(jwt: string): string {
  // crypto.hash: one native call, no Hash object (UTF-8, as createHash().update(jwt, 'utf8') did).
  return hash('sha256', jwt, 'base64url')
}

/**
 * Reads an AgentCapabilityCredential from a decoded JWT payload, refusing anything malformed with
 * `code`. Checks shape only: no signature, time or chain checks.
 * @example
 * const link = parseCapabilityLink(decodeJwt(jwt).payload, 'ERR_MALFORMED')
 */
export function parseCapabilityLink(payload: Record<string, unknown>, code: AgentIdErrorCode = 'ERR_MALFORMED'): CapabilityLink {
  const { iss, sub } = payload
  if (typeof iss !== 'string' || !iss.startsWith('did:') || iss.length > 2048 || iss.includes('#')) fail(code, 'iss', 'must be a DID')
  if (typeof sub !== 'string' || !isDidKeySyntax(sub)) fail(code, 'sub', 'must be the delegatee did:key')
  const nbf = numericDate(payload.nbf, 'nbf', code)
  const exp = numericDate(payload.exp, 'exp', code)
  if (nbf >= exp) fail(code, 'exp', 'must be after nbf')
  const iat = payload.iat === undefined ? null : numericDate(payload.iat, 'iat', code)
  if (payload.jti !== undefined && typeof payload.jti !== 'string') fail(code, 'jti', 'must be a string')
  const vc = payload.vc
  if (!isRecord(vc)) fail(code, 'vc', 'is missing')
  if (!Array.isArray(vc.type) || !vc.type.includes('VerifiableCredential') || !vc.type.includes(AGENT_CAPABILITY_CREDENTIAL)) fail(code, 'vc.type', `must include ${AGENT_CAPABILITY_CREDENTIAL}`)
  const subject = vc.credentialSubject
  if (!isRecord(subject)) fail(code, 'vc.credentialSubject', 'must be one object')
  if (subject.id !== sub) fail(code, 'vc.credentialSubject.id', 'must equal sub')
  // Frozen: a verifier memoizes the link and hands its leaf's capabilities to its caller, who must not
  // be able to widen what a later call with the same link is granted.
  const capabilities = Object.freeze(parseCapabilities(subject.capabilities, code))
  const stated = parseCaveats(subject.caveats ?? {}, code)
  if (stated.notBefore !== undefined && stated.notBefore !== nbf) fail(code, 'caveats.notBefore', 'must equal nbf')
  if (stated.expiresAt !== undefined && stated.expiresAt !== exp) fail(code, 'caveats.expiresAt', 'must equal exp')
  const parentHash = subject.parentHash
  if (parentHash !== undefined && (typeof parentHash !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(parentHash))) fail(code, 'parentHash', 'must be a base64url SHA-256')
  // parseCaveats would accept these caveats and copy them unchanged (nbf and exp are NumericDates, nbf < exp).
  const caveats: Caveats = { ...stated, notBefore: nbf, expiresAt: exp }
  markParsedGrant(capabilities, caveats)
  Object.freeze(caveats)
  return {
    iss,
    sub,
    nbf,
    exp,
    iat,
    jti: (payload.jti as string | undefined) ?? null,
    capabilities,
    caveats,
    parentHash: (parentHash as string | undefined) ?? null,
    credentialStatus: vc.credentialStatus === undefined ? null : parseStatusEntry(vc.credentialStatus, code),
  }
}

/** Options of {@link delegate}. */
export interface DelegateOptions {
  /** The delegator: the root party, or the subject of the parent chain's last link. */
  signer: Signer
  /** The delegatee's did:key. */
  to: string
  capabilities: readonly Capability[]
  /**
   * Caveats of the new link. One left out is inherited from the parent link (`remainingDepth` as the
   * parent's minus one, constraint keys one by one); one stated must be no wider than the parent's.
   */
  caveats?: Caveats
  /** Lifetime in seconds from now; clamped to the parent's `exp`. Required unless `caveats.expiresAt` is set. */
  expiresIn?: number
  /** The chain received so far, root first. Absent: the new link is a root. */
  parent?: readonly string[]
  /** Where the link's revocation status is published (registered with the issuer). */
  statusEntry?: BitstringStatusListEntry
  /** The link's `jti` (`urn:uuid:…`), e.g. the id the issuer registered it under. Default: a fresh one. */
  id?: string
  /** Clock in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number
  /** Longest chain to sign into, root included (a longer one no verifier with that limit accepts). Default 10. */
  maxChainLength?: number
}

function refuse(code: 'ERR_DELEGATION_ESCALATION' | 'ERR_DELEGATION_DEPTH', link: number, signer: string, verdict: Exclude<AttenuationResult, { ok: true }>): never {
  throw new VerificationError(code, `refusing to sign link ${link}: ${verdict.reason}`, { details: { link, signer, ...verdict } })
}

/**
 * Signs a new link delegating `capabilities` under `caveats` to `to`, and returns the new chain,
 * root first. Refuses (ERR_DELEGATION_ESCALATION / _DEPTH / _BROKEN) to sign a link wider than its
 * parent, below a parent with no depth left, or by anyone but the parent's subject.
 * @example
 * const root = await delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['*'] }], caveats: { remainingDepth: 2 }, expiresIn: 3600 })
 * const chain = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: [{ resource: 'mcp://erp/tools/invoices.read', actions: ['invoke'] }], expiresIn: 600 })
 */
export async function delegate(options: DelegateOptions): Promise<string[]> {
  const { signer, to, parent = [], statusEntry, id } = options
  if (id !== undefined && (typeof id !== 'string' || !/^urn:uuid:[0-9a-f-]{36}$/.test(id))) throw new TypeError('delegate: id must be a urn:uuid:')
  if (!signer || typeof signer.did !== 'string' || typeof signer.sign !== 'function') throw new TypeError('delegate: signer is required')
  if (!isDidKeySyntax(to)) throw new AgentIdError('ERR_INVALID_INPUT', 'to: must be a did:key', { details: { field: 'to' } })
  if (!Array.isArray(parent) || !parent.every((l) => typeof l === 'string')) throw new TypeError('delegate: parent must be a chain of compact JWTs')
  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') throw new TypeError('delegate: clock must be a function')
  const now = Math.floor(clock() / 1000)
  const capabilities = parseCapabilities(options.capabilities)
  const stated = parseCaveats(options.caveats ?? {})
  const expiresIn = options.expiresIn
  if (expiresIn !== undefined && (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn <= 0)) throw new TypeError('delegate: expiresIn must be a positive integer (seconds)')
  if (expiresIn === undefined && stated.expiresAt === undefined) throw new TypeError('delegate: expiresIn or caveats.expiresAt is required')
  const index = parent.length
  const last = parent.at(-1)
  const maxChainLength = options.maxChainLength ?? DEFAULT_MAX_CHAIN_LENGTH
  if (!Number.isInteger(maxChainLength) || maxChainLength < 1) throw new TypeError('delegate: maxChainLength must be a positive integer')
  if (index + 1 > maxChainLength) {
    throw new VerificationError('ERR_DELEGATION_DEPTH', `refusing to sign link ${index}: chains are limited to ${maxChainLength} links`, {
      details: { link: index, signer: signer.did, reason: 'chain too long', maxChainLength },
    })
  }

  let up: CapabilityLink | undefined
  if (last !== undefined) {
    up = parseCapabilityLink(decodeJwt(last).payload, 'ERR_INVALID_INPUT')
    if (up.sub !== signer.did) {
      throw new VerificationError('ERR_DELEGATION_BROKEN', `refusing to sign link ${index}: the signer is not the parent link's subject`, {
        details: { link: index, signer: signer.did, reason: 'signer is not the parent subject', parentSubject: up.sub },
      })
    }
    if (up.caveats.remainingDepth === 0) {
      refuse('ERR_DELEGATION_DEPTH', index, signer.did, { ok: false, reason: 'the parent allows no further delegation', caveat: 'remainingDepth' })
    }
    if (up.exp <= now) throw new VerificationError('ERR_EXPIRED', `refusing to sign link ${index}: the parent link has expired`, { details: { link: index, signer: signer.did, reason: 'parent expired', exp: up.exp } })
  }

  // A DID appears once in a chain: delegating back to an agent already in it (or to oneself) is a cycle.
  const inChain = new Set<string>([signer.did])
  for (const jwt of parent) {
    const p = decodeJwt(jwt).payload
    for (const did of [p.iss, p.sub]) if (typeof did === 'string') inChain.add(did)
  }
  if (inChain.has(to)) {
    throw new VerificationError('ERR_DELEGATION_BROKEN', `refusing to sign link ${index}: ${to} is already in the chain`, {
      details: { link: index, signer: signer.did, reason: 'cycle', did: to },
    })
  }

  const pc = up?.caveats
  const nbf = stated.notBefore ?? Math.max(now, pc?.notBefore ?? now)
  let exp = stated.expiresAt ?? now + (expiresIn as number)
  if (stated.expiresAt === undefined && pc?.expiresAt !== undefined) exp = Math.min(exp, pc.expiresAt)
  if (nbf >= exp) throw new AgentIdError('ERR_INVALID_INPUT', 'caveats: the link\'s time window is empty', { details: { field: 'caveats.expiresAt' } })
  const remainingDepth = stated.remainingDepth ?? (pc?.remainingDepth === undefined ? undefined : pc.remainingDepth - 1)
  const maxDataClass = stated.maxDataClass ?? pc?.maxDataClass
  const audience = stated.audience ?? pc?.audience
  const constraints = pc?.constraints || stated.constraints ? { ...pc?.constraints, ...stated.constraints } : undefined
  const caveats: Caveats = {
    notBefore: nbf,
    expiresAt: exp,
    ...(maxDataClass === undefined ? {} : { maxDataClass }),
    ...(remainingDepth === undefined ? {} : { remainingDepth }),
    ...(audience === undefined ? {} : { audience }),
    ...(constraints === undefined ? {} : { constraints }),
  }
  if (up) {
    const verdict = isAttenuation({ capabilities, caveats }, { capabilities: up.capabilities, caveats: up.caveats })
    if (!verdict.ok) refuse('ERR_DELEGATION_ESCALATION', index, signer.did, verdict)
  }

  const subject: Record<string, unknown> = { id: to, capabilities, caveats }
  if (last !== undefined) subject.parentHash = linkHash(last)
  const vc: Record<string, unknown> = {
    '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
    type: ['VerifiableCredential', AGENT_CAPABILITY_CREDENTIAL],
    credentialSubject: subject,
  }
  if (statusEntry !== undefined) vc.credentialStatus = parseStatusEntry(statusEntry, 'ERR_INVALID_INPUT')
  const jwt = await signJwt({ typ: 'JWT' }, { iss: signer.did, sub: to, nbf, iat: now, exp, jti: id ?? `urn:uuid:${randomUUID()}`, vc }, signer)
  return [...parent, jwt]
}
