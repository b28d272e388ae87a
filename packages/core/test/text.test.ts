import { describe, expect, it } from 'vitest'
import { isPrintableText, parseAgentClaims } from '@agentid/core'

const REFUSED: Array<[string, string]> = [
  ['NUL', '\u0000'], ['LF', '\n'], ['ESC', '\u001b'], ['DEL', '\u007f'], ['NEL (C1)', '\u0085'],
  ['ALM', '\u061c'], ['LRM', '\u200e'], ['RLM', '\u200f'], ['LINE SEPARATOR', '\u2028'], ['PARAGRAPH SEPARATOR', '\u2029'],
  ['LRE', '\u202a'], ['RLE', '\u202b'], ['PDF', '\u202c'], ['LRO', '\u202d'], ['RLO', '\u202e'],
  ['LRI', '\u2066'], ['RLI', '\u2067'], ['FSI', '\u2068'], ['PDI', '\u2069'],
  ['lone high surrogate', '\ud800'], ['lone low surrogate', '\udc00'],
]

describe('isPrintableText', () => {
  it.each(REFUSED)('refuses %s', (_name, c) => {
    expect(isPrintableText(`pay ${c}exe.txt`)).toBe(false)
  })

  it.each([['ASCII', 'invoice triage'], ['Hebrew', 'מיון חשבוניות'], ['Arabic', 'فرز الفواتير'], ['emoji with ZWJ', 'team 👩\u200d💻'], ['astral (paired surrogates)', '𝒜gent']])('accepts %s', (_name, text) => {
    expect(isPrintableText(text)).toBe(true)
  })
})

describe('parseAgentClaims refuses bidirectional formatting in every text claim', () => {
  const base = { purpose: 'triage', controller: 'did:web:acme.example', model: { provider: 'acme', name: 'reasoner', version: '1' }, toolProfile: ['mcp://erp/tools/a'], policyTier: 'standard', dataAccessClass: 'internal' }
  const cases: Array<[string, (v: string) => unknown]> = [
    ['purpose', (v) => ({ ...base, purpose: v })],
    ['controller', (v) => ({ ...base, controller: v })],
    ['model.provider', (v) => ({ ...base, model: { ...base.model, provider: v } })],
    ['model.name', (v) => ({ ...base, model: { ...base.model, name: v } })],
    ['model.version', (v) => ({ ...base, model: { ...base.model, version: v } })],
    ['toolProfile', (v) => ({ ...base, toolProfile: v })],
    ['toolProfile[0]', (v) => ({ ...base, toolProfile: [v] })],
  ]
  for (const [field, make] of cases) {
    it.each(REFUSED.filter(([n]) => !['LF', 'NUL'].includes(n)))(`${field}: %s`, (_name, c) => {
      let error: unknown
      try { parseAgentClaims(make(`pay ${c}exe.txt`)) } catch (e) { error = e }
      expect((error as { code?: string }).code).toBe('ERR_INVALID_INPUT')
      expect((error as { details?: { field?: string } }).details?.field).toBe(field)
    })
  }
})
