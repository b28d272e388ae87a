// Pre-signed credentials, one per line, read in small chunks: a verify-only process then holds no
// signing keys, signs nothing and keeps only the tokens it is working on, as a service would.
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs'
import { keyFromLabel, nthCredential } from './tokens.mjs'

/** Writes `dids.length` credentials (the i-th for dids[i]) to `file`, one compact JWT per line. */
export function writeTokens(file, dids, now) {
  const issuer = keyFromLabel('issuer')
  writeFileSync(file, dids.map((_, i) => nthCredential(issuer, dids, i, now)).join('\n') + '\n')
}

/** Yields the tokens of `file` (at most `count`), reading 64 KiB at a time. */
export function* readTokens(file, count) {
  const fd = openSync(file, 'r')
  const chunk = Buffer.alloc(64 * 1024)
  let rest = ''
  let n = 0
  try {
    for (;;) {
      const read = readSync(fd, chunk, 0, chunk.length, null)
      if (read === 0) break
      const lines = (rest + chunk.toString('latin1', 0, read)).split('\n')
      rest = lines.pop()
      for (const line of lines) {
        if (!line) continue
        if (n++ >= count) return
        yield line
      }
    }
    if (rest && n < count) yield rest
  } finally {
    closeSync(fd)
  }
}
