// Attestation-gated issuance: EAT (RFC 9711) from a configured attester bound to the spawn challenge,
// a real Sigstore bundle with SLSA provenance verified offline against the pinned public-good root,
// and a real AWS Nitro Enclaves attestation document; each failure names its check and stores nothing.
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base64urlEncode, decodeJwt } from '@agentid/core'
import type { AttestationConfigInput } from '../src/attestation/index.js'
import { verifyNitro } from '../src/attestation/nitro.js'
import { bearer, claims, counts, expectError, harness, namedKey, proof, verifierFor, type Harness, type NamedKey } from './http-fixtures.js'

const vector = (p: string) => readFileSync(new URL(`../../../vectors/${p}`, import.meta.url), 'utf8')
const sigstoreExpected = JSON.parse(vector('sigstore/expected.derived.json')).expected as { policy: { certificate_identity: string; certificate_oidc_issuer: string }; artifact: { sha256: string } }
const sigstoreBundle = JSON.parse(vector('sigstore/happy-path-intoto-in-dsse-v3.bundle.sigstore.json')) as Record<string, any>
const nitroDoc = vector('nitro/evervault/valid-attestation-doc-base64').trim()
const nitroExpected = JSON.parse(vector('nitro/expected.derived.json')).expected as { timestamp_ms: number; nonce_hex: string }
const ZERO_PCR = '00'.repeat(48)

const attester = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const impostor = generateKeyPairSync('ec', { namedCurve: 'P-256' })

function config(extra: Partial<AttestationConfigInput> = {}): AttestationConfigInput {
  return {
    eat: { attesters: [{ kid: 'tee-1', jwk: attester.publicKey.export({ format: 'jwk' }) as Record<string, unknown> }] },
    sigstore: {
      trustedRoot: JSON.parse(vector('sigstore/trusted_root.json')),
      identities: [{ subjectAlternativeName: sigstoreExpected.policy.certificate_identity, issuer: sigstoreExpected.policy.certificate_oidc_issuer }],
    },
    nitro: { rootCertificate: vector('nitro/aws-nitro-enclaves-root-g1.pem'), pcrs: { 0: ZERO_PCR, 1: ZERO_PCR, 2: ZERO_PCR } },
    ...extra,
  }
}

let h: Harness
beforeAll(async () => { h = await harness({ attestation: config() }) })
afterAll(async () => { await h.close() })
const nowSec = () => Math.floor(h.clock.now / 1000)

async function challenge(hh: Harness = h): Promise<string> {
  return (await hh.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(hh.orch.apiKey) })).json().nonce
}

async function eat(claimsSet: Record<string, unknown>, key: KeyObject = attester.privateKey, kid = 'tee-1'): Promise<string> {
  return new SignJWT(claimsSet).setProtectedHeader({ alg: 'ES256', kid, typ: 'eat+jwt' }).sign(key)
}

async function spawnWith(key: NamedKey, evidence: unknown, o: { nonce?: string | null; hh?: Harness; extra?: Record<string, unknown> } = {}) {
  const hh = o.hh ?? h
  const nonce = o.nonce === undefined ? await challenge(hh) : o.nonce
  return hh.app.inject({
    method: 'POST', url: '/v1/agents', headers: bearer(hh.orch.apiKey),
    payload: { ...claims, ...o.extra, proof: await proof(hh, key, nonce === null ? {} : { nonce }), attestationEvidence: evidence },
  })
}

function attestationOf(credential: string): Record<string, any> {
  return (decodeJwt(credential).payload as any).vc.credentialSubject.attestation
}

async function refusedWith(res: Awaited<ReturnType<typeof spawnWith>>, check: string, before: ReturnType<typeof counts>, hh: Harness = h) {
  const error = expectError(res, 403, 'ERR_ATTESTATION_REJECTED')
  expect(error.details?.check).toBe(check)
  expect(counts(hh)).toEqual(before) // nothing partial stored: no agent, credential, nonce, challenge use, audit event
}

