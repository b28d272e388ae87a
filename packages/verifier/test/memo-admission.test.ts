// Which verified credentials enter the memo: all while it has room; once it is full, a credential seen
// for the second time (a one-off must not evict the agents a service keeps seeing), and every credential
// a lineage names (found again by its hash on later calls).
import { signerFromJwk, StatusList } from '@agentid/core'
import { appendHop } from '@agentid/lineage'
import { createVerifier, type Verifier } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { SecondSight } from '../src/admission.js'
import { alice, bob, credential, issuer, LIST_URL, statusListJwt, statusServer, testClock } from './fixtures.js'

let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>

function make(memoSize: number): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0, memoSize })
}

beforeEach(async () => {
  server = statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) })
  clock = testClock()
})

describe('memo admission', () => {
  it('memoizes on first sight while the memo has room', async () => {
    const v = make(2)
    const a = await credential()
    expect(await v.verifyAgentCredential(a)).toBe(await v.verifyAgentCredential(a))
  })

  it('once full, memoizes a credential on its second verification and keeps the others meanwhile', async () => {
    const v = make(2)
    const [a, b, c] = [await credential(), await credential(), await credential()]
    const first = { a: await v.verifyAgentCredential(a), b: await v.verifyAgentCredential(b) }
    const once = await v.verifyAgentCredential(c)
    // Seen once: not memoized, so a and b were not evicted for it.
    const twice = await v.verifyAgentCredential(c)
    expect(twice).not.toBe(once)
    expect(twice).toEqual(once)
    // Seen twice: memoized now (evicting the oldest, a).
    expect(await v.verifyAgentCredential(c)).toBe(twice)
    expect(await v.verifyAgentCredential(b)).toBe(first.b)
    expect(await v.verifyAgentCredential(a)).not.toBe(first.a)
  })

  it('a stream of one-offs does not displace the credentials seen again and again', async () => {
    const v = make(4)
    const regular = await credential()
    const kept = await v.verifyAgentCredential(regular)
    for (let i = 0; i < 20; i++) {
      await v.verifyAgentCredential(await credential())
      expect(await v.verifyAgentCredential(regular)).toBe(kept)
    }
  })

  it('a lineage memoizes its actors on first sight, full memo or not: later calls need not send them', async () => {
    const v = make(2)
    await v.verifyAgentCredential(await credential())
    await v.verifyAgentCredential(await credential()) // the memo is full
    const creds = {
      alice: await credential({ sub: alice.did, index: '1' }),
      bob: await credential({ sub: bob.did, index: '2' }),
    }
    const call = async () => {
      const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: creds.alice, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: {}, user: 'user-1', origin: 'a request', originKind: 'request' })
      return appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: creds.bob, clock, target: 'https://tool.example', command: 'POST /pay', args: { n: 1 } })
    }
    const options = { audience: 'https://tool.example', command: 'POST /pay', args: { n: 1 } }
    await v.verifyLineage(await call(), { ...options, credentials: [creds.alice, creds.bob] })
    const again = await v.verifyLineage(await call(), { ...options, credentials: [] })
    expect(again.hops.map((h) => h.actor.did)).toEqual([alice.did, bob.did])
  })

  it('credentials that share a table slot, seen in turn, are each known on their second sight', () => {
    // Keys (SHA-256 base64url) alike in the characters that pick the slot (5 to 7), unlike in the
    // fingerprint's (0 to 4): with one fingerprint per slot, each replaced the other's for ever.
    const key = (i: number) => `${'ABCD'[i]}AAAA` + 'Q'.repeat(38)
    for (const ways of [2, 4]) {
      const sight = new SecondSight(1000)
      const keys = Array.from({ length: ways }, (_, i) => key(i))
      for (const k of keys) expect(sight.seenBefore(k)).toBe(false)
      for (const k of keys) expect(sight.seenBefore(k), `${ways} in one bucket`).toBe(true)
    }
    // Four others of its bucket after it: a credential is forgotten (the table stays bounded).
    const sight = new SecondSight(1000)
    const five = ['AAAAA', 'BAAAA', 'CAAAA', 'DAAAA', 'EAAAA'].map((p) => p + 'Q'.repeat(38))
    for (const k of five) sight.seenBefore(k)
    expect(sight.seenBefore(five[0]!)).toBe(false)
    expect(sight.seenBefore(five[4]!)).toBe(true)
  })

  it('a working set as large as the memo, verified in turn, is all memoized', async () => {
    const v = make(40)
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => credential({ index: String(i + 1) })))
    for (let i = 0; i < 60; i++) await v.verifyAgentCredential(await credential()) // one-offs: the memo is full
    const rounds = []
    for (let r = 0; r < 3; r++) rounds.push(await Promise.all(tokens.map((t) => v.verifyAgentCredential(t))))
    // First round: seen once; second: admitted; third: every one a memo hit (the same object).
    expect(rounds[2]!.filter((a, i) => a === rounds[1]![i]).length).toBe(40)
  })
})
