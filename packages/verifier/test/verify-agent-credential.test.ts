import { createHmac } from 'node:crypto'
import { base64urlEncode, StatusList, signCompactJws, VerificationError, type VerificationErrorCode } from '@agentid/core'
import { createVerifier, type Verifier } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, claims, credential, issuer, issuerKeys, LIST_URL, malloryIssuer, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  return error as VerificationError
}

function split(jwt: string): [string, string, string] {
  return jwt.split('.') as [string, string, string]
}

function json(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
}

let list: StatusList
let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
let verifier: Verifier

beforeEach(async () => {
  list = StatusList.create()
  server = statusServer({ [LIST_URL]: await statusListJwt(list) })
  clock = testClock()
  verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0 })
})

describe('verifyAgentCredential: accepts', () => {
  it('returns the agent DID and every claim', async () => {
    const jwt = await credential()
    const agent = await verifier.verifyAgentCredential(jwt)
    expect(agent.did).toBe(alice.did)
    expect(agent.issuer).toBe(issuer.did)
    expect(agent.claims).toEqual(claims)
    expect(agent.expiresAt).toBe(NOW + 3600)
    expect(agent.status).toEqual({ statusListCredential: LIST_URL, statusListIndex: 7 })
    expect(Object.isFrozen(agent.claims)).toBe(true)
  })

  it('accepts a credential whose credentialSubject has no id (Veramo moves it to sub)', async () => {
    const agent = await verifier.verifyAgentCredential(await credential({ subjectId: null }))
    expect(agent.did).toBe(alice.did)
  })

  it('accepts times within the clock skew', async () => {
    await verifier.verifyAgentCredential(await credential({ nbf: NOW + 30 }))
    await verifier.verifyAgentCredential(await credential({ exp: NOW - 30 }))
  })

  it('memoizes by token bytes but still re-checks time and status', async () => {
    const jwt = await credential()
    await verifier.verifyAgentCredential(jwt)
    await verifier.verifyAgentCredential(jwt)
    clock.advance(3601_000 + 60_000)
    await expectCode(verifier.verifyAgentCredential(jwt), 'ERR_EXPIRED')
  })
})

