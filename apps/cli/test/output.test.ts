import { describe, expect, it } from 'vitest'
import { clean, fields, json, table } from '../src/output.js'

describe('output', () => {
  it('escapes terminal control, bidi and zero-width characters', () => {
    expect(clean('a\u001b[31mb\u0007c\u202ed\u200be\u0085f\nok')).toBe('a\\u001b[31mb\\u0007c\\u202ed\\u200be\\u0085f\\u000aok')
    expect(clean('plain did:key:z6Mk…')).toBe('plain did:key:z6Mk…')
  })

  it('pads table columns to the widest cell and shows empty cells as -', () => {
    expect(table(['ID', 'NAME'], [['orch_1', 'alice'], ['o2', null]])).toBe('ID      NAME\norch_1  alice\no2      -\n')
    expect(table(['A', 'B'], [['x\ny', '']])).toBe('A         B\nx\\u000ay  -\n')
  })

  it('aligns key/value lines', () => {
    expect(fields([['did', 'did:key:z'], ['status', 'active'], ['revoked', null]])).toBe('did      did:key:z\nstatus   active\nrevoked  -\n')
  })

  it('prints JSON exactly, with a final newline', () => {
    expect(JSON.parse(json({ a: [1, null, 'x\u001b'] }))).toEqual({ a: [1, null, 'x\u001b'] })
    expect(json({})).toBe('{}\n')
  })
})
