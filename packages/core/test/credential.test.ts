import { describe, expect, it } from 'vitest'
import {
  AgentIdError,
  dataClassCovers,
  DATA_ACCESS_CLASSES,
  generateEd25519KeyPair,
  isAgentDid,
  parseAgentClaims,
  parseDataAccessClass,
  parseStatusEntry,
  VerificationError,
  type DataAccessClass,
} from '@agentid/core'
import { thrown } from './helpers.js'

const good = Object.freeze({
  purpose: 'Triage incoming supplier invoices',
  controller: 'did:web:acme.example',
  model: Object.freeze({ provider: 'openai', name: 'gpt', version: '5' }),
  toolProfile: Object.freeze(['mcp://erp/tools/invoices.read', 'mcp://erp/tools/invoices.flag']),
  policyTier: 'standard',
  dataAccessClass: 'internal',
})

/** `good` with one member replaced (or removed when value is undefined); dotted paths reach into model. */
function claimsWith(path: string, value: unknown): Record<string, unknown> {
  const claims: Record<string, any> = { ...good, model: { ...good.model }, toolProfile: [...good.toolProfile] }
  const [head, tail] = path.split('.') as [string, string | undefined]
  const target = tail === undefined ? claims : claims[head]
  const key = tail ?? head
  if (value === undefined) delete target[key]
  else target[key] = value
  return claims
}

function expectInvalid(fn: () => unknown, field: string): void {
  const error = thrown(fn)
  expect(error).toBeInstanceOf(AgentIdError)
  expect(error).not.toBeInstanceOf(VerificationError)
  expect(error.code).toBe('ERR_INVALID_INPUT')
  expect(error.details).toEqual({ field })
}

function expectMalformed(fn: () => unknown, field: string): void {
  const error = thrown(fn)
  expect(error).toBeInstanceOf(VerificationError)
  expect(error.code).toBe('ERR_MALFORMED')
  expect(error.details).toEqual({ field })
}

describe('parseAgentClaims: accepted input', () => {
  it('accepts a good claim set and returns an equal, unaliased copy', () => {
    const input = claimsWith('purpose', good.purpose)
    const claims = parseAgentClaims(input)
    expect(claims).toEqual(good)
    expect(claims).not.toBe(input)
    expect(claims.model).not.toBe(input.model)
    expect(claims.toolProfile).not.toBe(input.toolProfile)
    ;(input.toolProfile as string[]).push('mcp://erp/tools/payments.send')
    ;(input.model as Record<string, string>).name = 'other'
    expect(claims.toolProfile).toHaveLength(2)
    expect(claims.model.name).toBe('gpt')
    expect(Object.isFrozen(claims.toolProfile)).toBe(true)
  })

  it('accepts a profile name as toolProfile, no provider, an empty tool list and an attestation', () => {
    const claims = parseAgentClaims({ ...claimsWith('model.provider', undefined), toolProfile: 'erp-readonly', attestation: { tee: 'sgx', quote: 'AAAA' } })
    expect(claims.toolProfile).toBe('erp-readonly')
    expect(claims.model).toEqual({ name: 'gpt', version: '5' })
    expect('provider' in claims.model).toBe(false)
    expect(claims.attestation).toEqual({ tee: 'sgx', quote: 'AAAA' })
    expect(parseAgentClaims(claimsWith('toolProfile', [])).toolProfile).toEqual([])
  })

  it('accepts every data access class and the length limits exactly', () => {
    for (const dataAccessClass of DATA_ACCESS_CLASSES) expect(parseAgentClaims(claimsWith('dataAccessClass', dataAccessClass)).dataAccessClass).toBe(dataAccessClass)
    expect(() => parseAgentClaims(claimsWith('purpose', 'p'.repeat(1024)))).not.toThrow()
    expect(() => parseAgentClaims(claimsWith('controller', 'c'.repeat(256)))).not.toThrow()
    expect(() => parseAgentClaims(claimsWith('model.name', 'n'.repeat(256)))).not.toThrow()
    expect(() => parseAgentClaims(claimsWith('policyTier', 't'.repeat(64)))).not.toThrow()
    expect(() => parseAgentClaims(claimsWith('toolProfile', ['x'.repeat(512)]))).not.toThrow()
    expect(() => parseAgentClaims(claimsWith('toolProfile', Array.from({ length: 256 }, (_, i) => `tool-${i}`)))).not.toThrow()
    expect(() => parseAgentClaims({ ...good, attestation: { a: 'x'.repeat(8192 - 8) } })).not.toThrow() // {"a":"…"} is 8 + n bytes
  })

  it('accepts non-ASCII text without control characters', () => {
    expect(parseAgentClaims(claimsWith('purpose', 'Rechnungen prüfen — 請求書')).purpose).toBe('Rechnungen prüfen — 請求書')
  })
})