describe('EAT (RFC 9711) from a configured attester', () => {
  it('is verified and recorded: attester, measurements, verifier, time', async () => {
    const alice = namedKey()
    const nonce = await challenge()
    const token = await eat({ eat_nonce: nonce, iat: nowSec(), ueid: 'AQIDBA', swname: 'agent-runtime', swversion: '1.4.2', dbgstat: 3, measurements: [['sha-256', 'abc']] })
    const res = await spawnWith(alice, [{ kind: 'eat', token }], { nonce })
    expect(res.statusCode, res.body).toBe(201)
    const a = attestationOf(res.json().credential)
    expect(a.verified).toEqual([{ kind: 'eat', attester: 'tee-1', iat: nowSec(), ueid: 'AQIDBA', swname: 'agent-runtime', swversion: '1.4.2', dbgstat: 3, measurements: [['sha-256', 'abc']], verifier: 'agentid-issuer', verifiedAt: nowSec() }])
    expect((await verifierFor(h).verifyAgentCredential(res.json().credential)).claims.attestation).toEqual(a)
  })

  it('is refused, naming the check, with a wrong nonce, an untrusted key, an unknown attester, a stale iat, or no challenge', async () => {
    const before = counts(h)
    const nonce = await challenge()
    const b = counts(h)
    void before
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'eat', token: await eat({ eat_nonce: 'another-challenge', iat: nowSec() }) }], { nonce }), 'eat.nonce', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec() }, impostor.privateKey) }], { nonce }), 'eat.signature', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec() }, impostor.privateKey, 'tee-9') }], { nonce }), 'eat.attester', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec() - 3600 }) }], { nonce }), 'eat.time', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'eat', token: 'a.b.c' }], { nonce }), 'eat.format', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec() }) }], { nonce: null }), 'challenge', b)
    // The challenge was never spent by the refusals: it still works once.
    const ok = await spawnWith(namedKey(), [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec() }) }], { nonce })
    expect(ok.statusCode, ok.body).toBe(201)
  })

  it('the caller cannot write attestation.verified, nor mix attestation with evidence', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, keyCustody: 'issuer', attestation: { verified: [{ kind: 'eat' }] } } })
    expect(expectError(res, 400, 'ERR_INVALID_INPUT').details?.field).toBe('attestation')
    const nonce = await challenge()
    const mixed = await spawnWith(namedKey(), [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec() }) }], { nonce, extra: { attestation: { note: 'x' } } })
    expect(expectError(mixed, 400, 'ERR_INVALID_INPUT').details?.field).toBe('attestation')
    for (const bad of [[], {}, [{ kind: 'tpm' }], [1, 2, 3, 4]]) {
      expect(expectError(await spawnWith(namedKey(), bad), 400, 'ERR_INVALID_INPUT').details?.field).toBe('attestationEvidence')
    }
  })

  it('renew accepts new evidence bound to a new challenge and records it', async () => {
    const alice = namedKey()
    const spawnNonce = await challenge()
    expect((await spawnWith(alice, [{ kind: 'eat', token: await eat({ eat_nonce: spawnNonce, iat: nowSec(), swversion: '1' }) }], { nonce: spawnNonce })).statusCode).toBe(201)
    const nonce = await challenge()
    const res = await h.app.inject({
      method: 'POST', url: `/v1/agents/${alice.did}/renew`,
      payload: { proof: await proof(h, alice, { purpose: 'renew', nonce }), attestationEvidence: [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec(), swversion: '2' }) }] },
    })
    expect(res.statusCode, res.body).toBe(201)
    expect(attestationOf(res.json().credential).verified[0].swversion).toBe('2')
    const stale = await h.app.inject({
      method: 'POST', url: `/v1/agents/${alice.did}/renew`,
      payload: { proof: await proof(h, alice, { purpose: 'renew', nonce: await challenge() }), attestationEvidence: [{ kind: 'eat', token: await eat({ eat_nonce: nonce, iat: nowSec() }) }] },
    })
    expect(expectError(stale, 403, 'ERR_ATTESTATION_REJECTED').details?.check).toBe('eat.nonce')
  })
})

