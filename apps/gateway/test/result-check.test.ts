// The direct path's check of a tools/call result (checkedToolResult) against the SDK's own
// (CallToolResultSchema, as the SDK Server applies it): the same answer — the same value, members in the same
// order, or the same McpError — for every shape here, the plain text results it answers without the schema
// and everything around them.
import { describe, expect, it } from 'vitest'
import { safeParse } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import { CallToolResultSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js'
import { checkedToolResult } from '../src/forward.js'

/** What the SDK Server does with a tools/call result. */
function schemaCheck(value: Record<string, unknown>): Record<string, unknown> {
  const checked = safeParse(CallToolResultSchema, value)
  if (!checked.success) throw new McpError(ErrorCode.InvalidParams, `Invalid tools/call result: ${checked.error instanceof Error ? checked.error.message : String(checked.error)}`)
  return checked.data as Record<string, unknown>
}

function outcome(check: (v: Record<string, unknown>) => Record<string, unknown>, value: Record<string, unknown>): { ok: unknown; json?: string } | { error: unknown } {
  try {
    const ok = check(value)
    return { ok, json: JSON.stringify(ok) }
  } catch (error) {
    return { error: error instanceof McpError ? { code: error.code, message: error.message } : error }
  }
}

const nullProto = (o: object) => Object.assign(Object.create(null) as object, o)
const blocks: unknown[] = [
  { type: 'text', text: 'a' },
  { type: 'text', text: '' },
  { type: 'text', text: 'é\u0000\ud800' },
  { text: 'a', type: 'text' },
  { type: 'text', text: 1 },
  { type: 'text' },
  { type: 'text', text: 'a', extra: 1 },
  { type: 'text', text: 'a', annotations: { audience: ['user'] } },
  { type: 'text', text: 'a', _meta: {} },
  { type: 'text', text: 'a', _meta: undefined },
  { type: 'TEXT', text: 'a' },
  { type: 'image', data: 'aGk=', mimeType: 'image/png' },
  { type: 'resource_link', uri: 'file:///x', name: 'x' },
  nullProto({ type: 'text', text: 'a' }),
  JSON.parse('{"type":"text","text":"a","__proto__":{"x":1}}'),
  null,
  'text',
  [],
]
const contents: unknown[] = [[], ...blocks.map((b) => [b]), ...blocks.map((b) => [{ type: 'text', text: 'first' }, b]), {}, 'x', null, [, { type: 'text', text: 'a' }]] // eslint-disable-line no-sparse-arrays
const results: Record<string, unknown>[] = []
for (const content of contents) {
  results.push({ content })
  for (const isError of [true, false, 'yes', null, undefined]) {
    results.push({ content, isError })
    results.push({ isError, content })
  }
  results.push({ content, structuredContent: { a: 1 } })
  results.push({ content, _meta: { progressToken: 1 } })
  results.push({ _meta: {}, content })
  results.push({ content, extra: 'kept' })
  results.push({ content, isError: true, extra: 'kept' })
  results.push(nullProto({ content }) as Record<string, unknown>)
}
results.push({}, { isError: true }, { structuredContent: {} }, JSON.parse('{"content":[],"__proto__":{"isError":1}}'))

describe('checkedToolResult', () => {
  it('answers as CallToolResultSchema does, value and member order, or the same refusal', () => {
    let fast = 0
    for (const value of results) {
      const ours = outcome(checkedToolResult, value)
      const theirs = outcome(schemaCheck, value)
      if ('ok' in ours && 'ok' in theirs) {
        expect(ours.json).toBe(theirs.json)
        expect(ours.ok).toStrictEqual(theirs.ok)
        if (ours.ok === value) fast++
      } else {
        expect(ours).toEqual(theirs)
      }
    }
    // The plain text results were answered without the schema (else this test compares the schema with itself).
    expect(fast).toBeGreaterThanOrEqual(20)
  })

  it('answers a plain text result with the value itself, and a result the schema changes with the schema\'s copy', () => {
    const plain = { content: [{ type: 'text', text: 'hi' }, { type: 'text', text: 'there' }], isError: false }
    expect(checkedToolResult(plain)).toBe(plain)
    const extra = { content: [{ type: 'text', text: 'hi', extra: 1 }] }
    expect(checkedToolResult(extra)).toStrictEqual({ content: [{ type: 'text', text: 'hi' }] })
    expect(() => checkedToolResult({ content: [{ type: 'text', text: 1 }] })).toThrow(/Invalid tools\/call result/)
  })
})
