// The status-list check of `agentid audit verify`: the comparison of the bits a log implies with the
// lists served (StatusLedger), and auditVerify over HTTP against a log server this test controls,
// serving honest, tampered and hostile status-list credentials.
import { mkdtempSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { StatusList, VC_CONTEXT_V1, generateEd25519KeyPair, signJwt, signerFromJwk, type Signer } from '@agentid/core'
import { MerkleTree, encodeEntryBundle, entriesPath, generateNoteKey, noteSigner, parseSignerKey, signCheckpoint, tilePath, tilesForTreeSize } from '@agentid/tlog'
import { StatusLedger } from '../src/commands/audit-status.js'
import { auditVerify } from '../src/commands/tlog.js'

const issuer = signerFromJwk(generateEd25519KeyPair().privateJwk)
const mallory = signerFromJwk(generateEd25519KeyPair().privateJwk)

const spawned = (did: string, cred: string, index: number | undefined, link?: [string, number]) => ({
  action: 'agent.spawned',
  subject: did,
  details: {
    credentialId: cred,
    ...(index === undefined ? {} : { status: { list: '1', index } }),
    ...(link ? { delegationId: link[0], delegationStatus: { list: '1', index: link[1] } } : {}),
  },
})
const agentRevoked = (did: string, credentials: string[], delegations: string[] = []) => ({ action: 'agent.revoked', subject: did, details: { reason: 'x', credentials, delegations } })

function ledgerOf(entries: object[]): StatusLedger {
  const l = new StatusLedger()
  entries.forEach((e, i) => l.add(e, i))
  return l
}
function listWith(...set: number[]): StatusList {
  const list = StatusList.create()
  for (const i of set) list.set(i, 1)
  return list
}
const one = (list: StatusList) => new Map([['1', list]])

describe('StatusLedger: the bits a log implies against the lists served', () => {
  it('accepts lists whose set bits are exactly the logged revocations, cascades included', () => {
    const l = ledgerOf([
      spawned('did:a', 'c1', 0, ['d1', 1]),
      spawned('did:b', 'c2', 2),
      { action: 'agent.renewed', subject: 'did:a', details: { credentialId: 'c3', status: { list: '1', index: 3 } } },
      { action: 'delegation.registered', subject: 'did:a', details: { delegationId: 'd2', parentId: 'd1', status: { list: '1', index: 4 } } },
      { action: 'delegation.granted', subject: 'did:b', details: { delegationId: 'd3', status: { list: '1', index: 5 } } },
      { action: 'approver.enrolled', subject: 'apv_1', details: { credentialId: 'c4', status: { list: '1', index: 6 } } },
      { action: 'credential.revoked', subject: 'did:a', details: { credentialId: 'c1' } },
      agentRevoked('did:a', ['c3'], ['d1', 'd2']),
      { action: 'delegation.revoked', subject: 'd3', details: { delegations: ['d3'] } },
      { action: 'approver.revoked', subject: 'apv_1', details: { credentialId: 'c4' } },
    ])
    expect(l.lists()).toEqual(['1'])
    const r = l.compare(one(listWith(0, 1, 3, 4, 5, 6)))
    expect(r.mismatches).toEqual([])
    expect(r).toMatchObject({ bits: 7, revoked: 6 })
    expect(l.notCheckable).toEqual({ issued: 0, revoked: 0, unattributedBits: 0, omitted: 0 })
  })

  it('names a revoked credential whose bit was cleared, and a bit set with no revocation', () => {
    const l = ledgerOf([spawned('did:a', 'c1', 10), spawned('did:b', 'c2', 11), agentRevoked('did:a', ['c1'])])
    expect(l.compare(one(listWith())).mismatches).toEqual([{ kind: 'revoked-but-clear', list: '1', index: 10, id: 'c1', revokedAt: 2 }])
    expect(l.compare(one(listWith(10, 11))).mismatches).toEqual([{ kind: 'set-without-revocation', list: '1', index: 11, id: 'c2', issuedAt: 1 }])
  })

  it('reports a status index used twice, a bit no entry issued, and a malformed status entry', () => {
    const l = ledgerOf([spawned('did:a', 'c1', 5), spawned('did:b', 'c2', 5), { action: 'agent.renewed', subject: 'did:a', details: { credentialId: 'c3', status: { list: '../1', index: 1 } } }])
    const kinds = l.compare(one(listWith(99))).mismatches
    expect(kinds).toContainEqual({ kind: 'index-reused', list: '1', index: 5, id: 'c2', issuedAt: 1, otherId: 'c1', otherIssuedAt: 0 })
    expect(kinds).toContainEqual({ kind: 'set-without-issuance', list: '1', index: 99 })
    expect(kinds).toContainEqual({ kind: 'malformed-status', id: 'c3', issuedAt: 2 })
    expect(ledgerOf([{ action: 'agent.spawned', subject: 'x', details: { credentialId: 'c', status: { list: '1', index: -1 } } }]).compare(one(listWith())).mismatches[0]?.kind).toBe('malformed-status')
  })

  it('counts entries logged before status entries as not checkable, not as failures', () => {
    const l = ledgerOf([spawned('did:old', 'c0', undefined), spawned('did:a', 'c1', 0), agentRevoked('did:old', ['c0']), agentRevoked('did:a', ['c1'])])
    // Bit 7 may be the old credential's: not attributable while the log holds entries without status.
    const r = l.compare(one(listWith(0, 7)))
    expect(r.mismatches).toEqual([])
    expect(l.notCheckable).toEqual({ issued: 1, revoked: 1, unattributedBits: 1, omitted: 0 })
  })

  it('does not hold a clear bit against a revocation logged after the lists were served', () => {
    const l = ledgerOf([spawned('did:a', 'c1', 0), agentRevoked('did:a', ['c1'])])
    expect(l.compare(one(listWith()), 1).mismatches).toEqual([])
    expect(l.compare(one(listWith()), 2).mismatches).toHaveLength(1)
  })

  it('names an index past the end of the served list', () => {
    const l = ledgerOf([spawned('did:a', 'c1', 200_000)])
    expect(l.compare(one(listWith())).mismatches).toEqual([{ kind: 'index-out-of-range', list: '1', index: 200_000, id: 'c1', issuedAt: 0 }])
  })
})

// ---- over HTTP ------------------------------------------------------------------------------------

const utf8 = new TextEncoder()
const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
})

