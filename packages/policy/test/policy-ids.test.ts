// Policy ids are object keys in what the engine hands to Cedar: an id like `__proto__` must not make a policy
// vanish (a forbid silently dropped would turn a deny into an allow).
import { describe, expect, it } from 'vitest'
import { loadPolicyEngine, validatePolicyDirectory } from '@agentid/policy'
import { policyDir, subject, tool } from './fixtures.js'

const PERMIT_ALL = `@id("all-tools")\npermit (principal, action == AgentId::Action::"callTool", resource);\n`

describe('policy ids that are special object keys', () => {
  for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '__defineGetter__']) {
    it(`a forbid with @id(${JSON.stringify(id)}) is enforced, and validated`, async () => {
      const dir = policyDir({ 'a.cedar': PERMIT_ALL, 'b.cedar': `@id(${JSON.stringify(id)})\nforbid (principal, action, resource == AgentId::Tool::"gh/delete_repo");\n` })
      const engine = await loadPolicyEngine({ dir })
      expect(engine.policyCount).toBe(2)
      expect(engine.authorize(subject('alice'), 'callTool', tool('gh', 'search_issues')).allowed).toBe(true)
      expect(engine.authorize(subject('alice'), 'callTool', tool('gh', 'delete_repo'))).toMatchObject({ allowed: false, policies: [id], reason: 'policy' })
      // The same policy with a schema violation is refused, not skipped.
      const bad = policyDir({ 'a.cedar': PERMIT_ALL, 'b.cedar': `@id(${JSON.stringify(id)})\nforbid (principal, action, resource) when { principal.nope == 1 };\n` })
      expect((await validatePolicyDirectory(bad)).ok).toBe(false)
    })
  }
})
