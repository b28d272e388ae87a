import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AgentIdError,
  DEFAULT_MAX_STATUS_LIST_BYTES,
  MIN_STATUS_LIST_ENTRIES,
  parseStatusEntry,
  parseStatusListIndex,
  StatusList,
  StatusListError,
} from '@agentid/core'
import { readVector, thrown } from './helpers.js'

interface StatusCase {
  id: string
  list: string
  statusPurpose: string
  listPurpose?: string
  statusSize: number
  index: unknown
  expected: { status: number; valid?: boolean } | { error: string }
}
const derived = readVector<{ cases: StatusCase[]; entry_template: unknown }>('status-list/bitstring-status-list.derived.json')
const spec = readVector<{ examples: { title: string; parses_as_json: boolean; example: any }[] }>('status-list/spec-examples.json')

const SPEC_LIST = 'uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA'

function expectStatusError(fn: () => unknown, name: string): StatusListError {
  const error = thrown(fn)
  expect(error).toBeInstanceOf(StatusListError)
  expect(error).toBeInstanceOf(AgentIdError)
  expect(error.code).toBe('ERR_MALFORMED')
  expect(error.statusListError).toBe(name)
  expect(error.details.statusListError).toBe(name)
  return error
}

// The spec error each case expects, where the vector's text needs reading.
const EXPECTED_ERROR: Record<string, string> = {
  'not-gzip': 'MALFORMED_VALUE_ERROR', // "MALFORMED_VALUE_ERROR (decompression failure)"
  'gzip-bomb-32MiB': 'MALFORMED_VALUE_ERROR', // policy: over the default 16 MiB cap
}

describe('Bitstring Status List vectors (bitstring-status-list.derived.json)', () => {
  it('has the 21 derived cases', () => {
    expect(derived.cases).toHaveLength(21)
  })

  for (const c of derived.cases) {
    if (c.id === 'purpose-mismatch') {
      // Comparing the entry's purpose with the list credential's is a verifier check; the list itself is fine.
      it(`${c.id}: the list itself decodes (purpose is checked by the verifier)`, () => {
        expect(c.expected).toEqual({ error: 'STATUS_VERIFICATION_ERROR' })
        expect(c.statusPurpose).not.toBe(c.listPurpose)
        expect(StatusList.decode(c.list, { statusSize: c.statusSize }).get(parseStatusListIndex(c.index))).toBe(1)
      })
      continue
    }
    it(`${c.id}: ${JSON.stringify(c.expected)}`, () => {
      const read = () => StatusList.decode(c.list, { statusSize: c.statusSize }).get(parseStatusListIndex(c.index))
      if ('status' in c.expected) {
        expect(read()).toBe(c.expected.status)
        if (c.expected.valid !== undefined) expect(read() === 0).toBe(c.expected.valid)
      } else {
        const name = EXPECTED_ERROR[c.id] ?? c.expected.error
        expect(['STATUS_LIST_LENGTH_ERROR', 'RANGE_ERROR', 'MALFORMED_VALUE_ERROR']).toContain(name)
        expectStatusError(read, name)
      }
    })
  }

  it('the 32 MiB gzip bomb decodes to status 0 when the cap is raised to 64 MiB', () => {
    const bomb = derived.cases.find((c) => c.id === 'gzip-bomb-32MiB')!
    expectStatusError(() => StatusList.decode(bomb.list), 'MALFORMED_VALUE_ERROR')
    expectStatusError(() => StatusList.decode(bomb.list, { maxBytes: DEFAULT_MAX_STATUS_LIST_BYTES }), 'MALFORMED_VALUE_ERROR')
    const list = StatusList.decode(bomb.list, { maxBytes: 64 * 1024 * 1024 })
    expect(list.bytes.length).toBe(32 * 1024 * 1024)
    expect(list.get(parseStatusListIndex(bomb.index))).toBe(0)
    expect(list.get(list.length - 1)).toBe(0)
  })

  it('a cap just below the decompressed size refuses, the exact size accepts', () => {
    const bytes = new Uint8Array(MIN_STATUS_LIST_ENTRIES / 8)
    const encoded = StatusList.fromBytes(bytes).encode()
    expectStatusError(() => StatusList.decode(encoded, { maxBytes: bytes.length - 1 }), 'MALFORMED_VALUE_ERROR')
    expect(StatusList.decode(encoded, { maxBytes: bytes.length }).length).toBe(MIN_STATUS_LIST_ENTRIES)
  })

  it('statusSize 2: entries 10, 11, 12 read as 2, 1, 0 and the list meets the minimum', () => {
    const c = derived.cases.find((x) => x.id === 'statusSize2-entry10')!
    const list = StatusList.decode(c.list, { statusSize: 2 })
    expect([list.get(10), list.get(11), list.get(12)]).toEqual([2, 1, 0])
    expect(list.length).toBeGreaterThanOrEqual(MIN_STATUS_LIST_ENTRIES)
    // Read as a one-bit list, bits 20..23 are 1, 0, 0, 1.
    const oneBit = StatusList.decode(c.list, { statusSize: 1 })
    expect([20, 21, 22, 23].map((i) => oneBit.get(i))).toEqual([1, 0, 0, 1])
  })

  it('a one-bit list of exactly 131072 entries is too short for statusSize 2', () => {
    expectStatusError(() => StatusList.decode(SPEC_LIST, { statusSize: 2 }), 'STATUS_LIST_LENGTH_ERROR')
  })
})

