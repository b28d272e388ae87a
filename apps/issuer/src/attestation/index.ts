// Attestation-gated issuance: evidence sent with spawn or renew, verified against the operator's
// trust anchors, recorded as the credential's `attestation` claim. Nothing is stored when a check fails.
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { AgentIdError, parseAgentClaims, type AgentClaims } from '@agentid/core'
import { verifyEat, type EatConfig } from './eat.js'
import { reject } from './errors.js'
import { verifyNitro, type NitroConfig } from './nitro.js'
import { sigstoreConfig, verifySigstore, type SigstoreConfig, type SigstoreIdentity } from './sigstore.js'

/**
 * The trust anchors (`AGENTID_ATTESTATION`, JSON inline or the path of a file). Each kind is optional;
 * evidence of a kind not configured is refused.
 * - `eat`: `{ attesters: [{ kid, jwk }], maxAgeSec? }` (public JWKs of the attesters);
 * - `sigstore`: `{ trustedRoot: <trusted_root.json object or file path>, identities: [{ subjectAlternativeName, issuer }] }`;
 * - `nitro`: `{ rootCertificate: <PEM or file path>, pcrs?: { "0": "<hex>", … }, maxAgeSec? }`.
 */
export interface AttestationConfigInput {
  eat?: { attesters: { kid: string; jwk: Record<string, unknown> }[]; maxAgeSec?: number }
  sigstore?: { trustedRoot: unknown; identities: SigstoreIdentity[] }
  nitro?: { rootCertificate: string; pcrs?: Record<string, string>; maxAgeSec?: number }
}

const bad = (message: string): never => {
  throw new AgentIdError('ERR_INVALID_INPUT', `attestation configuration: ${message}`, { details: { field: 'attestation' } })
}

function fileOr(value: unknown, what: string): unknown {
  if (typeof value !== 'string' || value.trimStart().startsWith('{') || value.trimStart().startsWith('-----BEGIN')) return value
  try {
    const text = readFileSync(value, 'utf8')
    return text.trimStart().startsWith('{') ? JSON.parse(text) : text
  } catch {
    return bad(`${what}: cannot read ${value}`)
  }
}

/** Reads `AGENTID_ATTESTATION` (JSON inline, or the path of a file holding it). */
export function attestationFromEnv(value: string | undefined): AttestationConfigInput | undefined {
  if (value === undefined || value === '') return undefined
  const parsed = fileOr(value.trimStart().startsWith('{') ? JSON.parse(value) : value, 'AGENTID_ATTESTATION')
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return bad('must be a JSON object')
  return parsed as AttestationConfigInput
}

/** The verified attestation anchors of an issuer. */
export class Attestation {
  private constructor(readonly eat?: EatConfig, readonly sigstore?: SigstoreConfig, readonly nitro?: NitroConfig) {}

  /** Validates the configuration; a bad one stops the start (`ERR_INVALID_INPUT`). */
  static from(input: AttestationConfigInput | undefined): Attestation {
    if (input === undefined) return new Attestation()
    if (typeof input !== 'object' || input === null) return bad('must be an object')
    for (const k of Object.keys(input)) if (!['eat', 'sigstore', 'nitro'].includes(k)) bad(`unknown kind ${k}`)
    let eat: EatConfig | undefined
    if (input.eat !== undefined) {
      if (!Array.isArray(input.eat.attesters) || input.eat.attesters.length === 0) bad('eat.attesters must list at least one { kid, jwk }')
      const attesters = new Map<string, KeyObject>()
      for (const a of input.eat.attesters) {
        if (typeof a?.kid !== 'string' || a.kid === '' || typeof a.jwk !== 'object' || a.jwk === null || 'd' in a.jwk || a.jwk.kty === 'oct') bad('each eat attester is { kid, jwk } with a public asymmetric key')
        try {
          attesters.set(a.kid, createPublicKey({ key: a.jwk as never, format: 'jwk' }))
        } catch {
          bad(`eat attester ${a.kid}: not a valid public key`)
        }
      }
      eat = { attesters, maxAgeSec: input.eat.maxAgeSec ?? 300 }
    }
    let sigstore: SigstoreConfig | undefined
    if (input.sigstore !== undefined) {
      const ids = input.sigstore.identities
      if (!Array.isArray(ids) || ids.length === 0 || !ids.every((i) => typeof i?.subjectAlternativeName === 'string' && typeof i.issuer === 'string')) {
        bad('sigstore.identities must list at least one { subjectAlternativeName, issuer }')
      }
      try {
        sigstore = sigstoreConfig(fileOr(input.sigstore.trustedRoot, 'sigstore.trustedRoot'), ids)
      } catch (error) {
        if (error instanceof AgentIdError) throw error
        bad('sigstore.trustedRoot is not a Sigstore trusted root')
      }
    }
    let nitro: NitroConfig | undefined
    if (input.nitro !== undefined) {
      let roots: X509Certificate[]
      try {
        roots = [new X509Certificate(fileOr(input.nitro.rootCertificate, 'nitro.rootCertificate') as string)]
      } catch {
        return bad('nitro.rootCertificate is not a PEM certificate')
      }
      const pcrs = new Map<number, string>()
      for (const [k, v] of Object.entries(input.nitro.pcrs ?? {})) {
        if (!/^(?:[0-9]|1[0-9]|2[0-9]|3[01])$/.test(k) || typeof v !== 'string' || !/^(?:[0-9a-f]{2}){32,64}$/.test(v)) bad('nitro.pcrs maps an index 0-31 to lowercase hex')
        pcrs.set(Number(k), v)
      }
      nitro = { roots, pcrs, maxAgeSec: input.nitro.maxAgeSec ?? 300 }
    }
    return new Attestation(eat, sigstore, nitro)
  }

