import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AgentIdError } from '@agentid/core'
import { expect } from 'vitest'

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'agentid-issuer-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** The AgentIdError `fn` throws (or its promise rejects with), after checking its code. */
export async function expectAgentIdError(fn: () => unknown, code: string, reason?: string): Promise<AgentIdError> {
  let error: unknown
  try {
    await fn()
  } catch (e) {
    error = e
  }
  expect(error, 'expected an AgentIdError').toBeInstanceOf(AgentIdError)
  const err = error as AgentIdError
  expect(err.code).toBe(code)
  if (reason !== undefined) expect(err.details.reason).toBe(reason)
  return err
}
