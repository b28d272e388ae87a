// Red team: a hostile log against the per-agent check of `agentid audit verify` (AgentSequences).
// Its work must stay linear in the log whatever the log holds: one agent given many credentials (a
// renewal each), then each revoked on its own, must not make the auditor's work quadratic.
import { describe, expect, it } from 'vitest'
import { AgentSequences } from '../src/commands/tlog.js'

const utf8 = new TextEncoder()
const entry = (action: string, subject: string, details: Record<string, unknown> = {}) => utf8.encode(JSON.stringify({ action, actor: 'x', at: 1, details, subject }))

describe('AgentSequences against one agent with very many credentials', () => {
  it('checks 100,000 renewals, their revocations and the agent revocation in linear time', () => {
    const n = 100_000
    const entries: Uint8Array[] = [entry('agent.spawned', 'did:a', { credentialId: 'c0' })]
    for (let i = 1; i < n; i++) entries.push(entry('agent.renewed', 'did:a', { credentialId: `c${i}` }))
    // Revoked one by one, latest first (each a look-up among all issued), all but c0.
    for (let i = n - 1; i >= 1; i--) entries.push(entry('credential.revoked', 'did:a', { credentialId: `c${i}` }))
    entries.push(entry('agent.revoked', 'did:a', { credentials: ['c0'] }))
    const s = new AgentSequences()
    const started = performance.now()
    entries.forEach((e, i) => s.add(e, i))
    const ms = performance.now() - started
    expect(s.size).toBe(1)
    // Linear: well under a second on this machine even under load; quadratic (arrays searched per
    // entry): 2 x 5·10^9 string comparisons, tens of seconds.
    expect(ms).toBeLessThan(6_000)
  }, 120_000)

  it('still refuses, at that size, a revocation that leaves a credential out and a credential never issued', () => {
    const n = 5_000
    const base: Uint8Array[] = [entry('agent.spawned', 'did:a', { credentialId: 'c0' })]
    for (let i = 1; i < n; i++) base.push(entry('agent.renewed', 'did:a', { credentialId: `c${i}` }))
    const run = (more: Uint8Array[]) => {
      const s = new AgentSequences()
      try {
        ;[...base, ...more].forEach((e, i) => s.add(e, i))
        return 'ok'
      } catch (e: any) {
        return `${e.code}@${e.details?.index}`
      }
    }
    const all = Array.from({ length: n }, (_, i) => `c${i}`)
    expect(run([entry('agent.revoked', 'did:a', { credentials: all })])).toBe('ok')
    expect(run([entry('agent.revoked', 'did:a', { credentials: all.filter((c) => c !== 'c4321') })])).toBe(`ERR_SIGNATURE_INVALID@${n}`)
    expect(run([entry('credential.revoked', 'did:a', { credentialId: `c${n}` })])).toBe(`ERR_SIGNATURE_INVALID@${n}`)
    expect(run([entry('credential.revoked', 'did:a', { credentialId: 'c17' }), entry('agent.revoked', 'did:a', { credentials: all.filter((c) => c !== 'c17') })])).toBe('ok')
  })
})
