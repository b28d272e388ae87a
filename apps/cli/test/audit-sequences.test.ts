// agentid audit verify's per-agent check: every agent's events in an order the issuer can produce.
import { describe, expect, it } from 'vitest'
import { AgentSequences } from '../src/commands/tlog.js'

const utf8 = new TextEncoder()
const entry = (action: string, subject: string, details: Record<string, unknown> = {}) => utf8.encode(JSON.stringify({ action, actor: 'x', at: 1, details, subject }))

function run(entries: Uint8Array[]): string | number {
  const s = new AgentSequences()
  try {
    entries.forEach((e, i) => s.add(e, i))
  } catch (error) {
    return (error as { code: string; details?: { index?: number } }).code + '@' + String((error as { details?: { index?: number } }).details?.index)
  }
  return s.size
}

describe('AgentSequences', () => {
  it('accepts spawn, renew, credential revoke, agent revoke naming the rest; other actions ignored', () => {
    expect(run([
      entry('agent.spawned', 'a', { credentialId: 'c1' }),
      entry('orchestrator.added', 'o1'),
      entry('agent.renewed', 'a', { credentialId: 'c2' }),
      entry('agent.spawned', 'b', { credentialId: 'c3' }),
      entry('credential.revoked', 'a', { credentialId: 'c1' }),
      entry('agent.revoked', 'a', { credentials: ['c2'] }),
    ])).toBe(2)
  })

  it('refuses each out-of-order or incomplete history, naming the entry', () => {
    const spawn = entry('agent.spawned', 'a', { credentialId: 'c1' })
    expect(run([entry('agent.renewed', 'a', { credentialId: 'c2' })])).toBe('ERR_SIGNATURE_INVALID@0')
    expect(run([spawn, spawn])).toBe('ERR_SIGNATURE_INVALID@1')
    expect(run([spawn, entry('agent.revoked', 'a', { credentials: ['c1'] }), entry('agent.renewed', 'a', { credentialId: 'c2' })])).toBe('ERR_SIGNATURE_INVALID@2')
    expect(run([spawn, entry('agent.revoked', 'a', { credentials: ['c1'] }), entry('agent.revoked', 'a', { credentials: [] })])).toBe('ERR_SIGNATURE_INVALID@2')
    // A revocation that leaves out a credential still valid (a dropped credential.revoked or a trimmed list).
    expect(run([spawn, entry('agent.renewed', 'a', { credentialId: 'c2' }), entry('agent.revoked', 'a', { credentials: ['c1'] })])).toBe('ERR_SIGNATURE_INVALID@2')
    expect(run([spawn, entry('credential.revoked', 'a', { credentialId: 'c9' })])).toBe('ERR_SIGNATURE_INVALID@1')
    expect(run([spawn, utf8.encode('{"action":')])).toBe('ERR_SIGNATURE_INVALID@1')
    expect(run([spawn, new Uint8Array([0x7b, 0xff, 0x7d])])).toBe('ERR_SIGNATURE_INVALID@1')
  })
})
