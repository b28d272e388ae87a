// Configuration of the identity providers trusted for token exchange (AGENTID_TRUSTED_IDPS, the
// trustedIdps option) and TrustedIdps.verify with an injected fetch for the JWKS URI.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AgentIdError } from '@agentid/core'
import { configFromEnv } from '../src/config.js'
import { IssuerService } from '../src/domain/service.js'
import { OAuthError } from '../src/oauth/errors.js'
import { parseTrustedIdps, TrustedIdps, trustedIdpsFromEnv } from '../src/oauth/trusted-idps.js'
import { BASE_URL } from './http-fixtures.js'
import { testIdp } from './oauth-fixtures.js'

const dir = mkdtempSync(join(tmpdir(), 'agentid-idps-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function invalid(fn: () => unknown): void {
  let error: unknown
  try {
    fn()
  } catch (e) {
    error = e
  }
  expect(error, 'expected ERR_INVALID_INPUT').toBeInstanceOf(AgentIdError)
  expect((error as AgentIdError).code).toBe('ERR_INVALID_INPUT')
}

async function refusal(p: Promise<unknown>): Promise<OAuthError> {
  const error = await p.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(OAuthError)
  expect((error as OAuthError).error).toBe('invalid_request')
  return error as OAuthError
}

const ISSUER = 'https://idp.example'
const KEY = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }

describe('AGENTID_TRUSTED_IDPS and parseTrustedIdps', () => {
  it('reads an inline JSON array, or a file named by the variable; unset is none', () => {
    const list = [{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks`, audience: 'agentid' }]
    expect(trustedIdpsFromEnv(JSON.stringify(list))).toEqual(list)
    expect(trustedIdpsFromEnv(`  ${JSON.stringify(list)}`)).toEqual(list)
    const file = join(dir, 'idps.json')
    writeFileSync(file, JSON.stringify([{ issuer: ISSUER, jwks: { keys: [KEY] } }]))
    expect(trustedIdpsFromEnv(file)).toEqual([{ issuer: ISSUER, jwks: { keys: [KEY] } }])
    expect(trustedIdpsFromEnv(undefined)).toEqual([])
    expect(trustedIdpsFromEnv('')).toEqual([])
    expect(configFromEnv({ AGENTID_TRUSTED_IDPS: JSON.stringify(list) }).trustedIdps).toEqual(list)
    expect(configFromEnv({}).trustedIdps).toEqual([])
  })

  it('refuses a missing file, bad JSON, and every malformed entry', () => {
    invalid(() => trustedIdpsFromEnv(join(dir, 'missing.json')))
    invalid(() => trustedIdpsFromEnv('[{"issuer":'))
    invalid(() => configFromEnv({ AGENTID_TRUSTED_IDPS: '{"issuer":"https://idp.example"}' }))
    const bad: unknown[] = [
      {},
      [{ jwks_uri: `${ISSUER}/jwks` }],
      [{ issuer: 'idp.example', jwks_uri: `${ISSUER}/jwks` }],
      [{ issuer: 'ftp://idp.example', jwks_uri: `${ISSUER}/jwks` }],
      [{ issuer: `${ISSUER}#x`, jwks_uri: `${ISSUER}/jwks` }],
      [{ issuer: ISSUER }],
      [{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks`, jwks: { keys: [KEY] } }],
      [{ issuer: ISSUER, jwks_uri: 'file:///etc/passwd' }],
      [{ issuer: ISSUER, jwks: { keys: [] } }],
      [{ issuer: ISSUER, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }],
      [{ issuer: ISSUER, jwks: { keys: [{ ...KEY, d: 'jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI' }] } }],
      [{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks`, audience: '' }],
      [{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks`, algorithms: ['HS256'] }],
      [{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` }, { issuer: ISSUER, jwks_uri: `${ISSUER}/other` }],
    ]
    for (const input of bad) invalid(() => parseTrustedIdps(input))
  })

  it('IssuerService.open refuses a malformed trustedIdps option', async () => {
    await expect(IssuerService.open({ dataDir: join(dir, 'svc'), baseUrl: BASE_URL, trustedIdps: [{ issuer: 'nope' } as never] }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
  })
})

describe('TrustedIdps.verify with a JWKS URI', () => {
  it('fetches the keys with the injected fetch; fails closed when they cannot be fetched', async () => {
    const idp = await testIdp(ISSUER, 'PS256')
    const calls: string[] = []
    let down = false
    const fetch = (async (input: RequestInfo | URL) => {
      const url = String(input instanceof Request ? input.url : input)
      calls.push(url)
      if (down) throw new TypeError('fetch failed')
      return new Response(JSON.stringify({ keys: [idp.publicJwk] }), { status: 200, headers: { 'content-type': 'application/json' } })
    }) as typeof globalThis.fetch
    const now = Math.floor(Date.now() / 1000)
    const idps = new TrustedIdps([{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` }], { defaultAudience: BASE_URL, fetch })
    const verified = await idps.verify(await idp.userToken(now), now)
    expect(verified).toMatchObject({ issuer: ISSUER, sub: 'user-42@idp' })
    expect(calls).toEqual([`${ISSUER}/jwks`])

    down = true
    const cold = new TrustedIdps([{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` }], { defaultAudience: BASE_URL, fetch })
    const error = await refusal(cold.verify(await idp.userToken(now), now))
    expect(error.description).toMatch(/could not be fetched/)
    const wrongStatus = new TrustedIdps([{ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` }], {
      defaultAudience: BASE_URL,
      fetch: (async () => new Response('nope', { status: 500 })) as typeof globalThis.fetch,
    })
    await refusal(wrongStatus.verify(await idp.userToken(now), now))
  })

  it('an EdDSA IdP works; an RS256 token against an EC key set does not', async () => {
    const ed = await testIdp(ISSUER, 'EdDSA')
    const now = Math.floor(Date.now() / 1000)
    const idps = new TrustedIdps([{ issuer: ISSUER, jwks: { keys: [ed.publicJwk] } }], { defaultAudience: BASE_URL })
    expect((await idps.verify(await ed.userToken(now), now)).sub).toBe('user-42@idp')
    const rsa = await testIdp(ISSUER, 'RS256')
    await refusal(idps.verify(await rsa.userToken(now), now))
  })
})
