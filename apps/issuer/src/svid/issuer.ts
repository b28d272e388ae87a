// SVIDs for agents: X.509-SVIDs for the agent's own Ed25519 key and JWT-SVIDs (ES256), each asked for
// by the agent with a proof of possession (purpose `svid`), refused once the agent is revoked.
import 'reflect-metadata'
import { randomUUID, sign as cryptoSign, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import { Certificate, Extension } from '@peculiar/asn1-x509'
import {
  AgentIdError,
  base64urlEncode,
  decodeDidKey,
  parseSpiffeId,
  verifyProofOfPossession,
  type AgentClaims,
} from '@agentid/core'
import {
  AGENTID_CREDENTIAL_EXTENSION_OID,
  encodeUtf8String,
  parseSpiffeBundle,
  verifyJwtSvid,
  verifyX509SvidChain,
  type SpiffeBundle,
} from '@agentid/verifier'
import type { IssuerStorage } from '../storage/types.js'
import { serialNumber, SIGNING_ALG, SvidAuthority, type CaKey } from './authority.js'
import { parseAgentDid } from '../domain/input.js'
import { parseJwtSvidRequest, parseX509SvidRequest } from './input.js'

/** X.509-SVID lifetime: default and maximum (seconds). */
export const DEFAULT_X509_SVID_TTL_SEC = 900
export const MAX_X509_SVID_TTL_SEC = 3600
/** JWT-SVID lifetime: default and maximum (seconds). */
export const DEFAULT_JWT_SVID_TTL_SEC = 300
export const MAX_JWT_SVID_TTL_SEC = 300
/** How long verifiers may cache the bundle (`spiffe_refresh_hint`, seconds). */
export const BUNDLE_REFRESH_HINT_SEC = 300
/** notBefore is set this far in the past, for verifiers whose clock is slightly behind. */
const BACKDATE_SEC = 30

export interface X509SvidResponse {
  spiffeId: string
  /** The X.509-SVID (PEM), then nothing: the CA is in the bundle. */
  certificate: string
  /** PEM of the CA certificate that signed it (also in the bundle). */
  caCertificate: string
  expiresAt: string
  /** `x5t#S256` of the certificate (RFC 8705). */
  thumbprint: string
}

export interface JwtSvidResponse { spiffeId: string; token: string; audience: string[]; expiresAt: string }

const iso = (sec: number) => new Date(sec * 1000).toISOString()

export interface SvidIssuerOptions {
  store: IssuerStorage
  authority: SvidAuthority
  /** The issuer DID: the audience of the agents' proofs. */
  issuerDid: string
  now: () => number
}

/**
 * Issues SVIDs. The X.509-SVID's key is the agent's did:key (never a new one): URI SAN = the agent's
 * SPIFFE ID, CA=false, keyUsage digitalSignature, EKU clientAuth and serverAuth; it carries the agent's
 * current identity credential in a non-critical extension ({@link AGENTID_CREDENTIAL_EXTENSION_OID}), so
 * a verifier learns the agent's claims and checks its revocation status; it ends no later than that
 * credential. JWT-SVIDs: `sub` = the SPIFFE ID, `aud` required, at most 300 s. Each is checked with the
 * verifier's own SVID checks before it is returned; the proof's jti (and challenge), a check that the
 * agent is still active, and the audit event commit in one write.
 */
export class SvidIssuer {
  constructor(private readonly o: SvidIssuerOptions) {}

  get trustDomain(): string {
    return this.o.authority.trustDomain
  }

  /** The SPIFFE bundle document of the trust domain (JWKS with x509-svid and jwt-svid keys). */
  async bundleDocument(): Promise<Record<string, unknown>> {
    await this.o.authority.current() // rotates first when due
    const cas = this.o.authority.all()
    return {
      keys: [
        ...cas.map((ca) => ({ use: 'x509-svid', ...ca.publicJwk, x5c: [ca.der.toString('base64')] })),
        ...cas.map((ca) => ({ use: 'jwt-svid', kid: ca.kid, ...ca.publicJwk })),
      ],
      spiffe_sequence: cas.length,
      spiffe_refresh_hint: BUNDLE_REFRESH_HINT_SEC,
    }
  }

  private async bundle(): Promise<SpiffeBundle> {
    return parseSpiffeBundle(await this.bundleDocument(), this.trustDomain)
  }

  // The proof, the agent (active, with a SPIFFE ID in this trust domain), as both routes need them.
  private async authorize(didParam: unknown, proofToken: string): Promise<{ did: string; spiffeId: string; proof: { jti: string; nonce: string | null; exp: number } }> {
    const did = parseAgentDid(didParam)
    const proof = await verifyProofOfPossession(proofToken, { audience: this.o.issuerDid, purpose: 'svid', now: this.o.now(), expectedDid: did })
    const agent = await this.o.store.agents.get(did)
    if (!agent) throw new AgentIdError('ERR_NOT_FOUND', 'agent not found')
    if (agent.status !== 'active') throw new AgentIdError('ERR_REVOKED', 'the agent has been revoked')
    const claims = JSON.parse(agent.claims_json) as AgentClaims
    if (claims.spiffeId === undefined || parseSpiffeId(claims.spiffeId).trustDomain !== this.trustDomain) {
      throw new AgentIdError('ERR_CONFLICT', `the agent has no SPIFFE ID in trust domain ${this.trustDomain} (spawned before it was configured)`)
    }
    if (await this.o.store.nonces.seen(`pop:${proof.jti}`)) throw new AgentIdError('ERR_REPLAY', 'this proof of possession was used before')
    return { did, spiffeId: claims.spiffeId, proof }
  }

  private async commit(did: string, proof: { jti: string; nonce: string | null; exp: number }, action: string, details: Record<string, unknown>): Promise<void> {
    const { store } = this.o
    const at = this.o.now()
    await store.commit([
      store.ops.nonceUse(`pop:${proof.jti}`, proof.exp, { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }),
      ...(proof.nonce !== null ? [store.ops.challengeUse(proof.nonce, at, { code: 'ERR_REPLAY', message: 'the challenge is unknown, expired or used' })] : []),
      store.ops.agentActive(did, { code: 'ERR_REVOKED', message: 'the agent has been revoked' }),
      store.ops.audit(at, `agent:${did}`, action, did, details),
    ])
  }

  /** `POST /v1/agents/:did/svids/x509` `{ proof, lifetimeSec? }`. */
  async issueX509(didParam: unknown, body: unknown): Promise<X509SvidResponse> {
    const request = parseX509SvidRequest(body, MAX_X509_SVID_TTL_SEC)
    const { did, spiffeId, proof } = await this.authorize(didParam, request.proof)
    const now = this.o.now()
    // The agent's newest identity credential (JWT) still active: the SVID never outlives it.
    const credential = (await this.o.store.credentials.activeByAgent(did))
      .filter((c) => c.kind === 'identity' && c.format === 'jwt' && c.expires_at > now + 30)
      .sort((a, b) => b.expires_at - a.expires_at)[0]
    if (!credential) throw new AgentIdError('ERR_EXPIRED', 'the agent has no active identity credential (JWT) with more than 30 s left; renew it first')
    const notAfter = Math.min(now + (request.lifetimeSec ?? DEFAULT_X509_SVID_TTL_SEC), credential.expires_at)
    const ca = await this.o.authority.current()
    const publicKey = await webcrypto.subtle.importKey('spki', ed25519Spki(decodeDidKey(did).publicKey), { name: 'Ed25519' }, true, ['verify'])
    const serial = serialNumber()
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: 'O=agentid',
      issuer: ca.certificate.subject,
      notBefore: new Date((now - BACKDATE_SEC) * 1000),
      notAfter: new Date(notAfter * 1000),
      publicKey,
      signingKey: ca.cryptoKey,
      signingAlgorithm: SIGNING_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
        await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
      ],
    })
    const der = withCredentialExtension(cert.rawData, credential.jwt, ca)
    let thumbprint: string
    try {
      const checked = verifyX509SvidChain([der], await this.bundle(), { now })
      if (checked.spiffeId.id !== spiffeId || checked.credential !== credential.jwt) throw new Error('the SVID does not hold what was signed')
      thumbprint = checked.thumbprint
    } catch (cause) {
      throw new AgentIdError('ERR_INTERNAL', 'the issuer refused its own X.509-SVID', { cause })
    }
    await this.commit(did, proof, 'svid.x509.issued', { spiffeId, serial, credentialId: credential.id, notAfter, thumbprint })
    return { spiffeId, certificate: pem(der), caCertificate: ca.certificate.toString('pem'), expiresAt: iso(notAfter), thumbprint }
  }

  /** `POST /v1/agents/:did/svids/jwt` `{ proof, audience, lifetimeSec? }`. */
  async issueJwt(didParam: unknown, body: unknown): Promise<JwtSvidResponse> {
    const request = parseJwtSvidRequest(body, MAX_JWT_SVID_TTL_SEC)
    const { did, spiffeId, proof } = await this.authorize(didParam, request.proof)
    const now = this.o.now()
    const exp = now + (request.lifetimeSec ?? DEFAULT_JWT_SVID_TTL_SEC)
    const ca = await this.o.authority.current()
    const jti = randomUUID()
    const token = signEs256(ca, { alg: 'ES256', kid: ca.kid, typ: 'JWT' }, {
      sub: spiffeId,
      aud: request.audience.length === 1 ? request.audience[0] : request.audience,
      iat: now,
      exp,
      jti,
    })
    try {
      verifyJwtSvid(token, await this.bundle(), { audience: request.audience[0]!, now })
    } catch (cause) {
      throw new AgentIdError('ERR_INTERNAL', 'the issuer refused its own JWT-SVID', { cause })
    }
    await this.commit(did, proof, 'svid.jwt.issued', { spiffeId, jti, audience: request.audience, exp })
    return { spiffeId, token, audience: request.audience, expiresAt: iso(exp) }
  }
}

