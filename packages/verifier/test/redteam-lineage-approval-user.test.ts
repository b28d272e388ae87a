// Red team: an approval given for a call on one user's behalf, used by a hop acting for another user in the
// same transaction id (the first agent chooses the transaction id and the user). The receipt binds the
// agent, target, command, arguments and transaction, and its call names the user; the hop names its own.
import { describe, expect, it } from 'vitest'
import { signerFromJwk, StatusList, VerificationError } from '@agentid/core'
import { appendHop } from '@agentid/lineage'
import { argumentsDigest, createVerifier } from '@agentid/verifier'
import { call, receipt } from './approval-fixtures.js'
import { alice, credential, issuer, LIST_URL, statusListJwt, statusServer, testClock } from './fixtures.js'

const TOOL = 'https://bank.example'
const ARGS = { body: { invoice: 'INV-42', amount: '1200.00 EUR' } }
const TXN = 'tx-approval-user-01'

async function setup() {
  const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) }), clock: testClock() })
  const cred = await credential({ sub: alice.did, index: '1' })
  const approval = await receipt({ call: call({ agent: alice.did, target: TOOL, command: 'POST /v1/pay', arguments: ARGS, argumentsDigest: argumentsDigest(ARGS), transactionId: TXN, user: { id: 'carol', issuer: 'https://idp.example' } }), cred: { index: '9' } })
  const hop = (user?: string) => appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: cred, clock: testClock(), target: TOOL, command: 'POST /v1/pay', args: ARGS, transactionId: TXN, approval, ...(user === undefined ? {} : { user }) })
  const verify = (lineage: string) => verifier.verifyLineage(lineage, { audience: TOOL, command: 'POST /v1/pay', args: ARGS, credentials: [cred], approvals: [approval] })
  return { hop, verify }
}

describe('an approval in the lineage is for the user the hop acts for', () => {
  it('refuses it on a hop acting for another user', async () => {
    const { hop, verify } = await setup()
    const error = await verify(await hop('dave')).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_APPROVAL_MISMATCH')
    expect((error as VerificationError).details).toMatchObject({ hop: 0, reason: 'approval-user' })
  })
  it('accepts it on a hop acting for that user, or naming none', async () => {
    const { hop, verify } = await setup()
    expect((await verify(await hop('carol'))).last.approved).toBe(true)
    expect((await verify(await hop())).last.approved).toBe(true)
  })
})
