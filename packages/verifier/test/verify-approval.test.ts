import { describe, expect, it } from 'vitest'
import { approvalChallenge, argumentsDigest, createVerifier, VerificationError } from '@agentid/verifier'
import { ARGS, call, dana, passkey, received, receipt, setup } from './approval-fixtures.js'
import { StatusList } from '@agentid/core'
import { alice, bob, issuer, LIST_URL, malloryIssuer, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (error) {
    if (error instanceof VerificationError) return error.code
    throw error
  }
  return 'OK'
}

describe('verifyApproval', () => {
  it('accepts a receipt for the call received, once; returns the approver and the call', async () => {
    const { verifier } = await setup()
    const r = await receipt()
    const ok = await verifier.verifyApproval(r, { call: received({ controller: 'did:web:acme.example', transactionId: 'tx-1', user: { id: 'bob', issuer: 'https://idp.example' } }) })
    expect(ok).toMatchObject({ requestId: call().id, approver: { id: 'apv_dana', name: 'Dana' }, selfApproval: false })
    expect(ok.callHash).toBe(Buffer.from(approvalChallenge(call())).toString('base64url'))
    // Single use: the same receipt again is a replay, also as JSON text.
    expect(await code(verifier.verifyApproval(JSON.stringify(r), { call: received() }))).toBe('ERR_REPLAY')
  })

  it('consume: false re-checks without spending (a third party auditing the receipt)', async () => {
    const { verifier } = await setup()
    const r = await receipt()
    await verifier.verifyApproval(r, { call: received(), consume: false })
    await verifier.verifyApproval(r, { call: received(), consume: false })
    await verifier.verifyApproval(r, { call: received() })
  })

  it('an Ed25519 passkey verifies too', async () => {
    const { verifier } = await setup()
    const pk = passkey('ed25519')
    await verifier.verifyApproval(await receipt({ pk }), { call: received() })
  })

  it('refuses the call with one argument changed, added or retyped after approval (ERR_APPROVAL_MISMATCH)', async () => {
    const { verifier } = await setup()
    const r = await receipt()
    for (const args of [
      { ...ARGS, to: 'Mallory Ltd' },
      { ...ARGS, amount: { value: '12000.00', currency: 'EUR' } },
      { ...ARGS, note: 'x' },
      { ...ARGS, amount: { value: 1200, currency: 'EUR' } },
    ]) {
      expect(await code(verifier.verifyApproval(r, { call: received({ arguments: args }) }))).toBe('ERR_APPROVAL_MISMATCH')
    }
  })

  it('refuses a receipt used for another tool, target, agent, transaction, user or controller', async () => {
    const { verifier } = await setup()
    const r = await receipt()
    expect(await code(verifier.verifyApproval(r, { call: received({ command: 'tools/call refund' }) }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code(verifier.verifyApproval(r, { call: received({ target: 'https://other.example/mcp' }) }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code(verifier.verifyApproval(r, { call: received({ agent: bob.did }) }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code(verifier.verifyApproval(r, { call: received({ transactionId: 'tx-2' }) }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code(verifier.verifyApproval(r, { call: received({ user: null }) }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code(verifier.verifyApproval(r, { call: received({ user: { id: 'bob', issuer: 'https://evil.example' } }) }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code(verifier.verifyApproval(r, { call: received({ controller: 'did:web:other.example' }) }))).toBe('ERR_APPROVAL_MISMATCH')
  })

  it('refuses a receipt whose call was edited after signing (the challenge no longer matches)', async () => {
    const { verifier } = await setup()
    const r = await receipt()
    const args = { ...ARGS, to: 'Mallory Ltd' }
    const edited = { ...r, call: { ...r.call, arguments: args, argumentsDigest: argumentsDigest(args) } }
    expect(await code(verifier.verifyApproval(edited, { call: received({ arguments: args }) }))).toBe('ERR_APPROVAL_MISMATCH')
    const later = { ...r, call: { ...r.call, expiresAt: NOW + 86_400 } }
    expect(await code(verifier.verifyApproval(later, { call: received() }))).toBe('ERR_APPROVAL_MISMATCH')
  })

  it('refuses a denial, and a denial relabelled as an approval', async () => {
    const { verifier } = await setup()
    const denied = await receipt({ decision: 'deny' })
    expect(await code(verifier.verifyApproval(denied, { call: received() }))).toBe('ERR_APPROVAL_DENIED')
    expect(await code(verifier.verifyApproval({ ...denied, decision: 'approve' }, { call: received() }))).toBe('ERR_APPROVAL_MISMATCH')
  })

  it('refuses an approver not allowed for the controller, or for the group the request named', async () => {
    const { verifier } = await setup()
    expect(await code(verifier.verifyApproval(await receipt({ cred: { controllers: ['did:web:other.example'] } }), { call: received() }))).toBe('ERR_NOT_AUTHORIZED')
    // A group request needs an approver of that group; the controller's approvers are not enough.
    const grouped = call({ group: 'finance' })
    expect(await code(verifier.verifyApproval(await receipt({ call: grouped }), { call: received() }))).toBe('ERR_NOT_AUTHORIZED')
    const ok = await verifier.verifyApproval(await receipt({ call: grouped, cred: { controllers: [], groups: ['finance'] } }), { call: received() })
    expect(ok.call.group).toBe('finance')
  })

  it('refuses a revoked approver (status list bit set)', async () => {
    const { verifier } = await setup([3])
    expect(await code(verifier.verifyApproval(await receipt(), { call: received() }))).toBe('ERR_REVOKED')
  })

  it('refuses an approver credential from an untrusted issuer or another issuer than the request\'s', async () => {
    const { verifier } = await setup()
    expect(await code(verifier.verifyApproval(await receipt({ cred: { signer: malloryIssuer } }), { call: received() }))).toBe('ERR_UNTRUSTED_ISSUER')
    const other = createVerifier({ trustedIssuers: [issuer.did, malloryIssuer.did], clock: testClock(), fetch: statusServer({}) })
    expect(await code(other.verifyApproval(await receipt({ cred: { signer: malloryIssuer } }), { call: received() }))).toBe('ERR_UNTRUSTED_ISSUER')
  })

  it('refuses an assertion made on another origin or for another RP id, or in a cross-origin frame', async () => {
    const { verifier } = await setup()
    expect(await code(verifier.verifyApproval(await receipt({ assert: { origin: 'https://evil.example' } }), { call: received() }))).toBe('ERR_AUDIENCE_MISMATCH')
    expect(await code(verifier.verifyApproval(await receipt({ assert: { rpId: 'evil.example' } }), { call: received() }))).toBe('ERR_AUDIENCE_MISMATCH')
    expect(await code(verifier.verifyApproval(await receipt({ assert: { crossOrigin: true } }), { call: received() }))).toBe('ERR_AUDIENCE_MISMATCH')
    // The service may pin its own expectations instead of the certified ones.
    expect(await code(verifier.verifyApproval(await receipt(), { call: received(), origins: ['https://approvals.example'] }))).toBe('ERR_AUDIENCE_MISMATCH')
  })

  it('refuses an assertion without user verification or without user presence', async () => {
    const { verifier } = await setup()
    expect(await code(verifier.verifyApproval(await receipt({ assert: { flags: 0x01 } }), { call: received() }))).toBe('ERR_USER_NOT_VERIFIED')
    expect(await code(verifier.verifyApproval(await receipt({ assert: { flags: 0x04 } }), { call: received() }))).toBe('ERR_USER_NOT_VERIFIED')
  })

  it('refuses a signature by another key, another passkey id, a registration instead of an assertion', async () => {
    const { verifier } = await setup()
    expect(await code(verifier.verifyApproval(await receipt({ assert: { key: passkey().privateKey } }), { call: received() }))).toBe('ERR_SIGNATURE_INVALID')
    expect(await code(verifier.verifyApproval({ ...(await receipt()), credentialId: passkey().id }, { call: received() }))).toBe('ERR_KEY_MISMATCH')
    expect(await code(verifier.verifyApproval(await receipt({ assert: { type: 'webauthn.create' } }), { call: received() }))).toBe('ERR_MALFORMED')
  })

  it('refuses an expired approval and an expired approver credential', async () => {
    const { verifier, clock } = await setup()
    const r = await receipt()
    clock.set((NOW + 600 + 61) * 1000)
    expect(await code(verifier.verifyApproval(r, { call: received() }))).toBe('ERR_EXPIRED')
    const { verifier: v2 } = await setup()
    expect(await code(v2.verifyApproval(await receipt({ cred: { exp: NOW - 3600 } }), { call: received() }))).toBe('ERR_EXPIRED')
  })

  it('memoizes the approver credential by its exact bytes; time, status and revocation are still checked on every call', async () => {
    const lists: Record<string, string> = { [LIST_URL]: await statusListJwt(StatusList.create()) }
    const clock = testClock()
    const verifier = createVerifier({ trustedIssuers: [issuer.did], clock, fetch: statusServer(lists), statusTtlMs: 1000 })
    const longCall = call({ expiresAt: NOW + 86_400 })
    const r = await receipt({ call: longCall, cred: { exp: NOW + 1000 } })
    const first = await verifier.verifyApproval(r, { call: received(), consume: false })
    // The second receipt of the same approver (same credential bytes) reuses the verified credential.
    const second = await verifier.verifyApproval(await receipt({ call: longCall, cred: { exp: NOW + 1000 } }), { call: received(), consume: false })
    expect(second.approver.scope).toBe(first.approver.scope)
    expect(Object.isFrozen(second.approver.scope)).toBe(true)
    // Other bytes are another credential: a forged signature on a known credential's content is refused.
    const [h, p, sig] = r.approverCredential.split('.')
    const forged = `${h}.${p}.${sig!.slice(0, -2)}${sig!.endsWith('AA') ? 'BA' : 'AA'}`
    expect(await code(verifier.verifyApproval({ ...r, approverCredential: forged }, { call: received(), consume: false }))).not.toBe('OK')
    // Revoked on the status list: refused once the list is fetched again, memo or not.
    const list = StatusList.create()
    list.set(3, 1)
    lists[LIST_URL] = await statusListJwt(list)
    clock.advance(2000)
    expect(await code(verifier.verifyApproval(r, { call: received(), consume: false }))).toBe('ERR_REVOKED')
    lists[LIST_URL] = await statusListJwt(StatusList.create())
    clock.advance(2000)
    await verifier.verifyApproval(r, { call: received(), consume: false })
    // Expired credential (the call itself still valid): refused although memoized.
    clock.set((NOW + 1000 + 61) * 1000)
    const expired = await verifier.verifyApproval(r, { call: received(), consume: false }).then(() => undefined, (e: unknown) => e)
    expect(expired).toBeInstanceOf(VerificationError)
    expect((expired as VerificationError).code).toBe('ERR_EXPIRED')
    expect((expired as VerificationError).details.exp).toBe(NOW + 1000)
  })

  it('reports self-approval (the approver is the user the agent acts for)', async () => {
    const { verifier } = await setup()
    const ok = await verifier.verifyApproval(await receipt({ cred: { user: { id: 'bob', issuer: 'https://idp.example' } } }), { call: received() })
    expect(ok.selfApproval).toBe(true)
  })

  it('refuses malformed receipts with ERR_MALFORMED, and misuse with TypeError', async () => {
    const { verifier } = await setup()
    const r = await receipt()
    const bad: unknown[] = [
      null, 42, '{', '[]', {}, { ...r, type: 'x' }, { ...r, extra: 1 }, { ...r, decision: 'maybe' },
      { ...r, call: { ...r.call, extra: 1 } }, { ...r, call: { ...r.call, argumentsDigest: 'sha-256:AAAA' } },
      { ...r, call: { ...r.call, expiresAt: r.call.createdAt } }, { ...r, signature: 'not base64url!' }, { ...r, authenticatorData: 'AAAA' },
      { ...r, clientDataJSON: Buffer.from('not json').toString('base64url') }, { ...r, approverCredential: 42 }, { ...r, approverCredential: 'a.b.c' },
      'x'.repeat(200_000),
    ]
    for (const value of bad) expect(await code(verifier.verifyApproval(value, { call: received() })), JSON.stringify(value)?.slice(0, 80)).toBe('ERR_MALFORMED')
    await expect(verifier.verifyApproval(r, undefined as never)).rejects.toBeInstanceOf(TypeError)
    await expect(verifier.verifyApproval(r, { call: { agent: alice.did } } as never)).rejects.toBeInstanceOf(TypeError)
  })
})
