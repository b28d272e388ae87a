// Red team: `agentid audit verify|proof` with a witness policy one key could meet alone. Refused as a
// usage error before anything is read from the log (the address below answers nothing).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SIG_TYPE_COSIGNATURE_V1, formatVerifierKey, generateNoteKey, parseVerifierKey } from '@agentid/tlog'
import { auditProof, auditVerify } from '../src/commands/tlog.js'

const log = generateNoteKey('log.test/policy')
const log04 = generateNoteKey('log.test/policy', SIG_TYPE_COSIGNATURE_V1)
const w1 = generateNoteKey('witness.test/w1', SIG_TYPE_COSIGNATURE_V1)
const w2 = generateNoteKey('witness.test/w2', SIG_TYPE_COSIGNATURE_V1)
// w1's public key again, under another name: one cosignature of w1 relabelled would count twice.
const alias = formatVerifierKey('witness.test/w1-mirror', SIG_TYPE_COSIGNATURE_V1, parseVerifierKey(w1.vkey).publicKey)
const NOWHERE = 'http://127.0.0.1:9'
const state = () => join(mkdtempSync(join(tmpdir(), 'agentid-audit-policy-')), 'state.json')
const nameOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error) => e.name)

describe('audit with a witness policy one key could meet alone', () => {
  const cases: [string, { logKey: string; witness: string[]; quorum: string }][] = [
    ['one witness key under two names', { logKey: log.vkey, witness: [w1.vkey, alias], quorum: '2' }],
    ['one witness key under two names beside another witness', { logKey: log.vkey, witness: [w1.vkey, alias, w2.vkey], quorum: '1' }],
    ["the log's own (cosignature) key as a witness", { logKey: log04.vkey, witness: [log04.vkey, w2.vkey], quorum: '1' }],
    ['a quorum above the witnesses', { logKey: log.vkey, witness: [w1.vkey], quorum: '2' }],
    ['a witness that is no verifier key', { logKey: log.vkey, witness: ['not a key'], quorum: '0' }],
  ]
  it.each(cases)('%s: audit verify and audit proof refuse it as a usage error', async (_what, o) => {
    expect(await nameOf(auditVerify({ log: NOWHERE, state: state(), ...o }))).toBe('UsageError')
    expect(await nameOf(auditProof('urn:uuid:1', { log: NOWHERE, ...o }))).toBe('UsageError')
  })
})
