import { describe, expect, it } from 'vitest'
import { generateEd25519KeyPair, signerFromJwk } from '@agentid/core'
import { createMcpGuard, verifiedLineage } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier } from '@agentid/verifier'
import { policyDir } from './fixtures.js'

const ISSUER = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'

describe('createMcpGuard: lineage options', async () => {
  const policy = await loadPolicyEngine({ dir: policyDir() })
  const make = (extra: Record<string, unknown>) => () => createMcpGuard({
    verifier: createVerifier({ trustedIssuers: [ISSUER] }), policy, serverId: 'demo', resource: 'https://tools.example/mcp', authorizationServers: ['https://id.example'], ...extra,
  })
  const server = generateEd25519KeyPair()
  const other = generateEd25519KeyPair()
  const did = signerFromJwk(server.privateJwk).did

  it('accepts requireLineage and a lineage agent with or without a key', () => {
    expect(make({ requireLineage: true })).not.toThrow()
    expect(make({ lineageAgent: { did } })).not.toThrow()
    expect(make({ lineageAgent: { did, privateJwk: server.privateJwk, credential: 'a.b.c' } })).not.toThrow()
  })

  it('refuses misuse with a TypeError', () => {
    for (const extra of [
      { requireLineage: 'yes' },
      { lineageAgent: 'did:key:z6Mk' },
      { lineageAgent: { did: 'did:web:example.com' } },
      { lineageAgent: { did, privateJwk: other.privateJwk, credential: 'a.b.c' } }, // another agent's key
      { lineageAgent: { did, privateJwk: server.privateJwk } }, // a key without its credential
      { lineageAgent: { did, credential: 'a.b.c' } },
      { lineageAgent: { did, privateJwk: server.privateJwk, credential: '' } },
    ]) expect(make(extra), JSON.stringify(extra)).toThrow(TypeError)
  })

  it('verifiedLineage is null for anything the guard did not hand over', () => {
    expect(verifiedLineage(undefined)).toBeNull()
    expect(verifiedLineage({})).toBeNull()
    // A lineage a handler could put in authInfo itself is not one the guard verified.
    expect(verifiedLineage({ authInfo: { token: '', clientId: 'x', scopes: [], extra: { lineage: { hops: [] } } } })).toBeNull()
  })
})
