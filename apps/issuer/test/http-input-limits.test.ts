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
