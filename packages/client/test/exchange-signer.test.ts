import { AgentIdError, decodeJwt, jwkThumbprint, publicKeyFromJwk, signerFromJwk, verifyJwsSignature } from '@agentid/core'
import { createExchangeSigner, generateAgentKey, type ExchangeSigningRequest } from '@agentid/client'
import { describe, expect, it } from 'vitest'

const ISSUER = 'https://issuer.example'
const TOKEN_URL = `${ISSUER}/v1/token`
const T = 1_800_000_000

const codeOf = (p: Promise<unknown>) => p.then(() => 'signed', (e: unknown) => (e instanceof AgentIdError ? e.code : `not an AgentIdError: ${String(e)}`))

describe('createExchangeSigner (the agent side of a token exchange)', () => {
  const alice = generateAgentKey()
  const jwk = alice.publicJwk

  it('signs a client assertion and an actor token about itself for the token endpoint only', async () => {
    const signer = createExchangeSigner({ privateJwk: alice.privateJwk, issuerUrl: `${ISSUER}/`, clock: () => T * 1000 })
    expect(signer.did).toBe(alice.did)
    const jtis = new Set<unknown>()
    for (const type of ['client_assertion', 'actor_token'] as const) {
      const jwt = decodeJwt(await signer.sign({ type, audience: TOKEN_URL }))
      verifyJwsSignature(jwt, publicKeyFromJwk(jwk))
      expect(jwt.header).toMatchObject({ alg: 'EdDSA', typ: 'JWT' })
      expect(jwt.payload).toEqual({ iss: alice.did, sub: alice.did, aud: TOKEN_URL, iat: T, exp: T + 60, jti: expect.any(String), cnf: { jkt: jwkThumbprint(jwk) } })
      jtis.add(jwt.payload.jti)
    }
    expect(jtis.size).toBe(2)
  })

  it('signs DPoP proofs for POST to the token endpoint, with the nonce it is given and its own public key', async () => {
    const signer = createExchangeSigner({ privateJwk: alice.privateJwk, tokenEndpoint: TOKEN_URL, clock: () => T * 1000 })
    const plain = decodeJwt(await signer.sign({ type: 'dpop', htm: 'POST', htu: TOKEN_URL }))
    expect(plain.header).toEqual({ typ: 'dpop+jwt', alg: 'EdDSA', jwk })
    verifyJwsSignature(plain, publicKeyFromJwk(jwk))
    expect(plain.payload).toEqual({ htm: 'POST', htu: TOKEN_URL, iat: T, jti: expect.any(String) })
    const withNonce = decodeJwt(await signer.sign({ type: 'dpop', htm: 'POST', htu: TOKEN_URL, nonce: 'n-1' }))
    expect(withNonce.payload.nonce).toBe('n-1')
    expect(withNonce.payload.ath).toBeUndefined()
  })

  it('works over a Signer (no private JWK at hand) too', async () => {
    const signer = createExchangeSigner({ signer: signerFromJwk(alice.privateJwk), issuerUrl: ISSUER, clock: () => T * 1000 })
    const proof = decodeJwt(await signer.sign({ type: 'dpop', htm: 'POST', htu: TOKEN_URL }))
    expect(proof.header.jwk).toEqual(jwk)
    verifyJwsSignature(proof, publicKeyFromJwk(jwk))
  })

  it('refuses whatever else an orchestrator asks for: other audiences, resource proofs, ath, unknown types', async () => {
    const signer = createExchangeSigner({ privateJwk: alice.privateJwk, issuerUrl: ISSUER })
    const refused: unknown[] = [
      { type: 'client_assertion', audience: 'https://other-issuer.example/v1/token' },
      { type: 'actor_token', audience: ISSUER },
      { type: 'actor_token', audience: `${TOKEN_URL}?x=1` },
      { type: 'dpop', htm: 'GET', htu: TOKEN_URL },
      { type: 'dpop', htm: 'POST', htu: 'https://erp.example/invoices' },
      // A resource proof for a token the orchestrator holds would let it use the agent's token.
      { type: 'dpop', htm: 'POST', htu: TOKEN_URL, ath: 'x'.repeat(43) },
      { type: 'actor_token', audience: TOKEN_URL, exp: T + 86_400 },
      { type: 'proof_of_possession', audience: TOKEN_URL },
      { type: '__proto__', audience: TOKEN_URL },
      { audience: TOKEN_URL },
    ]
    for (const request of refused) expect(await codeOf(signer.sign(request as ExchangeSigningRequest)), JSON.stringify(request)).toBe('ERR_FORBIDDEN')
    const malformed: unknown[] = [
      null,
      'actor_token',
      [{ type: 'actor_token', audience: TOKEN_URL }],
      { type: 'dpop', htm: 'POST', htu: TOKEN_URL, nonce: 'has space' },
      { type: 'dpop', htm: 'POST', htu: TOKEN_URL, nonce: '' },
      { type: 'dpop', htm: 'POST', htu: TOKEN_URL, nonce: 'n'.repeat(1025) },
      { type: 'dpop', htm: 'POST', htu: TOKEN_URL, nonce: 7 },
    ]
    for (const request of malformed) expect(await codeOf(signer.sign(request as ExchangeSigningRequest)), JSON.stringify(request)).toBe('ERR_INVALID_INPUT')
  })

  it('is misused without exactly one key and one endpoint', () => {
    expect(() => createExchangeSigner({ issuerUrl: ISSUER })).toThrow(TypeError)
    expect(() => createExchangeSigner({ privateJwk: alice.privateJwk, signer: signerFromJwk(alice.privateJwk), issuerUrl: ISSUER })).toThrow(TypeError)
    expect(() => createExchangeSigner({ privateJwk: alice.privateJwk })).toThrow(TypeError)
    expect(() => createExchangeSigner({ privateJwk: alice.privateJwk, issuerUrl: ISSUER, tokenEndpoint: TOKEN_URL })).toThrow(TypeError)
    expect(() => createExchangeSigner({ privateJwk: alice.privateJwk, tokenEndpoint: 'issuer.example/v1/token' })).toThrow(TypeError)
    expect(() => createExchangeSigner({ privateJwk: alice.privateJwk, tokenEndpoint: `${TOKEN_URL}#x` })).toThrow(TypeError)
    expect(() => createExchangeSigner({ privateJwk: alice.privateJwk, tokenEndpoint: 'ftp://issuer.example/v1/token' })).toThrow(TypeError)
    const notAgent = { ...signerFromJwk(alice.privateJwk), did: 'did:web:issuer.example' }
    expect(() => createExchangeSigner({ signer: notAgent, issuerUrl: ISSUER })).toThrow(TypeError)
  })
})
