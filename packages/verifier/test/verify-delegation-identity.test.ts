import { generateEd25519KeyPair, signerFromJwk, StatusList, VerificationError, type VerificationErrorCode } from '@agentid/core'
import { delegate, type Capability } from '@agentid/delegation'
import { createVerifier, type Verifier } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, credential, issuer, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

// requireIdentity: every agent of the chain must hold a valid identity credential.
const carol = generateEd25519KeyPair()
const ERP: Capability[] = [{ resource: 'mcp://erp/tools/*', actions: ['*'] }]
const READ: Capability[] = [{ resource: 'mcp://erp/tools/invoices/read', actions: ['invoke'] }]
const REQUEST = { invoker: carol.did, resource: 'mcp://erp/tools/invoices/read', action: 'invoke' } as const

let list: StatusList
let verifier: Verifier
let clock: ReturnType<typeof testClock>
let chain: string[]
let ids: { alice: string; bob: string; carol: string }

async function refused(promise: Promise<unknown>, code: VerificationErrorCode, link: number): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  expect((error as VerificationError).details.link).toBe(link)
}

beforeEach(async () => {
  list = StatusList.create()
  clock = testClock()
  const lists: Record<string, string> = { [LIST_URL]: await statusListJwt(list) }
  verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer(lists), clock, statusTtlMs: 0, statusGraceMs: 0 })
  const root = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, caveats: { remainingDepth: 3 }, expiresIn: 3600, clock })
  const ab = await delegate({ signer: signerFromJwk(alice.privateJwk), to: bob.did, parent: root, capabilities: READ, expiresIn: 1800, clock })
  chain = await delegate({ signer: signerFromJwk(bob.privateJwk), to: carol.did, parent: ab, capabilities: READ, expiresIn: 600, clock })
  ids = {
    alice: await credential({ sub: alice.did, index: '11' }),
    bob: await credential({ sub: bob.did, index: '12' }),
    carol: await credential({ sub: carol.did, index: '13' }),
  }
})

describe('verifyDelegation with requireIdentity', () => {
  it('accepts a chain whose every agent holds a valid identity credential', async () => {
    const result = await verifier.verifyDelegation(chain, { ...REQUEST, requireIdentity: true, identityCredentials: [ids.carol, ids.alice, ids.bob] })
    expect(result.leaf.did).toBe(carol.did)
    // Without requireIdentity, no credentials are needed.
    await verifier.verifyDelegation(chain, REQUEST)
  })

  it('refuses when an agent has no credential, naming the first link it appears in', async () => {
    await refused(verifier.verifyDelegation(chain, { ...REQUEST, requireIdentity: true, identityCredentials: [ids.alice, ids.carol] }), 'ERR_NOT_AUTHORIZED', 1)
    await refused(verifier.verifyDelegation(chain, { ...REQUEST, requireIdentity: true }), 'ERR_NOT_AUTHORIZED', 0)
  })

  it('refuses with the credential\'s own code when an agent\'s credential is revoked or expired', async () => {
    list.set(12, 1)
    const lists = { [LIST_URL]: await statusListJwt(list) }
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer(lists), clock, statusTtlMs: 0, statusGraceMs: 0 })
    await refused(v.verifyDelegation(chain, { ...REQUEST, requireIdentity: true, identityCredentials: [ids.alice, ids.bob, ids.carol] }), 'ERR_REVOKED', 1)
    const expiredCarol = await credential({ sub: carol.did, index: '14', exp: NOW - 3600 })
    await refused(verifier.verifyDelegation(chain, { ...REQUEST, requireIdentity: true, identityCredentials: [ids.alice, ids.bob, expiredCarol] }), 'ERR_EXPIRED', 2)
  })

  it('does not accept another agent\'s credential, or garbage, in place of a missing one', async () => {
    await refused(verifier.verifyDelegation(chain, { ...REQUEST, requireIdentity: true, identityCredentials: [ids.alice, ids.alice, ids.carol, 'garbage', 42] }), 'ERR_NOT_AUTHORIZED', 1)
  })

  it('refuses an identity list that is not a list or is too long', async () => {
    await refused(verifier.verifyDelegation(chain, { ...REQUEST, requireIdentity: true, identityCredentials: 'x' as never }), 'ERR_MALFORMED', null as never)
    await refused(verifier.verifyDelegation(chain, { ...REQUEST, requireIdentity: true, identityCredentials: Array(12).fill(ids.alice) }), 'ERR_MALFORMED', null as never)
  })
})
