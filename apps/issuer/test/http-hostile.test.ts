// Hostile input on every route: each refusal has the error shape and a 4xx status, never a stack
// trace, never a 500, and writes nothing.
import { createHmac, randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { base64urlEncode } from '@agentid/core'
import {
  bearer,
  claims,
  counts,
  expectError,
  expectInvalid,
  harness,
  namedKey,
  proof,
  signRaw,
  spawnAgent,
  type Harness,
  type NamedKey,
  type SpawnResult,
} from './http-fixtures.js'

let h: Harness
let alice: NamedKey // an active agent of orchestrator acme
let aliceSpawn: SpawnResult
let carol: NamedKey // a revoked agent
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort()

beforeAll(async () => {
  h = await harness()
  alice = namedKey()
  aliceSpawn = await spawnAgent(h, alice)
  carol = namedKey()
  await spawnAgent(h, carol)
  const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${carol.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
  expect(res.statusCode).toBe(200)
})
afterAll(async () => { await h.close() })
afterEach(() => {
  // No payload reached Object.prototype.
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTO_KEYS)
  expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  expect(({} as Record<string, unknown>).isAdmin).toBeUndefined()
})

const nowSec = () => Math.floor(h.clock.now / 1000)
type Method = 'GET' | 'POST' | 'DELETE'

interface Send { method: Method; url: string; key?: string; payload?: unknown; headers?: Record<string, string> }
function send(o: Send): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...(o.key ? bearer(o.key) : {}), ...o.headers }
  let payload: string | Buffer | undefined
  if (typeof o.payload === 'string' || Buffer.isBuffer(o.payload)) payload = o.payload
  else if (o.payload !== undefined) {
    payload = JSON.stringify(o.payload)
    headers['content-type'] ??= 'application/json'
  }
  return h.app.inject({ method: o.method, url: o.url, headers, ...(payload === undefined ? {} : { payload }) })
}

/** Sends, asserts the error, and that the database did not change. */
async function refused(o: Send, status: number, code: string, field?: string): Promise<void> {
  const before = counts(h)
  const res = await send(o)
  const error = expectError(res, status, code)
  if (field !== undefined) expect(error.details?.field, res.body).toBe(field)
  expect(counts(h), `${o.method} ${o.url} wrote to the database`).toEqual(before)
}

const spawnBody = async (key: NamedKey, extra: Record<string, unknown> = {}) => ({ ...claims, did: key.did, proof: await proof(h, key), ...extra })
const spawn = (payload: unknown, key = h.orch.apiKey, headers?: Record<string, string>): Send => ({ method: 'POST', url: '/v1/agents', key, payload, ...(headers ? { headers } : {}) })
const renew = (did: string, payload: unknown, headers?: Record<string, string>): Send => ({ method: 'POST', url: `/v1/agents/${did}/renew`, payload, ...(headers ? { headers } : {}) })

/** Every route, with a well-formed request from the right caller. */
function routes(): (Send & { name: string; auth: 'none' | 'any' | 'orch' | 'admin' })[] {
  const cred = aliceSpawn.credentialId
  const o = h.orch.apiKey
  const a = h.adminKey
  return [
    { name: 'challenges', method: 'POST', url: '/v1/challenges', auth: 'any', key: o },
    { name: 'spawn', method: 'POST', url: '/v1/agents', payload: { ...claims, keyCustody: 'issuer' }, auth: 'orch', key: o },
    { name: 'list', method: 'GET', url: '/v1/agents', auth: 'any', key: o },
    { name: 'get', method: 'GET', url: `/v1/agents/${alice.did}`, auth: 'any', key: o },
    { name: 'renew', method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: 'a.b.c' }, auth: 'none' },
    { name: 'revoke agent', method: 'POST', url: `/v1/agents/${alice.did}/revoke`, payload: { reason: 'x' }, auth: 'admin', key: a },
    { name: 'revoke credential', method: 'POST', url: `/v1/credentials/${cred}/revoke`, payload: { reason: 'x' }, auth: 'admin', key: a },
    { name: 'status list', method: 'GET', url: new URL(aliceSpawn.status.statusListCredential).pathname, auth: 'none' },
    { name: 'add orchestrator', method: 'POST', url: '/v1/orchestrators', payload: { name: 'newco' }, auth: 'admin', key: a },
    { name: 'list orchestrators', method: 'GET', url: '/v1/orchestrators', auth: 'admin', key: a },
    { name: 'remove orchestrator', method: 'DELETE', url: `/v1/orchestrators/${h.other.id}`, auth: 'admin', key: a },
  ]
}

