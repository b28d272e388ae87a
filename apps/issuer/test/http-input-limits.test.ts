// Input the issuer must refuse at validation (400), never turn into a 500 or store: text a person
// reads with bidirectional formatting characters, and (below) anything past the limits the verifier
// applies to what the issuer signs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, claims, counts, expectError, expectInvalid, harness, namedKey, proof, spawnAgent, type Harness } from './http-fixtures.js'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { AGENTID_CONTEXT_V1, AGENTID_CONTEXT_V1_SHA256, CLAIM_LIMITS, MAX_JWT_PAYLOAD_DEPTH } from '@agentid/core'
import { createDocumentLoader } from '@agentid/verifier'
import { parseAuthorizationDetails } from '../src/oauth/authorization-details.js'

let h: Harness
beforeAll(async () => { h = await harness() })
afterAll(async () => { await h.close() })

const BIDI = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c']
const hex = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`

async function spawnWith(extra: Record<string, unknown>) {
  const key = namedKey()
  return h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, did: key.did, proof: await proof(h, key), ...extra } })
}

describe('bidirectional formatting characters are refused in every human-readable claim', () => {
  const fields: Array<[string, (v: string) => Record<string, unknown>]> = [
    ['purpose', (v) => ({ purpose: v })],
    ['controller', (v) => ({ controller: v })],
    ['model.name', (v) => ({ model: { ...claims.model, name: v } })],
    ['model.provider', (v) => ({ model: { ...claims.model, provider: v } })],
    ['model.version', (v) => ({ model: { ...claims.model, version: v } })],
    ['toolProfile[0]', (v) => ({ toolProfile: [`mcp://erp/${v}tools`] })],
    ['toolProfile', (v) => ({ toolProfile: `profile${v}x` })],
  ]
  for (const [field, make] of fields) {
    it.each(BIDI.map((c) => [hex(c), c]))(`spawn ${field} holding %s: 400, nothing stored`, async (_name, c) => {
      const before = counts(h)
      expectInvalid(await spawnWith(make(`pay ${c}TXT.exe`)), field)
      expect(counts(h)).toEqual(before)
    })
  }

  it.each(BIDI.map((c) => [hex(c), c]))('grant resource, action, audience and constraint holding %s: 400', async (_name, c) => {
    const a = namedKey()
    await spawnAgent(h, a)
    const grant = (body: unknown) => h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/grants`, headers: bearer(h.adminKey), payload: body as Record<string, unknown> })
    expectError(await grant({ capabilities: [{ resource: `mcp://erp/${c}x`, actions: ['invoke'] }] }), 400, 'ERR_INVALID_INPUT')
    expectError(await grant({ capabilities: [{ resource: 'mcp://erp/x', actions: [`in${c}voke`] }] }), 400, 'ERR_INVALID_INPUT')
    expectError(await grant({ capabilities: [{ resource: 'mcp://erp/x', actions: ['invoke'] }], caveats: { audience: [`svc${c}`] } }), 400, 'ERR_INVALID_INPUT')
    expectError(await grant({ capabilities: [{ resource: 'mcp://erp/x', actions: ['invoke'] }], caveats: { constraints: { region: `eu${c}` } } }), 400, 'ERR_INVALID_INPUT')
  })

  it.each(BIDI.map((c) => [hex(c), c]))('revocation reason holding %s: 400', async (_name, c) => {
    const a = namedKey()
    await spawnAgent(h, a)
    expectInvalid(await h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: `pay ${c}TXT.exe` } }), 'reason')
  })

  it.each(BIDI.map((c) => [hex(c), c]))('authorization_details strings holding %s: invalid_authorization_details', (_name, c) => {
    for (const member of ['actions', 'locations', 'identifiers']) {
      const detail: Record<string, unknown> = { type: 'agentid_action', actions: ['invoke'], locations: ['mcp://erp/tools/x'], [member]: [`x${c}y`] }
      expect(() => parseAuthorizationDetails(JSON.stringify([detail]))).toThrow(expect.objectContaining({ error: 'invalid_authorization_details' }))
    }
  })

  it('text in right-to-left scripts without formatting characters is accepted', async () => {
    const res = await spawnWith({ purpose: 'מיון חשבוניות', controller: 'فريق المالية' })
    expect(res.statusCode, res.body).toBe(201)
  })
})

