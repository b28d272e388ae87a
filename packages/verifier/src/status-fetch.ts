// One status list fetched and verified on demand, for auditors (`agentid audit verify` compares every
// bit with the issuer log): the same checks as a verifier's revocation check, without its cache.
import type { StatusList } from '@agentid/core'
import { defaultDidResolver, KeyResolver, type DidResolver } from './keys.js'
import { StatusLists, type FetchLike } from './status.js'

export interface FetchStatusListOptions {
  /** The DID that must have signed the list (the issuer's). */
  issuer: string
  /** Resolves `issuer` (default: did:key only, offline). */
  resolver?: DidResolver
  fetch?: FetchLike
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number
  clockSkewSec?: number
  fetchTimeoutMs?: number
  /** Cap of the list credential as served (1 MiB). */
  maxListJwtBytes?: number
  /** Cap of the decompressed list (16 MiB). */
  maxListBytes?: number
}

/**
 * Fetches the Bitstring Status List credential at `url` and verifies it as a verifier's revocation
 * check does: a compact JWT signed by an assertion key of `options.issuer`, its `jti` the URL, not
 * expired, a `revocation` BitstringStatusList whose `encodedList` decodes within the caps. Anything
 * else is a VerificationError `ERR_STATUS_UNAVAILABLE` whose `details.reason` says why.
 * @example
 * const list = await fetchStatusList('https://issuer.example/v1/status-lists/1', { issuer: 'did:key:z6Mk...' })
 * list.get(42) // 1: revoked
 */
export function fetchStatusList(url: string, options: FetchStatusListOptions): Promise<StatusList> {
  if (typeof options?.issuer !== 'string' || !options.issuer.startsWith('did:')) throw new TypeError('fetchStatusList: issuer must be a DID')
  const fetch = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined)
  if (typeof fetch !== 'function') throw new TypeError('fetchStatusList: no fetch available; pass options.fetch')
  const now = options.clock ?? Date.now
  const keys = new KeyResolver(options.resolver ?? defaultDidResolver(), 1, 3_600_000, now, options.resolver === undefined)
  const lists = new StatusLists(
    {
      fetch,
      ttlMs: 0,
      graceMs: 0,
      fetchTimeoutMs: options.fetchTimeoutMs ?? 30_000,
      maxListJwtBytes: options.maxListJwtBytes ?? 1024 * 1024,
      maxListBytes: options.maxListBytes ?? 16 * 1024 * 1024,
      clockSkewSec: options.clockSkewSec ?? 60,
      now,
    },
    keys,
  )
  return lists.fetchNow(url, options.issuer)
}
