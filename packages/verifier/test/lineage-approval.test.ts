// An approval as part of the lineage: the hop of the approved call signs the receipt's digest (`apr`);
// verifyLineage, given the receipts sent with the call, verifies each against its hop.
import { beforeEach, describe, expect, it } from 'vitest'
import { signerFromJwk, StatusList, VerificationError } from '@agentid/core'
import { appendHop, argsDigest, decodeLineage } from '@agentid/lineage'
import { argumentsDigest, createVerifier, type ApprovalReceipt, type Verifier } from '@agentid/verifier'
import { call, receipt } from './approval-fixtures.js'
import { alice, bob, credential, issuer, LIST_URL, statusListJwt, statusServer, testClock } from './fixtures.js'

const TOOL = 'https://bank.example'
const ARGS = { body: { invoice: 'INV-42', amount: '1200.00 EUR' } }
const TXN = 'tx-approval-0001'
const signer = signerFromJwk(alice.privateJwk)

let verifier: Verifier
let cred: string

beforeEach(async () => {
  verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) }), clock: testClock() })
  cred = await credential({ sub: alice.did, index: '1' })
})

async function approved(o: { args?: unknown; txn?: string; command?: string } = {}): Promise<ApprovalReceipt> {
  const args = o.args ?? ARGS
  return receipt({ call: call({ agent: alice.did, target: TOOL, command: o.command ?? 'POST /v1/pay', arguments: args, argumentsDigest: argumentsDigest(args), transactionId: o.txn ?? TXN, user: null }), cred: { index: '9' } })
}

const hopWith = (approval: unknown, args: unknown = ARGS) =>
  appendHop(undefined, { signer, credential: cred, clock: testClock(), target: TOOL, command: 'POST /v1/pay', args, transactionId: TXN, approval })

const verify = (lineage: string, approvals?: unknown[]) =>
  verifier.verifyLineage(lineage, { audience: TOOL, command: 'POST /v1/pay', args: ARGS, credentials: [cred], ...(approvals === undefined ? {} : { approvals }) })

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (x: unknown) => x)
  expect(e).toBeInstanceOf(VerificationError)
  return (e as VerificationError).code
}