describe('verifyAgentCredential: refuses hostile input', () => {
  it('alg none with the signature stripped', async () => {
    const [, payload] = split(await credential())
    const header = base64urlEncode(JSON.stringify({ alg: 'none', typ: 'JWT' }))
    await expectCode(verifier.verifyAgentCredential(`${header}.${payload}.`), 'ERR_UNSUPPORTED_ALG')
  })

  it('alg HS256 keyed with the issuer public key', async () => {
    const [, payload] = split(await credential())
    const header = base64urlEncode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
    const mac = createHmac('sha256', Buffer.from(issuerKeys.publicJwk.x, 'base64url')).update(`${header}.${payload}`).digest('base64url')
    await expectCode(verifier.verifyAgentCredential(`${header}.${payload}.${mac}`), 'ERR_UNSUPPORTED_ALG')
  })

  it.each(['ES256', 'RS256', 'EdDSA ', 'eddsa', 'Ed25519'])('alg %s', async (alg) => {
    const [, payload, sig] = split(await credential())
    const header = base64urlEncode(JSON.stringify({ alg }))
    await expectCode(verifier.verifyAgentCredential(`${header}.${payload}.${sig}`), 'ERR_UNSUPPORTED_ALG')
  })

  it('a tampered payload', async () => {
    const [header, payload, sig] = split(await credential())
    const p = json(payload)
    ;(p.vc as { credentialSubject: { dataAccessClass: string } }).credentialSubject.dataAccessClass = 'restricted'
    await expectCode(verifier.verifyAgentCredential(`${header}.${base64urlEncode(JSON.stringify(p))}.${sig}`), 'ERR_SIGNATURE_INVALID')
  })

  it('a flipped signature bit', async () => {
    const [header, payload, sig] = split(await credential())
    const bytes = Buffer.from(sig, 'base64url')
    bytes[10]! ^= 1
    await expectCode(verifier.verifyAgentCredential(`${header}.${payload}.${bytes.toString('base64url')}`), 'ERR_SIGNATURE_INVALID')
  })

  it('a stripped or truncated signature', async () => {
    const [header, payload, sig] = split(await credential())
    await expectCode(verifier.verifyAgentCredential(`${header}.${payload}.`), 'ERR_SIGNATURE_INVALID')
    await expectCode(verifier.verifyAgentCredential(`${header}.${payload}`), 'ERR_MALFORMED')
    await expectCode(verifier.verifyAgentCredential(`${header}.${payload}.${sig.slice(0, 40)}`), 'ERR_SIGNATURE_INVALID')
  })

  it('a credential from an issuer that is not trusted, even if well signed', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ signer: malloryIssuer })), 'ERR_UNTRUSTED_ISSUER')
  })

  it('a trusted iss over a signature by another key', async () => {
    // kid names the trusted key: the signature must fail under it.
    await expectCode(verifier.verifyAgentCredential(await credential({ signer: malloryIssuer, iss: issuer.did, header: { kid: issuer.keyId } })), 'ERR_SIGNATURE_INVALID')
    // kid names the attacker's key: it is not a key of the trusted DID.
    await expectCode(verifier.verifyAgentCredential(await credential({ signer: malloryIssuer, iss: issuer.did })), 'ERR_KEY_MISMATCH')
  })

  it('a kid that names another DID or an unknown key', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ header: { kid: `${malloryIssuer.did}#x` } })), 'ERR_KEY_MISMATCH')
    await expectCode(verifier.verifyAgentCredential(await credential({ header: { kid: `${issuer.did}#other` } })), 'ERR_KEY_MISMATCH')
  })

  it('expired and not yet valid', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ exp: NOW - 61 })), 'ERR_EXPIRED')
    await expectCode(verifier.verifyAgentCredential(await credential({ nbf: NOW + 61 })), 'ERR_NOT_YET_VALID')
  })

  it('a missing or non-numeric exp', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ extraPayload: { exp: undefined } })), 'ERR_MALFORMED')
    await expectCode(verifier.verifyAgentCredential(await credential({ extraPayload: { exp: String(NOW + 100) } })), 'ERR_MALFORMED')
  })

  it('sub that differs from credentialSubject.id', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ subjectId: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp' })), 'ERR_MALFORMED')
  })

  it('sub that is not an agent did:key', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ sub: 'did:web:evil.example' })), 'ERR_MALFORMED')
  })

  it('malformed segments and base64', async () => {
    const [header, payload, sig] = split(await credential())
    for (const bad of ['', 'a', 'a.b', 'a.b.c.d', `${header}.${payload}.${sig}.`, `${header}=.${payload}.${sig}`, `${header}.${payload}+.${sig}`,
      `${header}.${payload}.${sig}==`, `.${payload}.${sig}`, `${header}.!.${sig}`, `${base64urlEncode('not json')}.${payload}.${sig}`,
      `${base64urlEncode('[1]')}.${payload}.${sig}`, `${header}.${base64urlEncode('[]')}.${sig}`]) {
      await expectCode(verifier.verifyAgentCredential(bad), 'ERR_MALFORMED')
    }
  })

  it('a non-string credential', async () => {
    for (const bad of [undefined, null, 42, {}, ['a.b.c'], Buffer.from('x')]) {
      await expectCode(verifier.verifyAgentCredential(bad as unknown as string), 'ERR_MALFORMED')
    }
  })

  it('duplicate JSON member names in header or payload', async () => {
    const [, payload] = split(await credential())
    const dupHeader = base64urlEncode('{"alg":"EdDSA","alg":"EdDSA"}')
    const signed = await signCompactJws({ alg: 'EdDSA' }, 'x', issuer)
    expect(signed).toBeTypeOf('string')
    await expectCode(verifier.verifyAgentCredential(`${dupHeader}.${payload}.${'A'.repeat(86)}`), 'ERR_MALFORMED')
    // A duplicate `sub` inside a correctly signed payload: refused even though the signature is good.
    const text = Buffer.from(payload, 'base64url').toString('utf8').replace('{', `{"sub":"${alice.did}",`)
    const token = await signCompactJws({ alg: 'EdDSA', typ: 'JWT' }, text, issuer)
    await expectCode(verifier.verifyAgentCredential(token), 'ERR_MALFORMED')
  })

  it('a 10 MB token, before any parsing', async () => {
    const huge = 'e'.repeat(10 * 1024 * 1024)
    await expectCode(verifier.verifyAgentCredential(`${huge}.${huge}.${huge}`), 'ERR_MALFORMED')
    expect(server.calls).toBe(0)
  })

  it('a typ that says the token is something else', async () => {
    for (const typ of ['dpop+jwt', 'at+jwt', 'bad+typ']) {
      await expectCode(verifier.verifyAgentCredential(await credential({ header: { typ } })), 'ERR_MALFORMED')
    }
  })

  it('a credential that is not an AgentIdentityCredential', async () => {
    const [, payload] = split(await credential())
    const p = json(payload)
    ;(p.vc as { type: string[] }).type = ['VerifiableCredential']
    await expectCode(verifier.verifyAgentCredential(await signCompactJws({ alg: 'EdDSA', typ: 'JWT' }, JSON.stringify(p), issuer)), 'ERR_MALFORMED')
  })

  it('claims that do not validate', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ claims: { ...claims, dataAccessClass: 'top-secret' } })), 'ERR_MALFORMED')
    await expectCode(verifier.verifyAgentCredential(await credential({ claims: { ...claims, purpose: undefined } })), 'ERR_MALFORMED')
  })
})

