// Hostile input on every route of the real issuer process: each refusal is a JSON error body
// { error: { code, message } } with the right status and code, never a stack trace, never a 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base64urlEncode, createProofOfPossession, generateEd25519KeyPair, signerFromJwk } from '@agentid/core'
import {
  addOrchestratorViaApi,
  agentHeldSpawn,
  api,
  claims,
  cleanup,
  errorShape,
  issuerDid,
  newAdminKey,
  startIssuer,
  type ApiOptions,
  type ApiResponse,
  type IssuerProcess,
} from './harness.js'

let issuer: IssuerProcess
let did: string
let alice: { id: string; apiKey: string }
let bob: { id: string; apiKey: string }
let aliceAgent: { did: string; privateJwk: ReturnType<typeof generateEd25519KeyPair>['privateJwk']; credentialId: string }
let bobAgent: { did: string; credentialId: string }
const seen: { route: string; status: number; text: string }[] = []

async function call(method: string, path: string, options: ApiOptions = {}): Promise<ApiResponse> {
  const r = await api(issuer, method, path, options)
  seen.push({ route: `${method} ${path.slice(0, 80)}`, status: r.status, text: r.text.slice(0, 300) })
  return r
}

/** Sends the request and asserts the refusal: status, code, JSON error shape. */
async function refused(status: number, code: string, method: string, path: string, options: ApiOptions = {}): Promise<void> {
  const r = await call(method, path, options)
  const context = `${method} ${path.slice(0, 120)} -> ${r.status} ${r.text.slice(0, 300)}`
  expect(r.status, context).toBe(status)
  expect(r.headers.get('content-type') ?? '', context).toMatch(/^application\/json/)
  expect(errorShape(r).code, context).toBe(code)
}

