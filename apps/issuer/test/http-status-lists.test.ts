// GET /v1/status-lists/:id: the signed Bitstring Status List, its caching headers and conditional GET.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeDidKey, decodeJwt, publicKeyFromRaw, StatusList, STATUS_LIST_CREDENTIAL, verifyCompactJws } from '@agentid/core'
import { BASE_URL, bearer, expectError, harness, namedKey, spawnAgent, type Harness, type SpawnResult } from './http-fixtures.js'

let h: Harness
let a: SpawnResult
let b: SpawnResult
let path: string
beforeAll(async () => {
  h = await harness()
  a = await spawnAgent(h, namedKey())
  b = await spawnAgent(h, namedKey())
  expect(b.status.statusListCredential).toBe(a.status.statusListCredential)
  path = new URL(a.status.statusListCredential).pathname
})
afterAll(async () => { await h.close() })

const get = (headers: Record<string, string> = {}, url = path) => h.app.inject({ method: 'GET', url, headers })

describe('GET /v1/status-lists/:id', () => {
  it('serves the signed list as application/vc+jwt with an ETag and Cache-Control, without a key', async () => {
    const res = await get()
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/vc\+jwt/)
    expect(res.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/)
    expect(res.headers['cache-control']).toBe('public, max-age=10')
    const jws = verifyCompactJws(res.body, publicKeyFromRaw(decodeDidKey(h.issuerDid).publicKey))
    expect(jws.header.alg).toBe('EdDSA')
    const { payload } = decodeJwt(res.body)
    expect(payload.iss).toBe(h.issuerDid)
    expect(payload.jti).toBe(a.status.statusListCredential)
    const vc = payload.vc as { type: string[]; credentialSubject: { type: string; statusPurpose: string; encodedList: string } }
    expect(vc.type).toContain(STATUS_LIST_CREDENTIAL)
    expect(vc.credentialSubject).toMatchObject({ type: 'BitstringStatusList', statusPurpose: 'revocation' })
    const list = StatusList.decode(vc.credentialSubject.encodedList)
    expect(list.length).toBeGreaterThanOrEqual(131_072)
    expect(list.get(a.status.statusListIndex)).toBe(0)
    expect(list.get(b.status.statusListIndex)).toBe(0)
  })

  it('answers 304 to a matching If-None-Match, with no body', async () => {
    const first = await get()
    const etag = first.headers.etag as string
    const again = await get({ 'if-none-match': etag })
    expect(again.statusCode).toBe(304)
    expect(again.body).toBe('')
    expect(again.headers.etag).toBe(etag)
    expect(again.headers['cache-control']).toBe('public, max-age=10')
    const stale = await get({ 'if-none-match': '"something-else"' })
    expect(stale.statusCode).toBe(200)
    expect(stale.body).toBe(first.body)
  })

  it('a revocation changes the ETag and sets exactly the revoked bit', async () => {
    const before = await get()
    const etag = before.headers.etag as string
    const res = await h.app.inject({ method: 'POST', url: `/v1/credentials/${a.credentialId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expect(res.statusCode).toBe(200)
    const after = await get({ 'if-none-match': etag })
    expect(after.statusCode).toBe(200)
    expect(after.headers.etag).not.toBe(etag)
    const list = StatusList.decode((decodeJwt(after.body).payload.vc as { credentialSubject: { encodedList: string } }).credentialSubject.encodedList)
    expect(list.get(a.status.statusListIndex)).toBe(1)
    expect(list.get(b.status.statusListIndex)).toBe(0)
    let ones = 0
    for (let i = 0; i < list.length; i++) ones += list.get(i)
    expect(ones).toBe(1)
    // The new ETag is stable until the next change.
    expect((await get({ 'if-none-match': after.headers.etag as string })).statusCode).toBe(304)
  })

  it('HEAD gives the headers', async () => {
    const res = await h.app.inject({ method: 'HEAD', url: path })
    expect(res.statusCode).toBe(200)
    expect(res.headers.etag).toBeDefined()
    expect(res.headers['content-type']).toMatch(/^application\/vc\+jwt/)
  })

  it('an unknown or malformed list id is 404', async () => {
    for (const id of ['999', '0', '01', '-1', '1.0', '1e3', 'abc', '%20', '1%0A', '9999999999', 'x'.repeat(200), "1' OR '1'='1"]) {
      const res = await get({}, `/v1/status-lists/${encodeURIComponent(id)}`)
      expectError(res, 404, 'ERR_NOT_FOUND')
      expect(res.headers.etag).toBeUndefined()
    }
  })

  it('is not under /v1/status-lists/ without an id, nor with a trailing segment', async () => {
    expectError(await get({}, '/v1/status-lists/'), 404, 'ERR_NOT_FOUND')
    expectError(await get({}, `${path}/extra`), 404, 'ERR_NOT_FOUND')
  })

  it('the list URL in credentials is under the configured base URL', () => {
    expect(a.status.statusListCredential.startsWith(`${BASE_URL}/v1/status-lists/`)).toBe(true)
  })
})