describe('duplicate JSON members in request bodies are refused (the verifier parser)', () => {
  const json = { 'content-type': 'application/json' }

  it('the reported case: "dataAccessClass":"public", …, "dataAccessClass":"restricted" is 400, nothing stored', async () => {
    const key = namedKey()
    const body = JSON.stringify({ ...claims, dataAccessClass: 'public', did: key.did, proof: await proof(h, key) }).replace(/}$/, ',"dataAccessClass":"restricted"}')
    const before = counts(h)
    const error = expectError(await h.app.inject({ method: 'POST', url: '/v1/agents', headers: { ...bearer(h.orch.apiKey), ...json }, payload: body }), 400, 'ERR_INVALID_INPUT')
    expect(error.details?.field).toBe('body')
    expect(counts(h)).toEqual(before)
  })

  it('on every JSON route, at the top level, nested, and spelled with an escape', async () => {
    const a = namedKey()
    const spawned = await spawnAgent(h, a)
    const routes: Array<{ url: string; key?: string }> = [
      { url: '/v1/agents', key: h.orch.apiKey },
      { url: `/v1/agents/${a.did}/renew` },
      { url: `/v1/agents/${a.did}/revoke`, key: h.adminKey },
      { url: `/v1/credentials/${spawned.credentialId}/revoke`, key: h.adminKey },
      { url: `/v1/agents/${a.did}/grants`, key: h.adminKey },
      { url: '/v1/delegations/status' },
      { url: '/v1/delegations/urn:uuid:00000000-0000-4000-8000-000000000000/revoke', key: h.adminKey },
      { url: '/v1/orchestrators', key: h.adminKey },
    ]
    const bodies = ['{"reason":"a","reason":"b"}', '{"name":"x","name":"y"}', '{"model":{"name":"a","name":"b"}}', '{"a":[{"b":1,"b":2}]}', '{"reason":"a","\\u0072eason":"b"}']
    for (const route of routes) {
      for (const payload of bodies) {
        const before = counts(h)
        const res = await h.app.inject({ method: 'POST', url: route.url, headers: { ...json, ...(route.key ? bearer(route.key) : {}) }, payload })
        const error = expectError(res, 400, 'ERR_INVALID_INPUT')
        expect(error.details?.field, `${route.url} ${payload}`).toBe('body')
        expect(counts(h)).toEqual(before)
      }
    }
  })

  it('a JSON body sent to the token endpoint is invalid_request, not a 500', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/token', headers: json, payload: '{"grant_type":"a","grant_type":"b"}' })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ error: 'invalid_request' })
  })

  it('__proto__ and constructor.prototype members are still refused', async () => {
    for (const payload of ['{"__proto__":{"x":1}}', '{"a":{"constructor":{"prototype":{"x":1}}}}']) {
      expectError(await h.app.inject({ method: 'POST', url: '/v1/agents', headers: { ...json, ...bearer(h.orch.apiKey) }, payload }), 400, 'ERR_INVALID_INPUT')
    }
  })

  it('authorization_details with a repeated member is invalid_authorization_details', () => {
    const raw = '[{"type":"agentid_action","actions":["invoke"],"locations":["mcp://a/x"],"locations":["mcp://b/*"]}]'
    expect(() => parseAuthorizationDetails(raw)).toThrow(expect.objectContaining({ error: 'invalid_authorization_details' }))
  })
})

