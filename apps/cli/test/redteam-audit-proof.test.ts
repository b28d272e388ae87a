// Red team: `agentid audit proof <credential>` against a log that answers with the proof of another entry
// naming the credential (its revocation): a valid inclusion proof, but of no issuance. Refused.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { MerkleTree, formatTlogProof, generateNoteKey, noteSigner, parseSignerKey, signCheckpoint } from '@agentid/tlog'
import { auditProof } from '../src/commands/tlog.js'

const CRED = 'urn:uuid:0b7e8a39-3d1f-4b6e-9e53-2f6f0c1d2e3f'
const utf8 = new TextEncoder()
const servers: Server[] = []
afterAll(() => servers.forEach((s) => s.close()))

async function log(action: string): Promise<string> {
  const { skey, vkey } = generateNoteKey('log.test/proof')
  const entries = [
    { action: 'agent.spawned', subject: 'did:key:z6Mkx', at: 1, actor: 'orchestrator:o', details: { credentialId: CRED } },
    { action, subject: 'did:key:z6Mkx', at: 2, actor: 'admin', details: { credentialId: CRED } },
  ].map((e) => utf8.encode(JSON.stringify(e)))
  const tree = new MerkleTree()
  for (const e of entries) tree.appendEntry(e)
  const note = signCheckpoint({ origin: 'log.test/proof', size: 2, rootHash: tree.root(2), extensions: [] }, noteSigner(parseSignerKey(skey)))
  // The log answers with the proof of entry 1 (not the spawn, entry 0).
  const proof = formatTlogProof({ extra: entries[1]!, index: 1, proof: tree.inclusionProof(1, 2), checkpoint: note })
  const server = createServer((req, res) => {
    if (req.url === '/log/key') return void res.end(`${vkey}\n`)
    if (req.url?.startsWith('/v1/log/proof?')) return void res.end(proof)
    res.writeHead(404).end()
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('audit proof, hostile log', () => {
  it('refuses the proof of an entry that names the credential but did not issue it', async () => {
    const url = await log('credential.revoked')
    await expect(auditProof(CRED, { log: url, quorum: '0' })).rejects.toMatchObject({ code: 'ERR_MALFORMED' })
  })
  it('accepts the proof of a renewal that issued it', async () => {
    const url = await log('agent.renewed')
    expect((await auditProof(CRED, { log: url, quorum: '0' })).index).toBe(1)
  })
})
