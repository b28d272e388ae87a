import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { onStderrLines } from '../src/stderr-lines.js'

function collect(maxLine: number): { input: PassThrough; lines: [string, boolean][] } {
  const input = new PassThrough()
  const lines: [string, boolean][] = []
  onStderrLines(input, (line, cut) => lines.push([line, cut]), maxLine)
  return { input, lines }
}

const drain = () => new Promise((r) => setImmediate(r))

describe('onStderrLines', () => {
  it('splits lines across chunks, drops empty lines and a trailing CR, flushes the last line at the end', async () => {
    const { input, lines } = collect(100)
    input.write('one\ntw')
    input.write('o\r\n\nthree')
    await drain()
    expect(lines).toEqual([['one', false], ['two', false]])
    input.end()
    await drain()
    expect(lines).toEqual([['one', false], ['two', false], ['three', false]])
  })

  it('a line that never ends is passed on once, cut at the bound, and the rest of it dropped up to its newline', async () => {
    const { input, lines } = collect(10)
    for (let i = 0; i < 1000; i++) input.write('x'.repeat(100)) // 100,000 characters, no newline
    await drain()
    expect(lines).toEqual([['x'.repeat(10), true]])
    input.write('yyy\nnext\n')
    await drain()
    expect(lines).toEqual([['x'.repeat(10), true], ['next', false]])
  })

  it('a long line ending in the same chunk is cut and the following line kept', async () => {
    const { input, lines } = collect(5)
    input.write('abcdefghij\nok\n')
    await drain()
    expect(lines).toEqual([['abcde', true], ['ok', false]])
  })
})
