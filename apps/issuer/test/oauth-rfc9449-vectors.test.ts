// The RFC 9449 example token-request proofs (vectors/dpop, Figures 2 and 7) at the issuer's token
// endpoint check (apps/issuer/src/oauth/dpop.ts), at the RFC's own URL and time. The endpoint always
// requires a server nonce and checks it last, so an example proof that passes every other check is
// answered use_dpop_nonce with the nonce to use (§8, Figure 20: 400 at an authorization server).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { DpopNonces, verifyDpopProof } from '../src/oauth/dpop.js'
import { OAuthError } from '../src/oauth/errors.js'

interface Proof { id: string; compact: string; valid_context: { method: string; url: string; now: number } }
const vectors = JSON.parse(readFileSync(new URL('../../../vectors/dpop/rfc9449-examples.json', import.meta.url), 'utf8')) as {
  proofs: Proof[]
  negative_context_cases: { id: string; proof: string | null; context: { method?: string; url?: string; now?: number; access_token?: string }; expected: string }[]
}
const tokenRequests = vectors.proofs.filter((p) => p.id !== 'rfc9449-fig13-resource-request')

async function outcome(proof: string, c: { method: string; url: string; now: number }): Promise<OAuthError | 'accepted'> {
  const nonces = new DpopNonces(() => c.now)
  return verifyDpopProof(proof, { ...c, nonces }).then(() => 'accepted' as const, (e: unknown) => {
    if (e instanceof OAuthError) return e
    throw e
  })
}

describe('RFC 9449 example proofs at the token endpoint', () => {
  it('Figures 2 and 7 pass every check but the nonce: use_dpop_nonce, 400, with a DPoP-Nonce header', async () => {
    expect(tokenRequests.map((p) => p.id)).toEqual(['rfc9449-fig2-token-request', 'rfc9449-fig7-refresh-request'])
    for (const p of tokenRequests) {
      const result = await outcome(p.compact, p.valid_context)
      expect(result, p.id).toBeInstanceOf(OAuthError)
      const error = result as OAuthError
      expect(error.error, p.id).toBe('use_dpop_nonce')
      expect(error.status).toBe(400)
      expect(error.headers['dpop-nonce']).toMatch(/^[A-Za-z0-9_-]{16,}$/)
    }
  })

  it('a flipped signature bit, and the resource proof of Figure 13 at the token endpoint, are invalid_dpop_proof', async () => {
    const fig2 = tokenRequests[0]!
    const [h, p, s] = fig2.compact.split('.')
    const sig = Buffer.from(s!, 'base64url')
    sig[10] = sig[10]! ^ 1
    expect(((await outcome(`${h}.${p}.${sig.toString('base64url')}`, fig2.valid_context)) as OAuthError).error).toBe('invalid_dpop_proof')
    const fig13 = vectors.proofs.find((q) => q.id === 'rfc9449-fig13-resource-request')!
    expect(((await outcome(fig13.compact, { method: 'POST', url: fig2.valid_context.url, now: fig13.valid_context.now })) as OAuthError).error).toBe('invalid_dpop_proof')
  })

  it('the negative context cases of the token-request proof are invalid_dpop_proof (method, host, iat window)', async () => {
    const cases = vectors.negative_context_cases.filter((n) => n.proof === 'rfc9449-fig2-token-request' && ['htm-mismatch', 'htu-mismatch-host', 'iat-too-old', 'iat-in-future'].includes(n.id))
    expect(cases).toHaveLength(4)
    const fig2 = tokenRequests[0]!
    for (const n of cases) {
      const result = await outcome(fig2.compact, { method: n.context.method!, url: n.context.url!, now: n.context.now! })
      expect(result, n.id).toBeInstanceOf(OAuthError)
      expect((result as OAuthError).error, n.id).toBe('invalid_dpop_proof')
    }
  })
})
