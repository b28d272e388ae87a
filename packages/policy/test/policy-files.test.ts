// A file that looks like a policy file but would not be loaded (`no-admin.CEDAR`): a reviewer believes its
// forbid is in force, so the folder is refused rather than loaded without it.
import { describe, expect, it } from 'vitest'
import { AgentIdError } from '@agentid/core'
import { loadPolicyEngine, validatePolicyDirectory } from '@agentid/policy'
import { policyDir } from './fixtures.js'

const PERMIT_ALL = `@id("all")\npermit (principal, action == AgentId::Action::"callTool", resource);\n`
const FORBID_ADMIN = `@id("no-admin")\nforbid (principal, action, resource == AgentId::Tool::"gh/admin");\n`

describe('policy file names', () => {
  for (const name of ['no-admin.CEDAR', 'no-admin.Cedar', 'nested/no-admin.cedaR']) {
    it(`a folder holding ${name} is refused, not loaded without it`, async () => {
      const dir = policyDir({ 'a.cedar': PERMIT_ALL, [name]: FORBID_ADMIN })
      const validation = await validatePolicyDirectory(dir)
      expect(validation.ok).toBe(false)
      expect(validation.diagnostics.find((d) => d.severity === 'error')?.file).toBe(name)
      const error = await loadPolicyEngine({ dir }).then(() => null, (e: unknown) => e)
      expect(error).toBeInstanceOf(AgentIdError)
      expect((error as AgentIdError).code).toBe('ERR_POLICY_INVALID')
    })
  }

  it('other files (README.md, old.cedar.bak, hidden files) are still ignored', async () => {
    const dir = policyDir({ 'a.cedar': PERMIT_ALL, 'README.md': '# policies', 'old.cedar.bak': FORBID_ADMIN, '.hidden.CEDAR': FORBID_ADMIN })
    expect(await validatePolicyDirectory(dir)).toMatchObject({ ok: true, policies: 1 })
  })
})