describe('Authorization', () => {
  const wrongKeys = (): [string, Record<string, string>][] => {
    const flip = (k: string) => k.slice(0, -1) + (k.endsWith('A') ? 'B' : 'A')
    return [
      ['missing', {}],
      ['empty', { authorization: '' }],
      ['scheme only', { authorization: 'Bearer' }],
      ['scheme and space', { authorization: 'Bearer ' }],
      ['Basic', { authorization: `Basic ${Buffer.from(`admin:${h.adminKey}`).toString('base64')}` }],
      ['no scheme', { authorization: h.adminKey }],
      ['two spaces', { authorization: `Bearer  ${h.adminKey}` }],
      ['trailing junk', { authorization: `Bearer ${h.adminKey} x` }],
      ['two keys', { authorization: `Bearer ${h.orch.apiKey}, Bearer ${h.adminKey}` }],
      ['bad characters', { authorization: `Bearer ${h.adminKey.slice(0, -1)}=` }],
      ['overlong', { authorization: `Bearer ${'A'.repeat(10_000)}` }],
      ['admin key, one character changed', { authorization: `Bearer ${flip(h.adminKey)}` }],
      ['orchestrator key, one character changed', { authorization: `Bearer ${flip(h.orch.apiKey)}` }],
      ['admin key truncated', { authorization: `Bearer ${h.adminKey.slice(0, -1)}` }],
      ['random admin-shaped key', { authorization: `Bearer aid_admin_${base64urlEncode(Buffer.alloc(32, 7))}` }],
      ['random orchestrator-shaped key', { authorization: `Bearer aid_orch_${base64urlEncode(Buffer.alloc(32, 7))}` }],
      ['admin key with an orchestrator prefix', { authorization: `Bearer aid_orch_${h.adminKey.slice('aid_admin_'.length)}` }],
      ['orchestrator hash as key', { authorization: `Bearer ${(h.service.store.db.prepare('SELECT key_hash FROM orchestrators WHERE id = ?').get(h.orch.id) as { key_hash: string }).key_hash}` }],
      ['a JWT', { authorization: `Bearer ${aliceSpawn.credential}` }],
      ['key in another header', { 'x-api-key': h.adminKey }],
    ]
  }

  it('every authenticated route answers 401 ERR_UNAUTHENTICATED to a missing, wrong or malformed key', async () => {
    for (const route of routes()) {
      if (route.auth === 'none') continue
      for (const [name, headers] of wrongKeys()) {
        const { key: _, ...rest } = route
        const before = counts(h)
        const res = await send({ ...rest, headers })
        expect(res.statusCode, `${route.name} / ${name}`).toBe(401)
        expectError(res, 401, 'ERR_UNAUTHENTICATED')
        expect(counts(h)).toEqual(before)
      }
      // A key in the query string is not a key.
      const res = await send({ method: route.method, url: `${route.url}${route.url.includes('?') ? '&' : '?'}apiKey=${h.adminKey}`, ...(route.payload ? { payload: route.payload } : {}) })
      expect([400, 401]).toContain(res.statusCode)
    }
  })

  it('an orchestrator key on admin routes is 403 ERR_FORBIDDEN, whatever the body', async () => {
    for (const route of routes().filter((r) => r.auth === 'admin')) {
      for (const key of [h.orch.apiKey, h.other.apiKey]) {
        await refused({ ...route, key }, 403, 'ERR_FORBIDDEN')
        if (route.method === 'POST') {
          // The caller is not allowed to ask at all: refusing the body would tell it how to ask.
          await refused({ ...route, key, payload: { bogus: true } }, 403, 'ERR_FORBIDDEN')
          await refused({ ...route, key, payload: [] }, 403, 'ERR_FORBIDDEN')
        }
      }
    }
    expect(h.service.store.orchestrators.byName('newco')).toBeUndefined()
  })

  it('an unauthenticated caller gets 401 before any validation of its body', async () => {
    for (const route of routes().filter((r) => r.method === 'POST' && r.payload !== undefined && r.auth !== 'none')) {
      const { key: _, ...rest } = route
      await refused({ ...rest, payload: { bogus: true } }, 401, 'ERR_UNAUTHENTICATED')
    }
  })

  it('the admin key cannot spawn (403 ERR_FORBIDDEN), in either custody mode', async () => {
    await refused(spawn({ ...claims, keyCustody: 'issuer' }, h.adminKey), 403, 'ERR_FORBIDDEN')
    await refused(spawn(await spawnBody(namedKey()), h.adminKey), 403, 'ERR_FORBIDDEN')
  })

  it("another orchestrator's agent is 404, as if it did not exist", async () => {
    await refused({ method: 'GET', url: `/v1/agents/${alice.did}`, key: h.other.apiKey }, 404, 'ERR_NOT_FOUND')
    await refused({ method: 'GET', url: `/v1/agents?orchestrator=${h.orch.id}`, key: h.other.apiKey }, 403, 'ERR_FORBIDDEN')
    const list = await send({ method: 'GET', url: '/v1/agents?limit=500', key: h.other.apiKey })
    expect(list.statusCode).toBe(200)
    expect(list.body).not.toContain(alice.did)
  })
})

