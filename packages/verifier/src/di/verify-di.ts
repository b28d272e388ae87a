import {
  AGENT_IDENTITY_CREDENTIAL,
  AGENTID_CONTEXT_V1,
  decodeBase58btc,
  hasSmallOrderR,
  isDidKeySyntax,
  parseAgentClaims,
  parseStatusEntry,
  VerificationError,
  type BitstringStatusListEntry,
} from '@agentid/core'
import { createPublicKey, verify as verifySignature } from 'node:crypto'
import { DataIntegrityProof } from '@digitalbazaar/data-integrity'
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey'
import { cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
import { verifyCredential } from '@digitalbazaar/vc'
import type { VerifiedAgent } from '../types.js'
import { BoundedCache } from '../lru.js'
import { assertSpiffeIdNamesAgent, isRecord, statusIndexOf } from '../util.js'
import { boundCredential, type BoundedCredential } from './bounds.js'
import { createDocumentLoader, VC_CONTEXT_V2, type DocumentLoader } from './document-loader.js'

/** Options of {@link verifyDataIntegrityCredential}. */
export interface DataIntegrityVerifyOptions {
  /** DIDs of the issuers accepted. */
  trustedIssuers: ReadonlySet<string> | readonly string[]
  /** Clock in milliseconds since the epoch. */
  now: () => number
  /** Allowed clock difference for validFrom/validUntil, in seconds. */
  skew: number
}

/** A verified Data Integrity agent credential: the VerifiedAgent plus its status entry, for the caller to check. */
export type VerifiedDataIntegrityAgent = VerifiedAgent & { readonly credentialStatus: BitstringStatusListEntry }

export const CRYPTOSUITE = 'eddsa-rdfc-2022'
const CONTEXT = [VC_CONTEXT_V2, AGENTID_CONTEXT_V1] as const
// RFC 3339 date-time as VC 2.0 requires it, with a zone.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

const loader: DocumentLoader = createDocumentLoader()

/** What the cryptosuite's verifier is asked: the Ed25519 check of the proof's verify data. */
interface SuiteVerifier {
  algorithm: string
  id: string | undefined
  verify(options: { data: Uint8Array; signature: Uint8Array }): Promise<boolean>
}

/**
 * A verifier for one verification method, its public key imported once. The library's own verifier
 * imports the key again on every verification (node:crypto createPublicKey from DER, the largest item
 * of a verification after JSON-LD), so it is built here with the library's checks and decoding
 * (Ed25519Multikey.from: type, controller, multibase header, key length) and then verifies with a
 * KeyObject made once from the same 32 bytes: the same node:crypto Ed25519 verify on the same data.
 */
async function createKeptVerifier(verificationMethod: Record<string, unknown>): Promise<SuiteVerifier> {
  const key = await Ed25519Multikey.from(verificationMethod)
  const library = key.verifier()
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(key.publicKey).toString('base64url') }, format: 'jwk' })
  return {
    algorithm: library.algorithm,
    id: library.id,
    verify: async ({ data, signature }) => verifySignature(null, data, publicKey, signature),
  }
}

/**
 * The cryptosuite with its verifiers kept by verification method (id, controller, type and key
 * bytes: the whole input of Ed25519Multikey.from), each holding its imported key. A verifier is
 * stateless (its key and a verify function). Failed imports are not kept.
 */
const verifiers = new BoundedCache<string, Promise<SuiteVerifier>>(1_000)
const cachedCryptosuite: typeof cryptosuite = {
  ...cryptosuite,
  createVerifier(options) {
    const vm = options.verificationMethod
    const key = JSON.stringify([vm.id, vm.controller, vm.type, vm.publicKeyMultibase])
    let verifier = verifiers.get(key)
    if (!verifier) {
      verifier = createKeptVerifier(vm)
      verifiers.set(key, verifier)
      verifier.catch(() => verifiers.delete(key))
    }
    return verifier
  },
}
const suite = new DataIntegrityProof({ cryptosuite: cachedCryptosuite })
// Accepts every credential status: the caller checks the status entry itself (same list code as JWTs).
const statusDeferred = async (): Promise<{ verified: boolean }> => ({ verified: true })

function malformed(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerificationError('ERR_MALFORMED', message, { details, cause })
}


function dateTime(value: unknown, member: string): number | null {
  if (value === undefined) return null
  if (typeof value !== 'string' || !DATE_TIME.test(value)) malformed(`${member} must be an XML Schema dateTimeStamp`, { member })
  const ms = Date.parse(value)
  if (!Number.isFinite(ms)) malformed(`${member} must be a valid date-time`, { member })
  return Math.floor(ms / 1000)
}

