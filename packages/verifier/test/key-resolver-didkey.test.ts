// An Ed25519 did:key read from itself (KeyResolver's embedded path: its one key, no map) must answer
// every kid as the general path does for the document key-did-resolver makes of the same DID: the
// same keys, or the same error.
import { generateEd25519KeyPair } from '@agentid/core'
import { Resolver } from 'did-resolver'
import { getResolver } from 'key-did-resolver'
import { describe, expect, it } from 'vitest'
import { KeyResolver, type KeyPurpose } from '../src/keys.js'

const outcome = async (f: () => Promise<readonly { id: string }[]> | readonly { id: string }[] | undefined) => {
  try {
    const keys = await f()
    return { ids: keys?.map((k) => k.id) }
  } catch (error) {
    return { error: (error as Error).message, code: (error as { code?: string }).code }
  }
}

describe('KeyResolver: an Ed25519 did:key read from itself', () => {
  it('answers every kid as the resolved document does', async () => {
    const now = () => 1_000
    const embedded = new KeyResolver(new Resolver(getResolver()), 16, 60_000, now, true)
    const general = new KeyResolver(new Resolver(getResolver()), 16, 60_000, now, false)
    const [a, b] = [generateEd25519KeyPair(), generateEd25519KeyPair()]
    const fragment = a.did.slice('did:key:'.length)
    const kids = [undefined, `${a.did}#${fragment}`, `#${fragment}`, `${a.did}#zOther`, '#zOther', `${b.did}#${b.did.slice(8)}`, `${a.did}x#${fragment}`, fragment, '']
    for (const purpose of ['assertionMethod', 'authentication', 'capabilityDelegation', 'capabilityInvocation'] as KeyPurpose[]) {
      for (const kid of kids) {
        // Not remembered (a delegation link's agent): the same answer, before and after the DID is cached.
        const unkept = await outcome(() => embedded.keysForSync(a.did, purpose, kid, false))
        const mine = await outcome(() => embedded.keysForSync(a.did, purpose, kid))
        expect(mine).toEqual(await outcome(() => general.keysFor(a.did, purpose, kid)))
        expect(unkept).toEqual(mine)
        expect(await outcome(() => embedded.keysForSync(a.did, purpose, kid, false))).toEqual(mine)
        // Asked again (now from the DID cache), the same answer.
        expect(await outcome(() => embedded.keysFor(a.did, purpose, kid))).toEqual(mine)
      }
    }
  })

  it('keeps a did:key read from itself in the DID cache only when asked to, and uses a kept one either way', () => {
    const embedded = new KeyResolver(new Resolver(getResolver()), 16, 60_000, () => 1_000, true)
    const { did } = generateEd25519KeyPair()
    const [first] = embedded.keysForSync(did, 'capabilityDelegation', undefined, false)!
    const [second] = embedded.keysForSync(did, 'capabilityDelegation', undefined, false)!
    // Read anew each time: nothing was kept.
    expect(second).not.toBe(first)
    expect(second!.id).toBe(first!.id)
    const [kept] = embedded.keysForSync(did, 'capabilityDelegation')!
    expect(kept).not.toBe(second)
    expect(embedded.keysForSync(did, 'assertionMethod')![0]).toBe(kept)
    expect(embedded.keysForSync(did, 'capabilityDelegation', undefined, false)![0]).toBe(kept)
  })
})
