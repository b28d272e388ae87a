// createVerifier({ revocationStream }): revocations pushed as signed SETs on a server-sent-events
// stream are refused on arrival (memoized credentials, cached access tokens, delegation links); a
// stream that sends anything it cannot verify is dropped and resumed from the last verified event.
// The stream here is a real HTTP server the test scripts, byte by byte where it matters.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeJwt, signJwt, StatusList, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { delegate } from '@agentid/delegation'
import { accessTokenHash, createVerifier, SET_TYP, type RevocationStreamOptions, type Verifier } from '@agentid/verifier'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, claims, credential, issuer, LIST_URL, malloryIssuer, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'
import { receipt as approvalReceipt, received as receivedCall } from './approval-fixtures.js'
import { generateEd25519KeyPair, signerFromJwk } from '@agentid/core'
import { appendHop } from '@agentid/lineage'

const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const AUD = 'https://erp.example'
const URL_ = 'https://erp.example/invoices/42'
const otherIssuer = signerFromJwk(generateEd25519KeyPair().privateJwk)

// ---- a scripted SSE server -------------------------------------------------------------------

interface Conn { req: IncomingMessage; res: ServerResponse }
let server: Server
let streamUrl: string
const conns: Conn[] = []
let onConnect: (c: Conn) => void = (c) => open(c)
const connected: (() => void)[] = []

function open(c: Conn, from = 0): void {
  c.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
  c.res.write(`event: ready\ndata: ${JSON.stringify({ head: from, from })}\n\n`)
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const c = { req, res }
    conns.push(c)
    onConnect(c)
    for (const w of connected.splice(0)) w()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  streamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((r) => server.close(() => r()))
})

async function nextConnection(n: number, ms = 5000): Promise<Conn> {
  const deadline = Date.now() + ms
  while (conns.length < n) {
    if (Date.now() > deadline) throw new Error(`no connection #${n} (have ${conns.length})`)
    await new Promise<void>((r) => { connected.push(r); setTimeout(r, 50) })
  }
  return conns[n - 1]!
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Waits until `fn` rejects (the event has been applied; a loaded machine may take a while), at most `ms`. */
async function refused(fn: () => Promise<unknown>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (await fn().then(() => true, () => false)) {
    if (Date.now() > deadline) return
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A credential of a bystander agent, revoked by a marker event: once refused, every earlier event was processed. */
let markers = 0
async function marker(c: Conn, id: number): Promise<void> {
  const jti = `urn:uuid:marker-${++markers}`
  const jwt = await credential({ sub: bob.did, jti })
  c.res.write(frame(id, await revokeCredential(issuer.did, jti)))
  await refused(() => verifier.verifyAgentCredential(jwt))
}

let seq = 0
function setJwt(claimsOver: Record<string, unknown>, signer: Signer = issuer, header: Record<string, unknown> = { typ: SET_TYP }): Promise<string> {
  return signJwt({ kid: signer.keyId, ...header }, { iss: signer.did, jti: `set-${++seq}`, iat: NOW, txn: 't', ...claimsOver }, signer)
}
const revokeCredential = (iss: string, jti: string, signer: Signer = issuer) =>
  setJwt({ sub_id: { format: 'jwt_id', iss, jti }, events: { [CREDENTIAL_CHANGE]: { credential_type: 'verifiable-credential', change_type: 'revoke', event_timestamp: NOW } } }, signer)
const revokeAgent = (did: string, signer: Signer = issuer) =>
  setJwt({ sub_id: { format: 'did', url: did }, events: { [SESSION_REVOKED]: { event_timestamp: NOW } } }, signer)
const frame = (id: number | string, data: string) => `id: ${id}\nevent: set\ndata: ${data}\n\n`

// ---- the verifier under test -----------------------------------------------------------------

let clock: ReturnType<typeof testClock>
let status: ReturnType<typeof statusServer>
let verifier: Verifier
let errors: VerificationError[]

function make(stream: Partial<RevocationStreamOptions> = {}): Verifier {
  return createVerifier({
    trustedIssuers: [issuer.did, otherIssuer.did],
    clock,
    fetch: status,
    statusTtlMs: 3_600_000, // polling alone would not see a revocation during these tests
    resourceAudience: AUD,
    revocationStream: { url: streamUrl, minBackoffMs: 20, maxBackoffMs: 100, onError: (e) => errors.push(e), ...stream },
  })
}

beforeEach(async () => {
  conns.length = 0
  onConnect = (c) => open(c)
  errors = []
  clock = testClock()
  status = statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) })
})
afterEach(async () => {
  await verifier?.close()
  for (const c of conns) c.res.destroy()
})

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
}

