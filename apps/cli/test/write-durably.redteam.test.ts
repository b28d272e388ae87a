// Red team: the witness's state (and the auditor's) survives a crash right after it answers. C2SP
// tlog-witness: the witness MUST persist the new checkpoint before responding; a rename is on disk only
// once its directory is synced, else after a power loss the witness is back at an older size and
// cosigns, from there, a fork of the checkpoint it already cosigned.
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'

const calls: string[] = []
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  return {
    ...fs,
    renameSync: (from: string, to: string) => {
      calls.push('rename')
      return fs.renameSync(from, to)
    },
    fsyncSync: (fd: number) => {
      calls.push(fs.fstatSync(fd).isDirectory() ? 'fsync dir' : 'fsync file')
      return fs.fsyncSync(fd)
    },
  }
})

describe('writeFileDurably', () => {
  it('syncs the file, renames it into place, then syncs the directory', async () => {
    const { writeFileDurably } = await import('../src/commands/tlog.js')
    const file = join(mkdtempSync(join(tmpdir(), 'agentid-durable-')), 'witness-state.json')
    writeFileDurably(file, '{"a":1}')
    writeFileDurably(file, '{"a":2}')
    expect(readFileSync(file, 'utf8')).toBe('{"a":2}')
    expect(calls).toEqual(['fsync file', 'rename', 'fsync dir', 'fsync file', 'rename', 'fsync dir'])
  })
})