describe('request bodies', () => {
  const bodyRoutes = (): (Send & { name: string })[] => [
    { name: 'spawn', ...spawn(undefined) },
    { name: 'renew', ...renew(alice.did, undefined) },
    { name: 'revoke agent', method: 'POST', url: `/v1/agents/${alice.did}/revoke`, key: h.adminKey },
    { name: 'revoke credential', method: 'POST', url: `/v1/credentials/${aliceSpawn.credentialId}/revoke`, key: h.adminKey },
    { name: 'add orchestrator', method: 'POST', url: '/v1/orchestrators', key: h.adminKey },
  ]
  const json = { 'content-type': 'application/json' }

  it('bad JSON and an empty JSON body are 400 ERR_INVALID_INPUT', async () => {
    for (const route of bodyRoutes()) {
      for (const text of ['{bad', '{"reason": "x"', '{"a":1}}', "{'a':1}", '{"a":01}', '\u0000', 'undefined', 'NaN', '{"a":1,}']) {
        await refused({ ...route, payload: text, headers: json }, 400, 'ERR_INVALID_INPUT')
      }
      await refused({ ...route, payload: '', headers: json }, 400, 'ERR_INVALID_INPUT')
      await refused({ ...route, payload: '   ', headers: json }, 400, 'ERR_INVALID_INPUT')
    }
  })

  it('arrays, strings, numbers, booleans and null as bodies are 400 ERR_INVALID_INPUT', async () => {
    for (const route of bodyRoutes()) {
      for (const text of ['[]', '[{"reason":"x","name":"x"}]', '"a string"', '42', 'true', 'null']) {
        const before = counts(h)
        const res = await send({ ...route, payload: text, headers: json })
        const error = expectError(res, 400, 'ERR_INVALID_INPUT')
        // `null` on a revocation reads as "no body": the reason is what is missing.
        expect(error.details?.field, `${route.name} ${text}`).toBe(text === 'null' && route.name.startsWith('revoke') ? 'reason' : 'body')
        expect(counts(h)).toEqual(before)
      }
    }
  })

  it('a body that is not JSON is 415 ERR_UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const route of bodyRoutes()) {
      const text = JSON.stringify({ ...claims, reason: 'x', name: 'x' })
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonx', 'application/octet-stream', 'text/json']) {
        await refused({ ...route, payload: text, headers: { 'content-type': type } }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE')
      }
      // A body without a content type.
      await refused({ ...route, payload: Buffer.from(text) }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE')
    }
  })

  it('a body over 64 KiB is 413 ERR_PAYLOAD_TOO_LARGE, on every route', async () => {
    const big = JSON.stringify({ ...claims, purpose: 'x'.repeat(64 * 1024) })
    // Every route that reads a body (GET bodies are not read at all).
    for (const route of [...bodyRoutes(), ...routes().filter((r) => r.method !== 'GET')]) {
      await refused({ ...route, payload: big, headers: json }, 413, 'ERR_PAYLOAD_TOO_LARGE')
    }
    for (const route of routes().filter((r) => r.method === 'GET')) {
      const res = await send({ ...route, payload: big, headers: json })
      expect(res.statusCode, route.name).toBe(200)
    }
    // Just under the limit is read (and refused for what it says, not for its size).
    const under = JSON.stringify({ ...claims, purpose: 'x'.repeat(60 * 1024), keyCustody: 'issuer' })
    await refused({ ...spawn(under), headers: json }, 400, 'ERR_INVALID_INPUT', 'purpose')
  })

  it('__proto__ and constructor.prototype payloads are 400 and pollute nothing', async () => {
    const payloads = [
      '{"__proto__":{"polluted":true,"isAdmin":true}}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      `{"reason":"x","name":"x","__proto__":{"polluted":true}}`,
      JSON.stringify({ ...claims, keyCustody: 'issuer' }).replace('"reasoner"', '"reasoner","__proto__":{"polluted":true}'),
      JSON.stringify({ ...claims, keyCustody: 'issuer', attestation: { a: 1 } }).replace('{"a":1}', '{"a":{"b":{"__proto__":{"polluted":true}}}}'),
      JSON.stringify({ ...claims, keyCustody: 'issuer', attestation: { a: 1 } }).replace('{"a":1}', '{"constructor":{"prototype":{"polluted":true}}}'),
      '{"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":true}}',
    ]
    for (const route of bodyRoutes()) {
      for (const text of payloads) await refused({ ...route, payload: text, headers: json }, 400, 'ERR_INVALID_INPUT')
      // `constructor` and `prototype` as plain keys are just unknown fields.
      const res = await send({ ...route, payload: '{"constructor":"x","prototype":"y"}', headers: json })
      expectError(res, 400, 'ERR_INVALID_INPUT')
    }
  })

  it('deeply nested JSON is 400, not a stack overflow', async () => {
    const deepArray = '['.repeat(20_000) + ']'.repeat(20_000)
    const deepObject = '{"a":'.repeat(8_000) + '1' + '}'.repeat(8_000)
    for (const route of bodyRoutes()) await refused({ ...route, payload: deepArray, headers: json }, 400, 'ERR_INVALID_INPUT', 'body')
    // Refused by the body parser (nesting over 32) before the claims are read: the field is the body.
    await refused({ ...spawn(JSON.stringify({ ...claims, keyCustody: 'issuer' }).replace(/}$/, `,"attestation":${deepObject}}`)), headers: json }, 400, 'ERR_INVALID_INPUT', 'body')
  })
})

