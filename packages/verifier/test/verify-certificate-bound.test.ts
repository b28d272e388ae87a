// verifyCertificateBoundRequest (RFC 8705 cnf.x5t#S256): the token's binding to the TLS client
// certificate, and each malformed or crossed binding refused with its code.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { signJwt, VerificationError, type VerificationErrorCode } from '@agentid/core'
import { certificateThumbprint, createVerifier, parseX509Svid } from '@agentid/verifier'
import { alice, issuer, malloryIssuer, NOW, testClock } from './fixtures.js'

const AUD = 'https://erp.example'
const pem = (name: string) => readFileSync(new URL(`../../../vectors/spiffe/go-spiffe-x509svid/${name}`, import.meta.url), 'utf8')
const mine = parseX509Svid(pem('good-leaf-only.pem')).leaf
const other = parseX509Svid(pem('good-leaf-and-intermediate.pem')).leaf
const x5t = certificateThumbprint(mine)

let n = 0
function token(cnf: Record<string, unknown> = { 'x5t#S256': x5t }, o: { signer?: typeof issuer; aud?: string } = {}): Promise<string> {
  const signer = o.signer ?? issuer
  return signJwt({ typ: 'at+jwt', kid: signer.keyId }, {
    iss: signer.did, aud: o.aud ?? AUD, sub: alice.did, client_id: alice.did, iat: NOW, exp: NOW + 120, jti: `t-${++n}`, cnf,
    authorization_details: [{ type: 'agentid_action', actions: ['read'], locations: [AUD] }],
  }, signer)
}

const verifier = () => createVerifier({ trustedIssuers: [issuer.did], clock: testClock(), resourceAudience: AUD })
const req = (authorization: string | undefined, clientCertificate: unknown, extra: Record<string, string> = {}) => ({
  method: 'GET', url: `${AUD}/x`, headers: { ...(authorization ? { authorization } : {}), ...extra }, clientCertificate: clientCertificate as never,
})
async function code(p: Promise<unknown>): Promise<VerificationErrorCode | 'OK'> {
  return p.then(() => 'OK' as const, (e: unknown) => {
    expect(e).toBeInstanceOf(VerificationError)
    return (e as VerificationError).code
  })
}

describe('verifyCertificateBoundRequest', () => {
  it('accepts the token with the certificate it is bound to (DER or X509Certificate)', async () => {
    const v = verifier()
    const t = await token()
    const ok = await v.verifyCertificateBoundRequest(req(`Bearer ${t}`, mine))
    expect(ok.agent).toBe(alice.did)
    expect(ok.certificateThumbprint).toBe(x5t)
    expect(x5t).toBe(createHash('sha256').update(mine.raw).digest('base64url'))
    expect((await v.verifyCertificateBoundRequest(req(`Bearer ${t}`, new Uint8Array(mine.raw)))).agent).toBe(alice.did)
  })

  it('refuses another certificate, no certificate, and crossed or doubled bindings', async () => {
    const v = verifier()
    const t = await token()
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${t}`, other)))).toBe('ERR_KEY_MISMATCH')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${t}`, undefined)))).toBe('ERR_KEY_MISMATCH')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${t}`, 'PEM text')))).toBe('ERR_KEY_MISMATCH')
    // A DPoP-bound token is not accepted as certificate-bound, nor a certificate-bound one by verifyRequest.
    const dpopBound = await token({ jkt: 'A'.repeat(43) })
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${dpopBound}`, mine)))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyRequest({ method: 'GET', url: `${AUD}/x`, headers: { authorization: `DPoP ${t}`, dpop: 'x.y.z' } }))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${await token({ jkt: 'A'.repeat(43), 'x5t#S256': x5t })}`, mine)))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${await token({ 'x5t#S256': 'short' })}`, mine)))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${await token({})}`, mine)))).toBe('ERR_MALFORMED')
  })

  it('refuses malformed requests and untrusted or foreign tokens', async () => {
    const v = verifier()
    const t = await token()
    expect(await code(v.verifyCertificateBoundRequest(req(undefined, mine)))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyCertificateBoundRequest(req(`DPoP ${t}`, mine)))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${t}`, mine, { dpop: 'a.b.c' })))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${t}, Bearer ${t}`, mine)))).toBe('ERR_MALFORMED')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${await token(undefined, { signer: malloryIssuer })}`, mine)))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(await code(v.verifyCertificateBoundRequest(req(`Bearer ${await token(undefined, { aud: 'https://other.example' })}`, mine)))).toBe('ERR_AUDIENCE_MISMATCH')
    await expect(v.verifyCertificateBoundRequest(null as never)).rejects.toThrow(TypeError)
  })
})