let dpop: { privateKey: CryptoKey; jwk: JWK; jkt: string }
beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true })
  const jwk = await exportJWK(publicKey)
  dpop = { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
})
const CRED_ID = 'urn:uuid:5f0c6c3e-3b7e-4d7e-9a55-6a2c9c8f0001'
function accessToken(): Promise<string> {
  return signJwt({ typ: 'at+jwt', kid: issuer.keyId }, {
    iss: issuer.did, aud: AUD, sub: alice.did, client_id: alice.did, iat: NOW, exp: NOW + 300, jti: `at-${++seq}`, cnf: { jkt: dpop.jkt }, authorization_details: [],
    agentid: { claims, credentialId: CRED_ID, credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '12', statusListCredential: LIST_URL } },
  }, issuer)
}
async function call(token: string) {
  const proof = await new SignJWT({ jti: `p-${++seq}`, htm: 'GET', htu: URL_, iat: NOW, ath: accessTokenHash(token) })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: dpop.jwk }).sign(dpop.privateKey)
  return verifier.verifyRequest({ method: 'GET', url: URL_, headers: { authorization: `DPoP ${token}`, dpop: proof } })
}

describe('revocationStream: revocations refused on arrival', () => {
  it('a memoized identity credential is refused once its credential-change arrives; another is not', async () => {
    verifier = make()
    expect(verifier.revocationMode()).toBe('polling')
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    expect(c.req.headers['last-event-id']).toBeUndefined()
    const jwt = await credential({ jti: 'urn:uuid:revoked-1' })
    const other = await credential({ jti: 'urn:uuid:kept-1' })
    await verifier.verifyAgentCredential(jwt) // memoized
    await verifier.verifyAgentCredential(other)
    c.res.write(frame(1, await revokeCredential(issuer.did, 'urn:uuid:revoked-1')))
    await refused(() => verifier.verifyAgentCredential(jwt))
    await expectCode(verifier.verifyAgentCredential(jwt), 'ERR_REVOKED')
    await expect(verifier.verifyAgentCredential(other)).resolves.toMatchObject({ did: alice.did })
    expect(verifier.revocationMode()).toBe('push')
    expect(errors).toEqual([])
  })

  it("an approver's receipts are refused once the approver credential's credential-change arrives (memoized credential too)", async () => {
    verifier = make()
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    const r = await approvalReceipt()
    const approverJti = JSON.parse(Buffer.from(r.approverCredential.split('.')[1]!, 'base64url').toString()).jti as string
    await expect(verifier.verifyApproval(r, { call: receivedCall(), consume: false })).resolves.toMatchObject({ approver: { name: 'Dana' } })
    // Another issuer's SET naming the same jti revokes nothing of this issuer's.
    c.res.write(frame(1, await revokeCredential(otherIssuer.did, approverJti, otherIssuer)))
    await marker(c, 2)
    await expect(verifier.verifyApproval(r, { call: receivedCall(), consume: false })).resolves.toMatchObject({ approver: { name: 'Dana' } })
    c.res.write(frame(3, await revokeCredential(issuer.did, approverJti)))
    await refused(() => verifier.verifyApproval(r, { call: receivedCall(), consume: false }))
    // Refused at once: the status list (cached for an hour here) still says unrevoked.
    await expectCode(verifier.verifyApproval(r, { call: receivedCall(), consume: false }), 'ERR_REVOKED')
    await expectCode(verifier.verifyApproval(await approvalReceipt(), { call: receivedCall() }), 'ERR_REVOKED')
    expect(errors).toEqual([])
  })

  it('a cached access token is refused once its credential, or its agent, is revoked', async () => {
    verifier = make()
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    const token = await accessToken()
    await expect(call(token)).resolves.toMatchObject({ agent: alice.did })
    c.res.write(frame(1, await revokeCredential(issuer.did, CRED_ID)))
    await marker(c, 2)
    await expectCode(call(token), 'ERR_REVOKED')
  })

  it('session-revoked for an agent refuses its tokens and credentials, not another agent\'s', async () => {
    verifier = make()
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    const token = await accessToken()
    await call(token)
    const bobCred = await credential({ sub: bob.did })
    c.res.write(frame(1, await revokeAgent(alice.did)))
    await marker(c, 2)
    await expectCode(call(token), 'ERR_REVOKED')
    await expectCode(verifier.verifyAgentCredential(await credential()), 'ERR_REVOKED')
    await expect(verifier.verifyAgentCredential(bobCred)).resolves.toMatchObject({ did: bob.did })
  })

  it('a delegation link is refused once revoked (its signer and jti)', async () => {
    verifier = make()
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    const entry = (i: number) => ({ type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(i), statusListCredential: LIST_URL } as const)
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['*'] }], caveats: { remainingDepth: 2 }, expiresIn: 3600, statusEntry: entry(1), clock })
    const chain = await delegate({ signer: signerFromJwk(alice.privateJwk), to: bob.did, parent: root, capabilities: [{ resource: 'mcp://erp/read', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry(2), clock })
    const request = { invoker: bob.did, resource: 'mcp://erp/read', action: 'invoke' }
    await verifier.verifyDelegation(chain, request)
    const link = decodeJwt(chain[1]!).payload as { iss: string; jti: string }
    c.res.write(frame(1, await revokeCredential(link.iss, link.jti)))
    await marker(c, 2)
    await expectCode(verifier.verifyDelegation(chain, request), 'ERR_REVOKED')
  })

  it('a lineage actor of a memoized prefix is refused once its credential-change arrives, the prefix\'s actor check recorded or not', async () => {
    verifier = make()
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    const aliceCred = await credential({ sub: alice.did, index: '1', jti: 'urn:uuid:lineage-actor-alice' })
    const bobCred = await credential({ sub: bob.did, index: '2', jti: 'urn:uuid:lineage-actor-bob' })
    const tool = 'https://tool.example'
    const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: aliceCred, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: { goal: 'pay' } })
    // Each call a new last hop by bob on the same prefix (the prefix memoized, then resumed, then stood on).
    const call = async () => verifier.verifyLineage(
      await appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: bobCred, clock, target: tool, command: 'POST /charge', args: { amount: 1 } }),
      { audience: tool, command: 'POST /charge', args: { amount: 1 }, credentials: [aliceCred, bobCred] },
    )
    for (let i = 0; i < 3; i++) await call()
    c.res.write(frame(1, await revokeCredential(issuer.did, 'urn:uuid:lineage-actor-alice')))
    await refused(call)
    const error = await call().then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_REVOKED')
    expect((error as VerificationError).details.hop).toBe(0)
    expect(errors).toEqual([])
  })

  it('ignores unknown event types and other change types, and other SSE event names', async () => {
    verifier = make()
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    const jwt = await credential({ jti: 'urn:uuid:kept-2' })
    c.res.write(frame(1, await setJwt({ sub_id: { format: 'jwt_id', iss: issuer.did, jti: 'urn:uuid:kept-2' }, events: { [CREDENTIAL_CHANGE]: { credential_type: 'verifiable-credential', change_type: 'update' } } })))
    c.res.write(frame(2, await setJwt({ sub_id: { format: 'opaque', id: 'x' }, events: { 'https://example.com/event/other': {} } })))
    c.res.write('event: something-else\ndata: {}\n\n: a comment\n\n')
    await marker(c, 3)
    await expect(verifier.verifyAgentCredential(jwt)).resolves.toBeDefined()
    expect(errors).toEqual([])
    expect(verifier.revocationMode()).toBe('push')
  })
})

