// Red team: a tool call without arguments, approved, carried in a lineage. The hop signs the digest of the
// arguments received (`argsDigest(undefined)`: of null) and the guard asked the issuer to approve the call
// with `arguments: {}`: the receipt's digest never equalled the hop's, so verifyLineage refused the hop
// naming the approval (ERR_APPROVAL_MISMATCH) and an approved no-argument tool could not run with a lineage.
import { describe, expect, it } from 'vitest'
import { argsDigest } from '@agentid/lineage'
import { mcpApprovalCall, type Caller } from '@agentid/mcp'
import { argumentsDigest } from '@agentid/verifier'

const caller = {
  agent: 'did:key:z6MkAGENT',
  user: null,
  subject: { agent: { claims: { controller: 'did:web:acme.example' } }, user: null, lineage: null },
} as unknown as Caller

describe('the approval call of an MCP tool call, as hops name it', () => {
  it('digests the arguments as the hop does: none is null, not {}', () => {
    for (const args of [undefined, {}, { invoice: 42 }, null]) {
      expect(argumentsDigest(mcpApprovalCall(caller, 'ledger', 'pay', args).arguments), JSON.stringify(args)).toBe(`sha-256:${argsDigest(args)}`)
    }
  })
})