// The credential extension is added to the TBS certificate with @peculiar/asn1-x509, which encodes the
// OID exactly whatever its arcs (@peculiar/x509's generator re-parses extensions through asn1js, whose
// OID strings cannot carry an arc above 2^53), then the TBS is signed again.
function withCredentialExtension(rawData: ArrayBuffer, credentialJwt: string, ca: CaKey): Buffer {
  const parsed = AsnConvert.parse(rawData, Certificate)
  const extensions = parsed.tbsCertificate.extensions
  if (!extensions) throw new AgentIdError('ERR_INTERNAL', 'the X.509-SVID has no extensions')
  extensions.push(new Extension({ extnID: AGENTID_CREDENTIAL_EXTENSION_OID, critical: false, extnValue: new OctetString(encodeUtf8String(credentialJwt)) }))
  const tbs = Buffer.from(AsnConvert.serialize(parsed.tbsCertificate))
  const signature = cryptoSign('sha256', tbs, { key: ca.keyObject, dsaEncoding: 'der' })
  parsed.signatureValue = signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer
  return Buffer.from(AsnConvert.serialize(parsed))
}

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`
}

function signEs256(ca: CaKey, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${base64urlEncode(JSON.stringify(header))}.${base64urlEncode(JSON.stringify(payload))}`
  const signature = cryptoSign('sha256', Buffer.from(input, 'ascii'), { key: ca.keyObject, dsaEncoding: 'ieee-p1363' })
  return `${input}.${base64urlEncode(signature)}`
}

// SubjectPublicKeyInfo of a raw Ed25519 key (RFC 8410): the fixed 12-byte prefix, then the key.
function ed25519Spki(raw: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw])
}