/** POSTs `bytes` of JSON as a stream (Transfer-Encoding: chunked, no Content-Length) with fetch. */
async function uploadChunked(path: string, key: string, bytes: number): Promise<{ status: number; headers: Headers; text: string }> {
  const chunk = new TextEncoder().encode('x'.repeat(64 * 1024))
  let sent = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 0) controller.enqueue(new TextEncoder().encode('{"reason":"'))
      if (sent >= bytes) {
        controller.enqueue(new TextEncoder().encode('"}'))
        return controller.close()
      }
      sent += chunk.length
      controller.enqueue(chunk)
    },
  })
  const r = await fetch(`${issuer.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body,
    duplex: 'half',
    signal: AbortSignal.timeout(30_000),
  } as RequestInit)
  const text = await r.text()
  seen.push({ route: `POST ${path.slice(0, 80)} (chunked ${bytes})`, status: r.status, text: text.slice(0, 300) })
  return { status: r.status, headers: r.headers, text }
}

const renewBody = async (privateJwk: Parameters<typeof signerFromJwk>[0], audience = did, purpose: 'spawn' | 'renew' = 'renew') =>
  ({ proof: await createProofOfPossession({ signer: signerFromJwk(privateJwk), audience, purpose, ttlSec: 300 }) })

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  alice = await addOrchestratorViaApi(issuer, 'alice')
  bob = await addOrchestratorViaApi(issuer, 'bob')
  const a = await agentHeldSpawn(did, 'alice-1')
  const ra = await call('POST', '/v1/agents', { key: alice.apiKey, json: a.body })
  expect(ra.status).toBe(201)
  aliceAgent = { did: a.did, privateJwk: a.privateJwk, credentialId: ra.body.credentialId }
  const rb = await call('POST', '/v1/agents', { key: bob.apiKey, json: { keyCustody: 'issuer', ...claims('bob-1') } })
  expect(rb.status).toBe(201)
  bobAgent = { did: rb.body.did, credentialId: rb.body.credentialId }
})

afterAll(async () => {
  await cleanup()
})

describe('hostile input', () => {
  it('another orchestrator\'s agent is not found, and each list shows only its own agents', async () => {
    await refused(404, 'ERR_NOT_FOUND', 'GET', `/v1/agents/${aliceAgent.did}`, { key: bob.apiKey })
    await refused(404, 'ERR_NOT_FOUND', 'GET', `/v1/agents/${bobAgent.did}`, { key: alice.apiKey })
    expect((await call('GET', `/v1/agents/${aliceAgent.did}`, { key: alice.apiKey })).status).toBe(200)
    expect((await call('GET', `/v1/agents/${bobAgent.did}`, { key: issuer.adminKey })).status).toBe(200)

    const bobs = await call('GET', '/v1/agents', { key: bob.apiKey })
    expect(bobs.status).toBe(200)
    expect(bobs.body.agents.map((x: { did: string }) => x.did)).toEqual([bobAgent.did])
    const alices = await call('GET', '/v1/agents?limit=500', { key: alice.apiKey })
    expect(alices.body.agents.every((x: { orchestrator: string }) => x.orchestrator === alice.id)).toBe(true)
    expect(alices.body.agents.map((x: { did: string }) => x.did)).not.toContain(bobAgent.did)
    await refused(403, 'ERR_FORBIDDEN', 'GET', `/v1/agents?orchestrator=${alice.id}`, { key: bob.apiKey })
    await refused(403, 'ERR_FORBIDDEN', 'GET', '/v1/agents?orchestrator=alice', { key: bob.apiKey })
    // An orchestrator cannot renew another's agent either: renewal needs the agent's own key.
    await refused(401, 'ERR_KEY_MISMATCH', 'POST', `/v1/agents/${bobAgent.did}/renew`, { json: await renewBody(aliceAgent.privateJwk) })
  })

  it('a replayed proof of possession is 409 ERR_REPLAY (spawn and renew, and a reused challenge)', async () => {
    const a = await agentHeldSpawn(did, 'replay')
    expect((await call('POST', '/v1/agents', { key: alice.apiKey, json: a.body })).status).toBe(201)
    await refused(409, 'ERR_REPLAY', 'POST', '/v1/agents', { key: alice.apiKey, json: a.body })
    // The same proof from the other orchestrator is the same replay.
    await refused(409, 'ERR_REPLAY', 'POST', '/v1/agents', { key: bob.apiKey, json: a.body })

    const renew = await renewBody(a.privateJwk)
    expect((await call('POST', `/v1/agents/${a.did}/renew`, { json: renew })).status).toBe(201)
    await refused(409, 'ERR_REPLAY', 'POST', `/v1/agents/${a.did}/renew`, { json: renew })

    // Challenges: single use; an unknown one is refused.
    const ch = await call('POST', '/v1/challenges', { key: alice.apiKey })
    expect(ch.status).toBe(201)
    const key1 = generateEd25519KeyPair()
    const withNonce = async (privateJwk: typeof key1.privateJwk, nonce: string) => ({
      keyCustody: 'agent', ...claims('challenge'),
      proof: await createProofOfPossession({ signer: signerFromJwk(privateJwk), audience: did, purpose: 'spawn', nonce }),
    })
    expect((await call('POST', '/v1/agents', { key: alice.apiKey, json: await withNonce(key1.privateJwk, ch.body.nonce) })).status).toBe(201)
    await refused(409, 'ERR_REPLAY', 'POST', '/v1/agents', { key: alice.apiKey, json: await withNonce(generateEd25519KeyPair().privateJwk, ch.body.nonce) })
    await refused(409, 'ERR_REPLAY', 'POST', '/v1/agents', { key: alice.apiKey, json: await withNonce(generateEd25519KeyPair().privateJwk, 'never-issued-by-this-issuer') })
    await refused(401, 'ERR_UNAUTHENTICATED', 'POST', '/v1/challenges')
  })

  it('a proof for another audience or purpose, signed by another key, expired or malformed is refused', async () => {
    const key = generateEd25519KeyPair()
    const signer = signerFromJwk(key.privateJwk)
    const spawnWith = (proof: string, extra: Record<string, unknown> = {}) => ({ keyCustody: 'agent', proof, ...claims('pop'), ...extra })
    const pop = (o: Partial<Parameters<typeof createProofOfPossession>[0]> = {}) =>
      createProofOfPossession({ signer, audience: did, purpose: 'spawn', ...o })
    const post = (body: unknown) => ({ key: alice.apiKey, json: body })

    // Audience: another issuer's DID.
    await refused(401, 'ERR_AUDIENCE_MISMATCH', 'POST', '/v1/agents', post(spawnWith(await pop({ audience: generateEd25519KeyPair().did }))))
    await refused(401, 'ERR_AUDIENCE_MISMATCH', 'POST', `/v1/agents/${aliceAgent.did}/renew`, { json: await renewBody(aliceAgent.privateJwk, generateEd25519KeyPair().did) })
    // Purpose: a renewal proof at spawn, a spawn proof at renewal.
    await refused(400, 'ERR_MALFORMED', 'POST', '/v1/agents', post(spawnWith(await pop({ purpose: 'renew' }))))
    await refused(400, 'ERR_MALFORMED', 'POST', `/v1/agents/${aliceAgent.did}/renew`, { json: await renewBody(aliceAgent.privateJwk, did, 'spawn') })
    // Another key: the body names one DID, the proof is by another.
    await refused(401, 'ERR_KEY_MISMATCH', 'POST', '/v1/agents', post(spawnWith(await pop(), { did: generateEd25519KeyPair().did })))
    // Another key: the proof claims to be by `key` but is signed by mallory.
    const honest = await pop()
    const mallory = signerFromJwk(generateEd25519KeyPair().privateJwk)
    const [h, p] = honest.split('.')
    const forged = `${h}.${p}.${base64urlEncode(await mallory.sign(new TextEncoder().encode(`${h}.${p}`)))}`
    await refused(401, 'ERR_SIGNATURE_INVALID', 'POST', '/v1/agents', post(spawnWith(forged)))
    await refused(401, 'ERR_SIGNATURE_INVALID', 'POST', '/v1/agents', post(spawnWith(`${h}.${p}.${base64urlEncode(new Uint8Array(64))}`)))
    // Time: expired, not yet valid.
    await refused(401, 'ERR_EXPIRED', 'POST', '/v1/agents', post(spawnWith(await pop({ clock: () => Date.now() - 3_600_000 }))))
    await refused(401, 'ERR_NOT_YET_VALID', 'POST', '/v1/agents', post(spawnWith(await pop({ clock: () => Date.now() + 3_600_000 }))))
    // Not a proof at all; alg none.
    await refused(400, 'ERR_MALFORMED', 'POST', '/v1/agents', post(spawnWith('not-a-jwt')))
    const none = `${base64urlEncode(new TextEncoder().encode('{"alg":"none","typ":"agentid-pop+jwt"}'))}.${p}.`
    await refused(400, 'ERR_UNSUPPORTED_ALG', 'POST', '/v1/agents', post(spawnWith(none)))
    await refused(400, 'ERR_INVALID_INPUT', 'POST', '/v1/agents', post(spawnWith('x'.repeat(9000))))
    // Renew of an agent that does not exist (a valid proof by its key).
    const ghost = generateEd25519KeyPair()
    await refused(404, 'ERR_NOT_FOUND', 'POST', `/v1/agents/${ghost.did}/renew`, { json: await renewBody(ghost.privateJwk) })
  })

  it('wrong, missing or malformed API keys are 401 ERR_UNAUTHENTICATED on every authenticated route', async () => {
    const removed = await addOrchestratorViaApi(issuer, 'removed-orch')
    expect((await call('DELETE', '/v1/orchestrators/removed-orch', { key: issuer.adminKey })).status).toBe(200)
    const badAuth: Record<string, string | undefined>[] = [
      {},
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer ' },
      { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
      { authorization: `bearer ${alice.apiKey}x` },
      { authorization: `Bearer ${alice.apiKey} extra` },
      { authorization: `Bearer ${alice.apiKey.slice(0, -1)}` },
      { authorization: `Bearer ${'aid_orch_' + 'A'.repeat(43)}` },
      { authorization: `Bearer ${newAdminKey()}` },
      { authorization: `Bearer ${issuer.adminKey}${'x'.repeat(300)}` },
      { authorization: `Bearer ${removed.apiKey}` },
      { authorization: `Bearer aid_orch_${'é'.repeat(43)}` },
    ]
    const routes: [string, string, unknown?][] = [
      ['POST', '/v1/agents', { keyCustody: 'issuer', ...claims('unauth') }],
      ['GET', '/v1/agents'],
      ['GET', `/v1/agents/${aliceAgent.did}`],
      ['POST', `/v1/agents/${aliceAgent.did}/revoke`, { reason: 'x' }],
      ['POST', `/v1/credentials/${aliceAgent.credentialId}/revoke`, { reason: 'x' }],
      ['POST', '/v1/orchestrators', { name: 'eve' }],
      ['GET', '/v1/orchestrators'],
      ['DELETE', '/v1/orchestrators/alice'],
      ['POST', '/v1/challenges'],
    ]
    for (const [method, path, body] of routes) {
      for (const headers of badAuth) {
        const h = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>
        // Non-latin-1 header values cannot be sent by fetch; skip those on this client.
        if (Object.values(h).some((v) => /[^\x00-\xff]/.test(v))) continue
        await refused(401, 'ERR_UNAUTHENTICATED', method, path, { headers: h, ...(body === undefined ? {} : { json: body }) })
      }
    }
    // Nothing was done by any of them.
    const view = await call('GET', `/v1/agents/${aliceAgent.did}`, { key: issuer.adminKey })
    expect(view.body.status).toBe('active')
    expect((await call('GET', '/v1/orchestrators', { key: issuer.adminKey })).body.orchestrators.map((o: { name: string }) => o.name)).not.toContain('eve')
  })

  it('an orchestrator key on admin routes is 403 ERR_FORBIDDEN; the admin key cannot spawn', async () => {
    const key = { key: alice.apiKey }
    await refused(403, 'ERR_FORBIDDEN', 'POST', `/v1/agents/${aliceAgent.did}/revoke`, { ...key, json: { reason: 'mine' } })
    await refused(403, 'ERR_FORBIDDEN', 'POST', `/v1/credentials/${aliceAgent.credentialId}/revoke`, { ...key, json: { reason: 'mine' } })
    await refused(403, 'ERR_FORBIDDEN', 'POST', '/v1/orchestrators', { ...key, json: { name: 'eve' } })
    await refused(403, 'ERR_FORBIDDEN', 'GET', '/v1/orchestrators', key)
    await refused(403, 'ERR_FORBIDDEN', 'DELETE', '/v1/orchestrators/bob', key)
    await refused(403, 'ERR_FORBIDDEN', 'POST', '/v1/agents', { key: issuer.adminKey, json: { keyCustody: 'issuer', ...claims('admin') } })
    expect((await call('GET', `/v1/agents/${aliceAgent.did}`, { key: issuer.adminKey })).body.status).toBe('active')
    expect((await call('GET', '/v1/agents', { key: bob.apiKey })).status).toBe(200)
  })

  it('1 MB and larger bodies are 413 ERR_PAYLOAD_TOO_LARGE on every route that takes a body, every time', async () => {
    // The issuer answers an oversized body at once and then reads and drops the rest for a bounded time
    // before it closes (a lingering close: @agentid/core closeLingering): fetch, still writing, reads
    // the 413 instead of losing it to EPIPE or a reset.
    const mb = 1024 * 1024
    const big = JSON.stringify({ ...claims('big'), keyCustody: 'issuer', attestation: { pad: 'x'.repeat(mb) } })
    const bigFlat = JSON.stringify({ reason: 'x'.repeat(mb) })
    const headers = { 'content-type': 'application/json' }
    await refused(413, 'ERR_PAYLOAD_TOO_LARGE', 'POST', '/v1/agents', { key: alice.apiKey, raw: big, headers })
    await refused(413, 'ERR_PAYLOAD_TOO_LARGE', 'POST', `/v1/agents/${aliceAgent.did}/renew`, { raw: bigFlat, headers })
    await refused(413, 'ERR_PAYLOAD_TOO_LARGE', 'POST', `/v1/agents/${aliceAgent.did}/revoke`, { key: issuer.adminKey, raw: bigFlat, headers })
    await refused(413, 'ERR_PAYLOAD_TOO_LARGE', 'POST', `/v1/credentials/${aliceAgent.credentialId}/revoke`, { key: issuer.adminKey, raw: bigFlat, headers })
    await refused(413, 'ERR_PAYLOAD_TOO_LARGE', 'POST', '/v1/orchestrators', { key: issuer.adminKey, raw: bigFlat, headers })
    // Unauthenticated 1 MB bodies are refused too (either before or after reading the key).
    const r = await call('POST', '/v1/agents', { raw: big, headers })
    expect([401, 413]).toContain(r.status)
    expect(errorShape(r).code).toMatch(/^ERR_(UNAUTHENTICATED|PAYLOAD_TOO_LARGE)$/)
    // Repeated, 1 MB and 4 MB, declared and chunked (no Content-Length): the documented 413 body each time.
    for (let i = 0; i < 6; i++) {
      for (const size of [mb, 4 * mb]) {
        const body = JSON.stringify({ reason: 'x'.repeat(size) })
        await refused(413, 'ERR_PAYLOAD_TOO_LARGE', 'POST', `/v1/agents/${aliceAgent.did}/revoke`, { key: issuer.adminKey, raw: body, headers })
        const chunked = await uploadChunked(`/v1/agents/${aliceAgent.did}/revoke`, issuer.adminKey, size)
        expect(chunked.status, `chunked ${size}: ${chunked.text.slice(0, 200)}`).toBe(413)
        expect(chunked.headers.get('content-type') ?? '').toMatch(/^application\/json/)
        expect(JSON.parse(chunked.text)).toEqual({ error: { code: 'ERR_PAYLOAD_TOO_LARGE', message: expect.any(String) } })
      }
    }
    expect((await call('GET', `/v1/agents/${aliceAgent.did}`, { key: issuer.adminKey })).body.status).toBe('active')
  })

  it('bad JSON and wrong content types are refused (400 ERR_INVALID_INPUT, 415 ERR_UNSUPPORTED_MEDIA_TYPE)', async () => {
    const json = { 'content-type': 'application/json' }
    const routes: [string, string | undefined][] = [
      ['/v1/agents', alice.apiKey],
      [`/v1/agents/${aliceAgent.did}/renew`, undefined],
      [`/v1/agents/${aliceAgent.did}/revoke`, issuer.adminKey],
      [`/v1/credentials/${aliceAgent.credentialId}/revoke`, issuer.adminKey],
      ['/v1/orchestrators', issuer.adminKey],
    ]
    for (const [path, key] of routes) {
      const k = key === undefined ? {} : { key }
      for (const raw of ['{', '{"reason":', 'nul', '[1,', '{"a":1}}', '\u0000', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}']) {
        await refused(400, 'ERR_INVALID_INPUT', 'POST', path, { ...k, raw, headers: json })
      }
      for (const body of [[], 'text', 42, null, true]) {
        await refused(400, 'ERR_INVALID_INPUT', 'POST', path, { ...k, raw: JSON.stringify(body), headers: json })
      }
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream']) {
        await refused(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', 'POST', path, { ...k, raw: '{"reason":"x","name":"x"}', headers: { 'content-type': type } })
      }
    }
    // An empty body with a JSON content type, and a JSON body with none.
    await refused(400, 'ERR_INVALID_INPUT', 'POST', '/v1/agents', { key: alice.apiKey, raw: '', headers: json })
    await refused(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', 'POST', '/v1/agents', { key: alice.apiKey, raw: new TextEncoder().encode(JSON.stringify({ keyCustody: 'issuer', ...claims('no-type') })) })
    expect((await call('GET', `/v1/agents/${aliceAgent.did}`, { key: issuer.adminKey })).body.status).toBe('active')
  })

  it('unknown and mistyped fields are 400 ERR_INVALID_INPUT', async () => {
    const spawn = (extra: Record<string, unknown>, base: Record<string, unknown> = { keyCustody: 'issuer', ...claims('typed') }) =>
      refused(400, 'ERR_INVALID_INPUT', 'POST', '/v1/agents', { key: alice.apiKey, json: { ...base, ...extra } })
    const valid = await agentHeldSpawn(did, 'typed')
    // Unknown fields, at the top and nested.
    await spawn({ admin: true })
    await spawn({ status: 'revoked' })
    await spawn({ model: { name: 'm', version: '1', weights: 'x' } })
    await spawn({ id: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK' })
    await spawn({ privateJwk: {} })
    // Mistyped fields.
    for (const [field, value] of Object.entries({
      purpose: 42, controller: null, model: 'gpt', toolProfile: { a: 1 }, policyTier: ['x'], dataAccessClass: 'secret',
      attestation: 'signed', lifetimeSec: '3600', keyCustody: 'both',
    })) await spawn({ [field]: value })
    await spawn({ lifetimeSec: 1e12 })
    await spawn({ lifetimeSec: 59 })
    await spawn({ lifetimeSec: 3600.5 })
    await spawn({ toolProfile: ['a', 'a'] })
    await spawn({ purpose: '' })
    await spawn({ policyTier: 'has space' })
    await spawn({ model: { name: 'm' } })
    await spawn({ purpose: undefined })
    await spawn({ proof: valid.body.proof })
    await spawn({ did: valid.did })
    await spawn({ proof: 123 }, valid.body)
    await spawn({ proof: '' }, valid.body)
    await spawn({ proof: undefined }, valid.body)
    await spawn({ did: 'did:web:acme.example' }, valid.body)
    await spawn({ did: 5 }, valid.body)
    // The valid proof was never consumed by those refusals.
    expect((await call('POST', '/v1/agents', { key: alice.apiKey, json: valid.body })).status).toBe(201)

    const renew = await renewBody(aliceAgent.privateJwk)
    await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${aliceAgent.did}/renew`, { json: { ...renew, extra: 1 } })
    await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${aliceAgent.did}/renew`, { json: { ...renew, lifetimeSec: 'long' } })
    await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${aliceAgent.did}/renew`, { json: { proof: 1 } })
    await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${aliceAgent.did}/renew`, { json: {} })

    const admin = { key: issuer.adminKey }
    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 42 }, { reason: 'x'.repeat(513) }, { reason: 'a\u0000b' }, { reason: 'ok', force: true }]) {
      await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${aliceAgent.did}/revoke`, { ...admin, json: body })
      await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/credentials/${aliceAgent.credentialId}/revoke`, { ...admin, json: body })
    }
    await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${aliceAgent.did}/revoke`, admin)
    for (const body of [{}, { name: '' }, { name: 5 }, { name: '../etc' }, { name: 'x'.repeat(65) }, { name: 'ok', admin: true }]) {
      await refused(400, 'ERR_INVALID_INPUT', 'POST', '/v1/orchestrators', { ...admin, json: body })
    }
    await refused(409, 'ERR_CONFLICT', 'POST', '/v1/orchestrators', { ...admin, json: { name: 'alice' } })
    for (const q of ['limit=0', 'limit=abc', 'limit=501', 'limit=-1', 'status=gone', 'foo=1', 'status=active&status=revoked', 'cursor=garbage', 'cursor=' + 'A'.repeat(600), 'purpose=']) {
      await refused(400, 'ERR_INVALID_INPUT', 'GET', `/v1/agents?${q}`, admin)
    }
    expect((await call('GET', `/v1/agents/${aliceAgent.did}`, admin)).body.status).toBe('active')
  })

  it('bad DIDs, credential ids, status-list ids and orchestrator ids in paths are refused', async () => {
    const admin = { key: issuer.adminKey }
    const badDids = [
      'did:key:zzz',
      'did:web:acme.example',
      'did:key:z6Mk',
      `${aliceAgent.did}x`,
      aliceAgent.did.slice(0, -1),
      // A valid did:key of another key type (secp256k1, zQ3s…) is not an agent DID.
      'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme',
      'not-a-did',
      '%00',
      'did%3Akey%3Az6Mk%2F..%2F..',
      '..%2F..%2Fetc%2Fpasswd',
      encodeURIComponent('did:key:z6Mk<script>'),
    ]
    for (const bad of badDids) {
      await refused(400, 'ERR_INVALID_INPUT', 'GET', `/v1/agents/${bad}`, admin)
      await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${bad}/revoke`, { ...admin, json: { reason: 'x' } })
      await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${bad}/renew`, { json: await renewBody(aliceAgent.privateJwk) })
    }
    // Longer than the router's parameter cap, and malformed percent-encodings: our error body too.
    for (const bad of [`did:key:z6Mk${'a'.repeat(300)}`, 'x'.repeat(5000), '%E0%A4%A', '%', 'did%3Akey%3A%ZZ']) {
      await refused(400, 'ERR_INVALID_INPUT', 'GET', `/v1/agents/${bad}`, admin)
      await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/agents/${bad}/revoke`, { ...admin, json: { reason: 'x' } })
      await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/credentials/${bad}/revoke`, { ...admin, json: { reason: 'x' } })
    }
    // A well-formed DID that is not registered.
    await refused(404, 'ERR_NOT_FOUND', 'GET', `/v1/agents/${generateEd25519KeyPair().did}`, admin)
    await refused(404, 'ERR_NOT_FOUND', 'POST', `/v1/agents/${generateEd25519KeyPair().did}/revoke`, { ...admin, json: { reason: 'x' } })

    const uuid = aliceAgent.credentialId.slice('urn:uuid:'.length)
    for (const bad of ['abc', uuid, `urn:uuid:${uuid.toUpperCase()}`, `urn:uuid:${uuid}0`, 'urn:uuid:', `urn:uuid:${uuid.replace(/-/g, '')}`, `urn:isbn:${uuid}`, '%00', `${encodeURIComponent(aliceAgent.credentialId)}%27%20OR%201%3D1`]) {
      await refused(400, 'ERR_INVALID_INPUT', 'POST', `/v1/credentials/${bad}/revoke`, { ...admin, json: { reason: 'x' } })
    }
    await refused(404, 'ERR_NOT_FOUND', 'POST', '/v1/credentials/urn:uuid:00000000-0000-4000-8000-000000000000/revoke', { ...admin, json: { reason: 'x' } })

    for (const bad of ['0', 'abc', '1.5', '-1', '01', '99999', '1%00', '9'.repeat(12), '..%2F1']) {
      await refused(404, 'ERR_NOT_FOUND', 'GET', `/v1/status-lists/${bad}`)
    }
    await refused(404, 'ERR_NOT_FOUND', 'DELETE', '/v1/orchestrators/nobody', admin)
    await refused(404, 'ERR_NOT_FOUND', 'DELETE', '/v1/orchestrators/orch_doesnotexist', admin)
    expect((await call('GET', `/v1/agents/${aliceAgent.did}`, admin)).body.status).toBe('active')
  })

  it('unknown routes and methods are 404 JSON; public routes answer', async () => {
    for (const [method, path] of [
      ['GET', '/'], ['GET', '/nope'], ['GET', '/v1'], ['GET', '/v2/agents'], ['POST', '/v1/agent'], ['PUT', '/v1/agents'],
      ['DELETE', `/v1/agents/${aliceAgent.did}`], ['PATCH', `/v1/agents/${aliceAgent.did}`], ['GET', `/v1/agents/${aliceAgent.did}/renew`],
      ['GET', '/v1/credentials'], ['POST', '/v1/status-lists/1'], ['GET', '/v1/agents/a/b/c/d'], ['GET', '/.env'], ['GET', '/%2e%2e/%2e%2e/etc/passwd'],
      ['GET', '/.well-known/did.json'],
    ] as const) {
      await refused(404, 'ERR_NOT_FOUND', method, path, { key: issuer.adminKey })
    }
    expect((await call('GET', '/healthz')).status).toBe(200)
    expect((await call('GET', '/openapi.json')).status).toBe(200)
    expect((await call('GET', '/v1/issuer')).body.did).toBe(did)
    const list = await call('GET', '/v1/status-lists/1')
    expect(list.status).toBe(200)
    expect(list.headers.get('content-type')).toMatch(/^application\/vc\+jwt/)
    const etag = list.headers.get('etag')!
    expect((await call('GET', '/v1/status-lists/1', { headers: { 'if-none-match': etag } })).status).toBe(304)
  })

  it('never answered 500, never leaked a stack trace, never logged an internal error', () => {
    const bad = seen.filter((s) => s.status >= 500)
    expect(bad).toEqual([])
    for (const s of seen) expect(s.text, s.route).not.toMatch(/\bat [^\s]+ \(|node:internal|\/src\/|\.ts:\d+|"stack"/)
    expect(issuer.stderr()).not.toMatch(/internal error/)
    const byStatus: Record<string, number> = {}
    for (const s of seen) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1
    console.log(`hostile input: ${seen.length} requests, by status ${JSON.stringify(byStatus)}`)
  })
})
