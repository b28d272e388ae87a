// Small helpers the verifier's modules share (internal; not exported from index.ts).
import { parseStatusListIndex, StatusListError, VerificationError } from '@agentid/core'

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Freezes a result all the way down: memoized results are shared between callers. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** A credential's `statusListIndex` as a number; ERR_MALFORMED naming the spec error otherwise. */
export function statusIndexOf(statusListIndex: string): number {
  try {
    return parseStatusListIndex(statusListIndex)
  } catch (cause) {
    if (cause instanceof StatusListError) {
      throw new VerificationError('ERR_MALFORMED', 'credentialStatus.statusListIndex is invalid', { details: { statusListError: cause.statusListError } })
    }
    throw cause
  }
}
