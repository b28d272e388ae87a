import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseStrictJson, parseStrictJsonObject, VerificationError } from '@agentid/core'
import { thrown } from './helpers.js'

function expectMalformed(text: string, options?: Parameters<typeof parseStrictJsonObject>[1]): any {
  const error = thrown(() => parseStrictJsonObject(text, options))
  expect(error).toBeInstanceOf(VerificationError)
  expect(error.code).toBe('ERR_MALFORMED')
  return error
}

// Member names with control characters, quotes, backslashes and astral code points, not just printable ASCII.
const hostileName = () => fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' }))

const nest = (depth: number, open = '{"a":', close = '}', inner = '{}') => `${open.repeat(depth - 1)}${inner}${close.repeat(depth - 1)}`

describe('parseStrictJsonObject', () => {
  it('returns what JSON.parse returns for a duplicate-free object', () => {
    const text = '{"a":1,"b":[1,{"a":2},"x"],"c":{"d":null,"e":true},"f":"\\u00e9\\n"}'
    expect(parseStrictJsonObject(text)).toEqual(JSON.parse(text))
  })

  it.each([
    ['a plain duplicate', '{"a":1,"a":1}', 'a'],
    ['an escaped duplicate', '{"a":1,"\\u0061":2}', 'a'],
    ['an escaped duplicate, escape first', '{"\\u0061":1,"a":2}', 'a'],
    ['an upper-case hex escape', '{"a":1,"\\u0041":2,"\\u0061":3}', 'a'],
    ['a duplicate with an escaped quote', '{"a\\"b":1,"a\\u0022b":2}', 'a"b'],
    ['a duplicate with an escaped backslash at the end', '{"a\\\\":1,"a\\\\":2}', 'a\\'],
    ['an escaped solidus', '{"a/b":1,"a\\/b":2}', 'a/b'],
    ['a surrogate pair escaped vs literal', '{"\\ud83d\\ude00":1,"\u{1f600}":2}', '\u{1f600}'],
    ['the empty name', '{"":1,"":2}', ''],
    ['__proto__', '{"__proto__":{},"__proto__":{}}', '__proto__'],
    ['a nested duplicate', '{"x":{"b":1,"c":2,"b":3}}', 'b'],
    ['a duplicate inside an array', '{"x":[{"b":1},{"b":1,"b":2}]}', 'b'],
    ['a duplicate after a nested object', '{"a":{"z":1},"b":2,"a":3}', 'a'],
    ['a duplicate after a nested array', '{"a":[{"a":1}],"a":2}', 'a'],
    ['a duplicate with whitespace around', '{ "a" : 1 ,\n\t"a" : 2 }', 'a'],
  ])('refuses %s', (_name, text, member) => {
    expect(expectMalformed(text).details).toEqual({ member })
  })

  it.each([
    ['the same name in sibling objects', '{"a":{"b":1},"c":{"b":2}}'],
    ['the same name at different depths', '{"a":{"a":{"a":1}}}'],
    ['names differing in case', '{"a":1,"A":2}'],
    ['names differing in normalization', '{"\\u00e9":1,"e\\u0301":2}'],
    ['a value equal to a name', '{"a":"a","b":"a"}'],
    ['values that look like members', '{"a":"\\",\\"a\\":1","b":"{\\"b\\":2,\\"b\\":3}"}'],
    ['a value ending in a backslash', '{"a":"\\\\","b":"\\\\\\\\"}'],
    ['brackets inside strings', '{"a":"[[[[{{{{","b":"]]}}"}'],
    ['repeated values in arrays', '{"a":["a","a",{"b":1},{"b":1}]}'],
  ])('accepts %s', (_name, text) => {
    expect(parseStrictJsonObject(text)).toEqual(JSON.parse(text))
  })

  it.each([
    ['an array', '[]'],
    ['an array of objects', '[{"a":1}]'],
    ['a string', '"{}"'],
    ['a number', '1'],
    ['null', 'null'],
    ['true', 'true'],
    ['nothing', ''],
    ['whitespace', '  '],
    ['a truncated object', '{"a":1'],
    ['trailing data', '{"a":1}{"b":2}'],
    ['a trailing comma', '{"a":1,}'],
    ['single quotes', "{'a':1}"],
    ['an unquoted name', '{a:1}'],
    ['a BOM', '\ufeff{}'],
    ['NaN', '{"a":NaN}'],
    ['a raw control character in a string', '{"a":"\u0001"}'],
    ['an invalid escape', '{"a":"\\x41"}'],
  ])('refuses %s as ERR_MALFORMED', (_name, text) => {
    expectMalformed(text)
  })

  it('keeps the JSON.parse failure as the cause', () => {
    expect(expectMalformed('{"a":').cause).toBeInstanceOf(SyntaxError)
  })

  it('default depth limit is 32: objects and arrays both count, strings do not', () => {
    expect(() => parseStrictJsonObject(nest(32))).not.toThrow()
    expectMalformed(nest(33))
    expect(() => parseStrictJsonObject(`{"a":${nest(31, '[', ']', '[]')}}`)).not.toThrow()
    expectMalformed(`{"a":${nest(32, '[', ']', '[]')}}`)
    expect(() => parseStrictJsonObject(`{"a":"${'['.repeat(1000)}"}`)).not.toThrow()
  })

  it('maxDepth is configurable', () => {
    expect(() => parseStrictJsonObject('{"a":1}', { maxDepth: 1 })).not.toThrow()
    expectMalformed('{"a":{}}', { maxDepth: 1 })
    expectMalformed('{"a":[]}', { maxDepth: 1 })
    expect(() => parseStrictJsonObject('{"a":[{"b":[]}]}', { maxDepth: 4 })).not.toThrow()
    expectMalformed('{"a":[{"b":[{}]}]}', { maxDepth: 4 })
  })

  it('refuses pathological nesting without a stack overflow escaping', () => {
    expectMalformed(nest(200_000))
    expectMalformed(`{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`)
  })

  it('does not let __proto__ change the prototype', () => {
    const value = parseStrictJsonObject('{"__proto__":{"admin":true}}')
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
    expect((value as { admin?: unknown }).admin).toBeUndefined()
    expect(Object.keys(value)).toEqual(['__proto__'])
  })

  it('property: agrees with JSON.parse on any serialized object', () => {
    fc.assert(
      fc.property(fc.dictionary(hostileName(), fc.jsonValue({ maxDepth: 4 })), (object) => {
        const text = JSON.stringify(object)
        expect(parseStrictJsonObject(text)).toEqual(JSON.parse(text))
      }),
      { numRuns: 300 },
    )
  })

  it('property: a repeated member name is refused however it is escaped', () => {
    const escape = (name: string, mask: boolean[]) =>
      [...name].map((ch, i) => (mask[i % mask.length] ? ch.split('').map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('') : JSON.stringify(ch).slice(1, -1))).join('')
    fc.assert(
      fc.property(
        fc.dictionary(hostileName(), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }),
        fc.array(fc.boolean(), { minLength: 1 }),
        fc.nat(),
        (object, mask, pick) => {
          const names = Object.keys(object)
          const name = names[pick % names.length]!
          const text = `${JSON.stringify(object).slice(0, -1)},"${escape(name, mask)}":0}`
          expect(JSON.parse(text)[name]).toBe(0)
          expect(expectMalformed(text).details).toEqual({ member: name })
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('parseStrictJsonObject: duplicates at any depth (the member-count fast path)', () => {
  // A duplicate placed inside arrays and objects nested around other members, with strings holding
  // colons, quotes, braces and backslashes: refused with its name, and the same text without the
  // duplicate accepted.
  it('property: a nested repeated member is refused, the text without it accepted', () => {
    fc.assert(
      fc.property(
        fc.dictionary(hostileName(), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }),
        fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
        fc.array(fc.constantFrom('a', 'o'), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.string(),
        (object, siblings, path, pick, noise) => {
          const names = Object.keys(object)
          const name = names[pick % names.length]!
          const wrap = (inner: string) =>
            path.reduce((text, kind, i) => (kind === 'a' ? `[${siblings.map((v) => JSON.stringify(v)).join(',')}${siblings.length ? ',' : ''}${text}]` : `{${JSON.stringify(`${noise}:${i}`)}:${text}}`), inner)
          const body = JSON.stringify(object)
          const clean = `{"n":${JSON.stringify(noise)},"v":${wrap(body)}}`
          const dup = `{"n":${JSON.stringify(noise)},"v":${wrap(`${body.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(noise)}}`)}}`
          expect(parseStrictJsonObject(clean, { maxDepth: 64 })).toEqual(JSON.parse(clean))
          expect(expectMalformed(dup, { maxDepth: 64 }).details).toEqual({ member: name })
        },
      ),
      { numRuns: 500 },
    )
  })

  it('refuses a duplicate before a too-deep container, as the exact walk meets them', () => {
    expect(expectMalformed('{"a":1,"a":2,"b":[[[[[]]]]]}', { maxDepth: 3 }).details).toEqual({ member: 'a' })
    expect(expectMalformed('{"b":[[[[[]]]]],"a":1,"a":2}', { maxDepth: 3 }).message).toMatch(/nested deeper/)
  })
})

describe('parseStrictJson (any JSON value)', () => {
  it('parses arrays, objects and scalars', () => {
    expect(parseStrictJson('[{"a":1},{"a":2}]')).toEqual([{ a: 1 }, { a: 2 }])
    expect(parseStrictJson('"x"')).toBe('x')
    expect(parseStrictJson('3')).toBe(3)
  })
  it.each(['[{"a":1,"a":2}]', '{"a":{"b":1,"b":2}}', '{"a":1,"\\u0061":2}', '[[[[1]]]]'])('refuses %s (duplicates, or deeper than maxDepth 3)', (text) => {
    expect(() => parseStrictJson(text, { maxDepth: 3 })).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED' }))
  })
})
