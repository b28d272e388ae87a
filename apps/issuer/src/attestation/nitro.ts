// AWS Nitro Enclaves attestation documents (aws-nitro-enclaves-nsm-api docs/attestation_process.md):
// COSE_Sign1 (ES384) by the enclave's certificate, chained through cabundle to the configured root.
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto'
import { decode, encode } from 'cbor2'
import { base64urlDecode } from '@agentid/core'
import { reject } from './errors.js'

export interface NitroConfig {
  /** The AWS Nitro Enclaves root certificate(s) trusted (Root-G1). */
  roots: readonly X509Certificate[]
  /** PCR values required (index → lowercase hex); an absent index is not checked. */
  pcrs: ReadonlyMap<number, string>
  /** How old the document may be (seconds, default 300). */
  maxAgeSec: number
}

const MAX_DOCUMENT_BYTES = 32 * 1024
const bytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

/**
 * Verifies a base64 (or base64url) attestation document: COSE_Sign1 structure with alg ES384
 * (`nitro.format`); cabundle[0] is a configured root and each certificate, down to the enclave's,
 * is signed by the previous and valid at the document's timestamp (`nitro.chain`); the COSE signature
 * by the enclave certificate (`nitro.signature`); the document is recent (`nitro.time`); `nonce` is
 * the spawn challenge's bytes (`nitro.nonce`); the configured PCRs match (`nitro.pcrs`).
 */
export function verifyNitro(document: unknown, config: NitroConfig, o: { challenge: string; now: number }): Record<string, unknown> {
  if (typeof document !== 'string' || document.length > MAX_DOCUMENT_BYTES * 2) reject('nitro.format', 'document must be the base64 attestation document')
  let raw: Buffer
  let cose: unknown
  try {
    raw = Buffer.from(document.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
    cose = decode(raw)
  } catch (cause) {
    return reject('nitro.format', 'the document is not CBOR', cause)
  }
  if ((cose as { tag?: unknown })?.tag === 18) cose = (cose as { contents: unknown }).contents
  if (!Array.isArray(cose) || cose.length !== 4 || !bytes(cose[0]) || !bytes(cose[2]) || !bytes(cose[3])) reject('nitro.format', 'not a COSE_Sign1 structure')
  const [protectedBytes, , payloadBytes, signature] = cose as [Uint8Array, unknown, Uint8Array, Uint8Array]
  let alg: unknown
  let doc: Map<unknown, unknown>
  try {
    alg = (decode(protectedBytes, { preferMap: true }) as Map<unknown, unknown>).get(1)
    doc = decode(payloadBytes, { preferMap: true }) as Map<unknown, unknown>
  } catch (cause) {
    return reject('nitro.format', 'the protected header or payload is not CBOR', cause)
  }
  if (alg !== -35) reject('nitro.format', 'alg must be ES384 (-35)')
  if (!(doc instanceof Map)) reject('nitro.format', 'the payload is not a map')
  const moduleId = doc.get('module_id')
  const timestamp = doc.get('timestamp')
  const certificate = doc.get('certificate')
  const cabundle = doc.get('cabundle')
  const pcrs = doc.get('pcrs')
  if (typeof moduleId !== 'string' || typeof timestamp !== 'number' || !bytes(certificate) || !Array.isArray(cabundle) || cabundle.length === 0 || !cabundle.every(bytes) || !(pcrs instanceof Map)) {
    reject('nitro.format', 'module_id, timestamp, certificate, cabundle and pcrs are required')
  }
  if (doc.get('digest') !== 'SHA384') reject('nitro.format', 'digest must be SHA384')

  // The chain, at the document's time: root (configured) → … → the enclave's certificate.
  let chain: X509Certificate[]
  try {
    chain = [...(cabundle as Uint8Array[]), certificate as Uint8Array].map((der) => new X509Certificate(der))
  } catch (cause) {
    return reject('nitro.chain', 'a certificate does not parse', cause)
  }
  const root = chain[0]!
  if (!config.roots.some((r) => r.raw.equals(root.raw))) reject('nitro.chain', 'cabundle[0] is not the configured root')
  const at = new Date(timestamp as number)
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!
    const issuer = chain[Math.max(i - 1, 0)]!
    if (new Date(cert.validFrom) > at || new Date(cert.validTo) < at) reject('nitro.chain', `certificate ${i} is not valid at the document's timestamp`)
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) reject('nitro.chain', `certificate ${i} is not signed by certificate ${Math.max(i - 1, 0)}`)
    if (i < chain.length - 1 && !cert.ca) reject('nitro.chain', `certificate ${i} is not a CA`)
  }
  const leaf = chain[chain.length - 1]!
  // Plain Uint8Array views: cbor2 encodes a Node Buffer as a map (its toJSON form), not as a byte string.
  const plain = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  const sigStructure = encode(['Signature1', plain(protectedBytes), new Uint8Array(0), plain(payloadBytes)])
  if (!cryptoVerify('sha384', sigStructure, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, signature)) reject('nitro.signature', 'the COSE signature does not verify with the enclave certificate')

  const ageSec = o.now - (timestamp as number) / 1000
  if (ageSec > config.maxAgeSec || ageSec < -30) reject('nitro.time', `the document must be at most ${config.maxAgeSec} s old`)
  let expected: Buffer
  try {
    expected = base64urlDecode(o.challenge)
  } catch {
    return reject('nitro.nonce', 'the challenge is not base64url')
  }
  const nonce = doc.get('nonce')
  if (!bytes(nonce) || !Buffer.from(nonce).equals(expected)) reject('nitro.nonce', 'nonce is not the spawn challenge')
  const pcrHex = new Map<number, string>()
  for (const [k, v] of pcrs as Map<unknown, unknown>) if (typeof k === 'number' && bytes(v)) pcrHex.set(k, Buffer.from(v).toString('hex'))
  for (const [index, value] of config.pcrs) if (pcrHex.get(index) !== value) reject('nitro.pcrs', `PCR${index} does not have the required value`)
  const recorded: Record<string, string> = {}
  for (const i of [0, 1, 2, 3, 4, 8]) if (pcrHex.has(i)) recorded[String(i)] = pcrHex.get(i)!
  return {
    kind: 'nitro',
    moduleId,
    timestamp: Math.floor((timestamp as number) / 1000),
    pcrs: recorded,
    rootSha256: createHash('sha256').update(root.raw).digest('hex'),
    ...(bytes(doc.get('user_data')) ? { userDataSha256: createHash('sha256').update(doc.get('user_data') as Uint8Array).digest('hex') } : {}),
  }
}