describe('POST /v1/agents: fields', () => {
  it('unknown fields are refused, naming the field', async () => {
    for (const extra of ['extra', 'id', 'iss', 'status', 'orchestrator', 'privateJwk', 'credential', 'Proof', 'keycustody']) {
      await refused(spawn({ ...claims, keyCustody: 'issuer', [extra]: 'x' }), 400, 'ERR_INVALID_INPUT', extra)
      await refused(spawn(await spawnBody(namedKey(), { [extra]: 'x' })), 400, 'ERR_INVALID_INPUT', extra)
    }
  })

  it('missing fields are refused, naming the field', async () => {
    const k = namedKey()
    await refused(spawn({ ...claims }), 400, 'ERR_INVALID_INPUT', 'proof')
    await refused(spawn({ ...claims, did: k.did }), 400, 'ERR_INVALID_INPUT', 'proof')
    await refused(spawn({}), 400, 'ERR_INVALID_INPUT')
    for (const field of ['purpose', 'controller', 'model', 'toolProfile', 'policyTier', 'dataAccessClass'] as const) {
      const { [field]: _, ...rest } = claims
      await refused(spawn({ ...rest, did: k.did, proof: await proof(h, k) }), 400, 'ERR_INVALID_INPUT', field)
      await refused(spawn({ ...rest, keyCustody: 'issuer' }), 400, 'ERR_INVALID_INPUT', field)
    }
    await refused(spawn({ ...claims, model: { provider: 'p', name: 'n' }, keyCustody: 'issuer' }), 400, 'ERR_INVALID_INPUT', 'model.version')
  })

  it('mistyped fields are refused, naming the field', async () => {
    const k = namedKey()
    const p = await proof(h, k)
    const cases: [Record<string, unknown>, string][] = [
      [{ keyCustody: 'both' }, 'keyCustody'],
      [{ keyCustody: 1 }, 'keyCustody'],
      [{ keyCustody: null }, 'keyCustody'],
      [{ keyCustody: ['agent'] }, 'keyCustody'],
      [{ did: 123 }, 'did'],
      [{ did: 'did:web:acme.example' }, 'did'],
      [{ did: 'did:key:zBad' }, 'did'],
      [{ did: `${k.did}\n` }, 'did'],
      [{ did: ` ${k.did}` }, 'did'],
      [{ did: 'did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc' }, 'did'],
      [{ proof: 123 }, 'proof'],
      [{ proof: '' }, 'proof'],
      [{ proof: null }, 'proof'],
      [{ proof: { jwt: p } }, 'proof'],
      [{ proof: [p] }, 'proof'],
      [{ proof: 'x'.repeat(8193) }, 'proof'],
      [{ lifetimeSec: '3600' }, 'lifetimeSec'],
      [{ lifetimeSec: 59 }, 'lifetimeSec'],
      [{ lifetimeSec: 0 }, 'lifetimeSec'],
      [{ lifetimeSec: -60 }, 'lifetimeSec'],
      [{ lifetimeSec: 86_401 }, 'lifetimeSec'],
      [{ lifetimeSec: 600.5 }, 'lifetimeSec'],
      [{ lifetimeSec: 1e308 }, 'lifetimeSec'],
      [{ lifetimeSec: null }, 'lifetimeSec'],
      [{ lifetimeSec: true }, 'lifetimeSec'],
      [{ purpose: 42 }, 'purpose'],
      [{ purpose: '' }, 'purpose'],
      [{ purpose: ['a'] }, 'purpose'],
      [{ controller: { id: 'x' } }, 'controller'],
      [{ model: 'gpt' }, 'model'],
      [{ model: { name: 'n', version: 'v', weights: 'x' } }, 'model.weights'],
      [{ toolProfile: [1] }, 'toolProfile[0]'],
      [{ toolProfile: ['a', 'a'] }, 'toolProfile[1]'],
      [{ toolProfile: 7 }, 'toolProfile'],
      [{ policyTier: 'bad tier' }, 'policyTier'],
      [{ dataAccessClass: 'secret' }, 'dataAccessClass'],
      [{ dataAccessClass: 'INTERNAL' }, 'dataAccessClass'],
      [{ attestation: [] }, 'attestation'],
      [{ attestation: 'signed' }, 'attestation'],
    ]
    for (const [patch, field] of cases) {
      await refused(spawn({ ...claims, did: k.did, proof: p, ...patch }), 400, 'ERR_INVALID_INPUT', field)
    }
    // With keyCustody "issuer", did and proof are not allowed.
    await refused(spawn({ ...claims, keyCustody: 'issuer', did: k.did }), 400, 'ERR_INVALID_INPUT', 'did')
    await refused(spawn({ ...claims, keyCustody: 'issuer', proof: p }), 400, 'ERR_INVALID_INPUT', 'proof')
    // None of it consumed the proof: it still spawns.
    expect((await send(spawn({ ...claims, did: k.did, proof: p }))).statusCode).toBe(201)
  })

  it('lifetimeSec at the bounds is accepted', async () => {
    for (const lifetimeSec of [60, 86_400]) {
      const res = await send(spawn({ ...claims, keyCustody: 'issuer', lifetimeSec }))
      expect(res.statusCode).toBe(201)
      expect(Date.parse((res.json() as SpawnResult).expiresAt) / 1000).toBe(nowSec() + lifetimeSec)
    }
  })
})