describe('parseAgentClaims: refusals (ERR_INVALID_INPUT with details.field)', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a string', JSON.stringify(good)],
    ['a number', 42],
    ['an array', [good]],
    ['an empty array', []],
    ['a function', () => good],
  ])('refuses %s as claims', (_name, input) => {
    expectInvalid(() => parseAgentClaims(input), 'claims')
  })

  it.each(['purpose', 'controller', 'model', 'model.name', 'model.version', 'toolProfile', 'policyTier', 'dataAccessClass'])('refuses a missing %s', (field) => {
    expectInvalid(() => parseAgentClaims(claimsWith(field, undefined)), field)
  })

  it.each([
    ['purpose', 42],
    ['purpose', null],
    ['purpose', ['triage']],
    ['controller', { id: 'did:web:acme.example' }],
    ['model', 'gpt-5'],
    ['model', ['gpt', '5']],
    ['model', null],
    ['model.provider', 1],
    ['model.provider', null],
    ['model.name', 5],
    ['model.version', 5],
    ['toolProfile', 1],
    ['toolProfile', null],
    ['toolProfile', { 0: 'mcp://x', length: 1 }],
    ['policyTier', 1],
    ['dataAccessClass', 1],
    ['dataAccessClass', ['public']],
    ['attestation', 'sgx'],
    ['attestation', ['sgx']],
    ['attestation', null],
  ])('refuses %s of the wrong type (%j)', (field, value) => {
    expectInvalid(() => parseAgentClaims(claimsWith(field, value)), field)
  })

  it('refuses a tool id of the wrong type, naming its index', () => {
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', ['mcp://a', 7])), 'toolProfile[1]')
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', ['mcp://a', null])), 'toolProfile[1]')
    // A hole in a sparse array is not a tool id.
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', [, 'mcp://a'])), 'toolProfile[0]')
  })

  it.each([
    ['admin', true],
    ['id', 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'],
    ['constructor', {}],
    ['dataaccessclass', 'restricted'],
  ])('strict mode refuses the unknown member %s', (key, value) => {
    expectInvalid(() => parseAgentClaims({ ...good, [key]: value }), key)
  })

  it('strict mode refuses __proto__ from JSON and unknown model members', () => {
    const input = JSON.parse(`{"__proto__":{"dataAccessClass":"restricted"},${JSON.stringify(good).slice(1)}`)
    expectInvalid(() => parseAgentClaims(input), '__proto__')
    expectInvalid(() => parseAgentClaims(claimsWith('model.weights', 'https://x')), 'model.weights')
  })

  it.each([
    ['purpose', 1025],
    ['controller', 257],
    ['model.provider', 257],
    ['model.name', 257],
    ['model.version', 257],
    ['policyTier', 65],
  ])('refuses a %s longer than the limit (%d characters)', (field, length) => {
    expectInvalid(() => parseAgentClaims(claimsWith(field, 'a'.repeat(length))), field)
  })

  it('refuses too-long tool ids, profile names and tool lists', () => {
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', ['x'.repeat(513)])), 'toolProfile[0]')
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', 'x'.repeat(257))), 'toolProfile')
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', Array.from({ length: 257 }, (_, i) => `tool-${i}`))), 'toolProfile')
  })

  it.each([
    ['NUL', '\u0000'],
    ['newline', '\n'],
    ['carriage return', '\r'],
    ['tab', '\t'],
    ['escape', '\u001b[31m'],
    ['unit separator', '\u001f'],
    ['DEL', '\u007f'],
    ['NEL (C1)', '\u0085'],
    ['CSI (C1)', '\u009b31m'],
  ])('refuses a %s inside text fields', (_name, ch) => {
    for (const field of ['purpose', 'controller', 'model.provider', 'model.name', 'model.version', 'policyTier']) {
      expectInvalid(() => parseAgentClaims(claimsWith(field, `a${ch}b`)), field)
    }
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', `a${ch}b`)), 'toolProfile')
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', ['mcp://a', `a${ch}b`])), 'toolProfile[1]')
  })

  it.each([
    ['empty', ''],
    ['a leading space', ' triage'],
    ['a trailing space', 'triage '],
    ['a trailing no-break space', 'triage\u00a0'],
    ['a leading BOM', '\ufefftriage'],
    ['only spaces', '   '],
  ])('refuses %s text', (_name, value) => {
    expectInvalid(() => parseAgentClaims(claimsWith('purpose', value)), 'purpose')
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', [value])), 'toolProfile[0]')
  })

  it.each(['gold tier', '-gold', '.gold', 'tier/1', 'tier\u00e9', 'gold!'])('refuses the policy tier %j', (tier) => {
    expectInvalid(() => parseAgentClaims(claimsWith('policyTier', tier)), 'policyTier')
  })

  it.each(['secret', 'Public', 'INTERNAL', ' public', 'public ', '', 'toString', '__proto__', 'constructor', 'restricted\u0000'])(
    'refuses the data access class %j',
    (value) => {
      expectInvalid(() => parseAgentClaims(claimsWith('dataAccessClass', value)), 'dataAccessClass')
    },
  )

  it('refuses duplicate tool ids, naming the second one', () => {
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', ['mcp://a', 'mcp://b', 'mcp://a'])), 'toolProfile[2]')
    expectInvalid(() => parseAgentClaims(claimsWith('toolProfile', ['mcp://a', 'mcp://a'])), 'toolProfile[1]')
  })

  it('refuses an attestation over 8192 bytes, counted in UTF-8 bytes', () => {
    expectInvalid(() => parseAgentClaims({ ...good, attestation: { a: 'x'.repeat(8192 - 7) } }), 'attestation')
    expectInvalid(() => parseAgentClaims({ ...good, attestation: { blob: 'x'.repeat(1024 * 1024) } }), 'attestation')
    // 3000 characters, 9000 bytes.
    expectInvalid(() => parseAgentClaims({ ...good, attestation: { a: '\u20ac'.repeat(3000) } }), 'attestation')
  })

  it('refuses an attestation that is not JSON data (cycles, bigints) with ERR_INVALID_INPUT, not a TypeError', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    expectInvalid(() => parseAgentClaims({ ...good, attestation: cyclic }), 'attestation')
    expectInvalid(() => parseAgentClaims({ ...good, attestation: { n: 1n } }), 'attestation')
  })

  it('returns the attestation as a JSON copy, not the caller object', () => {
    const attestation = { tee: 'sgx', nested: { quote: 'AAAA' } }
    const claims = parseAgentClaims({ ...good, attestation })
    attestation.nested.quote = 'changed'
    expect(claims.attestation).toEqual({ tee: 'sgx', nested: { quote: 'AAAA' } })
  })
})

