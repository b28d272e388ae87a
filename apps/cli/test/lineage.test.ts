// `agentid lineage inspect`: a readable tree of a lineage, offline, and hostile input.
import { generateEd25519KeyPair, signCompactJws, signerFromJwk, signJwt } from '@agentid/core'
import { appendHop, createReceipt, HOP_TYP } from '@agentid/lineage'
import { describe, expect, it } from 'vitest'
import { cli } from './fixtures.js'

const issuer = signerFromJwk(generateEd25519KeyPair().privateJwk)
const [a, b, c] = [generateEd25519KeyPair(), generateEd25519KeyPair(), generateEd25519KeyPair()]
const signer = (k: typeof a) => signerFromJwk(k.privateJwk)

function credential(k: typeof a, index: number): Promise<string> {
  return signJwt({ typ: 'JWT' }, {
    iss: issuer.did, sub: k.did, exp: Math.floor(Date.now() / 1000) + 3600,
    vc: { type: ['VerifiableCredential', 'AgentIdentityCredential'], credentialSubject: { id: k.did }, credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: 'https://issuer.example/v1/status-lists/1' } },
  }, issuer)
}

async function lineage(): Promise<{ l1: string; record: string; l3: string }> {
  const l0 = await appendHop(undefined, { signer: signer(a), credential: await credential(a, 1), target: 'https://b.example', callee: b.did, command: 'POST /plan', args: { q: 1 }, user: 'user-1', origin: 'req', originKind: 'request' })
  const l1 = await appendHop(l0, { signer: signer(b), credential: await credential(b, 2), target: 'https://c.example', callee: c.did, command: 'POST /pay', args: { invoice: 42 } })
  const record = await createReceipt(l1, { signer: signer(c), credential: await credential(c, 3), output: { paid: true } })
  const l3 = await appendHop(record, { signer: signer(b), credential: await credential(b, 2), target: 'mcp://erp/invoices.read', command: 'tools/call invoices.read', args: { id: 42 } })
  return { l1, record, l3 }
}

describe('agentid lineage inspect', () => {
  it('prints the hops and receipts as a tree, and as JSON', async () => {
    const { l3 } = await lineage()
    const human = await cli(['lineage', 'inspect', l3])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toContain('4 entries, holds together')
    expect(human.stdout).toContain('→ https://b.example')
    expect(human.stdout).toContain('tools/call invoices.read')
    expect(human.stdout).toMatch(/receipt by .* for #1: ok/)
    const out = await cli(['lineage', 'inspect', '--json', '-'], {}, { stdin: `${l3}\n` })
    expect(out.code).toBe(0)
    const json = out.json()
    expect(json.valid).toBe(true)
    expect(json.entries.map((e: { kind: string; actor: string; verdict: string }) => [e.kind, e.actor, e.verdict])).toEqual([
      ['hop', a.did, 'ok'], ['hop', b.did, 'ok'], ['receipt', c.did, 'ok'], ['hop', b.did, 'ok'],
    ])
    expect(json.entries[2].answers).toBe(1)
    expect(json.entries[0]).toMatchObject({ target: 'https://b.example', callee: b.did, command: 'POST /plan', user: 'user-1' })
  })

  it('names the refused entry (dropped hop, forged signature) and exits 1', async () => {
    const { l3 } = await lineage()
    const e = l3.split('~')
    const dropped = await cli(['lineage', 'inspect', '--json', [e[0], e[2], e[3]].join('~')])
    expect(dropped.code).toBe(1)
    expect(dropped.json().entries.map((x: { verdict: string }) => x.verdict)).toEqual(['ok', 'refused', 'not-checked'])
    expect(dropped.json().entries[1].error).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', reason: 'index' })
    // hop 1's payload swapped for another one, bob's signature kept.
    const [h, , s] = e[1]!.split('.')
    const forgedPayload = Buffer.from(Buffer.from(e[1]!.split('.')[1]!, 'base64url').toString().replace('POST /pay', 'POST /pwn')).toString('base64url')
    const forged = await cli(['lineage', 'inspect', [e[0], `${h}.${forgedPayload}.${s}`].join('~')])
    expect(forged.code).toBe(1)
    expect(forged.stdout).toContain('refused ERR_SIGNATURE_INVALID')
  })

  it('hostile input: garbage, oversized, joined headers, control characters, duplicate members', async () => {
    for (const input of ['not a lineage', 'a.b.c', 'x'.repeat(20_000), 'a.b.c, a.b.c', '']) {
      const r = await cli(['lineage', 'inspect', '--json', input])
      expect(r.code).toBe(1)
      // Refused before decoding (an error on stderr), or an entry refused in the report.
      expect(r.errorCode ?? r.json().entries[0].error.code).toBe('ERR_MALFORMED')
    }
    const claims = { txn: 'txn-12345', idx: 0, prv: 'A'.repeat(43), iss: a.did, crd: 'A'.repeat(43), sts: ['https://i.example/1', '1'], aud: 'https://b.example\u001b[31m', cmd: 'GET /', arg: 'A'.repeat(43), iat: 1, exp: 2, jti: 'A'.repeat(16) }
    const evil = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, JSON.stringify(claims), signer(a))
    const r = await cli(['lineage', 'inspect', evil])
    expect(r.code).toBe(1)
    expect(r.stdout).not.toContain('\u001b')
    expect(r.stdout).toContain('ERR_MALFORMED (claims)')
    const dup = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, JSON.stringify({ ...claims, aud: 'https://b.example' }).replace('"cmd":', '"cmd":"GET /x","cmd":'), signer(a))
    const d = await cli(['lineage', 'inspect', '--json', dup])
    expect(d.code).toBe(1)
    expect(d.json().entries[0].error).toMatchObject({ code: 'ERR_MALFORMED', reason: 'json' })
  })
})