/** Our VerificationError anywhere in an error's cause chain (jsonld wraps loader errors in details.cause). */
function ownError(error: unknown, depth = 0): VerificationError | undefined {
  if (error instanceof VerificationError) return error
  if (!isRecord(error) && !(error instanceof Error)) return undefined
  if (depth > 8) return undefined
  const e = error as { cause?: unknown; details?: { cause?: unknown }; errors?: unknown }
  for (const next of [e.cause, e.details?.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const found = next === undefined ? undefined : ownError(next, depth + 1)
    if (found) return found
  }
  return undefined
}

function isJsonLdError(error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 8) return false
  if (error.name.startsWith('jsonld.')) return true
  const e = error as { cause?: unknown; errors?: unknown }
  return [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])].some((next) => isJsonLdError(next, depth + 1))
}

/** Maps a failed @digitalbazaar/vc result to our codes. Fails closed: anything unknown is a bad signature. */
function failure(error: unknown): never {
  const own = ownError(error)
  if (own) throw own
  if (isJsonLdError(error)) throw new VerificationError('ERR_MALFORMED', 'credential is not valid JSON-LD under the pinned contexts', { cause: error })
  const jsigs = error instanceof Error && Array.isArray((error as { errors?: unknown }).errors)
  // A plain Error outside jsonld-signatures comes from @digitalbazaar/vc's own data model checks.
  if (error instanceof Error && !jsigs && error.name !== 'VerificationError') throw new VerificationError('ERR_MALFORMED', 'credential does not satisfy the VC data model', { cause: error })
  throw new VerificationError('ERR_SIGNATURE_INVALID', 'Data Integrity proof does not verify', { cause: error })
}

/**
 * Verifies an agent identity credential secured with a Data Integrity proof (`eddsa-rdfc-2022`),
 * offline: contexts are pinned and only did:key issuers resolve. Checks, in order: bounds (64 KiB,
 * depth 16, 500 JSON values) before any JSON-LD; `@context` exactly VC v2 + agentid v1; types;
 * a trusted issuer; exactly one proof, `DataIntegrityProof` / `eddsa-rdfc-2022` /
 * `assertionMethod`, by a verification method of the issuer's DID; the signature (JSON-LD safe
 * mode: an undefined term fails); then `validFrom`/`validUntil` with `skew`, the subject did:key
 * and its claims. The status entry is returned, not checked: the caller checks it.
 * Throws VerificationError with the codes of the JWT path.
 * @example
 * const agent = await verifyDataIntegrityCredential(vc, { trustedIssuers: [issuerDid], now: Date.now, skew: 60 })
 * await checkStatus(agent.credentialStatus)
 */
export function verifyDataIntegrityCredential(input: unknown, options: DataIntegrityVerifyOptions): Promise<VerifiedDataIntegrityAgent> {
  return verifyBoundedCredential(boundCredential(input), options)
}

/**
 * {@link verifyDataIntegrityCredential} of a credential already through `boundCredential` (its private
 * copy): the verifier's dispatch bounds it once, for its memo key, and hands the copy on.
 */