describe('revocationStream: hostile streams are dropped, nothing they say is recorded', () => {
  const cases: [string, () => Promise<string>, VerificationErrorCode, string?][] = [
    ["a forged SET (iss and kid the trusted issuer's, signed by another key)", async () => frame(1, await setJwt({ iss: issuer.did, sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } }, malloryIssuer, { typ: SET_TYP, kid: issuer.keyId })), 'ERR_SIGNATURE_INVALID'],
    ["a forged SET (iss the trusted issuer, kid another key's)", async () => frame(1, await setJwt({ iss: issuer.did, sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } }, malloryIssuer)), 'ERR_KEY_MISMATCH'],
    ['a SET from an untrusted issuer', async () => frame(1, await revokeAgent(alice.did, malloryIssuer)), 'ERR_UNTRUSTED_ISSUER'],
    ["a trusted issuer revoking another trusted issuer's credential", async () => frame(1, await revokeCredential(issuer.did, 'urn:uuid:x', otherIssuer)), 'ERR_UNTRUSTED_ISSUER'],
    ['typ JWT', async () => frame(1, await setJwt({ sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } }, issuer, { typ: 'JWT' })), 'ERR_MALFORMED'],
    ['no typ', async () => frame(1, await setJwt({ sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } }, issuer, {})), 'ERR_MALFORMED'],
    ['alg none', async () => frame(1, `${Buffer.from(JSON.stringify({ alg: 'none', typ: SET_TYP })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: issuer.did, jti: 'x', iat: NOW, sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } })).toString('base64url')}.`), 'ERR_UNSUPPORTED_ALG'],
    ['two events', async () => frame(1, await setJwt({ sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {}, [CREDENTIAL_CHANGE]: { credential_type: 'x', change_type: 'revoke' } } })), 'ERR_MALFORMED'],
    ['a sub claim', async () => frame(1, await setJwt({ sub: alice.did, sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } })), 'ERR_MALFORMED'],
    ['an exp claim', async () => frame(1, await setJwt({ exp: NOW + 60, sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } })), 'ERR_MALFORMED'],
    ['no jti', async () => frame(1, await setJwt({ jti: undefined, sub_id: { format: 'did', url: alice.did }, events: { [SESSION_REVOKED]: {} } })), 'ERR_MALFORMED'],
    ['session-revoked with a non-DID subject', async () => frame(1, await setJwt({ sub_id: { format: 'email', email: 'a@b.c' }, events: { [SESSION_REVOKED]: {} } })), 'ERR_MALFORMED'],
    ['credential-change without credential_type', async () => frame(1, await setJwt({ sub_id: { format: 'jwt_id', iss: issuer.did, jti: 'x' }, events: { [CREDENTIAL_CHANGE]: { change_type: 'revoke' } } })), 'ERR_MALFORMED'],
    ['data that is not a JWT', async () => frame(1, 'not-a-jwt'), 'ERR_MALFORMED'],
    ['an event without id', async () => `event: set\ndata: ${await revokeAgent(alice.did)}\n\n`, 'ERR_MALFORMED'],
    ['an id that is not a number', async () => frame('abc', await revokeAgent(alice.did)), 'ERR_MALFORMED'],
    ['ids going backwards', async () => frame(5, await setJwt({ sub_id: { format: 'opaque', id: 'x' }, events: { 'https://example.com/e': {} } })) + frame(3, await revokeAgent(alice.did)), 'ERR_MALFORMED', '5'],
    ['invalid UTF-8', async () => 'data: \xff\n\n', 'ERR_MALFORMED'],
  ]

  for (const [name, body, code, resumeFrom = '0'] of cases) {
    it(`${name}: ${code}, the agent still verifies, mode falls back to polling`, async () => {
      let first = true
      onConnect = (c) => {
        open(c)
        if (!first) return
        first = false
        void body().then(async (text) => { await new Promise((r) => setTimeout(r, 30)); c.res.write(name === 'invalid UTF-8' ? Buffer.from([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0xfe, 0x0a, 0x0a]) : text) })
      }
      verifier = make()
      await until(() => errors.length > 0)
      expect(errors[0]!.code).toBe(code)
      await expect(verifier.verifyAgentCredential(await credential())).resolves.toMatchObject({ did: alice.did })
      // It reconnects, from the last event it verified (none: the ready's from, 0).
      const second = await nextConnection(2)
      expect(second.req.headers['last-event-id']).toBe(resumeFrom)
    })
  }

  it('a SET before ready, and a ready without from, drop the stream', async () => {
    let n = 0
    onConnect = (c) => {
      c.res.writeHead(200, { 'content-type': 'text/event-stream' })
      void revokeAgent(alice.did).then((jwt) => c.res.write(++n === 1 ? frame(1, jwt) : 'event: ready\ndata: {"head":1}\n\n'))
    }
    verifier = make()
    await until(() => errors.length >= 2)
    expect(errors.slice(0, 2).map((e) => e.code)).toEqual(['ERR_MALFORMED', 'ERR_MALFORMED'])
    expect(verifier.revocationMode()).toBe('polling')
    await expect(verifier.verifyAgentCredential(await credential())).resolves.toBeDefined()
  })

  it('an endless line is cut at maxEventBytes (bounded memory), and the stream resumed', async () => {
    let first = true
    onConnect = (c) => {
      open(c)
      if (!first) return
      first = false
      c.res.write('data: ')
      const chunk = 'A'.repeat(4096)
      const timer = setInterval(() => { if (!c.res.write(chunk)) { /* back-pressure: keep going anyway */ } }, 1)
      c.res.on('close', () => clearInterval(timer))
    }
    verifier = make({ maxEventBytes: 16 * 1024 })
    await until(() => errors.length > 0, 5000)
    expect(errors[0]!.code).toBe('ERR_MALFORMED')
    await nextConnection(2)
    await until(() => verifier.revocationMode() === 'push')
  })

  it('an endless event (data lines without the blank line) is cut too', async () => {
    let first = true
    onConnect = (c) => {
      open(c)
      if (!first) return
      first = false
      const timer = setInterval(() => c.res.write(`data: ${'B'.repeat(1000)}\n`), 1)
      c.res.on('close', () => clearInterval(timer))
    }
    verifier = make({ maxEventBytes: 8 * 1024 })
    await until(() => errors.length > 0, 5000)
    expect(errors[0]!.code).toBe('ERR_MALFORMED')
  })

  it('HTTP 500 and a wrong content type: polling mode, retried with back-off', async () => {
    let n = 0
    onConnect = (c) => {
      n++
      if (n === 1) { c.res.writeHead(500); c.res.end(); return }
      if (n === 2) { c.res.writeHead(200, { 'content-type': 'application/json' }); c.res.end('{}'); return }
      open(c)
    }
    verifier = make()
    await nextConnection(3)
    await until(() => verifier.revocationMode() === 'push')
    expect(errors.map((e) => e.code)).toEqual(['ERR_STATUS_UNAVAILABLE', 'ERR_MALFORMED'])
  })
})