describe('input past a verifier limit is a 400 at validation, never a 500 (CLAIM_LIMITS, CAPABILITY_LIMITS)', () => {
  /** An attestation nesting `levels` levels, itself included: {a:{a:…{a:1}}}. */
  const nest = (levels: number): Record<string, unknown> => {
    let v: Record<string, unknown> = { a: 1 }
    for (let i = 1; i < levels; i++) v = { a: v }
    return v
  }
  const spawnBody = async (extra: Record<string, unknown>) => {
    const key = namedKey()
    return { key, body: { ...claims, did: key.did, proof: await proof(h, key), ...extra } }
  }
  const post = (body: unknown) => h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: body as Record<string, unknown> })
  const renew = async (key: ReturnType<typeof namedKey>, format: 'jwt' | 'di') =>
    h.app.inject({ method: 'POST', url: `/v1/agents/${key.did}/renew`, payload: { proof: await proof(h, key, { purpose: 'renew' }), format } })

  it('exposes one set of limits, derived from the verifier\'s', () => {
    expect(CLAIM_LIMITS.attestationDepth).toBe(MAX_JWT_PAYLOAD_DEPTH - 3)
  })

  for (const format of ['jwt', 'di'] as const) {
    it(`${format}: an attestation nesting ${CLAIM_LIMITS.attestationDepth} levels is issued (and renews in both formats); one more is 400`, async () => {
      const ok = await spawnBody({ format, attestation: nest(CLAIM_LIMITS.attestationDepth) })
      const res = await post(ok.body)
      expect(res.statusCode, res.body).toBe(201)
      for (const f of ['jwt', 'di'] as const) expect((await renew(ok.key, f)).statusCode).toBe(201)
      for (const levels of [CLAIM_LIMITS.attestationDepth + 1, 14, 20, 31]) {
        const before = counts(h)
        expectInvalid(await post((await spawnBody({ format, attestation: nest(levels) })).body), 'attestation')
        expect(counts(h)).toEqual(before)
      }
      // The same through arrays.
      expectInvalid(await post((await spawnBody({ format, attestation: { a: JSON.parse('['.repeat(13) + ']'.repeat(13)) } })).body), 'attestation')
    })

    it(`${format}: an attestation holding @context, at any depth, is 400`, async () => {
      for (const attestation of [{ '@context': 'https://evil.example' }, { a: { '@context': {} } }, { a: [{ b: { '@context': ['x'] } }] }]) {
        expectInvalid(await post((await spawnBody({ format, attestation })).body), 'attestation')
      }
    })

    it(`${format}: toolProfile entries plus attestation values at ${CLAIM_LIMITS.values} are issued; one more is 400`, async () => {
      const tools = Array.from({ length: CLAIM_LIMITS.tools }, (_, i) => `t${i}`)
      const room = CLAIM_LIMITS.values - tools.length // the attestation object itself counts
      const at = { v: Array.from({ length: room - 2 }, () => 0) } // object + array + its elements
      const ok = await post((await spawnBody({ format, toolProfile: tools, attestation: at })).body)
      expect(ok.statusCode, ok.body).toBe(201)
      const over = { v: Array.from({ length: room - 1 }, () => 0) }
      expectInvalid(await post((await spawnBody({ format, toolProfile: tools, attestation: over })).body), 'attestation')
      // An attestation of small values alone, within 8 KiB but past the budget.
      expectInvalid(await post((await spawnBody({ format, attestation: { v: Array.from({ length: 2000 }, () => 0) } })).body), 'attestation')
    })

    it(`${format}: claims serializing past ${CLAIM_LIMITS.claimsBytes} bytes are 400 (a body within 64 KiB)`, async () => {
      const tools = (n: number, len: number) => Array.from({ length: n }, (_, i) => `mcp://erp/${String(i).padStart(4, '0')}/${'x'.repeat(len - 15)}`)
      const big = await spawnBody({ format, toolProfile: tools(100, 500) }) // ≈ 50 KB of tools
      expectInvalid(await post(big.body), 'claims')
      const fits = await post((await spawnBody({ format, toolProfile: tools(60, 500) })).body) // ≈ 30 KB
      expect(fits.statusCode, fits.body).toBe(201)
    })
  }

  it('a grant whose capabilities would sign a link past the verifier\'s token limit is 400; just within is issued', async () => {
    const a = namedKey()
    await spawnAgent(h, a)
    const grant = (capabilities: unknown) => h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/grants`, headers: bearer(h.adminKey), payload: { capabilities } })
    const caps = (n: number) => Array.from({ length: n }, (_, i) => ({ resource: `mcp://erp/${i}/${'r'.repeat(400)}`, actions: ['invoke', 'read'] }))
    const before = counts(h)
    expectInvalid(await grant(caps(120)), 'capabilities') // ≈ 52 KB
    expect(counts(h)).toEqual(before)
    const ok = await grant(caps(70)) // ≈ 30 KB
    expect(ok.statusCode, ok.body).toBe(201)
  })
})

describe('GET /contexts/agentid/v1', () => {
  it('serves the exact bytes @agentid/core ships, application/ld+json, long-cached; their SHA-256 is the pinned one and the document the verifier loads', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/contexts/agentid/v1' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/ld\+json/)
    expect(res.headers['cache-control']).toBe('public, max-age=86400, immutable')
    const file = readFileSync(createRequire(import.meta.url).resolve('@agentid/core/contexts/agentid-v1.json'))
    expect(res.rawPayload.equals(file)).toBe(true)
    expect(createHash('sha256').update(res.rawPayload).digest('hex')).toBe(AGENTID_CONTEXT_V1_SHA256)
    const loaded = await createDocumentLoader()(AGENTID_CONTEXT_V1)
    expect(JSON.parse(res.body)).toEqual(loaded.document)
  })
})
