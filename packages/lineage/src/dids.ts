import { isDidKeySyntax } from '@agentid/core'

// DIDs found well-formed before: the check (a base58 decode) is a pure function of the string, and a
// lineage names the same few agents again and again. Bounded: emptied when full.
const WELL_FORMED_DIDS = new Set<string>()
const MAX_WELL_FORMED_DIDS = 4_096

/** True when `value` is an Ed25519 did:key (remembered: the same agents sign entry after entry). */
export function isWellFormedDid(value: unknown): value is string {
  if (typeof value === 'string' && WELL_FORMED_DIDS.has(value)) return true
  if (!isDidKeySyntax(value)) return false
  if (WELL_FORMED_DIDS.size >= MAX_WELL_FORMED_DIDS) WELL_FORMED_DIDS.clear()
  WELL_FORMED_DIDS.add(value)
  return true
}