describe('revocationStream: connection lifecycle', () => {
  it('resumes with Last-Event-ID after the stream ends; events missed meanwhile are applied', async () => {
    verifier = make()
    const c1 = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    c1.res.write(frame(6, await setJwt({ sub_id: { format: 'opaque', id: 'x' }, events: { 'https://example.com/e': {} } })))
    await marker(c1, 7)
    const jwt = await credential({ jti: 'urn:uuid:revoked-while-down' })
    await verifier.verifyAgentCredential(jwt)
    onConnect = (c) => {
      open(c, 7)
      void revokeCredential(issuer.did, 'urn:uuid:revoked-while-down').then((s) => c.res.write(frame(8, s)))
    }
    c1.res.end()
    await until(() => verifier.revocationMode() === 'polling', 2000)
    const c2 = await nextConnection(2)
    expect(c2.req.headers['last-event-id']).toBe('7')
    await until(() => verifier.revocationMode() === 'push')
    await refused(() => verifier.verifyAgentCredential(jwt))
    await expectCode(verifier.verifyAgentCredential(jwt), 'ERR_REVOKED')
    expect(errors.map((e) => e.code)).toEqual(['ERR_STATUS_UNAVAILABLE'])
  })

  it('a stream silent past idleTimeoutMs is dropped and reconnected', async () => {
    verifier = make({ idleTimeoutMs: 150 })
    await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    await nextConnection(2, 3000)
    expect(errors[0]!.code).toBe('ERR_STATUS_UNAVAILABLE')
  })

  it('when the issuer cannot resume (ready.from is not our last id), cached status lists are dropped', async () => {
    verifier = make()
    const c1 = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    await verifier.verifyAgentCredential(await credential())
    const fetches = status.calls
    await verifier.verifyAgentCredential(await credential())
    expect(status.calls).toBe(fetches) // cached
    await marker(c1, 3)
    onConnect = (c) => open(c, 1) // the issuer's head is behind what we saw: another database
    c1.res.end()
    await nextConnection(2)
    await until(() => verifier.revocationMode() === 'push')
    await verifier.verifyAgentCredential(await credential())
    expect(status.calls).toBe(fetches + 1)
  })

  it('close() ends the subscription: polling, no reconnection', async () => {
    verifier = make()
    await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    await verifier.close()
    expect(verifier.revocationMode()).toBe('polling')
    await new Promise((r) => setTimeout(r, 300))
    expect(conns.length).toBe(1)
  })

  it('remembers at most maxRevocations (oldest dropped: the status lists still hold them)', async () => {
    verifier = make({ maxRevocations: 2 })
    const c = await nextConnection(1)
    await until(() => verifier.revocationMode() === 'push')
    const jwts = await Promise.all([1, 2, 3].map((i) => credential({ jti: `urn:uuid:bounded-${i}` })))
    for (const [i, jwt] of jwts.entries()) {
      c.res.write(frame(i + 1, await revokeCredential(issuer.did, `urn:uuid:bounded-${i + 1}`)))
      await refused(() => verifier.verifyAgentCredential(jwt))
    }
    await expect(verifier.verifyAgentCredential(jwts[0]!)).resolves.toBeDefined() // forgotten: its list says 0 here
    await expectCode(verifier.verifyAgentCredential(jwts[2]!), 'ERR_REVOKED')
  })

  it('without revocationStream: polling, close() is a no-op; bad options are TypeErrors', async () => {
    const plain = createVerifier({ trustedIssuers: [issuer.did], fetch: status, clock })
    expect(plain.revocationMode()).toBe('polling')
    await plain.close()
    expect(() => createVerifier({ trustedIssuers: [issuer.did], fetch: status, revocationStream: { url: 'ftp://x' } })).toThrow(TypeError)
    expect(() => createVerifier({ trustedIssuers: [issuer.did], fetch: status, revocationStream: { url: streamUrl, maxEventBytes: 0 } })).toThrow(TypeError)
    expect(() => createVerifier({ trustedIssuers: [issuer.did], fetch: status, revocationStream: { url: streamUrl, maxRevocations: Number.NaN } })).toThrow(TypeError)
    verifier = plain
  })
})
