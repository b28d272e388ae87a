// Issue 11, verifier side: what an outside attack suite got through verifyDelegation.
import { AGENTID_CONTEXT_V1, generateEd25519KeyPair, signerFromJwk, signJwt, StatusList, VC_CONTEXT_V1, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { delegate, linkHash } from '@agentid/delegation'
import { createVerifier, type Verifier, type VerifierOptions } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, issuer, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

const carol = generateEd25519KeyPair()
const aliceSigner = signerFromJwk(alice.privateJwk)
const bobSigner = signerFromJwk(bob.privateJwk)
const carolSigner = signerFromJwk(carol.privateJwk)

let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
const at = () => clock()

function make(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0, ...extra })
}

beforeEach(async () => {
  server = statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) })
  clock = testClock()
})

async function failure(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code, JSON.stringify((error as VerificationError).details)).toBe(code)
  return error as VerificationError
}

/** Signs a link as an attacker would: no attenuation or resource check. */
async function rawLink(o: { signer: Signer; sub: string; resource: string; parent?: string; status?: Record<string, unknown> }): Promise<string> {
  const subject: Record<string, unknown> = { id: o.sub, capabilities: [{ resource: o.resource, actions: ['invoke'] }], caveats: {} }
  if (o.parent) subject.parentHash = linkHash(o.parent)
  const vc: Record<string, unknown> = { '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1], type: ['VerifiableCredential', 'AgentCapabilityCredential'], credentialSubject: subject }
  if (o.status) vc.credentialStatus = o.status
  return signJwt({ typ: 'JWT' }, { iss: o.signer.did, sub: o.sub, nbf: NOW, exp: NOW + 600, jti: 'urn:uuid:7d5b7e0e-6a8a-4f5e-9c55-1b7f2e1c0a11', vc }, o.signer)
}

const DOTTED = ['mcp://erp/public/../payroll/run', 'mcp://erp/public/%2e%2e/payroll/run', 'mcp://erp/public/%2E%2E/payroll/run', 'mcp://erp/public/.%2e/payroll/run', 'mcp://erp/public/./run', 'mcp://erp/public/..%2fpayroll/run']

describe('verifyDelegation: one resource-identifier rule (no dot segments)', () => {
  it('a root trusted only for mcp://erp/public/ authorizes nothing outside it through a dot segment', async () => {
    const verifier = make({ trustedRoots: { 'mcp://erp/public/': [alice.did] } })
    const chain = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/public/*', actions: ['invoke'] }], expiresIn: 600, clock: at })
    await verifier.verifyDelegation(chain, { invoker: bob.did, resource: 'mcp://erp/public/run', action: 'invoke' })
    for (const resource of DOTTED) {
      const error = await failure(verifier.verifyDelegation(chain, { invoker: bob.did, resource, action: 'invoke' }), 'ERR_NOT_AUTHORIZED')
      expect(error.details.reason).toBe('resource not plain')
    }
  })

  it('the issuer-rooted chain does not stretch either', async () => {
    const verifier = make()
    const chain = await delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/public/*', actions: ['invoke'] }], expiresIn: 600, clock: at })
    for (const resource of DOTTED) await failure(verifier.verifyDelegation(chain, { invoker: alice.did, resource, action: 'invoke' }), 'ERR_NOT_AUTHORIZED')
  })

  it('a link whose capability holds a dot segment is malformed; delegate() refuses to sign one', async () => {
    const verifier = make()
    const link = await rawLink({ signer: issuer, sub: alice.did, resource: 'mcp://erp/public/%2e%2e/*' })
    await failure(verifier.verifyDelegation([link], { invoker: alice.did, resource: 'mcp://erp/payroll', action: 'invoke' }), 'ERR_MALFORMED')
    await expect(delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/public/../*', actions: ['invoke'] }], expiresIn: 600, clock: at }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
  })
})
