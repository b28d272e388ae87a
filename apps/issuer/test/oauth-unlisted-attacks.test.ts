// Attacks on POST /v1/token that the issue did not list, each with the behaviour that closes it:
// a real IssuerService on a temporary SQLite file, driven with app.inject().
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createExchangeSigner } from '@agentid/client'
import { harness, namedKey, spawnAgent, type Harness, type NamedKey } from './http-fixtures.js'
import { dpopKey, expectOAuthError, payloadOf, testIdp, tokenClient, type DpopKey, type TestIdp } from './oauth-fixtures.js'

const READ = { type: 'agentid_action', actions: ['read'], locations: ['mcp://erp/tools/invoices.read'] }

describe('token endpoint: attacks not listed in the issue', () => {
  let h: Harness
  let idp: TestIdp
  let alice: NamedKey
  let agentKey: DpopKey // alice's own key as a DPoP key (what createExchangeSigner signs proofs with)
  let thief: DpopKey // the orchestrator's (or anyone's) own DPoP key
  let c: ReturnType<typeof tokenClient>

  beforeAll(async () => {
    idp = await testIdp('https://idp.example', 'ES256')
    h = await harness({ trustedIdps: [{ issuer: idp.issuer, jwks: { keys: [idp.publicJwk] } }] })
    alice = namedKey()
    await spawnAgent(h, alice, { claims: { toolProfile: ['mcp://erp/tools/invoices.read', 'mcp://crm/*'], dataAccessClass: 'internal' } })
    thief = await dpopKey()
    agentKey = await dpopKey()
    c = tokenClient(h, agentKey)
  })
  afterAll(async () => h.close())

  describe('a JWT the agent bound to its own DPoP key (cnf.jkt) is not usable with another key', () => {
    // createExchangeSigner hands an orchestrator client assertions and actor tokens carrying cnf.jkt of the
    // agent's key, so that the token issued is usable by the agent only. The issuer must hold it to that.
    it('client_credentials: an assertion with cnf.jkt and a proof by another key is invalid_client', async () => {
      const form = await c.clientCredentials(alice, { client_assertion: await c.agentJwt(alice, { cnf: { jkt: agentKey.jkt } }) })
      const res = await c.send(form, { proof: await c.proof({ nonce: await c.currentNonce(), key: thief }) })
      expectOAuthError(res, 401, 'invalid_client', /cnf\.jkt/)
    })

    it('token exchange: an actor token with cnf.jkt and a proof by another key is invalid_request', async () => {
      const subject = await idp.userToken(c.nowSec())
      const form = await c.exchange(alice, subject, { authorization_details: JSON.stringify([READ]), actor_token: await c.agentJwt(alice, { cnf: { jkt: agentKey.jkt } }) })
      const res = await c.send(form, { proof: await c.proof({ nonce: await c.currentNonce(), key: thief }) })
      expectOAuthError(res, 400, 'invalid_request', /actor_token.*cnf\.jkt/)
    })

    it('an orchestrator holding createExchangeSigner\'s JWTs cannot get the agent\'s token bound to its own key', async () => {
      const signer = createExchangeSigner({ privateJwk: alice.privateJwk, issuerUrl: 'http://issuer.test', clock: () => h.clock.now })
      const nonce = await c.currentNonce()
      const subject = await idp.userToken(c.nowSec())
      const stolen = {
        client_assertion: await signer.sign({ type: 'client_assertion', audience: 'http://issuer.test/v1/token' }),
        actor_token: await signer.sign({ type: 'actor_token', audience: 'http://issuer.test/v1/token' }),
      }
      // The exchange with the orchestrator's own proof key, and a client_credentials grant with the assertion alone.
      const ex = await c.send(await c.exchange(alice, subject, { authorization_details: JSON.stringify([READ]), ...stolen }), { proof: await c.proof({ nonce, key: thief }) })
      expectOAuthError(ex, 401, 'invalid_client', /cnf\.jkt/)
      const cc = await c.send(await c.clientCredentials(alice, { client_assertion: await signer.sign({ type: 'client_assertion', audience: 'http://issuer.test/v1/token' }) }), { proof: await c.proof({ nonce, key: thief }) })
      expectOAuthError(cc, 401, 'invalid_client', /cnf\.jkt/)
      // With the agent's own proof (signed by the agent through the same signer), the exchange goes through.
      const own = await c.send(await c.exchange(alice, subject, {
        authorization_details: JSON.stringify([READ]),
        client_assertion: await signer.sign({ type: 'client_assertion', audience: 'http://issuer.test/v1/token' }),
        actor_token: await signer.sign({ type: 'actor_token', audience: 'http://issuer.test/v1/token' }),
      }), { proof: await signer.sign({ type: 'dpop', htm: 'POST', htu: 'http://issuer.test/v1/token', nonce }) })
      expect(own.statusCode, own.body).toBe(200)
    })

    it('a malformed cnf is refused; a matching cnf.jkt is accepted and the token is bound to that key', async () => {
      for (const cnf of [{ jkt: 42 }, 'x', { jkt: agentKey.jkt, 'x5t#S256': 'abc' }, null]) {
        const form = await c.clientCredentials(alice, { client_assertion: await c.agentJwt(alice, { cnf }) })
        expectOAuthError(await c.send(form), 401, 'invalid_client', /cnf/)
      }
      const form = await c.clientCredentials(alice, { client_assertion: await c.agentJwt(alice, { cnf: { jkt: agentKey.jkt } }) })
      const res = await c.send(form)
      expect(res.statusCode, res.body).toBe(200)
      expect(payloadOf(res.json().access_token).cnf).toEqual({ jkt: agentKey.jkt })
      const subject = await idp.userToken(c.nowSec())
      const ex = await c.send(await c.exchange(alice, subject, {
        authorization_details: JSON.stringify([READ]),
        client_assertion: await c.agentJwt(alice, { cnf: { jkt: agentKey.jkt } }),
        actor_token: await c.agentJwt(alice, { cnf: { jkt: agentKey.jkt } }),
      }))
      expect(ex.statusCode, ex.body).toBe(200)
    })
  })

  it('one JWT sent as both client_assertion and actor_token is refused (spent once, whatever field it came in)', async () => {
    const jwt = await c.agentJwt(alice)
    const res = await c.send(await c.exchange(alice, await idp.userToken(c.nowSec()), { authorization_details: JSON.stringify([READ]), client_assertion: jwt, actor_token: jwt }))
    expectOAuthError(res, 400, 'invalid_request', /actor_token/)
  })

  describe('DPoP htu at the token endpoint: compared after RFC 3986 syntax-based normalisation (RFC 9449 §4.3)', () => {
    const withHtu = async (htu: string) => {
      const nonce = await c.currentNonce()
      const { SignJWT } = await import('jose')
      const p = await new SignJWT({ htm: 'POST', htu, jti: crypto.randomUUID(), nonce }).setProtectedHeader({ alg: agentKey.alg, typ: 'dpop+jwt', jwk: agentKey.jwk }).setIssuedAt(c.nowSec()).sign(agentKey.privateKey)
      return c.send(await c.clientCredentials(alice), { proof: p })
    }
    for (const htu of ['HTTP://Issuer.TEST/v1/token', 'http://issuer.test:80/v1/token', 'http://issuer.test/v1/./token?x=1#y']) {
      it(`accepts ${htu}`, async () => {
        const res = await withHtu(htu)
        expect(res.statusCode, res.body).toBe(200)
      })
    }
    for (const htu of ['http://issuer.test/v1/token/', 'http://issuer.test:8080/v1/token', 'https://issuer.test/v1/token', 'http://issuer.test.evil.example/v1/token', 'http://evil.example/v1/token#http://issuer.test/v1/token', 'http://issuer.test/V1/token', 'issuer.test/v1/token', 'mailto:x@issuer.test']) {
      it(`refuses ${htu}`, async () => expectOAuthError(await withHtu(htu), 400, 'invalid_dpop_proof', /htu/))
    }
  })

  describe('the user\'s sub from the identity provider is a printable identifier', () => {
    // It becomes the token's sub, the policy's user id and the audit line's user: a NUL would make
    // "alice\u0000x" read as "alice" to a NUL-terminated consumer, a newline forge a log line, a bidi
    // override show another name in a console.
    for (const sub of ['alice@idp\u0000evil', 'alice\nuser=admin', 'a\u001bb', 'a\u007fb', 'a\u0085b', 'admin\u202e@pdi', 'x\u2066y', 'a\ud800b']) {
      it(`refuses sub ${JSON.stringify(sub)}`, async () => {
        const res = await c.send(await c.exchange(alice, await idp.userToken(c.nowSec(), { sub }), { authorization_details: JSON.stringify([READ]) }))
        expectOAuthError(res, 400, 'invalid_request', /sub/)
      })
    }
    it('accepts ordinary non-ASCII subs (surrogate pairs included)', async () => {
      for (const sub of ['jürgen.müller@idp.example', 'user-\u{1F464}@idp']) {
        const res = await c.send(await c.exchange(alice, await idp.userToken(c.nowSec(), { sub }), { authorization_details: JSON.stringify([READ]) }))
        expect(res.statusCode, res.body).toBe(200)
        expect(payloadOf(res.json().access_token).sub).toBe(sub)
      }
    })
  })

  it('a user token with a fractional exp gives a whole-second expires_in and exp, never past the user\'s token', async () => {
    const now = c.nowSec()
    const res = await c.send(await c.exchange(alice, await idp.userToken(now, { exp: now + 100.5 }), { authorization_details: JSON.stringify([READ]) }))
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().expires_in).toBe(100)
    const p = payloadOf(res.json().access_token)
    expect(p.exp - p.iat).toBe(100)
    // Less than a second left: no token with a zero lifetime (a verifier refuses it), the user's token has expired.
    const late = await c.send(await c.exchange(alice, await idp.userToken(now, { exp: now + 0.5 }), { authorization_details: JSON.stringify([READ]) }))
    expectOAuthError(late, 400, 'invalid_request', /expired/)
  })

  describe('a client assertion names this issuer alone as its audience (audience injection)', () => {
    // An assertion whose aud lists this issuer among others was made for several servers at once: any of
    // them (or an authorization server the agent was lured to, whose metadata put our URL in its list)
    // could spend it here. RFC 7523bis: aud is a single string. The same rules hold for actor tokens.
    const TOKEN = 'http://issuer.test/v1/token'
    for (const aud of [[TOKEN, 'https://evil.example/token'], ['https://evil.example', 'http://issuer.test'], [TOKEN]]) {
      it(`refuses aud ${JSON.stringify(aud)}`, async () => {
        const res = await c.send(await c.clientCredentials(alice, { client_assertion: await c.agentJwt(alice, { aud }) }))
        expectOAuthError(res, 401, 'invalid_client', /aud/)
        const ex = await c.send(await c.exchange(alice, await idp.userToken(c.nowSec()), { authorization_details: JSON.stringify([READ]), actor_token: await c.agentJwt(alice, { aud }) }))
        expectOAuthError(ex, 400, 'invalid_request', /actor_token.*aud/)
      })
    }
    it('accepts the token endpoint or the issuer as a string', async () => {
      for (const aud of [TOKEN, 'http://issuer.test']) {
        const res = await c.send(await c.clientCredentials(alice, { client_assertion: await c.agentJwt(alice, { aud }) }))
        expect(res.statusCode, res.body).toBe(200)
      }
    })
  })

  describe('a sender-constrained user token is not exchanged as if it were a bearer token', () => {
    // A user token bound to a key (DPoP cnf.jkt, mTLS cnf.x5t#S256) is useless to whoever steals it without
    // that key. The exchange proves no possession of it (the request's DPoP proof is the agent's): taking it
    // would turn a stolen bound token into an agent token acting for the user.
    for (const cnf of [{ jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' }, { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' }, {}]) {
      it(`refuses a user token with cnf ${JSON.stringify(cnf)}`, async () => {
        const res = await c.send(await c.exchange(alice, await idp.userToken(c.nowSec(), { cnf }), { authorization_details: JSON.stringify([READ]) }))
        expectOAuthError(res, 400, 'invalid_request', /cnf/)
      })
    }
  })

  describe('locations cannot climb out of a tool-profile prefix', () => {
    // The profile grants mcp://crm/* ; a location under that prefix with dot segments names something
    // else once any consumer resolves it (mcp://crm/../erp/admin is mcp://erp/admin to a URL parser).
    for (const location of ['mcp://crm/../erp/admin', 'mcp://crm/tools/../../erp/admin', 'mcp://crm/./x', 'mcp://crm/%2e%2e/erp', 'mcp://crm/%2E%2E/erp', 'mcp://crm/..', 'mcp://crm/a/..', 'mcp://crm/.%2e/erp', 'mcp://crm/a\\..\\..\\erp', 'mcp://crm/..%2ferp/admin', 'mcp://crm/..%5Cerp']) {
      it(`refuses ${location}`, async () => {
        const details = [{ type: 'agentid_action', actions: ['read'], locations: [location] }]
        const res = await c.send(await c.clientCredentials(alice, { authorization_details: JSON.stringify(details) }))
        expectOAuthError(res, 400, 'invalid_authorization_details')
      })
    }
    it('still grants a plain location under the prefix', async () => {
      const details = [{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/tools/contacts..search'] }]
      const res = await c.send(await c.clientCredentials(alice, { authorization_details: JSON.stringify(details) }))
      expect(res.statusCode, res.body).toBe(200)
    })
  })

  describe('the JWKS of a trusted identity provider is read up to a bound', () => {
    // A JWKS URI (compromised, or reached over plain http) answering with an endless body must not make
    // the issuer buffer all of it: jose reads response.json() whole until its timeout.
    let server: Server
    let padding = 0
    let remote: TestIdp
    let h2: Harness
    let c2: ReturnType<typeof tokenClient>
    let carol: NamedKey

    beforeAll(async () => {
      server = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        // Valid JSON: the keys, then whitespace (written in 64 KiB chunks, no content-length).
        res.write(`{"keys":[${JSON.stringify(remote.publicJwk)}]`)
        const chunk = ' '.repeat(64 * 1024)
        for (let i = 0; i < padding / chunk.length; i++) res.write(chunk)
        res.end('}')
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      remote = await testIdp(origin, 'ES256')
      h2 = await harness({ trustedIdps: [{ issuer: origin, jwks_uri: `${origin}/jwks` }] })
      carol = namedKey()
      await spawnAgent(h2, carol, { claims: { toolProfile: ['mcp://erp/tools/invoices.read'], dataAccessClass: 'internal' } })
      c2 = tokenClient(h2, await dpopKey())
    })
    afterAll(async () => {
      await h2.close()
      server.close()
    })

    it('refuses a JWKS body of 8 MiB, accepts the same keys in a small one', async () => {
      padding = 8 * 1024 * 1024
      const big = await c2.send(await c2.exchange(carol, await remote.userToken(c2.nowSec()), { authorization_details: JSON.stringify([READ]) }))
      expectOAuthError(big, 400, 'invalid_request', /keys could not be fetched/)
      padding = 0
      // jose waits out its 30 s cooldown before fetching again: the clock it reads is the real one.
      const fresh = await harness({ trustedIdps: [{ issuer: remote.issuer, jwks_uri: `${remote.issuer}/jwks` }] })
      try {
        const dave = namedKey()
        await spawnAgent(fresh, dave, { claims: { toolProfile: ['mcp://erp/tools/invoices.read'], dataAccessClass: 'internal' } })
        const c3 = tokenClient(fresh, await dpopKey())
        const ok = await c3.send(await c3.exchange(dave, await remote.userToken(c3.nowSec()), { authorization_details: JSON.stringify([READ]) }))
        expect(ok.statusCode, ok.body).toBe(200)
      } finally {
        await fresh.close()
      }
    })
  })

  describe('an identity provider whose JWKS cannot be fetched is not asked again on every request', () => {
    // jose caches a JWKS only once it has one: while the jwks_uri fails (down, 500, too large, slow), every
    // exchange naming that IdP fetched it again and waited for it — a registered agent could make the issuer
    // hammer the IdP (and hold each request up to the 5 s timeout).
    let server: Server
    let hits = 0
    let failing = true
    let remote: TestIdp
    let h3: Harness
    let c3: ReturnType<typeof tokenClient>
    let erin: NamedKey

    beforeAll(async () => {
      server = createServer((_req, res) => {
        hits++
        if (failing) return void res.writeHead(500).end()
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [remote.publicJwk] }))
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      remote = await testIdp(origin, 'ES256')
      h3 = await harness({ trustedIdps: [{ issuer: origin, jwks_uri: `${origin}/jwks` }] })
      erin = namedKey()
      await spawnAgent(h3, erin, { claims: { toolProfile: ['mcp://erp/tools/invoices.read'], dataAccessClass: 'internal' } })
      c3 = tokenClient(h3, await dpopKey())
    })
    afterAll(async () => {
      await h3.close()
      server.close()
    })

    it('one fetch per back-off period while it fails, a fresh one after it', async () => {
      const attempt = async () => c3.send(await c3.exchange(erin, await remote.userToken(c3.nowSec()), { authorization_details: JSON.stringify([READ]) }))
      for (let i = 0; i < 5; i++) expectOAuthError(await attempt(), 400, 'invalid_request', /keys could not be fetched/)
      expect(hits).toBe(1)
      failing = false
      expectOAuthError(await attempt(), 400, 'invalid_request', /keys could not be fetched/)
      expect(hits).toBe(1)
      h3.clock.now += 31_000
      const ok = await attempt()
      expect(ok.statusCode, ok.body).toBe(200)
      expect(hits).toBe(2)
    })
  })
})
