// Pre-signed credentials, one per line, read in small chunks: a verify-only process then holds no
// signing keys, signs nothing and keeps only the tokens it is working on, as a service would.
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs'
import { keyFromLabel, nthCredential } from './tokens.mjs'

/** Writes `dids.length` credentials (the i-th for dids[i]) to `file`, one compact JWT per line. */
export function writeTokens(file, dids, now) {
  const issuer = keyFromLabel('issuer')
  writeFileSync(file, dids.map((_, i) => nthCredential(issuer, dids, i, now)).join('\n') + '\n')
}

const NEWLINE = 0x0a

/** The byte offset of line `line` (0-based) of `file`: where readTokens starts to yield that line. */
export function lineOffset(file, line) {
  const fd = openSync(file, 'r')
  const chunk = Buffer.alloc(64 * 1024)
  let base = 0
  let n = 0
  try {
    for (;;) {
      if (n === line) return base
      const read = readSync(fd, chunk, 0, chunk.length, base)
      if (read === 0) throw new Error(`${file} has fewer than ${line} lines`)
      let at = 0
      let nl
      while ((nl = chunk.indexOf(NEWLINE, at)) !== -1 && nl < read) {
        at = nl + 1
        if (++n === line) return base + at
      }
      base += read
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Yields the tokens of `file` (at most `count`) from byte `position` on (see lineOffset), reading
 * 64 KiB at a time into one Buffer (outside the JS heap). Each token is its own string, as a service receives it from a request: not a slice
 * of a 64 KiB chunk string, which kept that whole chunk alive (and copied by every young-generation
 * collection while it was current, or while a kept token pinned it).
 */
export function* readTokens(file, count, position = 0) {
  const fd = openSync(file, 'r')
  const chunk = Buffer.alloc(64 * 1024)
  let start = 0 // first byte of the current line in `chunk`
  let end = 0 // bytes held in `chunk`
  let n = 0
  try {
    for (;;) {
      const read = readSync(fd, chunk, end, chunk.length - end, position)
      position += read
      end += read
      let nl
      while ((nl = chunk.indexOf(NEWLINE, start)) !== -1 && nl < end) {
        if (nl > start) {
          if (n++ >= count) return
          yield chunk.toString('latin1', start, nl)
        }
        start = nl + 1
      }
      if (read === 0) {
        if (end > start && n < count) yield chunk.toString('latin1', start, end)
        return
      }
      // Move the unfinished line to the front; a line longer than the buffer is an error.
      if (start === 0 && end === chunk.length) throw new Error(`a token in ${file} is longer than ${chunk.length} bytes`)
      chunk.copy(chunk, 0, start, end)
      end -= start
      start = 0
    }
  } finally {
    closeSync(fd)
  }
}
