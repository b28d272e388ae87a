// mcpLineageMeta: the `_meta` of an MCP request carrying its lineage, built on the lineage received.
import { generateEd25519KeyPair, signerFromJwk, signJwt, VC_CONTEXT_V1, AGENTID_CONTEXT_V1, type Ed25519KeyPair } from '@agentid/core'
import { mcpLineageMeta } from '@agentid/client'
import { appendHop, argsDigest, credentialHash, decodeLineage, MCP_CREDENTIALS_META, MCP_LINEAGE_META } from '@agentid/lineage'
import { describe, expect, it } from 'vitest'

const issuer = signerFromJwk(generateEd25519KeyPair().privateJwk)
const [a, b, c] = [generateEd25519KeyPair(), generateEd25519KeyPair(), generateEd25519KeyPair()]
const clock = () => 1_800_000_100_000

function credential(agent: Ed25519KeyPair, index: number): Promise<string> {
  return signJwt({ typ: 'JWT' }, {
    iss: issuer.did, sub: agent.did, nbf: 1_800_000_000, iat: 1_800_000_000, exp: 1_800_003_600, jti: `urn:uuid:00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
    vc: {
      '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
      type: ['VerifiableCredential', 'AgentIdentityCredential'],
      credentialSubject: { id: agent.did, purpose: 'payments', controller: 'did:web:acme.example', model: { name: 'm', version: '1' }, toolProfile: [], policyTier: 'standard', dataAccessClass: 'internal' },
      credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: 'https://issuer.example/v1/status-lists/1' },
    },
  }, issuer)
}

describe('mcpLineageMeta', () => {
  it('signs a tools/call hop on mcp://server/name with the digest of the arguments, built on the lineage received', async () => {
    const [ca, cb] = [await credential(a!, 1), await credential(b!, 2)]
    const received = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: ca, target: 'https://b.example', callee: b!.did, command: 'POST /x', user: 'user-1', clock })
    const args = { invoice: 42, lines: [1, 2] }
    const meta = await mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cb, server: 'erp', name: 'invoices.read', arguments: args, from: received, credentials: ca, clock })
    expect(Object.keys(meta).sort()).toEqual([MCP_CREDENTIALS_META, MCP_LINEAGE_META].sort())
    const entries = decodeLineage(meta[MCP_LINEAGE_META])
    expect(entries).toHaveLength(2)
    expect(entries[1]!.claims).toMatchObject({ iss: b!.did, aud: 'mcp://erp/invoices.read', cmd: 'tools/call invoices.read', arg: argsDigest({ lines: [1, 2], invoice: 42 }), usr: 'user-1', crd: credentialHash(cb) })
    expect(meta[MCP_LINEAGE_META].startsWith(`${received}~`)).toBe(true)
    // The credentials received, then the agent's own, each once.
    expect(meta[MCP_CREDENTIALS_META]).toBe(`${ca}~${cb}`)
    const again = await mcpLineageMeta({ signer: signerFromJwk(b!.privateJwk), credential: cb, server: 'erp', name: 'invoices.read', from: received, credentials: `${ca}~${cb}`, clock })
    expect(again[MCP_CREDENTIALS_META]).toBe(`${ca}~${cb}`)
    // resources/read and a callee.
    const res = await mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cb, server: 'erp', name: 'file:///a', method: 'resources/read', from: received, callee: c!.did, clock })
    expect(decodeLineage(res[MCP_LINEAGE_META])[1]!.claims).toMatchObject({ cmd: 'resources/read file:///a', sub: c!.did })
  })

  it('refuses to build on a lineage the signer does not hold, or a hostile one', async () => {
    const [ca, cb, cc] = [await credential(a!, 1), await credential(b!, 2), await credential(c!, 3)]
    const received = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: ca, target: 'https://b.example', callee: b!.did, command: 'POST /x', clock })
    // c was not the callee of the hop received.
    await expect(mcpLineageMeta({ privateJwk: c!.privateJwk, credential: cc, server: 'erp', name: 't', from: received, clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    // Another agent's credential.
    await expect(mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cc, server: 'erp', name: 't', from: received, clock })).rejects.toBeInstanceOf(TypeError)
    // Tampered, oversized, two headers joined, nested arguments.
    const tampered = received.replace(/\.[^.]{4}/, '.AAAA')
    await expect(mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cb, server: 'erp', name: 't', from: tampered, clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    await expect(mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cb, server: 'erp', name: 't', from: `${received}~${'A'.repeat(20_000)}`, clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    await expect(mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cb, server: 'erp', name: 't', from: `${received}, ${received}`, clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    let deep: unknown = 1
    for (let i = 0; i < 10_000; i++) deep = [deep]
    await expect(mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cb, server: 'erp', name: 't', arguments: deep, from: received, clock })).rejects.toThrow()
    // A control character in the tool name (it becomes the command and the target).
    await expect(mcpLineageMeta({ privateJwk: b!.privateJwk, credential: cb, server: 'erp', name: 't\u0000', from: received, clock })).rejects.toThrow()
  })

  it('refuses misuse: no options, no key', async () => {
    await expect(mcpLineageMeta(undefined as never)).rejects.toBeInstanceOf(TypeError)
    await expect(mcpLineageMeta({ credential: await credential(a!, 1), server: 'erp', name: 't' } as never)).rejects.toBeInstanceOf(TypeError)
  })
})
