// startIdentityRotation against a scripted issuer: renewal at a fraction of the lifetime, back-off on
// failures while the held credential keeps serving, stop and report on revocation, option checks.
import { describe, expect, it } from 'vitest'
import { generateEd25519KeyPair } from '@agentid/core'
import { startIdentityRotation, type Fetch } from '@agentid/client'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** An issuer whose renew route answers from `script` (one entry per call; the last repeats). */
function scriptedIssuer(script: ('ok' | 'fail' | 'revoked')[], lifetimeMs = 2_000) {
  let n = 0
  const renewals: number[] = []
  const fetch: Fetch = async (url) => {
    const json = (status: number, body: unknown) => ({ ok: status < 300, status, json: async () => body })
    if (url.endsWith('/v1/issuer')) return json(200, { did: 'did:key:z6MkIssuer' })
    if (url.includes('/renew')) {
      const step = script[Math.min(n++, script.length - 1)]
      renewals.push(Date.now())
      if (step === 'fail') return json(503, { error: { code: 'ERR_UNAVAILABLE', message: 'down' } })
      if (step === 'revoked') return json(403, { error: { code: 'ERR_REVOKED', message: 'the agent has been revoked' } })
      return json(201, { did: 'x', credential: `cred-${n}`, credentialId: `c${n}`, expiresAt: new Date(Date.now() + lifetimeMs).toISOString(), status: {} })
    }
    return json(404, { error: { code: 'ERR_NOT_FOUND', message: url } })
  }
  return { fetch, renewals }
}

describe('startIdentityRotation', () => {
  it('renews before expiry, keeps serving through failures with back-off, and stops on revocation', async () => {
    const issuer = scriptedIssuer(['ok', 'fail', 'fail', 'ok', 'revoked'])
    const errors: unknown[] = []
    let revoked: unknown
    const identity = await startIdentityRotation({
      issuerUrl: 'http://issuer.test', privateJwk: generateEd25519KeyPair().privateJwk, fetch: issuer.fetch,
      renewFraction: 0.1, jitter: 0, retry: { initialMs: 20, maxMs: 40 },
      onError: (_w, e) => errors.push(e), onRevoked: (e) => { revoked = e },
    })
    expect(identity.credential()).toBe('cred-1') // renewed at start: no credential was given
    const error = await identity.revoked
    expect(error.code).toBe('ERR_REVOKED')
    expect(revoked).toBe(error)
    expect(errors.map((e) => (e as { code: string }).code)).toEqual(['ERR_UNAVAILABLE', 'ERR_UNAVAILABLE'])
    expect(issuer.renewals).toHaveLength(5)
    // The first renewal after start waited ~10 % of the 2 s lifetime; the retries backed off 20 then 40 ms.
    expect(issuer.renewals[1]! - issuer.renewals[0]!).toBeGreaterThanOrEqual(150)
    expect(issuer.renewals[2]! - issuer.renewals[1]!).toBeGreaterThanOrEqual(15)
    expect(() => identity.credential()).toThrow(expect.objectContaining({ code: 'ERR_REVOKED' }))
    await sleep(300)
    expect(issuer.renewals).toHaveLength(5) // nothing after the revocation
  })

  it('says ERR_EXPIRED when renewal never succeeds before the end, and stop() stops', async () => {
    const issuer = scriptedIssuer(['fail'], 300)
    const identity = await startIdentityRotation({
      issuerUrl: 'http://issuer.test', privateJwk: generateEd25519KeyPair().privateJwk, fetch: issuer.fetch,
      credential: { credential: 'held', expiresAt: new Date(Date.now() + 300).toISOString() }, renewFraction: 0.5, retry: { initialMs: 20, maxMs: 40 },
    })
    expect(identity.credential()).toBe('held')
    await sleep(400)
    expect(() => identity.credential()).toThrow(expect.objectContaining({ code: 'ERR_EXPIRED' }))
    identity.stop()
    expect(identity.state).toBe('stopped')
    const count = issuer.renewals.length
    await sleep(150)
    expect(issuer.renewals.length).toBe(count)
  })

  it('refuses options out of range', async () => {
    const privateJwk = generateEd25519KeyPair().privateJwk
    for (const bad of [{ renewFraction: 0 }, { renewFraction: 1 }, { jitter: 0.9 }, { retry: { initialMs: 1 } }, { retry: { initialMs: 100, maxMs: 50 } }]) {
      await expect(startIdentityRotation({ issuerUrl: 'http://issuer.test', privateJwk, ...bad })).rejects.toThrow(TypeError)
    }
  })
})
