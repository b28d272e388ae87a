// Red team of the HTTP approval step: a request whose method no approval can name (httpCommand refuses it)
// is refused, not an exception the middleware turns into a 500.
import { describe, expect, it } from 'vitest'
import { decideHttpApproval, type VerifiedRequest } from '@agentid/verifier'
import { setup } from './approval-fixtures.js'
import { alice } from './fixtures.js'

const verified = { agent: alice.did, user: null, userIssuer: null, agentClaims: { controller: 'did:web:acme.example' } } as unknown as VerifiedRequest

describe('decideHttpApproval red team', () => {
  it('M-SEARCH (an HTTP token httpCommand refuses) needing an approval: 400 ERR_MALFORMED, the issuer not asked', async () => {
    const { verifier } = await setup()
    let asked = 0
    const fetch = (async () => { asked++; return new Response('{}', { status: 201 }) }) as unknown as typeof globalThis.fetch
    const out = await decideHttpApproval(verifier, { requires: () => ({ group: null }), issuerUrl: 'https://id.example', apiKey: 'aid_k', fetch },
      { method: 'M-SEARCH', url: 'https://bank.example/v1/pay', headers: {}, body: undefined, target: 'https://bank.example' }, verified).then((o) => o, (e: unknown) => e)
    expect(out).toMatchObject({ ok: false, status: 400, body: { error: { code: 'ERR_MALFORMED' } } })
    expect(asked).toBe(0)
    // One that needs no approval goes on as before.
    const free = await decideHttpApproval(verifier, { requires: () => false, issuerUrl: 'https://id.example', apiKey: 'aid_k', fetch },
      { method: 'M-SEARCH', url: 'https://bank.example/v1/pay', headers: {}, body: undefined, target: 'https://bank.example' }, verified)
    expect(free).toEqual({ ok: true, approval: null })
  })
})
