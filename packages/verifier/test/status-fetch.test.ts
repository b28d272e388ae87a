// fetchStatusList: one status list fetched now and verified as the revocation check verifies it (for
// auditors comparing every bit with the issuer log).
import { describe, expect, it } from 'vitest'
import { StatusList, VerificationError } from '@agentid/core'
import { fetchStatusList, type FetchLike } from '../src/index.js'
import { LIST_URL, NOW, issuer, malloryIssuer, statusListJwt } from './fixtures.js'

const serving = (body: string, status = 200): FetchLike => async () => ({ ok: status === 200, status, text: async () => body })
const clock = () => NOW * 1000
const reason = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof VerificationError ? `${e.code} ${String(e.details.reason)}` : String(e)))

describe('fetchStatusList', () => {
  it("returns the issuer's list, every bit as signed", async () => {
    const list = StatusList.create()
    list.set(3, 1)
    const got = await fetchStatusList(LIST_URL, { issuer: issuer.did, fetch: serving(await statusListJwt(list)), clock })
    expect([got.get(2), got.get(3)]).toEqual([0, 1])
  })

  it('refuses a list of another issuer, one served under another URL, a suspension list and an error answer', async () => {
    const list = StatusList.create()
    expect(await reason(fetchStatusList(LIST_URL, { issuer: issuer.did, fetch: serving(await statusListJwt(list, { signer: malloryIssuer })), clock }))).toBe('ERR_STATUS_UNAVAILABLE signed by another issuer')
    expect(await reason(fetchStatusList(LIST_URL, { issuer: issuer.did, fetch: serving(await statusListJwt(list, { url: 'https://issuer.example/v1/status-lists/2' })), clock }))).toBe('ERR_STATUS_UNAVAILABLE status list credential id is not its URL')
    expect(await reason(fetchStatusList(LIST_URL, { issuer: issuer.did, fetch: serving(await statusListJwt(list, { purpose: 'suspension' })), clock }))).toBe('ERR_STATUS_UNAVAILABLE status list purpose is not revocation')
    expect(await reason(fetchStatusList(LIST_URL, { issuer: issuer.did, fetch: serving('', 404), clock }))).toBe('ERR_STATUS_UNAVAILABLE HTTP 404')
  })

  it('is a TypeError without an issuer DID', () => {
    expect(() => fetchStatusList(LIST_URL, { issuer: 'issuer' })).toThrow(TypeError)
  })
})
