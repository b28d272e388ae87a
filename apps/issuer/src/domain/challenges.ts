// Single-use challenges for proofs of possession, and the periodic purge of spent nonces and challenges.
import { randomBytes } from 'node:crypto'
import type { ServiceDeps } from './deps.js'
import { iso } from './views.js'

/** A single-use nonce for a proof of possession, valid `challengeTtlSec`. */
export async function createChallenge(d: Pick<ServiceDeps, 'storage' | 'now' | 'challengeTtl'>): Promise<{ nonce: string; expiresAt: string }> {
  const nonce = randomBytes(24).toString('base64url')
  const exp = d.now() + d.challengeTtl
  await d.storage.challenges.insert(nonce, exp)
  return { nonce, expiresAt: iso(exp) }
}

/** Deletes proof nonces and challenges expired more than 5 minutes ago (the service's minute timer). */
export function purgeExpired(d: Pick<ServiceDeps, 'storage' | 'now'>): void {
  const now = d.now()
  d.storage.transaction(async (tx) => {
    await tx.nonces.purge(now - 300)
    await tx.challenges.purge(now - 300)
  }).catch(() => {
    // A busy database is retried at the next tick; expired rows are harmless meanwhile.
  })
}