describe('proofs of possession', () => {
  /** A proof with arbitrary claims, really signed by `signer`, typ agentid-pop+jwt unless overridden. */
  const forged = (signer: NamedKey, payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    signRaw(signer, { alg: 'EdDSA', typ: 'agentid-pop+jwt', ...header }, {
      iss: alice.did, sub: alice.did, aud: h.issuerDid, purpose: 'spawn', iat: nowSec(), exp: nowSec() + 60, jti: randomUUID(), ...payload,
    })

  it('a replayed proof is 409 ERR_REPLAY, after success and after refusal alike', async () => {
    const k = namedKey()
    const body = await spawnBody(k)
    expect((await send(spawn(body))).statusCode).toBe(201)
    await refused(spawn(body), 409, 'ERR_REPLAY')
    await refused(spawn(body, h.other.apiKey), 409, 'ERR_REPLAY')
    const renewBody = { proof: await proof(h, k, { purpose: 'renew' }) }
    expect((await send(renew(k.did, renewBody))).statusCode).toBe(201)
    await refused(renew(k.did, renewBody), 409, 'ERR_REPLAY')
  })

  it('a used challenge is 409 ERR_REPLAY; an unknown or expired one too, and nothing is written', async () => {
    const challenge = async () => ((await send({ method: 'POST', url: '/v1/challenges', key: h.orch.apiKey })).json() as { nonce: string }).nonce
    const used = await challenge()
    const first = namedKey()
    expect((await send(spawn(await spawnBody(first, { proof: await proof(h, first, { nonce: used }) })))).statusCode).toBe(201)
    const second = namedKey()
    await refused(spawn({ ...claims, proof: await proof(h, second, { nonce: used }) }), 409, 'ERR_REPLAY')
    await refused(renew(first.did, { proof: await proof(h, first, { purpose: 'renew', nonce: used }) }), 409, 'ERR_REPLAY')
    await refused(spawn({ ...claims, proof: await proof(h, second, { nonce: base64urlEncode(Buffer.alloc(24, 1)) }) }), 409, 'ERR_REPLAY')
    await refused(spawn({ ...claims, proof: await proof(h, second, { nonce: 'x' }) }), 409, 'ERR_REPLAY')

    const stale = await challenge()
    const saved = h.clock.now
    try {
      h.clock.now += 121_000
      await refused(spawn({ ...claims, proof: await proof(h, second, { nonce: stale }) }), 409, 'ERR_REPLAY')
    } finally {
      h.clock.now = saved
    }
    // The refused attempts did not spend `second`'s fresh proofs or the stale challenge's row.
    expect((h.service.store.db.prepare('SELECT used FROM challenges WHERE nonce = ?').get(stale) as { used: number }).used).toBe(0)
    expect((await send(spawn({ ...claims, proof: await proof(h, second, { nonce: await challenge() }) }))).statusCode).toBe(201)
  })

  it('an expired or future-dated proof is 401', async () => {
    const k = namedKey()
    const at = (deltaSec: number) => () => h.clock.now + deltaSec * 1000
    await refused(spawn({ ...claims, proof: await proof(h, k, { clock: at(-400), ttlSec: 60 }) }), 401, 'ERR_EXPIRED')
    await refused(spawn({ ...claims, proof: await proof(h, k, { clock: at(-91), ttlSec: 60 }) }), 401, 'ERR_EXPIRED')
    await refused(spawn({ ...claims, proof: await proof(h, k, { clock: at(120) }) }), 401, 'ERR_NOT_YET_VALID')
    await refused(spawn({ ...claims, proof: await proof(h, k, { clock: at(3600) }) }), 401, 'ERR_NOT_YET_VALID')
    await refused(renew(alice.did, { proof: await proof(h, alice, { purpose: 'renew', clock: at(-400) }) }), 401, 'ERR_EXPIRED')
    await refused(renew(alice.did, { proof: await proof(h, alice, { purpose: 'renew', clock: at(120) }) }), 401, 'ERR_NOT_YET_VALID')
    // Within the 30 s skew it is fine.
    expect((await send(spawn({ ...claims, proof: await proof(h, k, { clock: at(20) }) }))).statusCode).toBe(201)
  })

  it('a proof for another issuer is 401 ERR_AUDIENCE_MISMATCH', async () => {
    const k = namedKey()
    for (const audience of [namedKey().did, 'did:web:issuer.test', `${h.issuerDid} `, 'http://issuer.test']) {
      await refused(spawn({ ...claims, proof: await proof(h, k, { audience }) }), 401, 'ERR_AUDIENCE_MISMATCH')
    }
    await refused(spawn({ ...claims, proof: await forged(k, { iss: k.did, sub: k.did, aud: [h.issuerDid] }) }), 401, 'ERR_AUDIENCE_MISMATCH')
    await refused(renew(alice.did, { proof: await proof(h, alice, { purpose: 'renew', audience: namedKey().did }) }), 401, 'ERR_AUDIENCE_MISMATCH')
  })

  it('a proof for the other purpose is refused: renew on spawn, spawn on renew', async () => {
    const k = namedKey()
    await refused(spawn({ ...claims, proof: await proof(h, k, { purpose: 'renew' }) }), 400, 'ERR_MALFORMED')
    await refused(renew(alice.did, { proof: await proof(h, alice, { purpose: 'spawn' }) }), 400, 'ERR_MALFORMED')
    await refused(spawn({ ...claims, proof: await forged(k, { iss: k.did, sub: k.did, purpose: 'admin' }) }), 400, 'ERR_MALFORMED')
    await refused(spawn({ ...claims, proof: await forged(k, { iss: k.did, sub: k.did, purpose: undefined }) }), 400, 'ERR_MALFORMED')
  })

  it('a did that does not match the proof is 401 ERR_KEY_MISMATCH', async () => {
    const k = namedKey()
    const mallory = namedKey()
    await refused(spawn({ ...claims, did: mallory.did, proof: await proof(h, k) }), 401, 'ERR_KEY_MISMATCH')
    // Renewing alice with bob's (valid) proof.
    await refused(renew(alice.did, { proof: await proof(h, mallory, { purpose: 'renew' }) }), 401, 'ERR_KEY_MISMATCH')
  })

  it('a proof signed by another key than its iss is refused', async () => {
    const mallory = namedKey()
    // Claims to be a fresh agent, signed by mallory.
    const victim = namedKey()
    await refused(spawn({ ...claims, proof: await forged(mallory, { iss: victim.did, sub: victim.did }) }), 401, 'ERR_SIGNATURE_INVALID')
    await refused(spawn({ ...claims, did: victim.did, proof: await forged(mallory, { iss: victim.did, sub: victim.did }) }), 401, 'ERR_SIGNATURE_INVALID')
    // Claims to be alice, to renew her credential.
    await refused(renew(alice.did, { proof: await forged(mallory, { purpose: 'renew' }) }), 401, 'ERR_SIGNATURE_INVALID')
    // kid naming mallory's key while iss is alice.
    await refused(renew(alice.did, { proof: await forged(mallory, { purpose: 'renew' }, { kid: mallory.keyId }) }), 401, 'ERR_KEY_MISMATCH')
    // A valid proof with one bit of the signature flipped.
    const good = await proof(h, victim)
    const sig = Buffer.from(good.split('.')[2]!, 'base64url')
    sig[0]! ^= 1
    await refused(spawn({ ...claims, proof: `${good.split('.').slice(0, 2).join('.')}.${base64urlEncode(sig)}` }), 401, 'ERR_SIGNATURE_INVALID')
    // Payload swapped under a valid signature.
    const other = await proof(h, victim)
    await refused(spawn({ ...claims, proof: [good.split('.')[0], other.split('.')[1], good.split('.')[2]].join('.') }), 401, 'ERR_SIGNATURE_INVALID')
  })

  it('alg none, HS256 and other algorithms are 400 ERR_UNSUPPORTED_ALG', async () => {
    const k = namedKey()
    const enc = (o: unknown) => base64urlEncode(Buffer.from(JSON.stringify(o)))
    const payload = { iss: k.did, sub: k.did, aud: h.issuerDid, purpose: 'spawn', iat: nowSec(), exp: nowSec() + 60, jti: randomUUID() }
    const none = `${enc({ alg: 'none', typ: 'agentid-pop+jwt' })}.${enc(payload)}.`
    // HS256 keyed with the agent's public key: the classic algorithm-confusion forgery.
    const hsInput = `${enc({ alg: 'HS256', typ: 'agentid-pop+jwt' })}.${enc(payload)}`
    const hs = `${hsInput}.${base64urlEncode(createHmac('sha256', Buffer.from(k.publicJwk.x, 'base64url')).update(hsInput).digest())}`
    const forgeries = [none, `${none}${base64urlEncode(Buffer.alloc(64))}`, hs]
    for (const alg of ['None', 'NONE', 'ES256', 'RS256', 'Ed25519', 'eddsa', 'EdDSA ', '']) {
      forgeries.push(await signRaw(k, { alg, typ: 'agentid-pop+jwt' }, payload))
    }
    forgeries.push(await signRaw(k, { typ: 'agentid-pop+jwt' }, payload))
    for (const p of forgeries) {
      await refused(spawn({ ...claims, proof: p }), 400, 'ERR_UNSUPPORTED_ALG')
      await refused(spawn({ ...claims, did: k.did, proof: p }), 400, 'ERR_UNSUPPORTED_ALG')
    }
    const renewPayload = { ...payload, iss: alice.did, sub: alice.did, purpose: 'renew' }
    await refused(renew(alice.did, { proof: `${enc({ alg: 'none', typ: 'agentid-pop+jwt' })}.${enc(renewPayload)}.` }), 400, 'ERR_UNSUPPORTED_ALG')
  })

  it('malformed proofs are 400 ERR_MALFORMED (or another 4xx code), never accepted', async () => {
    const k = namedKey()
    const malformed = [
      'a.b.c', 'not a jwt', '...', 'a.b', 'a.b.c.d', `${(await proof(h, k)).slice(0, -2)}`,
      await forged(k, { iss: k.did, sub: k.did }, { typ: 'JWT' }),
      await forged(k, { iss: k.did, sub: k.did }, { typ: undefined }),
      await forged(k, { iss: k.did, sub: alice.did }),
      await forged(k, { iss: k.did, sub: k.did, jti: 'short' }),
      await forged(k, { iss: k.did, sub: k.did, jti: undefined }),
      await forged(k, { iss: k.did, sub: k.did, exp: nowSec() + 301 }),
      await forged(k, { iss: k.did, sub: k.did, exp: nowSec() }),
      await forged(k, { iss: k.did, sub: k.did, iat: String(nowSec()) }),
      await forged(k, { iss: k.did, sub: k.did, iat: undefined }),
      await forged(k, { iss: k.did, sub: k.did, nonce: 7 }),
      await forged(k, { iss: k.did, sub: k.did }, { crit: ['exp'] }),
      await forged(k, { iss: 'did:web:acme.example', sub: 'did:web:acme.example' }),
      await forged(k, { iss: undefined, sub: undefined }),
    ]
    for (const p of malformed) {
      const before = counts(h)
      const res = await send(spawn({ ...claims, proof: p }))
      expect(res.statusCode, p).toBeGreaterThanOrEqual(400)
      expect(res.statusCode, p).toBeLessThan(500)
      expectError(res, res.statusCode, (res.json() as { error: { code: string } }).error.code)
      expect(counts(h)).toEqual(before)
    }
    await refused(spawn({ ...claims, proof: 'a.b.c' }), 400, 'ERR_MALFORMED')
    await refused(spawn({ ...claims, proof: await forged(k, { iss: k.did, sub: k.did }, { typ: 'JWT' }) }), 400, 'ERR_MALFORMED')
    await refused(spawn({ ...claims, proof: await forged(k, { iss: k.did, sub: k.did, exp: nowSec() + 301 }) }), 400, 'ERR_MALFORMED')
  })

  it('spawning a DID twice is 409 ERR_CONFLICT, whichever orchestrator asks', async () => {
    await refused(spawn(await spawnBody(alice)), 409, 'ERR_CONFLICT')
    await refused(spawn(await spawnBody(alice), h.other.apiKey), 409, 'ERR_CONFLICT')
    await refused(spawn(await spawnBody(carol)), 409, 'ERR_CONFLICT') // revoked agents stay revoked
  })
})

describe('POST /v1/agents/:did/renew: refusals', () => {
  it('an unknown agent is 404, a revoked one 403 ERR_REVOKED', async () => {
    const stranger = namedKey()
    await refused(renew(stranger.did, { proof: await proof(h, stranger, { purpose: 'renew' }) }), 404, 'ERR_NOT_FOUND')
    await refused(renew(carol.did, { proof: await proof(h, carol, { purpose: 'renew' }) }), 403, 'ERR_REVOKED')
  })

  it('fields: missing, unknown, mistyped, out of range', async () => {
    const p = await proof(h, alice, { purpose: 'renew' })
    await refused(renew(alice.did, {}), 400, 'ERR_INVALID_INPUT', 'proof')
    await refused(renew(alice.did, { lifetimeSec: 600 }), 400, 'ERR_INVALID_INPUT', 'proof')
    await refused(renew(alice.did, { proof: p, extra: 1 }), 400, 'ERR_INVALID_INPUT', 'extra')
    await refused(renew(alice.did, { proof: p, purpose: 'other' }), 400, 'ERR_INVALID_INPUT', 'purpose')
    await refused(renew(alice.did, { proof: p, did: alice.did }), 400, 'ERR_INVALID_INPUT', 'did')
    await refused(renew(alice.did, { proof: 42 }), 400, 'ERR_INVALID_INPUT', 'proof')
    for (const lifetimeSec of [59, 86_401, '600', 600.5, null]) await refused(renew(alice.did, { proof: p, lifetimeSec }), 400, 'ERR_INVALID_INPUT', 'lifetimeSec')
    // Not spent by the refusals.
    expect((await send(renew(alice.did, { proof: p }))).statusCode).toBe(201)
  })

  it('a renew without a body, or with a non-JSON body', async () => {
    await refused({ method: 'POST', url: `/v1/agents/${alice.did}/renew` }, 400, 'ERR_INVALID_INPUT', 'body')
    await refused(renew(alice.did, 'proof=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE')
  })
})

describe('revocation and orchestrator bodies', () => {
  const revokes = () => [`/v1/agents/${alice.did}/revoke`, `/v1/credentials/${aliceSpawn.credentialId}/revoke`]

  it('reason: missing, mistyped, empty, too long, with control characters; unknown fields', async () => {
    for (const url of revokes()) {
      const r = (payload?: unknown): Send => ({ method: 'POST', url, key: h.adminKey, ...(payload === undefined ? {} : { payload }) })
      await refused(r(), 400, 'ERR_INVALID_INPUT', 'reason')
      await refused(r({}), 400, 'ERR_INVALID_INPUT', 'reason')
      for (const reason of [42, null, '', '   ', 'x'.repeat(513), 'a\nb', 'tab\there', '\u0000', ['x'], { text: 'x' }]) {
        await refused(r({ reason }), 400, 'ERR_INVALID_INPUT', 'reason')
      }
      // An unknown field is named, as in every other body.
      for (const extra of ['extra', 'did', 'cascade', 'status']) await refused(r({ reason: 'x', [extra]: true }), 400, 'ERR_INVALID_INPUT', extra)
      await refused(r(['x']), 400, 'ERR_INVALID_INPUT', 'body')
    }
    // Still active.
    expect((await send({ method: 'GET', url: `/v1/agents/${alice.did}`, key: h.adminKey })).json().status).toBe('active')
  })

  it('orchestrator name: missing, mistyped, malformed; unknown fields', async () => {
    const add = (payload?: unknown): Send => ({ method: 'POST', url: '/v1/orchestrators', key: h.adminKey, ...(payload === undefined ? {} : { payload }) })
    await refused(add(), 400, 'ERR_INVALID_INPUT', 'body')
    await refused(add({}), 400, 'ERR_INVALID_INPUT', 'name')
    for (const name of [42, null, '', ' acme2', 'acme2 ', 'a/b', '../x', 'x'.repeat(65), 'émile', 'a\nb', '-lead', ['x'], { n: 1 }]) {
      await refused(add({ name }), 400, 'ERR_INVALID_INPUT', 'name')
    }
    await refused(add({ name: 'ok', admin: true }), 400, 'ERR_INVALID_INPUT', 'body')
    await refused(add({ name: 'acme' }), 409, 'ERR_CONFLICT')
  })
})

describe('path parameters', () => {
  const badDids = () => [
    'did:key:abc', 'did:web:acme.example', 'did:key:z6Mk', `${alice.did}x`, alice.did.slice(0, -1), alice.did.toUpperCase(),
    `${alice.did}\n`, `${alice.did} `, ` ${alice.did}`, `${alice.did}\t`, `${alice.did}\u0000`, `${alice.did}#key-1`, `${alice.did}?x=1`,
    `${alice.did}/..`, 'did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc', '...', "' OR 1=1 --", 'did:key:z' + '1'.repeat(100),
  ]
  const badIds = () => [
    'abc', 'urn:uuid:xyz', aliceSpawn.credentialId.toUpperCase(), `${aliceSpawn.credentialId}\n`, `${aliceSpawn.credentialId} `,
    aliceSpawn.credentialId.slice('urn:uuid:'.length), `urn:uuid:${'0'.repeat(32)}`, "' OR 1=1 --", 'urn:uuid:00000000-0000-0000-0000-00000000000g',
  ]

  it('bad DIDs are 400 ERR_INVALID_INPUT (field did) on every route that takes one', async () => {
    for (const did of badDids()) {
      const path = encodeURIComponent(did)
      await refused({ method: 'GET', url: `/v1/agents/${path}`, key: h.adminKey }, 400, 'ERR_INVALID_INPUT', 'did')
      await refused({ method: 'GET', url: `/v1/agents/${path}`, key: h.orch.apiKey }, 400, 'ERR_INVALID_INPUT', 'did')
      await refused({ method: 'POST', url: `/v1/agents/${path}/revoke`, key: h.adminKey, payload: { reason: 'x' } }, 400, 'ERR_INVALID_INPUT', 'did')
      await refused(renew(path, { proof: await proof(h, alice, { purpose: 'renew' }) }), 400, 'ERR_INVALID_INPUT', 'did')
    }
  })

  it('bad credential ids are 400 ERR_INVALID_INPUT (field id)', async () => {
    for (const id of badIds()) {
      await refused({ method: 'POST', url: `/v1/credentials/${encodeURIComponent(id)}/revoke`, key: h.adminKey, payload: { reason: 'x' } }, 400, 'ERR_INVALID_INPUT', 'id')
    }
  })

  it('overlong and badly encoded path parameters are 400 in the error shape', async () => {
    const long = `did:key:z6Mk${'a'.repeat(400)}`
    const urls: [Method, string, string | undefined, unknown][] = [
      ['GET', `/v1/agents/${long}`, h.adminKey, undefined],
      ['POST', `/v1/agents/${long}/renew`, undefined, { proof: 'a.b.c' }],
      ['POST', `/v1/agents/${long}/revoke`, h.adminKey, { reason: 'x' }],
      ['POST', `/v1/credentials/urn:uuid:${'0'.repeat(400)}/revoke`, h.adminKey, { reason: 'x' }],
      ['GET', `/v1/status-lists/${'1'.repeat(400)}`, undefined, undefined],
      ['DELETE', `/v1/orchestrators/${'a'.repeat(400)}`, h.adminKey, undefined],
      ['GET', '/v1/agents/%E0%A4%A', h.adminKey, undefined],
      ['GET', '/v1/agents/did%3Akey%3A%ZZ', h.adminKey, undefined],
      ['POST', '/v1/credentials/%/revoke', h.adminKey, { reason: 'x' }],
      ['GET', '/v1/status-lists/%C0%AF', undefined, undefined],
    ]
    for (const [method, url, key, payload] of urls) {
      await refused({ method, url, ...(key ? { key } : {}), ...(payload === undefined ? {} : { payload }) }, 400, 'ERR_INVALID_INPUT')
    }
  })

  it('orchestrator ids: unknown is 404, overlong is 400', async () => {
    for (const id of ['orch_nope', 'x', encodeURIComponent("' OR 1=1 --"), encodeURIComponent(`${h.orch.id}\n`), encodeURIComponent(` ${h.orch.name}`)]) {
      await refused({ method: 'DELETE', url: `/v1/orchestrators/${id}`, key: h.adminKey }, 404, 'ERR_NOT_FOUND')
    }
    await refused({ method: 'DELETE', url: `/v1/orchestrators/${'a'.repeat(200)}`, key: h.adminKey }, 400, 'ERR_INVALID_INPUT')
  })
})

describe('GET /v1/agents: query strings', () => {
  it('unknown, repeated and malformed parameters are 400, naming the parameter', async () => {
    const cases: [string, string][] = [
      ['extra=1', 'extra'],
      ['__proto__=x', '__proto__'],
      ['constructor=x', 'constructor'],
      ['status=bogus', 'status'],
      ['status=ACTIVE', 'status'],
      ['status=active&status=revoked', 'status'],
      ['status[]=active', 'status[]'],
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=1.5', 'limit'],
      ['limit=01', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=', 'limit'],
      ['limit=1e2', 'limit'],
      ['controller=', 'controller'],
      [`controller=${'x'.repeat(1025)}`, 'controller'],
      ['purpose=', 'purpose'],
      ['orchestrator=', 'orchestrator'],
      ['cursor=', 'cursor'],
      ['cursor=garbage!', 'cursor'],
      [`cursor=${Buffer.from('[1]').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from('["1","did"]').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from('{"__proto__":{"polluted":1}}').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from(`[1e300,"did"]`).toString('base64url')}`, 'cursor'],
      [`cursor=${'A'.repeat(600)}`, 'cursor'],
    ]
    for (const [query, field] of cases) {
      for (const key of [h.adminKey, h.orch.apiKey]) {
        const res = await send({ method: 'GET', url: `/v1/agents?${query}`, key })
        expectInvalid(res, field)
      }
    }
  })
})
