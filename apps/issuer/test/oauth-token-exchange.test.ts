// RFC 8693 token exchange at POST /v1/token, hostile: a real IssuerService on a temporary SQLite file
// (app.inject), identity providers made with jose — one with its JWKS inline, one serving its JWKS
// from a real listening HTTP server fetched with the runtime fetch.
import { createHash, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import { base64urlEncode, decodeJwt, publicKeyFromRaw, base64urlDecode, verifyJwsSignature } from '@agentid/core'
import { buildServer } from '../src/http/server.js'
import { BASE_URL, bearer, harness, namedKey, spawnAgent, verifierFor, type Harness, type NamedKey, type SpawnResult } from './http-fixtures.js'
import {
  ACCESS_TOKEN_TYPE,
  dpopKey,
  expectOAuthError,
  payloadOf,
  RESOURCE,
  testIdp,
  TOKEN_EXCHANGE,
  TOKEN_URL,
  tokenClient,
  type DpopKey,
  type TestIdp,
} from './oauth-fixtures.js'

const READ = { type: 'agentid_action', actions: ['read'], locations: ['mcp://erp/tools/invoices.read'] }

describe('token exchange (RFC 8693)', () => {
  let h: Harness
  let idp: TestIdp // JWKS inline
  let remoteIdp: TestIdp // JWKS served over HTTP
  let jwksServer: Server
  let jwksHits = 0
  let alice: NamedKey
  let aliceSpawn: SpawnResult
  let bob: NamedKey
  let dkey: DpopKey
  let c: ReturnType<typeof tokenClient>

  beforeAll(async () => {
    jwksServer = createServer((req, res) => {
      jwksHits++
      if (req.url !== '/jwks') return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [remoteIdp.publicJwk] }))
    })
    jwksServer.listen(0, '127.0.0.1')
    await once(jwksServer, 'listening')
    const origin = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`
    idp = await testIdp('https://idp.example', 'ES256')
    remoteIdp = await testIdp(origin, 'RS256')
    h = await harness({
      trustedIdps: [
        { issuer: idp.issuer, jwks: { keys: [idp.publicJwk] } },
        { issuer: remoteIdp.issuer, jwks_uri: `${origin}/jwks`, audience: 'urn:agentid:exchange' },
      ],
    })
    alice = namedKey()
    bob = namedKey()
    aliceSpawn = await spawnAgent(h, alice, { claims: { toolProfile: ['mcp://erp/tools/invoices.read', 'mcp://crm/*'], dataAccessClass: 'internal' } })
    await spawnAgent(h, bob)
    dkey = await dpopKey()
    c = tokenClient(h, dkey)
  })
  afterAll(async () => {
    await h.close()
    jwksServer.close()
  })

  const user = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, from: TestIdp = idp) => from.userToken(c.nowSec(), claims, header)
  const exchange = async (subject: string | undefined, over: Record<string, string | undefined> = {}, agent: NamedKey = alice) =>
    c.send(await c.exchange(agent, subject, { authorization_details: JSON.stringify([READ]), ...over }))

  it('advertises the grant and its token types', async () => {
    const meta = (await h.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
    expect(meta.grant_types_supported).toEqual(['client_credentials', TOKEN_EXCHANGE])
    expect(meta.token_exchange_subject_token_types_supported).toEqual([ACCESS_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'])
    expect(meta.token_exchange_actor_token_types_supported).toEqual(['urn:ietf:params:oauth:token-type:jwt'])
  })

  it('exchanges a user token for a DPoP-bound agent token: sub = user, act = agent, agentid claim; the resource verifies it', async () => {
    const subject = await user()
    const res = await exchange(subject)
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    expect(body.issued_token_type).toBe(ACCESS_TOKEN_TYPE)
    expect(body.token_type).toBe('DPoP')
    expect(body.authorization_details).toEqual([READ])
    const token = decodeJwt(body.access_token)
    expect(token.header.typ).toBe('at+jwt')
    verifyJwsSignature(token, publicKeyFromRaw(base64urlDecode(h.service.engine.issuer.publicJwk.x)))
    const p = token.payload as Record<string, any>
    expect(p.sub).toBe('user-42@idp')
    expect(p.act).toEqual({ sub: alice.did })
    expect(p.client_id).toBe(alice.did)
    expect(p.aud).toBe(RESOURCE)
    expect(p.cnf).toEqual({ jkt: dkey.jkt })
    expect(p.agentid).toEqual({
      claims: expect.objectContaining({ toolProfile: ['mcp://erp/tools/invoices.read', 'mcp://crm/*'], dataAccessClass: 'internal' }),
      credentialId: aliceSpawn.credentialId,
      credentialStatus: {
        type: 'BitstringStatusListEntry', statusPurpose: 'revocation',
        statusListIndex: String(aliceSpawn.status.statusListIndex), statusListCredential: aliceSpawn.status.statusListCredential,
      },
      subjectIssuer: idp.issuer,
    })
    // Nothing of the user's token is in the agent's token, nor in the audit log.
    const signature = subject.split('.')[2]!
    expect(body.access_token).not.toContain(signature)
    expect(JSON.stringify(p)).not.toContain(subject.split('.')[1]!.slice(0, 40))
    const row = h.service.store.db.prepare("SELECT * FROM audit_events WHERE action = 'token.exchanged' ORDER BY rowid DESC LIMIT 1").get() as { actor: string; subject: string; details_json: string }
    expect(row.subject).toBe(alice.did)
    expect(row.details_json).not.toContain(signature)
    expect(JSON.parse(row.details_json)).toMatchObject({ tokenId: p.jti, user: 'user-42@idp', subjectIssuer: idp.issuer, resource: RESOURCE, jkt: dkey.jkt })

    const url = `${RESOURCE}/invoices`
    const rsProof = await new SignJWT({ htm: 'GET', htu: url, jti: randomUUID(), ath: createHash('sha256').update(body.access_token).digest('base64url') })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: dkey.jwk }).setIssuedAt(c.nowSec()).sign(dkey.privateKey)
    const verified = await verifierFor(h, { resourceAudience: RESOURCE }).verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${body.access_token}`, dpop: rsProof } })
    expect(verified.agent).toBe(alice.did)
    expect(verified.user).toBe('user-42@idp')
    expect(verified.userIssuer).toBe(idp.issuer)
    expect(verified.agentClaims?.dataAccessClass).toBe('internal')
    expect(verified.delegation).toBeNull()
  })

  it('verifies a user token against a JWKS fetched over HTTP (RS256, configured audience), once', async () => {
    const before = jwksHits
    for (let i = 0; i < 2; i++) {
      const res = await exchange(await user({ aud: 'urn:agentid:exchange' }, {}, remoteIdp))
      expect(res.statusCode, res.body).toBe(200)
      expect(payloadOf(res.json().access_token).agentid.subjectIssuer).toBe(remoteIdp.issuer)
    }
    expect(jwksHits - before).toBe(1)
    // The remote IdP's default audience is not accepted there: its own configured one is.
    expectOAuthError(await exchange(await user({}, {}, remoteIdp)), 400, 'invalid_request', /subject_token/)
  })

  it('the token outlives neither the user token nor 300 s', async () => {
    const res = await exchange(await user({ exp: c.nowSec() + 30 }), { expires_in: '300' })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().expires_in).toBe(30)
    const p = payloadOf(res.json().access_token)
    expect(p.exp - p.iat).toBe(30)
  })

  it('refuses a user token from an untrusted issuer, or claiming a trusted issuer with another key', async () => {
    const evil = await testIdp('https://evil.example')
    expectOAuthError(await exchange(await user({}, {}, evil)), 400, 'invalid_request', /trusted identity provider/)
    const impostor = await testIdp(idp.issuer)
    expectOAuthError(await exchange(await user({}, {}, impostor)), 400, 'invalid_request', /signature/)
    // The impostor reuses the real key id: still the wrong key.
    expectOAuthError(await exchange(await user({}, { kid: idp.kid }, impostor)), 400, 'invalid_request', /signature/)
    // An issuer that only differs by a trailing slash is another issuer.
    expectOAuthError(await exchange(await user({ iss: `${idp.issuer}/` })), 400, 'invalid_request', /trusted identity provider/)
  })

  it('refuses a user token for another audience, expired, not yet valid, issued in the future, without sub or exp', async () => {
    const now = c.nowSec()
    expectOAuthError(await exchange(await user({ aud: 'https://other.example' })), 400, 'invalid_request')
    expectOAuthError(await exchange(await user({ aud: ['https://other.example', 'https://third.example'] })), 400, 'invalid_request')
    expectOAuthError(await exchange(await user({ exp: now - 61 })), 400, 'invalid_request', /expired/)
    expectOAuthError(await exchange(await user({ nbf: now + 120 })), 400, 'invalid_request')
    expectOAuthError(await exchange(await user({ iat: now + 120 })), 400, 'invalid_request')
    expectOAuthError(await exchange(await user({ sub: undefined })), 400, 'invalid_request')
    expectOAuthError(await exchange(await user({ exp: undefined })), 400, 'invalid_request')
    // Within the skew it is still expired for the agent's token: nothing is left to issue.
    expectOAuthError(await exchange(await user({ exp: now - 5 })), 400, 'invalid_request', /expired/)
    // A list of audiences containing ours is fine.
    expect((await exchange(await user({ aud: ['https://other.example', BASE_URL] }))).statusCode).toBe(200)
  })

  it('refuses HS256 with a guessed secret, alg none, and keys named in the header', async () => {
    const now = c.nowSec()
    const claims = { iss: idp.issuer, aud: BASE_URL, sub: 'user-42@idp', iat: now, exp: now + 600 }
    for (const guess of ['secret', idp.issuer, JSON.stringify(idp.publicJwk)]) {
      const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: idp.kid }).sign(new TextEncoder().encode(guess))
      expectOAuthError(await exchange(hs), 400, 'invalid_request', /alg/)
    }
    const enc = (v: unknown) => base64urlEncode(Buffer.from(JSON.stringify(v)))
    expectOAuthError(await exchange(`${enc({ alg: 'none' })}.${enc(claims)}.`), 400, 'invalid_request', /alg/)
    expectOAuthError(await exchange(`${enc({ alg: 'ES256', kid: idp.kid })}.${enc(claims)}.`), 400, 'invalid_request')
    const attacker = await testIdp(idp.issuer)
    expectOAuthError(await exchange(await user({}, { jwk: attacker.publicJwk }, attacker)), 400, 'invalid_request', /header/)
    expectOAuthError(await exchange(await user({}, { typ: 'dpop+jwt' })), 400, 'invalid_request', /typ/)
    expectOAuthError(await exchange('not-a-jwt'), 400, 'invalid_request')
  })

  it('refuses a user token with a duplicate member at any depth (core\'s strict parser, not JSON.parse\'s last-one-wins)', async () => {
    const now = c.nowSec()
    const base = `"iss":${JSON.stringify(idp.issuer)},"aud":${JSON.stringify(BASE_URL)},"iat":${now},"exp":${now + 600},"jti":"${randomUUID()}"`
    // The control: the same bytes without the duplicate are exchanged, as user-42.
    const plain = await exchange(await idp.rawUserToken(`{${base},"sub":"user-42"}`))
    expect(plain.statusCode, plain.body).toBe(200)
    expect(payloadOf(plain.json().access_token).sub).toBe('user-42')
    for (const payload of [
      `{${base},"sub":"admin","sub":"user-42"}`,
      `{${base},"sub":"user-42","sub":"admin"}`,
      `{${base},"sub":"user-42","s\u0075b":"admin"}`,
      `{${base},"sub":"user-42","may_act":{"sub":${JSON.stringify(bob.did)},"sub":${JSON.stringify(alice.did)}}}`,
    ]) {
      expectOAuthError(await exchange(await idp.rawUserToken(payload)), 400, 'invalid_request', /duplicate-free/)
    }
  })

  it('subject_token_type must match the token\'s typ: at+jwt is an access token, JWT or none an ID token or a plain JWT', async () => {
    const ID = 'urn:ietf:params:oauth:token-type:id_token'
    const JWT = 'urn:ietf:params:oauth:token-type:jwt'
    const ok: [Record<string, unknown>, string][] = [
      [{}, ACCESS_TOKEN_TYPE], [{ typ: 'application/at+jwt' }, ACCESS_TOKEN_TYPE],
      [{ typ: 'JWT' }, ID], [{ typ: undefined }, ID], [{ typ: 'JWT' }, JWT], [{ typ: 'jwt' }, JWT], [{ typ: undefined }, JWT],
    ]
    for (const [header, type] of ok) {
      const res = await exchange(await user({}, header), { subject_token_type: type })
      expect(res.statusCode, `${JSON.stringify(header)} as ${type}: ${res.body}`).toBe(200)
    }
    const refused: [Record<string, unknown>, string][] = [
      [{ typ: 'JWT' }, ACCESS_TOKEN_TYPE], [{ typ: undefined }, ACCESS_TOKEN_TYPE], [{}, ID], [{}, JWT], [{ typ: 'application/at+jwt' }, ID],
    ]
    for (const [header, type] of refused) {
      expectOAuthError(await exchange(await user({}, header), { subject_token_type: type }), 400, 'invalid_request', /typ/)
    }
  })

  it('honours may_act: the agent it names may act, another agent may not', async () => {
    expect((await exchange(await user({ may_act: { sub: alice.did } }))).statusCode).toBe(200)
    expectOAuthError(await exchange(await user({ may_act: { sub: bob.did } })), 400, 'invalid_request', /may_act/)
    expectOAuthError(await exchange(await user({ may_act: 'anyone' })), 400, 'invalid_request', /may_act/)
    // bob, named by may_act, exchanges it himself (his own profile, his own actor token).
    const res = await c.send(await c.exchange(bob, await user({ may_act: { sub: bob.did } })))
    expect(res.statusCode, res.body).toBe(200)
    expect(payloadOf(res.json().access_token).act).toEqual({ sub: bob.did })
  })

  it('refuses a user token that already names an actor (act): a delegated token, not the user\'s own', async () => {
    expectOAuthError(await exchange(await user({ act: { sub: bob.did } })), 400, 'invalid_request', /act claim/)
    expectOAuthError(await exchange(await user({ act: 'x' })), 400, 'invalid_request', /act claim/)
    expect((await exchange(await user({}))).statusCode).toBe(200)
  })

  it('refuses an actor token signed by another agent, for another audience, expired, too long, replayed, or the client assertion itself', async () => {
    const subject = await user()
    const mallory = namedKey()
    const forged = await c.agentJwt(mallory, { iss: alice.did, sub: alice.did })
    expectOAuthError(await exchange(subject, { actor_token: forged }), 400, 'invalid_request', /actor_token/)
    expectOAuthError(await exchange(subject, { actor_token: await c.agentJwt(bob) }), 400, 'invalid_request', /actor_token/)
    expectOAuthError(await exchange(subject, { actor_token: await c.agentJwt(alice, { aud: 'https://elsewhere.example' }) }), 400, 'invalid_request', /actor_token/)
    expectOAuthError(await exchange(subject, { actor_token: await c.agentJwt(alice, { exp: c.nowSec() - 1 }) }), 400, 'invalid_request', /actor_token/)
    expectOAuthError(await exchange(subject, { actor_token: await c.agentJwt(alice, { exp: c.nowSec() + 3600 }) }), 400, 'invalid_request', /actor_token/)
    expectOAuthError(await exchange(subject, { actor_token: await c.agentJwt(alice, { jti: undefined }) }), 400, 'invalid_request', /actor_token/)
    // The issuer URL is an accepted audience, as for client assertions.
    expect((await exchange(subject, { actor_token: await c.agentJwt(alice, { aud: BASE_URL }) })).statusCode).toBe(200)
    const once = await c.agentJwt(alice)
    expect((await exchange(subject, { actor_token: once })).statusCode).toBe(200)
    expectOAuthError(await exchange(subject, { actor_token: once }), 400, 'invalid_request', /used before/)
    // One JWT as both client assertion and actor token: spent once.
    const both = await c.agentJwt(alice)
    expectOAuthError(await c.send(await c.exchange(alice, subject, { client_assertion: both, actor_token: both })), 400, 'invalid_request', /used before/)
    expectOAuthError(await exchange(subject, { actor_token: undefined }), 400, 'invalid_request', /actor_token/)
    expectOAuthError(await exchange(subject, { actor_token_type: ACCESS_TOKEN_TYPE }), 400, 'invalid_request', /actor_token_type/)
    expectOAuthError(await exchange(subject, { actor_token_type: undefined }), 400, 'invalid_request', /actor_token_type/)
  })

  it('refuses a missing subject_token, a missing or unsupported subject_token_type, another requested_token_type, an audience other than the resource', async () => {
    const subject = await user()
    expectOAuthError(await exchange(undefined), 400, 'invalid_request', /subject_token is required/)
    expectOAuthError(await exchange(''), 400, 'invalid_request', /subject_token is required/)
    expectOAuthError(await exchange(subject, { subject_token_type: undefined }), 400, 'invalid_request', /subject_token_type/)
    expectOAuthError(await exchange(subject, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }), 400, 'invalid_request', /subject_token_type/)
    expectOAuthError(await exchange(subject, { subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }), 400, 'invalid_request', /subject_token_type/)
    expectOAuthError(await exchange(subject, { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }), 400, 'invalid_request', /requested_token_type/)
    expectOAuthError(await exchange(subject, { audience: 'https://other.example' }), 400, 'invalid_target')
    expect((await exchange(await user({}, { typ: 'JWT' }), { audience: RESOURCE, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' })).statusCode).toBe(200)
    // Error answers never echo the user's token.
    const res = await exchange(await user({ aud: 'https://other.example' }))
    expect(res.body).not.toContain(subject.split('.')[2]!)
  })

  it('refuses repeated parameters', async () => {
    const subject = await user()
    const optional: Record<string, string> = { requested_token_type: ACCESS_TOKEN_TYPE, audience: RESOURCE, agentid_delegation: '[]' }
    for (const name of ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'resource', ...Object.keys(optional)]) {
      const form: Record<string, string | undefined> = await c.exchange(alice, subject, { authorization_details: JSON.stringify([READ]) })
      const value = form[name] ?? optional[name]!
      const raw = `&${name}=${encodeURIComponent(value)}`
      expectOAuthError(await c.send(form, { raw: form[name] === undefined ? raw + raw : raw }), 400, 'invalid_request', /repeated/)
    }
    // The same form without the repetition is granted.
    expect((await c.send(await c.exchange(alice, subject, { requested_token_type: ACCESS_TOKEN_TYPE, audience: RESOURCE }))).statusCode).toBe(200)
  })

  it('refuses details wider than the agent profile or data class, the user token\'s details, or its agentid: scopes', async () => {
    const wide = (d: unknown) => ({ authorization_details: JSON.stringify(d) })
    const subject = await user()
    expectOAuthError(await exchange(subject, wide([{ ...READ, locations: ['mcp://erp/tools/invoices.write'] }])), 400, 'invalid_authorization_details', /tool profile/)
    expectOAuthError(await exchange(subject, wide([{ ...READ, datatypes: ['confidential'] }])), 400, 'invalid_authorization_details')

    // The user's token carries agentid_action details: the request must stay within one of them.
    const granted = await user({ authorization_details: [
      { type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/*'], datatypes: ['public'] },
      { type: 'payment_initiation', instructedAmount: { amount: 1 } },
    ] })
    expectOAuthError(await exchange(granted, wide([READ])), 400, 'invalid_authorization_details', /user/)
    expectOAuthError(await exchange(granted, wide([{ type: 'agentid_action', actions: ['write'], locations: ['mcp://crm/contacts'] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await exchange(granted, wide([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/contacts'], datatypes: ['internal'] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await exchange(granted, wide([{ type: 'agentid_action', actions: ['*'], locations: ['mcp://crm/contacts'] }])), 400, 'invalid_authorization_details')
    // Within it: a request that leaves datatypes out gets the user's (narrowed, not widened).
    const ok = await exchange(granted, wide([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/contacts'] }]))
    expect(ok.statusCode, ok.body).toBe(200)
    expect(ok.json().authorization_details).toEqual([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/contacts'], datatypes: ['public'] }])
    expect(payloadOf(ok.json().access_token).authorization_details).toEqual(ok.json().authorization_details)
    // Datatypes taken over from the user's grant must still be within the agent's data class (internal).
    const restricted = await user({ authorization_details: [{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/*'], datatypes: ['public', 'restricted'] }] })
    expectOAuthError(await exchange(restricted, wide([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/contacts'] }])), 400, 'invalid_authorization_details', /data access class/)
    const chosen = await exchange(restricted, wide([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/contacts'], datatypes: ['public'] }]))
    expect(chosen.statusCode, chosen.body).toBe(200)
    // Details of other types only grant nothing.
    expectOAuthError(await exchange(await user({ authorization_details: [{ type: 'payment_initiation' }] }), wide([READ])), 400, 'invalid_authorization_details')
    expectOAuthError(await exchange(await user({ authorization_details: { type: 'agentid_action' } }), wide([READ])), 400, 'invalid_request')

    // Action scopes: agentid:<action> values limit the actions; other scope values do not.
    const scoped = await user({ scope: 'openid agentid:read email' })
    expect((await exchange(scoped, wide([READ]))).statusCode).toBe(200)
    expectOAuthError(await exchange(scoped, wide([{ ...READ, actions: ['read', 'delete'] }])), 400, 'invalid_authorization_details', /scope/)
    expectOAuthError(await exchange(await user({ scope: 'agentid:list' }), wide([READ])), 400, 'invalid_authorization_details', /scope/)
    expect((await exchange(await user({ scope: 'openid email' }), wide([READ]))).statusCode).toBe(200)
  })

  it('refuses an exchange by a revoked agent (invalid_client), and by an unregistered one', async () => {
    const carol = namedKey()
    await spawnAgent(h, carol)
    const subject = await user()
    expect((await c.send(await c.exchange(carol, subject))).statusCode).toBe(200)
    const revoke = await h.app.inject({ method: 'POST', url: `/v1/agents/${carol.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'compromised' } })
    expect(revoke.statusCode, revoke.body).toBe(200)
    expectOAuthError(await c.send(await c.exchange(carol, subject)), 401, 'invalid_client', /revoked/)
    const mallory = namedKey()
    expectOAuthError(await c.send(await c.exchange(mallory, subject)), 401, 'invalid_client')
  })

  it('a token exchanged for a user stops working at the resource once the agent is revoked', async () => {
    const dave = namedKey()
    await spawnAgent(h, dave)
    const res = await c.send(await c.exchange(dave, await user()))
    expect(res.statusCode, res.body).toBe(200)
    const token = res.json().access_token as string
    const verifier = verifierFor(h, { resourceAudience: RESOURCE })
    const call = async () => {
      const url = `${RESOURCE}/x`
      const p = await new SignJWT({ htm: 'GET', htu: url, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: dkey.jwk }).setIssuedAt(c.nowSec()).sign(dkey.privateKey)
      return verifier.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${token}`, dpop: p } })
    }
    expect((await call()).user).toBe('user-42@idp')
    await h.app.inject({ method: 'POST', url: `/v1/agents/${dave.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    await expect(call()).rejects.toMatchObject({ code: 'ERR_REVOKED' })
  })
})

describe('token exchange: the user token is never logged', () => {
  it('logs at trace level hold neither the token nor its signature, on success and refusal', async () => {
    const idp = await testIdp('https://idp.example')
    const h = await harness({ trustedIdps: [{ issuer: idp.issuer, jwks: { keys: [idp.publicJwk] } }] })
    const lines: string[] = []
    // The same service behind an app whose pino logger writes every line here.
    const app = buildServer(h.service, { logger: { level: 'trace', stream: { write: (line: string) => void lines.push(line) } } as never })
    await app.ready()
    try {
      const alice = namedKey()
      await spawnAgent(h, alice)
      const c = tokenClient({ ...h, app }, await dpopKey())
      const now = c.nowSec()
      const good = await idp.userToken(now)
      const foreign = await idp.userToken(now, { aud: 'https://other.example' })
      const expired = await idp.userToken(now, { exp: now - 3600 })
      expect((await c.send(await c.exchange(alice, good))).statusCode).toBe(200)
      expectOAuthError(await c.send(await c.exchange(alice, foreign)), 400, 'invalid_request')
      expectOAuthError(await c.send(await c.exchange(alice, expired)), 400, 'invalid_request')
      expect(lines.length).toBeGreaterThan(3)
      const log = lines.join('')
      for (const token of [good, foreign, expired]) {
        for (const part of token.split('.')) expect(log).not.toContain(part.slice(0, 32))
      }
    } finally {
      await app.close()
      await h.close()
    }
  })
})

describe('token exchange without trusted identity providers', () => {
  it('is not offered: unsupported_grant_type, and not in the metadata', async () => {
    const h = await harness()
    try {
      const alice = namedKey()
      await spawnAgent(h, alice)
      const c = tokenClient(h, await dpopKey())
      const meta = (await h.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
      expect(meta.grant_types_supported).toEqual(['client_credentials'])
      expect(meta.token_exchange_subject_token_types_supported).toBeUndefined()
      expectOAuthError(await c.send(await c.exchange(alice, 'x.y.z')), 400, 'unsupported_grant_type')
      expect(TOKEN_URL).toBe(`${BASE_URL}/v1/token`)
    } finally {
      await h.close()
    }
  })
})
