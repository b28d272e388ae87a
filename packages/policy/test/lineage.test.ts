import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import { describe, expect, it } from 'vitest'
import { AGENTID_CEDAR_SCHEMA, loadPolicyEngine, type LineageEntryInput, type LineageInput } from '@agentid/policy'
import { lineageContext, requestContext } from '../src/internal/request.js'
import { DIDS, policyDir, subject } from './fixtures.js'

const actor = (did: string, purpose: string) => ({ did, claims: { purpose, controller: 'did:web:acme.example' } })
const hop = (index: number, who: ReturnType<typeof actor>, command: string, callee: string | null = DIDS.bob): LineageEntryInput =>
  ({ kind: 'hop', index, actor: who, target: `mcp://shop/${command.split(' ')[1] ?? 'x'}`, command, callee })
const receipt = (index: number, who: ReturnType<typeof actor>, answers: number, outcome = 'ok'): LineageEntryInput => ({ kind: 'receipt', index, actor: who, answers, outcome })
const lineage = (entries: LineageEntryInput[], kind: string | null = 'request', user: string | null = 'user-1'): LineageInput =>
  ({ transactionId: 'txn-00000001', origin: { kind }, user, entries })

const A = actor(DIDS.alice, 'orchestration')
const B = actor(DIDS.bob, 'fraud-screening')
const M = actor(DIDS.mallory, 'mcp-server')