describe('verifyAgentCredential: revocation', () => {
  it('refuses a revoked credential once the status TTL has passed', async () => {
    const jwt = await credential({ index: '7' })
    await verifier.verifyAgentCredential(jwt)
    list.set(7, 1)
    server.down = false
    const lists = statusServer({ [LIST_URL]: await statusListJwt(list) })
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: lists, clock, statusTtlMs: 1000 })
    await expectCode(v.verifyAgentCredential(jwt), 'ERR_REVOKED')
  })

  it('sees a revocation after statusTtlMs, not before, and fetches once per TTL', async () => {
    const lists: Record<string, string> = { [LIST_URL]: await statusListJwt(list) }
    const f = statusServer(lists)
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: f, clock, statusTtlMs: 1000, statusGraceMs: 0 })
    const jwt = await credential({ index: '7' })
    await v.verifyAgentCredential(jwt)
    list.set(7, 1)
    lists[LIST_URL] = await statusListJwt(list)
    await v.verifyAgentCredential(jwt) // still cached
    expect(f.calls).toBe(1)
    clock.advance(1001)
    await expectCode(v.verifyAgentCredential(jwt), 'ERR_REVOKED')
    expect(f.calls).toBe(2)
    // a neighbour is untouched
    await v.verifyAgentCredential(await credential({ index: '6' }))
  })

  it('fails closed when the list is unreachable', async () => {
    server.down = true
    await expectCode(verifier.verifyAgentCredential(await credential()), 'ERR_STATUS_UNAVAILABLE')
  })

  it('uses a stale list within the grace window, then fails closed', async () => {
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 5000 })
    const jwt = await credential()
    await v.verifyAgentCredential(jwt)
    server.down = true
    clock.advance(3000)
    await v.verifyAgentCredential(jwt)
    clock.advance(3001)
    await expectCode(v.verifyAgentCredential(jwt), 'ERR_STATUS_UNAVAILABLE')
  })

  it('refuses a status list signed by another issuer', async () => {
    const f = statusServer({ [LIST_URL]: await statusListJwt(list, { signer: malloryIssuer }) })
    const v = createVerifier({ trustedIssuers: [issuer.did, malloryIssuer.did], fetch: f, clock })
    await expectCode(v.verifyAgentCredential(await credential()), 'ERR_STATUS_UNAVAILABLE')
  })

  it('refuses a status list whose iss is forged', async () => {
    const forged = await statusListJwt(list, { signer: malloryIssuer })
    const [, payload, sig] = split(forged)
    const p = json(payload)
    p.iss = issuer.did
    const header = base64urlEncode(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' }))
    const f = statusServer({ [LIST_URL]: `${header}.${base64urlEncode(JSON.stringify(p))}.${sig}` })
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: f, clock })
    await expectCode(v.verifyAgentCredential(await credential()), 'ERR_STATUS_UNAVAILABLE')
  })

  it('refuses an expired status list, a wrong purpose, an HTTP error and garbage', async () => {
    for (const body of [await statusListJwt(list, { exp: NOW - 120 }), await statusListJwt(list, { purpose: 'suspension' }), 'garbage', '']) {
      const v = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({ [LIST_URL]: body }), clock })
      await expectCode(v.verifyAgentCredential(await credential()), 'ERR_STATUS_UNAVAILABLE')
    }
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({}), clock })
    await expectCode(v.verifyAgentCredential(await credential()), 'ERR_STATUS_UNAVAILABLE')
  })

  it('refuses a status index past the end of the list, or malformed', async () => {
    await expectCode(verifier.verifyAgentCredential(await credential({ index: '131072' })), 'ERR_MALFORMED')
    await expectCode(verifier.verifyAgentCredential(await credential({ index: '99999999999999999999' })), 'ERR_MALFORMED')
    for (const index of ['-1', '1e3', '0x10', ' 7', '07']) {
      await expectCode(verifier.verifyAgentCredential(await credential({ index })), 'ERR_MALFORMED')
    }
  })

  it('refuses a credential without a revocation status entry', async () => {
    const [, payload] = split(await credential())
    const p = json(payload)
    delete (p.vc as Record<string, unknown>).credentialStatus
    await expectCode(verifier.verifyAgentCredential(await signCompactJws({ alg: 'EdDSA', typ: 'JWT' }, JSON.stringify(p), issuer)), 'ERR_MALFORMED')
  })
})

describe('createVerifier: misuse is a TypeError', () => {
  it.each([
    [undefined],
    [{}],
    [{ trustedIssuers: [] }],
    [{ trustedIssuers: ['not-a-did'] }],
    [{ trustedIssuers: ['did:key:z6Mk'], clockSkewSec: 3600 }],
    [{ trustedIssuers: ['did:key:z6Mk'], statusTtlMs: -1 }],
  ])('%j', (options) => {
    expect(() => createVerifier(options as never)).toThrow(TypeError)
  })
})
