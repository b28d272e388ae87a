// Credentials and status lists for the benchmarks, signed with node:crypto only, so that the
// memory children measure their verifier and nothing else. The JWTs have exactly the shape that
// @agentid/core's signJwt produces in packages/verifier/test/fixtures.ts `credential()`.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto'
import { gzipSync } from 'node:zlib'

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')
/**
 * A fresh Ed25519 key pair from 32 random bytes and its raw public key. Not generateKeyPairSync +
 * export({ format: 'jwk' }): on Node 20 that pair can deadlock in GC (see core's generateEd25519KeyPair).
 */
export function ed25519Pair() {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, randomBytes(32)]), format: 'der', type: 'pkcs8' })
  const publicKey = createPublicKey(privateKey)
  return { privateKey, publicKey, raw: publicKey.export({ format: 'der', type: 'spki' }).subarray(12) }
}

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

function base58btc(bytes) {
  let n = BigInt('0x' + Buffer.from(bytes).toString('hex'))
  let out = ''
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)] + out
    n /= 58n
  }
  for (const b of bytes) {
    if (b !== 0) break
    out = '1' + out
  }
  return out
}

const b64u = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A deterministic Ed25519 key and its did:key, from a label. */
export function keyFromLabel(label) {
  const seed = createHash('sha256').update(label).digest()
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' })
  const publicKey = createPublicKey(privateKey)
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  const did = `did:key:z${base58btc(Buffer.concat([Buffer.from([0xed, 0x01]), raw]))}`
  return { did, keyId: `${did}#${did.slice('did:key:'.length)}`, privateKey, publicKey, publicJwk: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') } }
}

/** A compact EdDSA JWT, header and claims serialized as @agentid/core signJwt does. */
export function signJwt(claims, issuer) {
  const input = `${b64u({ alg: 'EdDSA', typ: 'JWT', kid: issuer.keyId })}.${b64u(claims)}`
  return `${input}.${sign(null, Buffer.from(input), issuer.privateKey).toString('base64url')}`
}

export const LIST_URL = 'https://issuer.example/v1/status-lists/1'
export const CLAIMS = {
  purpose: 'invoice triage',
  controller: 'did:web:acme.example',
  model: { provider: 'acme-ai', name: 'reasoner', version: '2026-10' },
  toolProfile: ['mcp://erp/tools/invoices.read'],
  policyTier: 'standard',
  dataAccessClass: 'internal',
}

/** An AgentIdentityCredential JWT for agent `sub`, valid from `now - 10` for a day. */
export function credentialJwt(issuer, { sub, jti, index, now }) {
  return signJwt({
    iss: issuer.did,
    sub,
    nbf: now - 10,
    iat: now - 10,
    exp: now + 86_400,
    jti,
    vc: {
      '@context': ['https://www.w3.org/2018/credentials/v1', 'https://w3id.org/agentid/v1'],
      type: ['VerifiableCredential', 'AgentIdentityCredential'],
      credentialSubject: { id: sub, ...CLAIMS },
      credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: LIST_URL },
    },
  }, issuer)
}

/**
 * `count` distinct agent DIDs (fresh Ed25519 keys; ≈ 0.1 ms each, where a key from a seed costs
 * 0.4 ms in OpenSSL 3). Kept by every process that uses them, agentid's or Veramo's alike.
 */
export function agentDids(count) {
  const dids = new Array(count)
  for (let i = 0; i < count; i++) {
    const { raw } = ed25519Pair()
    dids[i] = `did:key:z${base58btc(Buffer.concat([Buffer.from([0xed, 0x01]), raw]))}`
  }
  return dids
}

/** The i-th credential of a run: agent dids[i], a distinct jti and status index. Deterministic. */
export function nthCredential(issuer, dids, i, now) {
  return credentialJwt(issuer, { sub: dids[i], jti: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, index: i % 131_072, now })
}

/** A signed BitstringStatusListCredential of 131,072 entries, all valid. */
export function statusListJwt(issuer, now) {
  return signJwt({
    iss: issuer.did,
    jti: LIST_URL,
    iat: now - 60,
    nbf: now - 60,
    vc: {
      '@context': ['https://www.w3.org/2018/credentials/v1'],
      type: ['VerifiableCredential', 'BitstringStatusListCredential'],
      credentialSubject: { id: `${LIST_URL}#list`, type: 'BitstringStatusList', statusPurpose: 'revocation', encodedList: 'u' + gzipSync(new Uint8Array(131_072 / 8)).toString('base64url') },
    },
  }, issuer)
}

/** The injected fetch: a local function serving the signed list, no network. */
export function localFetch(listJwt) {
  return async (url) => (url === LIST_URL ? { ok: true, status: 200, text: async () => listJwt } : { ok: false, status: 404, text: async () => 'not found' })
}