describe('Sigstore bundle with SLSA provenance (real public-good bundle, offline)', () => {
  const digest = `sha256:${sigstoreExpected.artifact.sha256}`

  it('is verified against the pinned trusted root and binds the build digest', async () => {
    const res = await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: sigstoreBundle, digest }])
    expect(res.statusCode, res.body).toBe(201)
    const [record] = attestationOf(res.json().credential).verified
    expect(record).toMatchObject({
      kind: 'sigstore',
      subject: { name: 'a.txt', sha256: sigstoreExpected.artifact.sha256 },
      predicateType: 'https://slsa.dev/provenance/v1',
      signer: sigstoreExpected.policy.certificate_identity,
      signerIssuer: 'https://token.actions.githubusercontent.com',
      tlogIndex: '155690850',
      verifier: 'agentid-issuer',
    })
  })

  it('refuses a digest that does not match, an altered bundle, and another signer identity', async () => {
    const b = counts(h)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: sigstoreBundle, digest: `sha256:${'0'.repeat(64)}` }]), 'sigstore.digest', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: sigstoreBundle, digest: 'md5:abc' }]), 'sigstore.digest', b)
    // A sha512 digest (npm provenance names tarballs so) is matched against sha512 subjects only.
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: sigstoreBundle, digest: `sha512:${'a'.repeat(128)}` }]), 'sigstore.digest', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: sigstoreBundle, digest: digest.toUpperCase() }]), 'sigstore.digest', b)
    const altered = structuredClone(sigstoreBundle)
    const payload = JSON.parse(Buffer.from(altered.dsseEnvelope.payload, 'base64').toString())
    payload.subject[0].digest.sha256 = '1'.repeat(64)
    altered.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64')
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: altered, digest: `sha256:${'1'.repeat(64)}` }]), 'sigstore.verify', b)
    const flipped = structuredClone(sigstoreBundle)
    const sig = Buffer.from(flipped.dsseEnvelope.signatures[0].sig, 'base64')
    sig[10] = sig[10]! ^ 1
    flipped.dsseEnvelope.signatures[0].sig = sig.toString('base64')
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: flipped, digest }]), 'sigstore.verify', b)
    await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: { mediaType: 'x' }, digest }]), 'sigstore.format', b)
    const other = await harness({ attestation: config({ sigstore: { trustedRoot: JSON.parse(vector('sigstore/trusted_root.json')), identities: [{ subjectAlternativeName: 'https://github.com/acme/agent/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com' }] } }) })
    try {
      await refusedWith(await spawnWith(namedKey(), [{ kind: 'sigstore', bundle: sigstoreBundle, digest }], { hh: other }), 'sigstore.verify', counts(other), other)
    } finally {
      await other.close()
    }
  })
})