describe('spec examples (spec-examples.json)', () => {
  it("the spec's encodedList decodes to 131072 zero entries", () => {
    const credentials = spec.examples.filter((e) => e.parses_as_json && e.example.credentialSubject?.encodedList)
    expect(credentials.length).toBeGreaterThan(0)
    for (const { example } of credentials) {
      expect(example.credentialSubject.encodedList).toBe(SPEC_LIST)
      const list = StatusList.decode(example.credentialSubject.encodedList)
      expect(list.length).toBe(MIN_STATUS_LIST_ENTRIES)
      expect(list.bytes.every((byte) => byte === 0)).toBe(true)
      expect(list.get(0)).toBe(0)
      expect(list.get(MIN_STATUS_LIST_ENTRIES - 1)).toBe(0)
      expectStatusError(() => list.get(MIN_STATUS_LIST_ENTRIES), 'RANGE_ERROR')
    }
  })

  it('the revocation entries of the spec examples parse, and their indexes are in range', () => {
    const entries = spec.examples
      .filter((e) => e.parses_as_json)
      .flatMap((e) => [e.example.credentialStatus ?? []].flat())
      .filter((entry: any) => entry.statusPurpose === 'revocation')
    expect(entries.length).toBeGreaterThan(0)
    const list = StatusList.decode(SPEC_LIST)
    for (const entry of [...entries, derived.entry_template]) {
      const parsed = parseStatusEntry(entry)
      expect(list.get(parseStatusListIndex(parsed.statusListIndex))).toBe(0)
    }
  })

  it('a suspension entry is refused by parseStatusEntry (agentid only issues revocation)', () => {
    const suspension = spec.examples
      .filter((e) => e.parses_as_json)
      .flatMap((e) => [e.example.credentialStatus ?? []].flat())
      .find((entry: any) => entry.statusPurpose === 'suspension')
    expect(suspension).toBeDefined()
    const error = thrown(() => parseStatusEntry(suspension))
    expect(error.code).toBe('ERR_MALFORMED')
    expect(error.details.field).toBe('credentialStatus.statusPurpose')
  })
})

describe('parseStatusListIndex', () => {
  it.each([
    ['0', 0],
    ['7', 7],
    ['131071', 131071],
    ['999999999999999', 999_999_999_999_999],
  ])('parses %j', (input, expected) => {
    expect(parseStatusListIndex(input)).toBe(expected)
  })

  it.each([
    ['-1'],
    ['+1'],
    ['1e3'],
    ['0x10'],
    ['1.0'],
    ['1.'],
    [' 1'],
    ['1 '],
    ['1\n'],
    [''],
    ['01'],
    ['00'],
    ['１'], // fullwidth digit
    ['١'], // Arabic-Indic digit
    ['Infinity'],
    ['NaN'],
    ['1_000'],
  ])('refuses the string %j as MALFORMED_VALUE_ERROR', (input) => {
    expectStatusError(() => parseStatusListIndex(input), 'MALFORMED_VALUE_ERROR')
  })

  it.each([
    ['a number', 5],
    ['zero', 0],
    ['null', null],
    ['undefined', undefined],
    ['a bigint', 5n],
    ['an array', ['5']],
    ['an object with toString', { toString: () => '5' }],
    ['a String object', new String('5')],
  ])('refuses %s as MALFORMED_VALUE_ERROR', (_name, input) => {
    expectStatusError(() => parseStatusListIndex(input), 'MALFORMED_VALUE_ERROR')
  })

  it('16 or more digits is RANGE_ERROR (past the end of any list), never a rounded number', () => {
    expectStatusError(() => parseStatusListIndex('9007199254740993'), 'RANGE_ERROR')
    expectStatusError(() => parseStatusListIndex('1000000000000000'), 'RANGE_ERROR')
    expectStatusError(() => parseStatusListIndex('9'.repeat(10_000)), 'RANGE_ERROR')
  })
})