describe('parseAgentClaims: the 32 KiB limit on the serialized claims is exact', () => {
  // Claims whose JSON is `bytes` long: tools holding what JSON escapes (", \\) and multi-byte UTF-8
  // (2, 3 and 4 bytes), padded with ASCII. The limit is checked without serializing the claims.
  function claimsOf(bytes: number, o: { provider?: boolean; spiffe?: boolean } = {}): Record<string, unknown> {
    const tools = Array.from({ length: 80 }, (_, i) => `mcp://erp/"quoted"\\back\\slash/é/€/😀/${i}/${'x'.repeat(300)}`)
    const claims: Record<string, any> = {
      ...good,
      purpose: 'Pay "supplier" invoices \\ naïvely 😀',
      model: o.provider === false ? { name: 'gpt', version: '5' } : { ...good.model },
      toolProfile: tools,
      ...(o.spiffe ? { spiffeId: 'spiffe://acme.example/agent/orchestrator/key' } : {}),
    }
    let missing = bytes - Buffer.byteLength(JSON.stringify(claims), 'utf8')
    for (let i = tools.length - 1; missing > 0; i--) {
      const n = Math.min(missing, 512 - tools[i]!.length)
      tools[i] += 'p'.repeat(n)
      missing -= n
    }
    expect(Buffer.byteLength(JSON.stringify(claims), 'utf8')).toBe(bytes)
    return claims
  }

  it.each([
    ['a tool list', {}],
    ['a tool list, no model provider, a SPIFFE ID', { provider: false, spiffe: true }],
  ])('accepts 32,768 bytes and refuses 32,769 (%s)', (_name, o) => {
    expect(parseAgentClaims(claimsOf(32 * 1024, o)).toolProfile).toHaveLength(80)
    expectInvalid(() => parseAgentClaims(claimsOf(32 * 1024 + 1, o)), 'claims')
  })
})