async function listJwt(url: string, list: StatusList | string, o: { signer?: Signer; purpose?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return signJwt({ typ: 'JWT' }, {
    iss: (o.signer ?? issuer).did,
    jti: url,
    iat: now - 5,
    nbf: now - 5,
    exp: now + 3600,
    vc: {
      '@context': [VC_CONTEXT_V1],
      type: ['VerifiableCredential', 'BitstringStatusListCredential'],
      credentialSubject: { id: `${url}#list`, type: 'BitstringStatusList', statusPurpose: o.purpose ?? 'revocation', encodedList: typeof list === 'string' ? list : list.encode() },
    },
  }, o.signer ?? issuer)
}

/**
 * A log of `events` (signed checkpoint, tiles) and, at /v1/status-lists/1, what `statusList` answers.
 * With `firstSize`, the checkpoint covers only the first events until the status list has been served
 * (a log that grows while it is audited).
 */
async function logServer(events: object[], statusList: (url: string, res: ServerResponse) => Promise<void> | void, firstSize?: number, fork?: object[]): Promise<string> {
  const { skey, vkey } = generateNoteKey('log.test/status')
  const entries = events.map((e, i) => utf8.encode(JSON.stringify({ at: i, actor: 'admin', subject: null, ...e })))
  const tree = new MerkleTree()
  for (const e of entries) tree.appendEntry(e)
  const files = new Map<string, Uint8Array | string>([['/log/key', `${vkey}\n`]])
  const notes = new Map<number, string>()
  for (const size of new Set([firstSize ?? entries.length, entries.length])) {
    notes.set(size, signCheckpoint({ origin: 'log.test/status', size, rootHash: tree.root(size), extensions: [] }, noteSigner(parseSignerKey(skey))))
    files.set(`/log/${entriesPath(0, size)}`, encodeEntryBundle(entries.slice(0, size)))
    for (const level of tilesForTreeSize(size)) {
      if (level.partialWidth > 0) files.set(`/log/${tilePath(level.level, level.fullTiles, level.partialWidth)}`, tree.tile(level.level, level.fullTiles, level.partialWidth))
    }
  }
  // With `fork`: once the list is served, a checkpoint of the same size over other entries (a split view).
  const forkTree = new MerkleTree()
  for (const e of fork ?? []) forkTree.appendEntry(utf8.encode(JSON.stringify({ at: 0, actor: 'admin', subject: null, ...e })))
  const forkNote = fork && signCheckpoint({ origin: 'log.test/status', size: forkTree.size, rootHash: forkTree.root(), extensions: [] }, noteSigner(parseSignerKey(skey)))
  let listServed = false
  let base = ''
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    if (path === '/v1/issuer') return void res.end(JSON.stringify({ did: issuer.did }))
    if (path === '/log/checkpoint') return void res.end(listServed && forkNote ? forkNote : notes.get(listServed ? entries.length : (firstSize ?? entries.length)))
    if (path === '/v1/status-lists/1') {
      listServed = true
      return void Promise.resolve(statusList(`${base}/v1/status-lists/1`, res)).catch(() => res.destroy())
    }
    const f = files.get(path)
    if (f === undefined) return void res.writeHead(404).end()
    res.end(f)
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return base
}

const state = () => join(mkdtempSync(join(tmpdir(), 'agentid-audit-status-')), 'state.json')
const events = [spawned('did:a', 'c1', 0), spawned('did:b', 'c2', 1), agentRevoked('did:a', ['c1'])]
const failure = (p: Promise<unknown>) => p.then(() => ({ code: 'ok', message: '', reason: undefined }), (e: { code?: string; message?: string; details?: { reason?: string } }) => ({ code: e.code, message: e.message ?? '', reason: e.details?.reason }))

describe('audit verify compares the status lists the issuer serves with its log', () => {
  it('passes when the signed list holds exactly the logged revocations, and says so', async () => {
    const url = await logServer(events, async (u, res) => void res.end(await listJwt(u, listWith(0))))
    const r = await auditVerify({ log: url, quorum: '0', state: state() })
    expect(r.status).toMatchObject({ checked: true, lists: 1, statuses: 2, revoked: 1, mismatches: 0 })
    const skipped = await auditVerify({ log: url, quorum: '0', state: state(), skipStatusLists: true })
    expect(skipped.status).toEqual({ checked: false, reason: 'skipped (--skip-status-lists)' })
  })

  it('fails naming the credential whose bit was cleared, or set without a revocation', async () => {
    const cleared = await logServer(events, async (u, res) => void res.end(await listJwt(u, listWith())))
    const a = await failure(auditVerify({ log: cleared, quorum: '0', state: state() }))
    expect(a.code).toBe('ERR_SIGNATURE_INVALID')
    expect(a.message).toContain('1#0: c1 revoked by entry 2 but its bit is clear')
    const set = await logServer(events, async (u, res) => void res.end(await listJwt(u, listWith(0, 1))))
    const b = await failure(auditVerify({ log: set, quorum: '0', state: state() }))
    expect(b.code).toBe('ERR_SIGNATURE_INVALID')
    expect(b.message).toContain('1#1: bit set but no entry revokes c2')
  }, 20_000)

  it('a bit set by a revocation logged after the checkpoint it read is found in the next checkpoint, not reported', async () => {
    // The list is served after agent.revoked committed; the first checkpoint the audit read did not cover it yet.
    const url = await logServer(events, async (u, res) => void res.end(await listJwt(u, listWith(0))), 2)
    const r = await auditVerify({ log: url, quorum: '0', state: state() })
    expect(r.size).toBe(3)
    expect(r.status).toMatchObject({ checked: true, statuses: 2, revoked: 1, mismatches: 0 })
    // Without that entry ever appearing, the same bit is a mismatch.
    const never = await logServer(events.slice(0, 2), async (u, res) => void res.end(await listJwt(u, listWith(0))))
    expect((await failure(auditVerify({ log: never, quorum: '0', state: state() }))).message).toContain('1#0: bit set but no entry revokes c1')
  }, 20_000)

  it('red team: a second checkpoint of the size already verified, with another root, is a split view, reported as one', async () => {
    // The log signs, for the size the audit read first, another tree (the revocation entry 1 is not the same).
    const url = await logServer(events.slice(0, 2), async (u, res) => void res.end(await listJwt(u, listWith(0))), undefined, [spawned('did:a', 'c1', 0), spawned('did:z', 'c9', 1)])
    const r = await failure(auditVerify({ log: url, quorum: '0', state: state() }))
    expect(r.code).toBe('ERR_SIGNATURE_INVALID')
    expect(r.reason).toBe('split view')
  }, 20_000)

  it('says a log without status entries is not checked', async () => {
    const url = await logServer([spawned('did:a', 'c1', undefined)], () => {
      throw new Error('no list should be fetched')
    })
    expect((await auditVerify({ log: url, quorum: '0', state: state() })).status).toMatchObject({ checked: false, reason: 'not checked: no entry names a status entry' })
  })

  it('refuses hostile status lists with clear errors', async () => {
    const cases: [string, (u: string, res: ServerResponse) => Promise<void> | void, string][] = [
      ['signed by another key', async (u, res) => void res.end(await listJwt(u, listWith(0), { signer: mallory })), 'signed by another issuer'],
      ['a forged signature', async (u, res) => {
        const [h, p] = (await listJwt(u, listWith(0))).split('.')
        res.end(`${h}.${p}.${(await listJwt(u, listWith(1), { signer: mallory })).split('.')[2]}`)
      }, 'signature does not verify'],
      ['not a JWT', (_u, res) => void res.end('{"hello":"world"}'), 'not a compact EdDSA JWT'],
      ['endless', (_u, res) => {
        res.writeHead(200)
        const chunk = Buffer.alloc(1 << 20, 0x41)
        let n = 0
        const pump = () => {
          while (n++ < 8 && !res.destroyed) if (!res.write(chunk)) return void res.once('drain', pump)
        }
        pump()
      }, 'status list credential is too large'],
      ['a gzip bomb', async (u, res) => void res.end(await listJwt(u, `u${gzipSync(Buffer.alloc(64 << 20)).toString('base64url')}`)), 'encodedList cannot be decoded'],
      ['a suspension list', async (u, res) => void res.end(await listJwt(u, listWith(0), { purpose: 'suspension' })), 'status list purpose is not revocation'],
      ['an answer of 500', (_u, res) => void res.writeHead(500).end(), 'HTTP 500'],
    ]
    for (const [what, answer, reason] of cases) {
      const url = await logServer(events, answer)
      const r = await failure(auditVerify({ log: url, quorum: '0', state: state() }))
      expect({ what, code: r.code, reason: r.reason }).toEqual({ what, code: 'ERR_STATUS_UNAVAILABLE', reason })
    }
  }, 60_000)

  it('pins the issuer DID in the state file: another DID later is refused', async () => {
    const url = await logServer(events, async (u, res) => void res.end(await listJwt(u, listWith(0))))
    const s = state()
    await auditVerify({ log: url, quorum: '0', state: s })
    const r = await failure(auditVerify({ log: url, quorum: '0', state: s, issuerDid: mallory.did }))
    expect(r.code).toBe('ERR_SIGNATURE_INVALID')
    expect(r.message).toContain('issuer DID differs')
  })
})