describe('StatusList.decode refusals', () => {
  it.each([
    ['not a string', 42],
    ['null', null],
    ['bytes', Buffer.from(SPEC_LIST)],
    ['the empty string', ''],
    ['only the prefix', 'u'],
    ['an upper-case U prefix', `U${SPEC_LIST.slice(1)}`],
    ['a base58 z prefix', `z${SPEC_LIST.slice(1)}`],
    ['standard base64 characters', `${SPEC_LIST.slice(0, 10)}+/${SPEC_LIST.slice(12)}`],
    ['padding', `${SPEC_LIST}==`],
    ['whitespace', `${SPEC_LIST.slice(0, 10)} ${SPEC_LIST.slice(10)}`],
    ['a trailing newline', `${SPEC_LIST}\n`],
    ['a truncated gzip stream', SPEC_LIST.slice(0, 40)],
    ['zlib (not gzip) data', `u${Buffer.from('789c030000000001', 'hex').toString('base64url')}`],
  ])('%s is MALFORMED_VALUE_ERROR', (_name, input) => {
    expectStatusError(() => StatusList.decode(input), 'MALFORMED_VALUE_ERROR')
  })

  it('a gzip stream whose CRC is wrong is MALFORMED_VALUE_ERROR', () => {
    const gz = gzipSync(new Uint8Array(MIN_STATUS_LIST_ENTRIES / 8))
    gz[gz.length - 8]! ^= 0xff
    expectStatusError(() => StatusList.decode(`u${gz.toString('base64url')}`), 'MALFORMED_VALUE_ERROR')
  })

  it('an encodedList longer than the cap allows is refused before decompression', () => {
    expectStatusError(() => StatusList.decode(`u${'A'.repeat(2000)}`, { maxBytes: 1000 }), 'MALFORMED_VALUE_ERROR')
  })

  it('one byte short of the minimum is STATUS_LIST_LENGTH_ERROR', () => {
    const encoded = `u${gzipSync(new Uint8Array(MIN_STATUS_LIST_ENTRIES / 8 - 1)).toString('base64url')}`
    expectStatusError(() => StatusList.decode(encoded), 'STATUS_LIST_LENGTH_ERROR')
    expectStatusError(() => StatusList.fromBytes(new Uint8Array(MIN_STATUS_LIST_ENTRIES / 8 - 1)), 'STATUS_LIST_LENGTH_ERROR')
  })

  it('statusSize outside 1..8 is API misuse (RangeError)', () => {
    for (const statusSize of [0, 9, 1.5, -1, Number.NaN]) {
      expect(() => StatusList.decode(SPEC_LIST, { statusSize })).toThrow(RangeError)
      expect(() => StatusList.create(MIN_STATUS_LIST_ENTRIES, statusSize)).toThrow(RangeError)
    }
  })
})