describe('parseAgentClaims with { strict: false, code: ERR_MALFORMED } (verifier side)', () => {
  const lenient = { strict: false, code: 'ERR_MALFORMED' } as const

  it('drops unknown members, at the top and in model, and id', () => {
    const claims = parseAgentClaims({ ...good, id: 'did:key:z6Mk', admin: true, model: { ...good.model, weights: 'x' } }, lenient)
    expect(claims).toEqual(good)
    expect('admin' in claims).toBe(false)
    expect('id' in claims).toBe(false)
    expect('weights' in claims.model).toBe(false)
  })

  it('refuses bad values with VerificationError ERR_MALFORMED and the field', () => {
    expectMalformed(() => parseAgentClaims(null, lenient), 'claims')
    expectMalformed(() => parseAgentClaims(claimsWith('purpose', undefined), lenient), 'purpose')
    expectMalformed(() => parseAgentClaims(claimsWith('dataAccessClass', 'secret'), lenient), 'dataAccessClass')
    expectMalformed(() => parseAgentClaims(claimsWith('toolProfile', ['a', 'a']), lenient), 'toolProfile[1]')
    expectMalformed(() => parseAgentClaims(claimsWith('model.name', 'x\n'), lenient), 'model.name')
    expectMalformed(() => parseAgentClaims({ ...good, attestation: { a: 'x'.repeat(9000) } }, lenient), 'attestation')
  })

  it('strict: false alone keeps the ERR_INVALID_INPUT code', () => {
    expect(parseAgentClaims({ ...good, extra: 1 }, { strict: false })).toEqual(good)
    expectInvalid(() => parseAgentClaims(claimsWith('purpose', ''), { strict: false }), 'purpose')
  })
})

describe('parseDataAccessClass and dataClassCovers', () => {
  it('DATA_ACCESS_CLASSES is ordered public < internal < confidential < restricted and frozen', () => {
    expect([...DATA_ACCESS_CLASSES]).toEqual(['public', 'internal', 'confidential', 'restricted'])
    expect(Object.isFrozen(DATA_ACCESS_CLASSES)).toBe(true)
  })

  it('dataClassCovers is exactly "held ranks at or above needed"', () => {
    for (const [h, held] of DATA_ACCESS_CLASSES.entries()) {
      for (const [n, needed] of DATA_ACCESS_CLASSES.entries()) {
        expect(dataClassCovers(held, needed), `${held} covers ${needed}`).toBe(h >= n)
      }
    }
    expect(dataClassCovers('restricted', 'public')).toBe(true)
    expect(dataClassCovers('public', 'restricted')).toBe(false)
    expect(dataClassCovers('internal', 'confidential')).toBe(false)
  })

  it('dataClassCovers never grants from an unknown class (values that slipped past the types)', () => {
    expect(dataClassCovers('admin' as DataAccessClass, 'public')).toBe(false)
    expect(dataClassCovers('admin' as DataAccessClass, 'restricted')).toBe(false)
    // An unknown requirement (a typo in a resource's config) must deny, not rank below public.
    expect(dataClassCovers('restricted', 'secret' as DataAccessClass)).toBe(false)
    expect(dataClassCovers('public', undefined as never)).toBe(false)
  })

  it('parseDataAccessClass refuses unknown values with the requested code', () => {
    expect(parseDataAccessClass('confidential')).toBe('confidential')
    expectInvalid(() => parseDataAccessClass('top-secret'), 'dataAccessClass')
    expectMalformed(() => parseDataAccessClass(3, 'ERR_MALFORMED'), 'dataAccessClass')
  })
})

