// verifyRequest and the `agentid` claim of access tokens (contract A): the agent's claims, the user's
// identity provider and the delegation are exposed; the identity credential's status is checked on
// every request through the verifier's status-list cache, even while the token itself stays cached.
import { signJwt, StatusList, VerificationError, type VerificationErrorCode } from '@agentid/core'
import { accessTokenHash, createVerifier, type VerifiedRequest, type Verifier } from '@agentid/verifier'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { alice, claims, issuer, LIST_URL, malloryIssuer, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

const AUD = 'https://erp.example'
const URL_ = 'https://erp.example/invoices/42'
const INDEX = 12

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  return error as VerificationError
}

let dpop: { privateKey: CryptoKey; jwk: JWK; jkt: string }
beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true })
  const jwk = await exportJWK(publicKey)
  dpop = { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
})

let counter = 0
const agentidClaim = (over: Record<string, unknown> = {}) => ({
  claims,
  credentialId: 'urn:uuid:5f0c6c3e-3b7e-4d7e-9a55-6a2c9c8f0001',
  credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(INDEX), statusListCredential: LIST_URL },
  ...over,
})

function accessToken(payload: Record<string, unknown> = {}, signer = issuer): Promise<string> {
  return signJwt({ typ: 'at+jwt', kid: signer.keyId }, {
    iss: signer.did, aud: AUD, sub: alice.did, client_id: alice.did, iat: NOW, exp: NOW + 300, jti: `at-${++counter}`,
    cnf: { jkt: dpop.jkt }, authorization_details: [], agentid: agentidClaim(), ...payload,
  }, signer)
}

function proof(token: string, clockSec: number): Promise<string> {
  return new SignJWT({ jti: `p-${++counter}`, htm: 'GET', htu: URL_, iat: clockSec, ath: accessTokenHash(token) })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: dpop.jwk })
    .sign(dpop.privateKey)
}

let clock: ReturnType<typeof testClock>
let list: StatusList
let server: ReturnType<typeof statusServer>
let verifier: Verifier
const STATUS_TTL_MS = 30_000

let republish: () => Promise<void>
async function makeServer(): Promise<void> {
  const lists: Record<string, string> = { [LIST_URL]: await statusListJwt(list) }
  server = statusServer(lists)
  republish = async () => { lists[LIST_URL] = await statusListJwt(list) }
}

async function call(token: string): Promise<VerifiedRequest> {
  const t = Math.floor(clock() / 1000)
  return verifier.verifyRequest({ method: 'GET', url: URL_, headers: { authorization: `DPoP ${token}`, dpop: await proof(token, t) } })
}

beforeEach(async () => {
  clock = testClock()
  list = StatusList.create()
  await makeServer()
  verifier = createVerifier({ trustedIssuers: [issuer.did], clock, fetch: server, statusTtlMs: STATUS_TTL_MS, statusGraceMs: 0, resourceAudience: AUD })
})

describe('verifyRequest: the agentid claim', () => {
  it('exposes the agent claims; no user issuer and no delegation for a client_credentials token', async () => {
    const result = await call(await accessToken())
    expect(result.agentClaims).toEqual(claims)
    expect(Object.isFrozen(result.agentClaims)).toBe(true)
    expect(result.userIssuer).toBeNull()
    expect(result.delegation).toBeNull()
    expect(result.user).toBeNull()
    expect(server.calls).toBe(1)
  })

  it('exposes the user, their identity provider and the delegation of an exchanged token', async () => {
    const token = await accessToken({
      sub: 'user-42', act: { sub: alice.did },
      agentid: agentidClaim({ subjectIssuer: 'http://127.0.0.1:9999', delegation: { root: issuer.did, depth: 2 } }),
    })
    const result = await call(token)
    expect(result.user).toBe('user-42')
    expect(result.userIssuer).toBe('http://127.0.0.1:9999')
    expect(result.delegation).toEqual({ root: issuer.did, depth: 2 })
    expect(result.agent).toBe(alice.did)
  })

  it('a token without the claim (issued before it existed) verifies, with nulls and no status fetch', async () => {
    const result = await call(await accessToken({ agentid: undefined }))
    expect(result.agentClaims).toBeNull()
    expect(result.delegation).toBeNull()
    expect(server.calls).toBe(0)
  })

  it('refuses a malformed claim, signed by the trusted issuer', async () => {
    const bad = [
      'x',
      agentidClaim({ claims: { purpose: 'p' } }),
      agentidClaim({ credentialId: 7 }),
      agentidClaim({ credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'suspension', statusListIndex: '1', statusListCredential: LIST_URL } }),
      agentidClaim({ credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '-1', statusListCredential: LIST_URL } }),
      agentidClaim({ delegation: { root: 'nobody', depth: 1 } }),
      agentidClaim({ delegation: { root: issuer.did, depth: 0 } }),
      agentidClaim({ subjectIssuer: 5 }),
    ]
    for (const agentid of bad) await expectCode(call(await accessToken({ agentid })), 'ERR_MALFORMED')
    expect(server.calls).toBe(0)
  })
})

describe('verifyRequest: the identity credential status on every request', () => {
  it('refuses a cached token once its identity credential is revoked: at the next status-list refresh (statusTtlMs)', async () => {
    const token = await accessToken()
    await call(token)
    await call(token)
    expect(server.calls).toBe(1) // one list fetch, cached for the TTL

    list.set(INDEX, 1)
    await republish()
    clock.advance(STATUS_TTL_MS - 1000)
    await call(token) // inside the TTL the cached list still says active
    clock.advance(2000) // the list is fetched again: revoked
    const error = await expectCode(call(token), 'ERR_REVOKED')
    expect(error.details.credentialId).toBe('urn:uuid:5f0c6c3e-3b7e-4d7e-9a55-6a2c9c8f0001')
    expect(error.details.dpopError).toBe('invalid_token')
    expect(server.calls).toBe(2)
    // Still refused on the next request (the token's cache entry does not hide the status).
    await expectCode(call(token), 'ERR_REVOKED')
  })

  it('another credential on the same list is not affected', async () => {
    list.set(INDEX + 1, 1)
    await republish()
    await call(await accessToken())
  })

  it('fails closed when the status list is unreachable, signed by another issuer, or too short', async () => {
    const token = await accessToken()
    server.down = true
    await expectCode(call(token), 'ERR_STATUS_UNAVAILABLE')
    server.down = false
    const foreign = await makeForeignList()
    verifier = createVerifier({ trustedIssuers: [issuer.did], clock, fetch: foreign, statusTtlMs: 0, statusGraceMs: 0, resourceAudience: AUD })
    await expectCode(call(token), 'ERR_STATUS_UNAVAILABLE')
    verifier = createVerifier({ trustedIssuers: [issuer.did], clock, fetch: server, statusTtlMs: 0, statusGraceMs: 0, resourceAudience: AUD })
    const past = await accessToken({ agentid: agentidClaim({ credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '200000', statusListCredential: LIST_URL } }) })
    await expectCode(call(past), 'ERR_MALFORMED')
  })
})

async function makeForeignList() {
  return statusServer({ [LIST_URL]: await statusListJwt(StatusList.create(), { signer: malloryIssuer }) })
}
