import { AGENTID_CONTEXT_V1, base64urlEncode, signerFromJwk, type Signer } from '@agentid/core'
import { DataIntegrityProof } from '@digitalbazaar/data-integrity'
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey'
import { cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
import * as vc from '@digitalbazaar/vc'
import { createDocumentLoader } from '../src/di/document-loader.js'
import { alice, claims, LIST_URL, NOW } from './fixtures.js'

export const VC_V2 = 'https://www.w3.org/ns/credentials/v2'

/** A did:key issuer made by @digitalbazaar/ed25519-multikey, with the same key as a JWK signer (for its status list JWT). */
export interface DiIssuer {
  did: string
  keyPair: Ed25519Multikey.Ed25519KeyPair
  signer: Signer
}

export async function diIssuer(): Promise<DiIssuer> {
  const generated = await Ed25519Multikey.generate()
  const did = `did:key:${generated.publicKeyMultibase}`
  const keyPair = await Ed25519Multikey.from({ ...(await generated.export({ publicKey: true, secretKey: true })), id: `${did}#${generated.publicKeyMultibase}`, controller: did })
  // ed25519-multikey keeps the 64-byte secret key (seed ‖ public key); a JWK `d` is the 32-byte seed.
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(keyPair.publicKey), d: base64urlEncode(keyPair.secretKey!.subarray(0, 32)) }
  const signer = signerFromJwk(jwk)
  if (signer.did !== did) throw new Error('JWK and multikey name different DIDs')
  return { did, keyPair, signer }
}

export interface DiCredentialOptions {
  issuer?: string
  validFrom?: number
  validUntil?: number | null
  index?: string
  subject?: Record<string, unknown>
  extra?: Record<string, unknown>
}

const iso = (sec: number): string => new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')

/** The unsigned agent identity credential, as an agentid DI issuer would build it. */
export function unsignedCredential(by: DiIssuer, o: DiCredentialOptions = {}): Record<string, unknown> {
  return {
    '@context': [VC_V2, AGENTID_CONTEXT_V1],
    id: 'urn:uuid:6f1c1f3e-8c2a-4b51-9d5c-000000000001',
    type: ['VerifiableCredential', 'AgentIdentityCredential'],
    issuer: o.issuer ?? by.did,
    validFrom: iso(o.validFrom ?? NOW - 10),
    ...(o.validUntil === null ? {} : { validUntil: iso(o.validUntil ?? NOW + 3600) }),
    credentialSubject: o.subject ?? { id: alice.did, ...claims, attestation: { platform: 'tee', measurements: ['a1', 'b2'] } },
    credentialStatus: {
      id: `${LIST_URL}#${o.index ?? '7'}`,
      type: 'BitstringStatusListEntry',
      statusPurpose: 'revocation',
      statusListIndex: o.index ?? '7',
      statusListCredential: LIST_URL,
    },
    ...o.extra,
  }
}

/** Signs with plain @digitalbazaar/vc + DataIntegrityProof (eddsa-rdfc-2022): no agentid code but the loader. */
export async function issueDi(by: DiIssuer, o: DiCredentialOptions = {}, key: Ed25519Multikey.Ed25519KeyPair = by.keyPair): Promise<Record<string, unknown>> {
  const suite = new DataIntegrityProof({ signer: key.signer(), cryptosuite, date: new Date((NOW - 10) * 1000) })
  return vc.issue({ credential: unsignedCredential(by, o), suite, documentLoader: createDocumentLoader() })
}

export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T
}