  /**
   * Verifies `evidence` (a list of 1 to 3 items `{ kind: 'eat', token }`, `{ kind: 'sigstore', bundle,
   * digest }`, `{ kind: 'nitro', document }`) against the spawn challenge that the agent's proof of
   * possession carries, and returns `claims` with `attestation: { verified: [...] }`. Without
   * evidence, the claims as they are, except that an `attestation.verified` the caller wrote is
   * refused: only the issuer writes it. Throws ERR_ATTESTATION_REJECTED naming the check.
   */
  async apply(claims: AgentClaims, evidence: unknown, challenge: string | null, now: number): Promise<AgentClaims> {
    if (evidence === undefined) {
      if (claims.attestation !== undefined && 'verified' in claims.attestation) {
        throw new AgentIdError('ERR_INVALID_INPUT', 'attestation.verified is written by the issuer from attestationEvidence', { details: { field: 'attestation' } })
      }
      return claims
    }
    if (claims.attestation !== undefined && claims.attestation !== null) throw new AgentIdError('ERR_INVALID_INPUT', 'attestation and attestationEvidence are exclusive: the issuer records what it verified', { details: { field: 'attestation' } })
    if (!Array.isArray(evidence) || evidence.length === 0 || evidence.length > 3) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'attestationEvidence must list 1 to 3 items', { details: { field: 'attestationEvidence' } })
    }
    if (challenge === null) reject('challenge', 'evidence must be bound to a challenge: the proof of possession needs the nonce of POST /v1/challenges')
    const verified: Record<string, unknown>[] = []
    for (const item of evidence as unknown[]) {
      const e = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>
      let result: Record<string, unknown>
      if (e.kind === 'eat') {
        if (!this.eat) reject('eat', 'no EAT attester is configured')
        result = await verifyEat(e.token, this.eat, { challenge: challenge!, now })
      } else if (e.kind === 'sigstore') {
        if (!this.sigstore) reject('sigstore', 'no Sigstore trusted root is configured')
        result = verifySigstore(e, this.sigstore)
      } else if (e.kind === 'nitro') {
        if (!this.nitro) reject('nitro', 'no Nitro root is configured')
        result = verifyNitro(e.document, this.nitro, { challenge: challenge!, now })
      } else {
        throw new AgentIdError('ERR_INVALID_INPUT', 'attestationEvidence kind must be eat, sigstore or nitro', { details: { field: 'attestationEvidence' } })
      }
      verified.push({ ...result, verifier: 'agentid-issuer', verifiedAt: now })
    }
    const { attestation: _previous, ...rest } = claims
    const attested = { ...rest, attestation: { verified } }
    try {
      // The limits every verifier applies (size, depth): a claim they would refuse is refused here.
      return parseAgentClaims(attested, { strict: false })
    } catch (cause) {
      return reject('size', 'the verified results do not fit the attestation claim (8 KiB, nesting limit)', cause)
    }
  }
}