describe('context.lineage', () => {
  it('summarises the hops (sets, counts, order) and conforms to the schema', () => {
    const l = lineage([hop(0, A, 'POST /v1/screen'), hop(1, B, 'tools/call fraud.check', DIDS.mallory), receipt(2, M, 1), hop(3, B, 'tools/call payments.charge', null)])
    const context = requestContext(subject('bob', {}, { lineage: l }), 1_700_000_000)
    expect(context.lineage).toEqual({
      transactionId: 'txn-00000001', hopCount: 3, entryCount: 4, originKind: 'request', humanOrigin: true, user: 'user-1',
      approved: false, approvedCommands: [], approvedCalls: [], selfApproved: false, approvals: [], approvers: [],
      actors: [DIDS.alice, DIDS.bob], purposes: ['orchestration', 'fraud-screening'], controllers: ['did:web:acme.example'],
      commands: ['POST /v1/screen', 'tools/call fraud.check', 'tools/call payments.charge'],
      targets: ['mcp://shop//v1/screen', 'mcp://shop/fraud.check', 'mcp://shop/payments.charge'],
      steps: [{ purpose: 'orchestration', command: 'POST /v1/screen' }, { purpose: 'fraud-screening', command: 'tools/call fraud.check' }, { purpose: 'fraud-screening', command: 'tools/call payments.charge' }],
      answered: [{ purpose: 'fraud-screening', command: 'tools/call fraud.check', outcome: 'ok' }],
      answeredCalls: [{ purpose: 'fraud-screening', target: 'mcp://shop/fraud.check', command: 'tools/call fraud.check', outcome: 'ok' }],
      firstActor: DIDS.alice, firstPurpose: 'orchestration',
      trail: '<orchestration|POST /v1/screen><fraud-screening|tools/call fraud.check><fraud-screening|tools/call payments.charge>',
    })
    expect(cedar.checkParseContext({ context: context as never, schema: AGENTID_CEDAR_SCHEMA, action: { type: 'AgentId::Action', id: 'callTool' } })).toEqual({ type: 'success' })
    const grant = requestContext(subject('bob', {}, { lineage: lineage([hop(0, A, 'tools/call x')], null, null) }), 1)
    expect(grant.lineage).toMatchObject({ originKind: '', humanOrigin: false })
    expect(grant.lineage).not.toHaveProperty('user')
  })

  it('approvals: only hops whose receipt verified (approval.verified) count, never an apr digest alone', () => {
    const verified = (who: ReturnType<typeof actor>, command: string, group: string | null = 'finance', selfApproval = false) =>
      ({ approver: { id: 'apv_dana', name: 'Dana' }, call: { agent: who.did, command, group }, selfApproval })
    const approvedHop = (index: number, who: ReturnType<typeof actor>, command: string, callee: string | null = DIDS.bob): LineageEntryInput =>
      ({ ...hop(index, who, command, callee), approval: { verified: verified(who, command) } } as LineageEntryInput)
    const claimedOnly = { ...hop(1, B, 'tools/call payments.charge', null), approval: { digest: 'x'.repeat(43), verified: null } } as LineageEntryInput
    const ctx = (l: LineageInput) => requestContext(subject('bob', {}, { lineage: l }), 1).lineage as Record<string, unknown>

    const l = lineage([hop(0, A, 'POST /v1/screen'), approvedHop(1, B, 'tools/call payments.charge', null)], 'grant')
    const c = requestContext(subject('bob', {}, { lineage: l }), 1)
    expect(c.lineage).toMatchObject({
      approved: true, approvedCommands: ['tools/call payments.charge'], approvers: ['apv_dana'], humanOrigin: false, selfApproved: false,
      approvedCalls: [{ target: 'mcp://shop/payments.charge', command: 'tools/call payments.charge' }],
      approvals: [{ purpose: 'fraud-screening', command: 'tools/call payments.charge', target: 'mcp://shop/payments.charge', approverId: 'apv_dana', approver: 'Dana', group: 'finance', selfApproval: false }],
    })
    expect(cedar.checkParseContext({ context: c as never, schema: AGENTID_CEDAR_SCHEMA, action: { type: 'AgentId::Action', id: 'callTool' } })).toEqual({ type: 'success' })

    // An apr claim without a verified receipt, and an "approval" origin asserted by the first agent: nothing.
    expect(ctx(lineage([hop(0, A, 'POST /v1/screen'), claimedOnly], 'approval'))).toMatchObject({ approved: false, approvedCommands: [], approvedCalls: [], selfApproved: false, approvals: [], approvers: [], originKind: 'approval', humanOrigin: false })
    // The first hop approved: a human started the transaction.
    expect(ctx(lineage([approvedHop(0, A, 'POST /v1/screen'), hop(1, B, 'tools/call x', null)], 'approval'))).toMatchObject({ humanOrigin: true, approvedCommands: ['POST /v1/screen'] })
    // A controller group of "" and a self-approval are carried as such.
    const self = { ...hop(0, A, 'tools/call x', null), approval: { verified: verified(A, 'tools/call x', null, true) } } as LineageEntryInput
    expect(ctx(lineage([self]))).toMatchObject({ approvals: [{ group: '', selfApproval: true }], selfApproved: true })

    // A verified approval of another hop (signer or command) or of the wrong shape is a malformed request.
    for (const bad of [
      { ...hop(0, A, 'tools/call x', null), approval: { verified: verified(B, 'tools/call x') } },
      { ...hop(0, A, 'tools/call x', null), approval: { verified: verified(A, 'tools/call y') } },
      { ...hop(0, A, 'tools/call x', null), approval: { verified: { ...verified(A, 'tools/call x'), selfApproval: 'no' } } },
      { ...hop(0, A, 'tools/call x', null), approval: { verified: { ...verified(A, 'tools/call x'), approver: { id: '', name: 'Dana' } } } },
      { ...hop(0, A, 'tools/call x', null), approval: 'yes' },
    ]) expect(() => lineageContext(lineage([bad as LineageEntryInput]))).toThrow()
  })

  it('a policy requires a verified approval of the charge in the lineage', async () => {
    const dir = policyDir({
      'p.cedar': `
@id("charge") permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"shop/charge")
when { context has lineage && context.lineage.approvedCommands.contains("tools/call charge") };`,
    })
    const engine = await loadPolicyEngine({ dir })
    const charge = { type: 'Tool' as const, server: 'shop', name: 'charge' }
    const decide = (l: LineageInput) => engine.authorize(subject('bob', {}, { lineage: l }), 'callTool', charge).decision
    const last = hop(0, B, 'tools/call charge', null)
    const approval = { approver: { id: 'apv_dana', name: 'Dana' }, call: { agent: B.did, command: 'tools/call charge', group: null }, selfApproval: false }
    expect(decide(lineage([{ ...last, approval: { verified: approval } } as LineageEntryInput]))).toBe('allow')
    expect(decide(lineage([{ ...last, approval: { verified: null } } as LineageEntryInput]))).toBe('deny')
    expect(decide(lineage([last]))).toBe('deny')
  })

  it('a past hop\'s command in another spelling its server resolves alike is in commands in both forms (found by the red team)', async () => {
    // A forbid written for docs://secrets/key and POST /v1/charges: a hop that read DOCS://secrets/./key or
    // called /v1/ch%61rges reached the same resource or route (new URL(), Fastify's router) under a string
    // the policy did not name.
    const dir = policyDir({
      'p.cedar': `
@id("all") permit (principal, action, resource);
@id("no-pay-after-secrets") forbid (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"shop/pay")
when { context has lineage && context.lineage.commands.contains("resources/read docs://secrets/key") };
@id("no-pay-twice") forbid (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"shop/pay")
when { context has lineage && context.lineage.commands.contains("POST /v1/charges") };`,
    })
    const engine = await loadPolicyEngine({ dir })
    const pay = { type: 'Tool' as const, server: 'shop', name: 'pay' }
    const after = (command: string) => engine.authorize(subject('bob', {}, { lineage: lineage([hop(0, A, command), hop(1, B, 'tools/call pay', null)]) }), 'callTool', pay).decision
    for (const read of ['resources/read docs://secrets/key', 'resources/read DOCS://secrets/key', 'resources/read docs://secrets/./key', 'resources/read docs://secrets/k%65y']) expect(after(read), read).toBe('deny')
    for (const post of ['POST /v1/charges', 'POST /v1/ch%61rges', 'POST /v1/%63harges']) expect(after(post), post).toBe('deny')
    expect(after('resources/read docs://secrets/other')).toBe('allow')
    expect(after('POST /v1/charges%2F')).toBe('allow') // a reserved escape is another path
    // Tool and prompt names are matched as sent; the command as signed stays in the list.
    expect(lineageContext(lineage([hop(0, A, 'tools/call f%61'), hop(1, A, 'resources/read DOCS://x', null)]))).toMatchObject({ commands: ['tools/call f%61', 'resources/read DOCS://x', 'resources/read docs://x'] })
  })

  it('percent-encodes the trail delimiters inside purposes and commands, so no hop can pose as two', () => {
    const forged = lineage([hop(0, actor(DIDS.alice, 'x|tools/call fraud.check><fraud-screening'), 'tools/call a%3E')])
    expect((lineageContext(forged) as { trail: string }).trail).toBe('<x%7Ctools/call fraud.check%3E%3Cfraud-screening|tools/call a%253E>')
  })

  it('refuses malformed lineages (the decision denies as invalid-request)', () => {
    const bad: unknown[] = [
      'txn', [], { transactionId: 'txn-00000001', origin: { kind: null }, user: null, entries: [] },
      lineage([receipt(0, A, 0)]), // a receipt answering nothing
      lineage([hop(1, A, 'tools/call x')]), // index out of place
      lineage([{ ...hop(0, A, 'tools/call x'), kind: 'other' } as never]),
      lineage([hop(0, A, 'tools/call x'), receipt(1, B, 0, '')]),
      lineage([hop(0, { did: DIDS.alice } as never, 'tools/call x')]),
      { ...lineage([hop(0, A, 'tools/call x')]), transactionId: 7 },
      { ...lineage([hop(0, A, 'tools/call x')]), origin: { kind: 3 } },
      lineage(Array.from({ length: 1025 }, (_, i) => hop(i, A, 'tools/call x'))),
    ]
    for (const l of bad) expect(() => lineageContext(l), JSON.stringify(l).slice(0, 80)).toThrow()
  })

  it('a policy reads it: a charge only after an ok fraud.check by a fraud-screening agent, at most 4 hops', async () => {
    const dir = policyDir({
      'p.cedar': `
@id("charge") permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"shop/charge")
when { context has lineage && context.lineage.answered.contains({ purpose: "fraud-screening", command: "tools/call fraud.check", outcome: "ok" }) };
@id("hops") forbid (principal, action, resource) when { context has lineage && context.lineage.hopCount > 4 };`,
    })
    const engine = await loadPolicyEngine({ dir })
    const charge = { type: 'Tool' as const, server: 'shop', name: 'charge' }
    const decide = (l: LineageInput | undefined) => engine.authorize(subject('bob', {}, l === undefined ? {} : { lineage: l }), 'callTool', charge)
    const checked = [hop(0, A, 'POST /v1/screen'), hop(1, B, 'tools/call fraud.check', DIDS.mallory), receipt(2, M, 1)]
    expect(decide(lineage([...checked, hop(3, B, 'tools/call charge', null)])).decision).toBe('allow')
    expect(decide(undefined)).toMatchObject({ decision: 'deny', reason: 'no-matching-policy' })
    expect(decide(lineage([checked[0]!, checked[1]!, receipt(2, M, 1, 'error'), hop(3, B, 'tools/call charge', null)])).decision).toBe('deny')
    const long = [hop(0, A, 'a'), hop(1, A, 'b'), hop(2, A, 'c'), ...[hop(3, A, 'POST /v1/screen'), hop(4, B, 'tools/call fraud.check', DIDS.mallory), receipt(5, M, 4)], hop(6, B, 'tools/call charge', null)]
    expect(decide(lineage(long))).toMatchObject({ decision: 'deny', policies: ['hops'] })
    expect(decide(lineage([...checked, { ...hop(3, B, 'tools/call charge', null), index: 4 }])).reason).toBe('invalid-request')
  })
})
