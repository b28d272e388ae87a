// Input the issuer must refuse at validation (400), never turn into a 500 or store: text a person
// reads with bidirectional formatting characters, and (below) anything past the limits the verifier
// applies to what the issuer signs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, claims, counts, expectError, expectInvalid, harness, namedKey, proof, spawnAgent, type Harness } from './http-fixtures.js'
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
