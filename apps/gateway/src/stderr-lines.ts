// Splits an upstream's stderr into lines for the log with bounded memory: readline would buffer a
// line that never ends (a stdio upstream writing without newlines) without limit.
import type { Readable } from 'node:stream'

/** Longest line kept whole (characters); a longer one is passed on once, marked cut, and the rest dropped up to its newline. */
export const MAX_STDERR_LINE = 64 * 1024

/**
 * Calls `onLine(text, cut)` for each line of `input`. A line longer than `maxLine` is handed on at that
 * length with `cut: true` (redact it before shortening it further) and the rest of it is discarded, so the
 * buffer never holds more than `maxLine` characters.
 */
export function onStderrLines(input: Readable, onLine: (line: string, cut: boolean) => void, maxLine = MAX_STDERR_LINE): void {
  let buffer = ''
  let dropping = false
  input.setEncoding('utf8')
  input.on('data', (chunk: string) => {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf('\n', start)
      const piece = chunk.slice(start, nl === -1 ? undefined : nl)
      if (!dropping) {
        buffer += piece
        if (buffer.length > maxLine) {
          onLine(buffer.slice(0, maxLine), true)
          buffer = ''
          dropping = nl === -1
        }
      }
      if (nl === -1) break
      if (!dropping && buffer !== '') onLine(buffer.replace(/\r$/, ''), false)
      buffer = ''
      dropping = false
      start = nl + 1
    }
  })
  input.on('end', () => {
    if (!dropping && buffer !== '') onLine(buffer, false)
    buffer = ''
  })
}