describe('StatusList get/set/encode', () => {
  it('index 0 is the most significant bit of byte 0; index 7 the least', () => {
    const list = StatusList.create()
    list.set(0, 1)
    expect(list.bytes[0]).toBe(0x80)
    expect(list.get(0)).toBe(1)
    expect(list.get(7)).toBe(0)
    list.set(7, 1)
    expect(list.bytes[0]).toBe(0x81)
    list.set(0, 0)
    expect(list.bytes[0]).toBe(0x01)
    const decoded = StatusList.decode(list.encode())
    expect([decoded.get(0), decoded.get(1), decoded.get(7), decoded.get(8)]).toEqual([0, 0, 1, 0])
  })

  it('first and last entries round-trip', () => {
    const list = StatusList.create()
    list.set(0, 1)
    list.set(MIN_STATUS_LIST_ENTRIES - 1, 1)
    expect(list.bytes.at(-1)).toBe(0x01)
    const decoded = StatusList.decode(list.encode())
    expect(decoded.get(0)).toBe(1)
    expect(decoded.get(1)).toBe(0)
    expect(decoded.get(MIN_STATUS_LIST_ENTRIES - 2)).toBe(0)
    expect(decoded.get(MIN_STATUS_LIST_ENTRIES - 1)).toBe(1)
  })

  it('the derived revoked-94567 list is what we encode for index 94567', () => {
    const list = StatusList.create()
    list.set(94567, 1)
    const vector = StatusList.decode(derived.cases.find((c) => c.id === 'revoked-94567')!.list)
    expect(Buffer.from(vector.bytes).equals(Buffer.from(list.bytes))).toBe(true)
  })

  it('statusSize 2 stores values most significant bit first', () => {
    const list = StatusList.create(MIN_STATUS_LIST_ENTRIES, 2)
    expect(list.length).toBe(MIN_STATUS_LIST_ENTRIES)
    expect(list.bytes.length).toBe((MIN_STATUS_LIST_ENTRIES * 2) / 8)
    list.set(10, 2)
    list.set(11, 1)
    list.set(12, 3)
    // entries 8..11 share byte 2: 00 00 10 01; entry 12 starts byte 3: 11 00 00 00
    expect(list.bytes[2]).toBe(0b0000_1001)
    expect(list.bytes[3]).toBe(0b1100_0000)
    const decoded = StatusList.decode(list.encode(), { statusSize: 2 })
    expect([decoded.get(9), decoded.get(10), decoded.get(11), decoded.get(12), decoded.get(13)]).toEqual([0, 2, 1, 3, 0])
    list.set(12, 0)
    expect(list.bytes[3]).toBe(0)
    expect(() => list.set(1, 4)).toThrow(RangeError)
    expect(() => list.set(1, -1)).toThrow(RangeError)
    expect(() => list.set(1, 1.5)).toThrow(RangeError)
  })

  it('get and set refuse bad indexes with the spec error names', () => {
    const list = StatusList.create()
    for (const index of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1' as never]) {
      expectStatusError(() => list.get(index), 'MALFORMED_VALUE_ERROR')
      expectStatusError(() => list.set(index, 1), 'MALFORMED_VALUE_ERROR')
    }
    expectStatusError(() => list.get(MIN_STATUS_LIST_ENTRIES), 'RANGE_ERROR')
    expectStatusError(() => list.set(MIN_STATUS_LIST_ENTRIES, 1), 'RANGE_ERROR')
  })

  it('create refuses fewer than the minimum entries (RangeError)', () => {
    expect(() => StatusList.create(MIN_STATUS_LIST_ENTRIES - 1)).toThrow(RangeError)
    expect(() => StatusList.create(1.5 * MIN_STATUS_LIST_ENTRIES + 0.5)).toThrow(RangeError)
    expect(StatusList.create(MIN_STATUS_LIST_ENTRIES + 1).length).toBeGreaterThan(MIN_STATUS_LIST_ENTRIES)
  })

  it('fromBytes copies its input', () => {
    const bytes = new Uint8Array(MIN_STATUS_LIST_ENTRIES / 8)
    const list = StatusList.fromBytes(bytes)
    bytes[0] = 0xff
    expect(list.get(0)).toBe(0)
  })

  it('property: a random set of indexes, set, encoded and decoded, reads back as exactly that set', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(MIN_STATUS_LIST_ENTRIES - 1), { maxLength: 64 }), fc.array(fc.nat(MIN_STATUS_LIST_ENTRIES - 1), { maxLength: 64 }), (indexes, probes) => {
        const list = StatusList.create()
        for (const i of indexes) list.set(i, 1)
        const decoded = StatusList.decode(list.encode())
        const set = new Set(indexes)
        for (const i of [...indexes, ...probes, 0, 7, MIN_STATUS_LIST_ENTRIES - 1]) expect(decoded.get(i)).toBe(set.has(i) ? 1 : 0)
        let count = 0
        for (const byte of decoded.bytes) for (let b = byte; b; b &= b - 1) count++
        expect(count).toBe(set.size)
      }),
      { numRuns: 100 },
    )
  })

  it('property: statusSize 1..8 values round-trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }).chain((size) =>
          fc.tuple(fc.constant(size), fc.array(fc.tuple(fc.nat(MIN_STATUS_LIST_ENTRIES - 1), fc.nat(2 ** size - 1)), { maxLength: 32 })),
        ),
        ([size, writes]) => {
          const list = StatusList.create(MIN_STATUS_LIST_ENTRIES, size)
          const expected = new Map<number, number>()
          for (const [i, v] of writes) {
            list.set(i, v)
            expected.set(i, v)
          }
          const decoded = StatusList.decode(list.encode(), { statusSize: size })
          for (const [i, v] of expected) expect(decoded.get(i)).toBe(v)
          expect(decoded.get(MIN_STATUS_LIST_ENTRIES - 1)).toBe(expected.get(MIN_STATUS_LIST_ENTRIES - 1) ?? 0)
        },
      ),
      { numRuns: 50 },
    )
  })
})