describe('approvals in the lineage', () => {
  it('the hop signs the receipt digest; verifyLineage verifies the receipt for that hop', async () => {
    const r = await approved()
    const lineage = await hopWith(r)
    expect(decodeLineage(lineage)[0]!.claims).toMatchObject({ apr: argsDigest(r) })
    const v = await verify(lineage, [r])
    expect(v.last.approval?.digest).toBe(argsDigest(r))
    expect(v.last.approval?.verified?.approver.name).toBe('Dana')
    // JSON text of the receipt (as the Agentid-Approval header carries it) works too; not consumed by the lineage check.
    await verifier.verifyApproval(r, { call: { agent: alice.did, target: TOOL, command: 'POST /v1/pay', arguments: ARGS } })
  })

  it('without the receipts the hop is accepted but names an unverified approval', async () => {
    const r = await approved()
    const v = await verify(await hopWith(JSON.stringify(r)))
    expect(v.last.approval).toEqual({ digest: argsDigest(r), verified: null })
    // A claim alone is no approval.
    expect(v.last.approved).toBe(false)
    expect(v.approvals).toEqual([])
  })

  it('lists the verified approvals: approved hops and what verifyApproval established, only for receipts that verified', async () => {
    const r = await approved()
    const v = await verify(await hopWith(r), [r])
    expect(v.last.approved).toBe(true)
    expect(v.approvals).toHaveLength(1)
    expect(v.approvals[0]).toMatchObject({ hop: 0, actor: alice.did, target: TOOL, command: 'POST /v1/pay', approval: { approver: { id: 'apv_dana', name: 'Dana' }, requestId: r.call.id } })
    expect(Object.isFrozen(v.approvals)).toBe(true)
    // A hop without apr is not approved, even with a receipt for its very call sent along.
    const plain = await verify(await hopWith(undefined), [r])
    expect(plain.last.approved).toBe(false)
    expect(plain.approvals).toEqual([])
  })

  it('an approved hop earlier in the chain: the approvals name that hop, not the call received', async () => {
    const bobSigner = signerFromJwk(bob.privateJwk)
    const bobCred = await credential({ sub: bob.did, index: '2' })
    const r = await approved()
    const l0 = await appendHop(undefined, { signer, credential: cred, clock: testClock(), target: TOOL, callee: bob.did, command: 'POST /v1/pay', args: ARGS, transactionId: TXN, approval: r })
    const l1 = await appendHop(l0, { signer: bobSigner, credential: bobCred, clock: testClock(), target: 'https://ledger.example', command: 'POST /v1/book', args: { n: 1 } })
    const v = await verifier.verifyLineage(l1, { audience: 'https://ledger.example', command: 'POST /v1/book', args: { n: 1 }, credentials: [cred, bobCred], approvals: [r] })
    expect(v.hops.map((h) => h.approved)).toEqual([true, false])
    expect(v.approvals.map((a) => [a.hop, a.actor, a.command])).toEqual([[0, alice.did, 'POST /v1/pay']])
  })

  it('a transaction with two approvals: the call received carries its receipt, the earlier one stays claimed, not approved', async () => {
    // Each receipt travels with the call it approved (MCP _meta and Agentid-Approval carry one): the service
    // bob calls gets bob's, not alice's. The whole call was refused (approval-missing on hop 0) before.
    const bobSigner = signerFromJwk(bob.privateJwk)
    const bobCred = await credential({ sub: bob.did, index: '2' })
    const r0 = await approved()
    const BOOK = { n: 1 }
    const r1 = await receipt({ call: call({ agent: bob.did, target: 'https://ledger.example', command: 'POST /v1/book', arguments: BOOK, argumentsDigest: argumentsDigest(BOOK), transactionId: TXN, user: null }), cred: { index: '9' } })
    const l0 = await appendHop(undefined, { signer, credential: cred, clock: testClock(), target: TOOL, callee: bob.did, command: 'POST /v1/pay', args: ARGS, transactionId: TXN, approval: r0 })
    // A new last hop each time (each is accepted once).
    const book = async (approvals: unknown[]) => verifier.verifyLineage(await appendHop(l0, { signer: bobSigner, credential: bobCred, clock: testClock(), target: 'https://ledger.example', command: 'POST /v1/book', args: BOOK, approval: r1 }), { audience: 'https://ledger.example', command: 'POST /v1/book', args: BOOK, credentials: [cred, bobCred], approvals })
    const v = await book([r1])
    expect(v.hops.map((h) => h.approved)).toEqual([false, true])
    expect(v.hops[0]!.approval).toEqual({ digest: argsDigest(r0), verified: null })
    expect(v.approvals.map((a) => [a.hop, a.actor])).toEqual([[1, bob.did]])
    // Both sent: both verified.
    expect((await book([r0, r1])).hops.map((h) => h.approved)).toEqual([true, true])
    // Only the earlier one sent: the call received is not backed by its receipt, refused naming it.
    const e = await book([r0]).then(() => undefined, (x: unknown) => x)
    expect(e).toMatchObject({ code: 'ERR_APPROVAL_MISMATCH', details: { hop: 1, reason: 'approval-missing' } })
  })

  it('refuses a hop whose receipt was not sent, another receipt, or one for another transaction or arguments', async () => {
    const r = await approved()
    const lineage = await hopWith(r)
    expect(await code(verify(lineage, [await approved({ args: { body: { invoice: 'INV-43' } } })]))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code(verify(lineage, ['not json']))).toBe('ERR_APPROVAL_MISMATCH')
    const otherTxn = await approved({ txn: 'tx-other-00001' })
    expect(await code(verify(await hopWith(otherTxn), [otherTxn]))).toBe('ERR_APPROVAL_MISMATCH')
    const otherCommand = await approved({ command: 'POST /v1/refund' })
    expect(await code(verify(await hopWith(otherCommand), [otherCommand]))).toBe('ERR_APPROVAL_MISMATCH')
    const denied = await receipt({ decision: 'deny', call: (await approved()).call, cred: { index: '9' } })
    expect(await code(verify(await hopWith(denied), [denied]))).toBe('ERR_APPROVAL_DENIED')
  })

  it('refuses a receipt approved under another controller than the one the actor\'s credential names', async () => {
    // The approver answers for did:web:other.example, and the request named it: valid for that controller,
    // but alice's credential says did:web:acme.example answers for her.
    const args = ARGS
    const foreign = await receipt({
      call: call({ agent: alice.did, controller: 'did:web:other.example', target: TOOL, command: 'POST /v1/pay', arguments: args, argumentsDigest: argumentsDigest(args), transactionId: TXN, user: null }),
      cred: { index: '9', controllers: ['did:web:other.example'] },
    })
    await expect(verifier.verifyApproval(foreign, { call: { agent: alice.did, target: TOOL, command: 'POST /v1/pay', arguments: ARGS } })).resolves.toBeDefined()
    expect(await code(verify(await hopWith(foreign), [foreign]))).toBe('ERR_APPROVAL_MISMATCH')
  })

  it('a malformed apr claim is refused when decoding', async () => {
    await expect(hopWith(undefined).then((l) => verify(l, []))).resolves.toMatchObject({ last: { approval: null } })
    await expect(appendHop(undefined, { signer, credential: cred, target: TOOL, command: 'POST /v1/pay', args: ARGS, approval: '{' })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
  })
})