export async function verifyBoundedCredential(bounded: BoundedCredential, options: DataIntegrityVerifyOptions): Promise<VerifiedDataIntegrityAgent> {
  const { credential } = bounded
  const ctx = credential['@context']
  if (!Array.isArray(ctx) || ctx.length !== CONTEXT.length || ctx.some((c, i) => c !== CONTEXT[i])) {
    malformed(`@context must be exactly ["${CONTEXT.join('", "')}"]`)
  }
  const type = credential.type
  if (!Array.isArray(type) || !type.includes('VerifiableCredential') || !type.includes(AGENT_IDENTITY_CREDENTIAL) || !type.every((t) => typeof t === 'string')) {
    malformed('not an AgentIdentityCredential', { type })
  }
  const issuer = typeof credential.issuer === 'string' ? credential.issuer : isRecord(credential.issuer) ? credential.issuer.id : undefined
  if (typeof issuer !== 'string') malformed('issuer is missing')
  const trusted = options.trustedIssuers instanceof Set ? options.trustedIssuers : new Set(options.trustedIssuers as readonly string[])
  if (!trusted.has(issuer)) throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'issuer is not trusted', { details: { iss: issuer } })

  const proof = credential.proof
  if (!isRecord(proof)) malformed('proof must be exactly one Data Integrity proof object')
  if (proof.type !== 'DataIntegrityProof' || proof.cryptosuite !== CRYPTOSUITE) {
    throw new VerificationError('ERR_UNSUPPORTED_ALG', `only DataIntegrityProof with cryptosuite ${CRYPTOSUITE} is accepted`, {
      details: { type: proof.type, cryptosuite: proof.cryptosuite },
    })
  }
  if (proof.proofPurpose !== 'assertionMethod') {
    throw new VerificationError('ERR_KEY_MISMATCH', 'proofPurpose must be assertionMethod', { details: { proofPurpose: proof.proofPurpose } })
  }
  if (proof.previousProof !== undefined) malformed('proof chains are not accepted')
  // eddsa-rdfc-2022 (VC DI EdDSA §3.2.1): proofValue is the signature as multibase base58btc, `z…`.
  // @digitalbazaar/data-integrity also decodes base64url (`u…`); one encoding only, as the spec says.
  const proofValue = proof.proofValue
  if (typeof proofValue !== 'string' || !proofValue.startsWith('z') || proofValue.length > 100) malformed('proofValue must be multibase base58btc (z…)')
  let signature: Uint8Array
  try {
    signature = decodeBase58btc(proofValue.slice(1))
  } catch {
    return malformed('proofValue must be multibase base58btc (z…)')
  }
  if (signature.length !== 64) malformed('proofValue must hold a 64-byte Ed25519 signature')
  if (hasSmallOrderR(signature)) throw new VerificationError('ERR_SIGNATURE_INVALID', 'signature R is a small-order point', { details: { reason: 'small-order R' } })
  const vm = proof.verificationMethod
  // A did:key has one key: its method id is the DID's own multibase value.
  const issuerKey = issuer.startsWith('did:key:') ? `${issuer}#${issuer.slice('did:key:'.length)}` : null
  if (typeof vm !== 'string' || !vm.startsWith(`${issuer}#`) || (issuerKey !== null && vm !== issuerKey)) {
    throw new VerificationError('ERR_KEY_MISMATCH', 'verificationMethod is not a key of the issuer', { details: { iss: issuer, verificationMethod: vm } })
  }

  const validFrom = dateTime(credential.validFrom, 'validFrom')
  const validUntil = dateTime(credential.validUntil, 'validUntil')
  if (validUntil === null) malformed('validUntil is required: agent credentials are short-lived')
  if (validFrom !== null && validFrom > validUntil) malformed('validFrom is after validUntil')

  // Time is ours to check, after the signature and with our codes: @digitalbazaar/vc is handed an
  // instant inside the validity window so that its own check never fires first.
  const t = options.now() / 1000
  const inside = Math.min(Math.max(t, validFrom ?? -Infinity), validUntil)
  let result
  try {
    result = await verifyCredential({
      credential,
      suite,
      documentLoader: loader,
      now: new Date(inside * 1000),
      maxClockSkew: 1, // `now` may sit on a boundary; its check compares with a strict `<` skew
      checkStatus: statusDeferred,
    })
  } catch (error) {
    failure(error)
  }
  if (!result.verified) failure(result.error ?? result.results?.find((r) => !r.verified)?.error)

  if (validUntil + options.skew <= t) throw new VerificationError('ERR_EXPIRED', 'credential has expired', { details: { validUntil: credential.validUntil } })
  if (validFrom !== null && validFrom - options.skew > t) throw new VerificationError('ERR_NOT_YET_VALID', 'credential is not yet valid', { details: { validFrom: credential.validFrom } })

  const subject = credential.credentialSubject
  if (!isRecord(subject)) malformed('credentialSubject must be one object')
  const did = subject.id
  if (typeof did !== 'string' || !isDidKeySyntax(did)) malformed('credentialSubject.id must be the agent did:key')
  const claims = parseAgentClaims(subject, { strict: false, code: 'ERR_MALFORMED' })
  assertSpiffeIdNamesAgent(claims, did)
  const credentialStatus = parseStatusEntry(credential.credentialStatus)
  const index = statusIndexOf(credentialStatus.statusListIndex)
  if (credential.id !== undefined && typeof credential.id !== 'string') malformed('id must be a string')

  return {
    did,
    issuer,
    credentialId: (credential.id as string | undefined) ?? null,
    issuedAt: validFrom,
    validFrom,
    expiresAt: validUntil,
    claims,
    status: { statusListCredential: credentialStatus.statusListCredential, statusListIndex: index },
    type: [...(type as string[])],
    credentialStatus,
  }
}
