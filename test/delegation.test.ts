// Delegation on the real issuer process: a root link granted at spawn (grantToolProfile), a link from
// A to B registered over HTTP and signed by A, verified by a separate verifier over real HTTP, then
// revoked with the real CLI (`agentid revoke <delegation-id>`) and refused once the status TTL passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateEd25519KeyPair, signerFromJwk, VerificationError } from '@agentid/core'
import { registerDelegation } from '@agentid/client'
import { delegate } from '@agentid/delegation'
import { createVerifier, type Verifier } from '@agentid/verifier'
import { addOrchestratorViaApi, adminCli, agentHeldSpawn, api, cleanup, cliErrorCode, issuerDid, sleep, startIssuer, type IssuerProcess } from './harness.js'

const TOOL = 'mcp://erp/tools/invoices.read'
const STATUS_TTL_MS = 1000

let issuer: IssuerProcess
let did: string
let verifier: Verifier

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  verifier = createVerifier({ trustedIssuers: [did], statusTtlMs: STATUS_TTL_MS })
})

afterAll(async () => {
  await cleanup()
})

async function outcome(chain: string[], invoker: string): Promise<string> {
  try {
    await verifier.verifyDelegation(chain, { invoker, resource: TOOL, action: 'invoke' })
    return 'OK'
  } catch (error) {
    if (error instanceof VerificationError) return error.code
    throw error
  }
}

describe('delegation', () => {
  it('A→B verifies; `agentid revoke <delegation-id>` revokes it and the verifier refuses it within its TTL', async () => {
    const { apiKey } = await addOrchestratorViaApi(issuer, 'deleg')
    const a = await agentHeldSpawn(did, 'deleg-a')
    const spawned = await api(issuer, 'POST', '/v1/agents', { key: apiKey, json: { ...a.body, grantToolProfile: true } })
    expect(spawned.status, spawned.text).toBe(201)
    const root = spawned.body.delegationChain as string[]
    expect(root).toHaveLength(1)
    expect(await outcome(root, a.did)).toBe('OK')

    const aSigner = signerFromJwk(a.privateJwk)
    const b = signerFromJwk(generateEd25519KeyPair().privateJwk)
    const rootId = JSON.parse(Buffer.from(root[0]!.split('.')[1]!, 'base64url').toString('utf8')).jti as string
    const { id, statusEntry } = await registerDelegation({ issuerUrl: issuer.url, signer: aSigner, parentId: rootId, delegatee: b.did })
    const chain = await delegate({ signer: aSigner, to: b.did, parent: root, id, statusEntry, capabilities: [{ resource: TOOL, actions: ['invoke'] }], expiresIn: 600 })
    expect(await outcome(chain, b.did)).toBe('OK')

    const revoked = await adminCli(issuer, ['revoke', id, '--reason', 'B no longer needs invoices', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.json()).toEqual({ id, revokedDelegations: [id], alreadyRevoked: false, logIndex: expect.any(Number) })
    const since = performance.now()
    for (;;) {
      const code = await outcome(chain, b.did)
      if (code === 'ERR_REVOKED') break
      expect(code).toBe('OK')
      if (performance.now() - since > STATUS_TTL_MS + 10_000) throw new Error('the verifier never refused the revoked link')
      await sleep(50)
    }
    expect(performance.now() - since).toBeLessThan(STATUS_TTL_MS + 5_000)
    // The root above it is untouched.
    expect(await outcome(root, a.did)).toBe('OK')

    // A credential id and an unknown id go through the same command.
    const unknown = await adminCli(issuer, ['revoke', 'urn:uuid:00000000-0000-4000-8000-000000000000', '--reason', 'x', '--json'])
    expect(unknown.code).not.toBe(0)
    expect(cliErrorCode(unknown)).toBe('ERR_NOT_FOUND')
    const cred = await adminCli(issuer, ['revoke', spawned.body.credentialId, '--reason', 'rotated', '--json'])
    expect(cred.code, cred.stderr).toBe(0)
    expect(cred.json()).toEqual({ id: spawned.body.credentialId, agent: a.did, alreadyRevoked: false, logIndex: expect.any(Number) })
  })
})
