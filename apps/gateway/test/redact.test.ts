import { describe, expect, it } from 'vitest'
import { createLogger, createRedactor, REDACTED } from '@agentid/gateway'

describe('redactor', () => {
  it('replaces raw, JSON-escaped and URL-encoded forms; leaves other text alone', () => {
    const r = createRedactor()
    expect(r.redact('nothing registered')).toBe('nothing registered')
    r.add('s3cr"et/value')
    r.add('plain-token-1')
    expect(r.redact('a plain-token-1 b plain-token-1')).toBe(`a ${REDACTED} b ${REDACTED}`)
    expect(r.redact(JSON.stringify({ x: 'pre s3cr"et/value post' }))).not.toContain('s3cr\\"et/value')
    expect(r.redact(`?q=${encodeURIComponent('s3cr"et/value')}`)).toBe(`?q=${REDACTED}`)
    expect(r.redact('s3cr"et/valu')).toBe('s3cr"et/valu')
  })

  it('redactValue walks objects and arrays, keys included, and returns the same value when clean', () => {
    const r = createRedactor()
    r.add('hunter2-hunter2')
    const clean = { a: [1, 'x', { b: null }] }
    expect(r.redactValue(clean)).toBe(clean)
    const dirty = { content: [{ type: 'text', text: 'key=hunter2-hunter2' }], meta: { 'hunter2-hunter2': true }, n: 1 }
    const out = r.redactValue(dirty)
    expect(JSON.stringify(out)).not.toContain('hunter2-hunter2')
    expect(out.content[0]!.text).toBe(`key=${REDACTED}`)
    expect(dirty.content[0]!.text).toBe('key=hunter2-hunter2')
    // Members before and after the first change keep their order and values; inherited ones are not copied.
    const mixed = Object.assign(Object.create({ inherited: 'hunter2-hunter2' }), { a: 1, b: { c: 'x' }, d: 'hunter2-hunter2 d', 'e hunter2-hunter2': [2], f: 'y' })
    const redacted = r.redactValue(mixed)
    expect(Object.entries(redacted)).toEqual([['a', 1], ['b', { c: 'x' }], ['d', `${REDACTED} d`], [`e ${REDACTED}`, [2]], ['f', 'y']])
    expect(redacted.b).toBe(mixed.b)
    expect(Object.getPrototypeOf(redacted)).toBe(Object.prototype)
  })

  it('the logger writes pino-style JSON lines, redacted, at or above its level', () => {
    const r = createRedactor()
    r.add('tok-999999999')
    const lines: string[] = []
    const log = createLogger({ level: 'info', redactor: r, write: (l) => lines.push(l), clock: () => 1000 })
    log.debug({ x: 1 }, 'hidden')
    log.info({ upstream: 'a', err: new Error('failed with tok-999999999') }, 'upstream tok-999999999')
    expect(lines).toHaveLength(1)
    const rec = JSON.parse(lines[0]!)
    expect(rec).toMatchObject({ level: 30, time: 1000, upstream: 'a', msg: `upstream ${REDACTED}`, err: { type: 'Error', message: `failed with ${REDACTED}` } })
    expect(lines[0]).not.toContain('tok-999999999')
  })
})