describe('AWS Nitro Enclaves attestation document (real NSM-signed sample)', () => {
  // The sample's nonce as a challenge, at the sample's time (its certificates live three hours).
  const at = nitroExpected.timestamp_ms + 5_000
  const nonce = base64urlEncode(Buffer.from(nitroExpected.nonce_hex, 'hex'))

  // The sample's nonce is 100 bytes (134 base64url characters), longer than any challenge a proof of
  // possession may carry (128): its happy path is checked on the module, its refusals through HTTP.
  it('is verified: chain to the configured root, COSE signature, PCRs, nonce (module)', () => {
    const nitro = { roots: [new X509Certificate(vector('nitro/aws-nitro-enclaves-root-g1.pem'))], pcrs: new Map([[0, ZERO_PCR], [1, ZERO_PCR], [2, ZERO_PCR]]), maxAgeSec: 300 }
    const record = verifyNitro(nitroDoc, nitro, { challenge: nonce, now: Math.floor(at / 1000) })
    expect(record).toMatchObject({ kind: 'nitro', moduleId: 'i-0918f6c55e3b61d89-enc018aa8b8e2285d13', pcrs: { 0: ZERO_PCR, 1: ZERO_PCR, 2: ZERO_PCR }, rootSha256: '641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b' })
    expect(record.timestamp).toBe(Math.floor(nitroExpected.timestamp_ms / 1000))
    const check = (fn: () => unknown) => { try { fn(); return 'OK' } catch (e) { return (e as { details: { check: string } }).details.check } }
    expect(check(() => verifyNitro(nitroDoc, nitro, { challenge: 'AAAA', now: Math.floor(at / 1000) }))).toBe('nitro.nonce')
    expect(check(() => verifyNitro(nitroDoc, { ...nitro, pcrs: new Map([[8, 'ab'.repeat(48)]]) }, { challenge: nonce, now: Math.floor(at / 1000) }))).toBe('nitro.pcrs')
    expect(check(() => verifyNitro(nitroDoc, nitro, { challenge: nonce, now: Math.floor(Date.now() / 1000) }))).toBe('nitro.time')
  })

  it('through spawn: refuses another root, a flipped bit, a stale document and a nonce that is not the challenge', async () => {
    const pcr = await harness({ attestation: config({ nitro: { rootCertificate: vector('nitro/aws-nitro-enclaves-root-g1.pem'), pcrs: { 0: 'ab'.repeat(48) } } }) })
    const otherRoot = await harness({ attestation: config({ nitro: { rootCertificate: vector('spiffe/go-spiffe-x509svid/good-leaf-and-intermediate.pem').split('-----END CERTIFICATE-----')[1]! + '-----END CERTIFICATE-----\n' } }) })
    try {
      for (const hh of [pcr, otherRoot, h]) hh.clock.now = at
      // The checks before the nonce: a challenge the issuer made is enough to reach them.
      const pcrNonce = await challenge(pcr)
      await refusedWith(await spawnWith(namedKey(), [{ kind: 'nitro', document: nitroDoc }], { hh: pcr, nonce: pcrNonce }), 'nitro.nonce', counts(pcr), pcr)
      const rootNonce = await challenge(otherRoot)
      await refusedWith(await spawnWith(namedKey(), [{ kind: 'nitro', document: nitroDoc }], { hh: otherRoot, nonce: rootNonce }), 'nitro.chain', counts(otherRoot), otherRoot)
      const raw = Buffer.from(nitroDoc, 'base64')
      raw[raw.length - 200] = raw[raw.length - 200]! ^ 1 // inside the payload's last bytes (the nonce)
      const other = await challenge()
      const b = counts(h)
      await refusedWith(await spawnWith(namedKey(), [{ kind: 'nitro', document: raw.toString('base64') }], { nonce: other }), 'nitro.signature', b)
      await refusedWith(await spawnWith(namedKey(), [{ kind: 'nitro', document: nitroDoc }], { nonce: other }), 'nitro.nonce', b)
      h.clock.now = Date.now()
      const late = await challenge()
      await refusedWith(await spawnWith(namedKey(), [{ kind: 'nitro', document: nitroDoc }], { nonce: late }), 'nitro.time', counts(h))
      await refusedWith(await spawnWith(namedKey(), [{ kind: 'nitro', document: 'bm90IGNib3I' }], { nonce: late }), 'nitro.format', counts(h))
    } finally {
      h.clock.now = Date.now()
      await pcr.close()
      await otherRoot.close()
    }
  })
})

describe('configuration', () => {
  it('refuses evidence of a kind not configured, and a bad configuration at start', async () => {
    const plain = await harness()
    try {
      const res = await spawnWith(namedKey(), [{ kind: 'eat', token: 'a.b.c' }], { hh: plain })
      expect(expectError(res, 403, 'ERR_ATTESTATION_REJECTED').details?.check).toBe('eat')
    } finally {
      await plain.close()
    }
    for (const bad of [{ eat: { attesters: [] } }, { eat: { attesters: [{ kid: 'k', jwk: attester.privateKey.export({ format: 'jwk' }) }] } }, { tpm: {} }, { sigstore: { trustedRoot: {}, identities: [] } }, { nitro: { rootCertificate: 'x' } }]) {
      await expect(harness({ attestation: bad as never })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    }
  })
})
