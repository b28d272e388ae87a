// W3C vc-di-eddsa test vectors (eddsa-rdfc-2022), vectors/vc-di-eddsa @ abb673eb: every intermediate
// value of the pipeline is reproduced with the canonicalization @digitalbazaar uses, and the
// signed credential verifies with @digitalbazaar/vc through our document loader.
import { createHash, createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { AGENTID_CONTEXT_V1, AGENTID_CONTEXT_V1_DOCUMENT, base64urlEncode, decodeDidKey, VerificationError } from '@agentid/core'
import { createVerifier } from '@agentid/verifier'
import { DataIntegrityProof } from '@digitalbazaar/data-integrity'
import { cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
import * as vc from '@digitalbazaar/vc'
import { base58 } from '@scure/base'
import * as rdfCanonize from 'rdf-canonize'
import { describe, expect, it } from 'vitest'
import { createDocumentLoader, VC_CONTEXT_V2 } from '../src/di/document-loader.js'

const vectors = new URL('../../../vectors/', import.meta.url)
const text = (path: string): string => readFileSync(new URL(path, vectors), 'utf8')
const json = (path: string): Record<string, unknown> => JSON.parse(text(path)) as Record<string, unknown>
const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex')

/** SHA-256 of the VC 2.0 base context as published in VC DM 2.0, Appendix "Base Context" (see vectors/README.md). */
const VC_V2_SHA256 = '59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734'
const EXAMPLES_V2 = 'https://www.w3.org/ns/credentials/examples/v2'

// TEST ONLY: the examples context (an @vocab context) is what the W3C vectors use. Production's loader never serves it.
const testLoader = createDocumentLoader(new Map([[EXAMPLES_V2, json('vc-contexts/credentials-examples-v2.jsonld')]]))

const keyPair = json('vc-di-eddsa/keyPair.json') as { publicKeyMultibase: string }
const publicKey = createPublicKey({
  key: { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(decodeDidKey(`did:key:${keyPair.publicKeyMultibase}`).publicKey) },
  format: 'jwk',
})

/** A proof purpose for vectors whose issuer is not a DID: assertionMethod, no issuer/controller link. */
const assertionOnly: vc.ProofPurpose = {
  match: async (proof) => proof.proofPurpose === 'assertionMethod',
  validate: async () => ({ valid: true }),
}

describe('pinned contexts', () => {
  it('vectors/vc-contexts/credentials-v2.jsonld has the SHA-256 published in VC DM 2.0', () => {
    expect(sha256(readFileSync(new URL('vc-contexts/credentials-v2.jsonld', vectors)))).toBe(VC_V2_SHA256)
  })

  it('the loader serves exactly that VC v2 context (from @digitalbazaar/credentials-context) and the agentid context', async () => {
    const loader = createDocumentLoader()
    // The package reformats the file (its bytes hash differently): the JSON must be identical.
    expect((await loader(VC_CONTEXT_V2)).document).toEqual(json('vc-contexts/credentials-v2.jsonld'))
    expect((await loader(AGENTID_CONTEXT_V1)).document).toBe(AGENTID_CONTEXT_V1_DOCUMENT)
  })

  it('production refuses the examples context; only the test loader has it', async () => {
    const error = await createDocumentLoader()(EXAMPLES_V2).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_MALFORMED')
    expect((await testLoader(EXAMPLES_V2)).document).toBeDefined()
  })
})

describe('eddsa-rdfc-2022 vectors', () => {
  const dir = 'vc-di-eddsa/eddsa-rdfc-2022/'

  it('reproduces the canonical document and proof configuration (RDFC-1.0)', async () => {
    const canonDoc = await cryptosuite.canonize(json('vc-di-eddsa/unsigned.json'), { documentLoader: testLoader })
    expect(canonDoc).toBe(text(`${dir}canonDocDataInt.txt`))
    const proofCanon = await cryptosuite.canonize(json(`${dir}proofConfigDataInt.json`), { documentLoader: testLoader })
    expect(proofCanon).toBe(text(`${dir}proofCanonDataInt.txt`))
  })

  for (const [name, sub] of [['alumni credential', ''], ['employment authorization (employ/)', 'employ/']] as const) {
    describe(name, () => {
      const at = `${dir}${sub}`

      it('its canonical N-Quads are a fixed point of rdf-canonize (RDFC-1.0)', async () => {
        for (const file of ['canonDocDataInt.txt', 'proofCanonDataInt.txt']) {
          const nquads = text(`${at}${file}`)
          expect(await rdfCanonize.canonize(nquads, { algorithm: 'RDFC-1.0', inputFormat: 'application/n-quads', format: 'application/n-quads' })).toBe(nquads)
        }
      })

      it('docHash, proofHash and combinedHash', () => {
        const docHash = sha256(text(`${at}canonDocDataInt.txt`))
        const proofHash = sha256(text(`${at}proofCanonDataInt.txt`))
        expect(docHash).toBe(text(`${at}docHashDataInt.txt`).trim())
        expect(proofHash).toBe(text(`${at}proofHashDataInt.txt`).trim())
        expect(proofHash + docHash).toBe(text(`${at}combinedHashDataInt.txt`).trim())
      })

      it('the signature verifies over combinedHash with keyPair.json’s key (node:crypto), and is the proofValue', () => {
        const combined = Buffer.from(text(`${at}combinedHashDataInt.txt`).trim(), 'hex')
        const signature = Buffer.from(text(`${at}sigHexDataInt.txt`).trim(), 'hex')
        expect(verify(null, combined, publicKey, signature)).toBe(true)
        const tampered = Buffer.from(combined)
        tampered[0]! ^= 1
        expect(verify(null, tampered, publicKey, signature)).toBe(false)
        // sigBTC58DataInt.txt already holds the multibase form, `z` included (vectors/README.md says otherwise).
        expect(`z${base58.encode(signature)}`).toBe(text(`${at}sigBTC58DataInt.txt`).trim())
        const signed = json(`${at}signedDataInt.json`) as { proof: { proofValue: string } }
        expect(signed.proof.proofValue).toBe(`z${base58.encode(signature)}`)
      })
    })
  }

  it('signedDataInt.json verifies with @digitalbazaar/vc through our loader (+ the examples context)', async () => {
    const suite = new DataIntegrityProof({ cryptosuite })
    const signed = json(`${dir}signedDataInt.json`)
    const result = await vc.verifyCredential({ credential: signed, suite, documentLoader: testLoader, purpose: assertionOnly, now: '2024-01-01T00:00:00Z' })
    expect(result.error).toBeUndefined()
    expect(result.verified).toBe(true)
    const changed = { ...signed, credentialSubject: { id: 'did:example:abcdefgh', alumniOf: 'The School of Forgeries' } }
    const bad = await vc.verifyCredential({ credential: changed, suite, documentLoader: testLoader, purpose: assertionOnly, now: '2024-01-01T00:00:00Z' })
    expect(bad.verified).toBe(false)
  })

  it('the eddsa-jcs-2022 and Ed25519Signature2020 vectors are refused by the eddsa-rdfc-2022 suite', async () => {
    const suite = new DataIntegrityProof({ cryptosuite })
    for (const path of ['vc-di-eddsa/eddsa-jcs-2022/signedJCS.json', 'vc-di-eddsa/Ed25519Signature2020/signedEdSig.json']) {
      const result = await vc.verifyCredential({ credential: json(path), suite, documentLoader: testLoader, purpose: assertionOnly, now: '2024-01-01T00:00:00Z' })
      expect(result.verified, path).toBe(false)
    }
  })

  it('our verifier refuses the vector: not an agentid credential, and the examples context is not pinned', async () => {
    const verifier = createVerifier({ trustedIssuers: [`did:key:${keyPair.publicKeyMultibase}`], fetch: async () => { throw new Error('no network') } })
    const error = await verifier.verifyAgentCredential(json(`${dir}signedDataInt.json`)).catch((e: unknown) => e)
    expect((error as VerificationError).code).toBe('ERR_MALFORMED')
  })
})