describe('parseStatusEntry', () => {
  const entry = {
    id: 'https://issuer.example/status/1#94567',
    type: 'BitstringStatusListEntry',
    statusPurpose: 'revocation',
    statusListIndex: '94567',
    statusListCredential: 'https://issuer.example/status/1',
  }

  it('accepts a revocation entry, with or without id, and keeps only known members', () => {
    expect(parseStatusEntry(entry)).toEqual(entry)
    const { id: _id, ...withoutId } = entry
    expect(parseStatusEntry(withoutId)).toEqual(withoutId)
    expect(parseStatusEntry({ ...entry, statusMessage: [], extra: 1 })).toEqual(entry)
    expect(parseStatusEntry({ ...entry, statusListCredential: 'http://localhost:8080/status/1' }).statusListCredential).toBe('http://localhost:8080/status/1')
  })

  it.each([
    ['null', null, 'credentialStatus'],
    ['an array of entries', [entry], 'credentialStatus'],
    ['a string', 'https://issuer.example/status/1', 'credentialStatus'],
    ['another type', { ...entry, type: 'StatusList2021Entry' }, 'credentialStatus.type'],
    ['a type array', { ...entry, type: ['BitstringStatusListEntry'] }, 'credentialStatus.type'],
    ['a missing type', { ...entry, type: undefined }, 'credentialStatus.type'],
    ['suspension', { ...entry, statusPurpose: 'suspension' }, 'credentialStatus.statusPurpose'],
    ['message', { ...entry, statusPurpose: 'message' }, 'credentialStatus.statusPurpose'],
    ['a numeric index', { ...entry, statusListIndex: 94567 }, 'credentialStatus.statusListIndex'],
    ['a missing index', { ...entry, statusListIndex: undefined }, 'credentialStatus.statusListIndex'],
    ['a non-decimal index', { ...entry, statusListIndex: '0x10' }, 'credentialStatus.statusListIndex'],
    ['a negative index', { ...entry, statusListIndex: '-1' }, 'credentialStatus.statusListIndex'],
    ['an empty index', { ...entry, statusListIndex: '' }, 'credentialStatus.statusListIndex'],
    ['a missing list URL', { ...entry, statusListCredential: undefined }, 'credentialStatus.statusListCredential'],
    ['a relative list URL', { ...entry, statusListCredential: '/status/1' }, 'credentialStatus.statusListCredential'],
    ['an ftp list URL', { ...entry, statusListCredential: 'ftp://issuer.example/status/1' }, 'credentialStatus.statusListCredential'],
    ['a javascript: URL', { ...entry, statusListCredential: 'javascript:alert(1)' }, 'credentialStatus.statusListCredential'],
    ['a file: URL', { ...entry, statusListCredential: 'file:///etc/passwd' }, 'credentialStatus.statusListCredential'],
    ['a did as list URL', { ...entry, statusListCredential: 'did:web:issuer.example' }, 'credentialStatus.statusListCredential'],
    ['a URL with a space', { ...entry, statusListCredential: 'https://issuer.example/status 1' }, 'credentialStatus.statusListCredential'],
    ['a URL with a newline', { ...entry, statusListCredential: 'https://issuer.example/\nstatus' }, 'credentialStatus.statusListCredential'],
    ['an upper-case scheme', { ...entry, statusListCredential: 'HTTPS://issuer.example/status/1' }, 'credentialStatus.statusListCredential'],
    ['a list URL over 2048 characters', { ...entry, statusListCredential: `https://issuer.example/${'a'.repeat(2048)}` }, 'credentialStatus.statusListCredential'],
    ['a numeric id', { ...entry, id: 1 }, 'credentialStatus.id'],
    ['a null id', { ...entry, id: null }, 'credentialStatus.id'],
  ])('refuses %s', (_name, value, field) => {
    expectMalformed(() => parseStatusEntry(value), field)
    expectInvalid(() => parseStatusEntry(value, 'ERR_INVALID_INPUT'), field)
  })
})

describe('isAgentDid', () => {
  it('accepts an Ed25519 did:key and refuses everything else', () => {
    expect(isAgentDid(generateEd25519KeyPair().did)).toBe(true)
    for (const value of [
      'did:web:acme.example',
      'did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW',
      'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp',
      '',
      null,
      42,
    ]) {
      expect(isAgentDid(value)).toBe(false)
    }
  })
})
