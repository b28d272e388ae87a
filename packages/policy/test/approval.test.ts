import { describe, expect, it } from 'vitest'
import { loadPolicyEngine, validatePolicyDirectory } from '@agentid/policy'
import { policyDir, subject, tool } from './fixtures.js'

const PAY = `
@id("pay") @approval("required") @approvers("finance")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"bank/pay");
@id("refund") @approval("required")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"bank/refund");
@id("no-self") forbid (principal, action, resource) when { context has approval && context.approval.selfApproval };
`
const approval = (group: string | null, selfApproval = false) => ({ approverId: 'apv_1', approver: 'Dana', group, selfApproval })

describe('@approval("required")', () => {
  it('turns an allow into approval-required without an approval, naming the group', async () => {
    const engine = await loadPolicyEngine({ dir: policyDir({ 'p.cedar': PAY }) })
    const d = engine.authorize(subject('alice'), 'callTool', tool('bank', 'pay'))
    expect(d).toMatchObject({ allowed: false, decision: 'deny', reason: 'approval-required', policies: ['pay'], approval: { group: 'finance', approved: false } })
    const r = engine.authorize(subject('alice'), 'callTool', tool('bank', 'refund'))
    expect(r).toMatchObject({ allowed: false, reason: 'approval-required', approval: { group: null } })
  })

  it('allows with an approval for the group the permit names, and only that group', async () => {
    const engine = await loadPolicyEngine({ dir: policyDir({ 'p.cedar': PAY }) })
    expect(engine.authorize(subject('alice', {}, { approval: approval('finance') }), 'callTool', tool('bank', 'pay'))).toMatchObject({ allowed: true, approval: { group: 'finance', approved: true } })
    expect(engine.authorize(subject('alice', {}, { approval: approval(null) }), 'callTool', tool('bank', 'pay')).reason).toBe('approval-required')
    expect(engine.authorize(subject('alice', {}, { approval: approval('it') }), 'callTool', tool('bank', 'pay')).reason).toBe('approval-required')
    expect(engine.authorize(subject('alice', {}, { approval: approval(null) }), 'callTool', tool('bank', 'refund')).allowed).toBe(true)
  })

  it('a forbid on context.approval still denies (self-approval), with reason policy', async () => {
    const engine = await loadPolicyEngine({ dir: policyDir({ 'p.cedar': PAY }) })
    const d = engine.authorize(subject('alice', {}, { approval: approval('finance', true) }), 'callTool', tool('bank', 'pay'))
    expect(d).toMatchObject({ allowed: false, reason: 'policy', policies: ['no-self'] })
  })

  it('an unmarked permit that also applies allows without approval', async () => {
    const engine = await loadPolicyEngine({ dir: policyDir({ 'p.cedar': `${PAY}\n@id("open") permit (principal, action, resource == AgentId::Tool::"bank/pay");` }) })
    expect(engine.authorize(subject('alice'), 'callTool', tool('bank', 'pay'))).toMatchObject({ allowed: true, reason: 'policy' })
  })

  it('a deny stays a deny: no approval is requested for a call no permit allows', async () => {
    const engine = await loadPolicyEngine({ dir: policyDir({ 'p.cedar': PAY }) })
    expect(engine.authorize(subject('alice'), 'callTool', tool('bank', 'other')).reason).toBe('no-matching-policy')
  })

  it('refuses malformed approval annotations and a malformed subject.approval', async () => {
    for (const bad of [
      '@approval("maybe") permit (principal, action, resource);',
      '@approval("required") forbid (principal, action, resource);',
      '@approvers("finance") permit (principal, action, resource);',
      '@approval("required") @approvers("fin ance") permit (principal, action, resource);',
    ]) {
      const v = await validatePolicyDirectory(policyDir({ 'p.cedar': bad }))
      expect(v.ok, bad).toBe(false)
      expect(v.diagnostics[0]?.file).toBe('p.cedar')
    }
    const engine = await loadPolicyEngine({ dir: policyDir({ 'p.cedar': PAY }) })
    const d = engine.authorize(subject('alice', {}, { approval: { approverId: 'apv_1', approver: 'Dana', group: 'finance', selfApproval: 'no' } as never }), 'callTool', tool('bank', 'pay'))
    expect(d.reason).toBe('invalid-request')
  })
})
