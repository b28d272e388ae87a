import {
  AgentIdError,
  decodeJwt,
  isNumericDate,
  readBodyCapped,
  STATUS_LIST_CREDENTIAL,
  StatusList,
  StatusListError,
  VerificationError,
} from '@agentid/core'
import type { KeyResolver } from './keys.js'
import { BoundedCache } from './lru.js'
import { isRecord } from './util.js'

/**
 * A fetch as the WHATWG standard defines it (globalThis.fetch, undici, or a test double). The body is
 * read as a stream (`body`) with a byte cap, the fetch aborted past it; a double without `body` is read
 * with `text()` and held to the same cap.
 */
export type FetchLike = (url: string, init?: { signal?: AbortSignal; headers?: Record<string, string> }) => Promise<{
  ok: boolean
  status: number
  text(): Promise<string>
  body?: ReadableStream<Uint8Array> | null
  headers?: { get(name: string): string | null }
}>

export interface StatusOptions {
  fetch: FetchLike
  ttlMs: number
  graceMs: number
  fetchTimeoutMs: number
  /** Cap of the status-list JWT's size, checked before parsing. */
  maxListJwtBytes: number
  /** Cap of a decompressed list (gzip bombs). */
  maxListBytes: number
  clockSkewSec: number
  now: () => number
}

interface CachedList {
  list: StatusList
  issuer: string
  fetchedAt: number
  /** `exp` of the status-list credential in ms, or Infinity. */
  expiresAt: number
}

const ACCEPTED_TYP = new Set([undefined, 'JWT', 'vc+jwt', 'vc+ld+json+jwt'])

function unavailable(url: string, reason: string, cause?: unknown): never {
  throw new VerificationError('ERR_STATUS_UNAVAILABLE', `status list unavailable: ${reason}`, { details: { statusListCredential: url, reason }, cause })
}

/** True when `issuer` is the expected issuer or one of the expected set. */
function accepts(expected: string | ReadonlySet<string>, issuer: string): boolean {
  return typeof expected === 'string' ? expected === issuer : expected.has(issuer)
}


/**
 * An http(s) URL without credentials or fragment, parsed as fetch parses it (WHATWG: dot segments,
 * also `%2e%2e`, resolved; case and default ports normalised), or null. Trust is decided on that form:
 * the URL that would be requested, not the string as written.
 */
function httpUrl(value: unknown): URL | null {
  if (typeof value !== 'string' || value.length > 2048) return null
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return null
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash !== '' || value.includes('#') || url.username !== '' || url.password !== '') return null
  return url
}

/**
 * Which status-list URLs a delegation link may name. A link is signed by an agent, so its
 * `credentialStatus.statusListCredential` is a URL chosen by a party the verifier does not trust:
 * fetching it would let any agent make every verifier request any address (SSRF, e.g.
 * `http://169.254.169.254/...`). Only URLs under a trusted prefix are fetched: the explicit
 * `trustedStatusLists` prefixes, and the status-list directories learned from credentials a trusted
 * issuer signed (every verified identity credential, every delegation link signed by a trusted
 * issuer): `https://issuer.example/v1/status-lists/7` teaches `https://issuer.example/v1/status-lists/`.
 */
export class StatusListTrust {
  private readonly explicit: readonly string[]
  private readonly learned = new BoundedCache<string, true>(256)
  // Answers already given, so that a link seen again costs a lookup, not URL parsing (a fifth of a
  // warm depth-8 chain): URLs allowed since `learned` last gained a directory (which may evict one:
  // then it is emptied).
  private readonly allowed = new BoundedCache<string, true>(1024)

  /** `prefixes`: absolute http(s) URLs; one ending in `/` is a prefix, any other an exact URL. */
  constructor(prefixes: readonly string[] = []) {
    const parsed = Array.isArray(prefixes) ? prefixes.map(httpUrl) : [null]
    if (!parsed.every((u) => u !== null && u.search === '')) {
      throw new TypeError('createVerifier: trustedStatusLists must be a list of http(s) URLs without credentials, query or fragment')
    }
    this.explicit = Object.freeze(parsed.map((u) => u!.href))
  }

  // The URL learned last and its directory: every known credential's status check learns its list
  // again, nearly always the same one; this skips parsing it while its directory is still held.
  private lastUrl: string | undefined
  private lastDirectory = ''

  /** Learns the directory of a status-list URL that a trusted issuer signed. */
  learn(statusListCredential: string): void {
    if (statusListCredential === this.lastUrl && this.learned.get(this.lastDirectory) !== undefined) return
    const url = httpUrl(statusListCredential)
    if (url === null) return
    const directory = url.origin + url.pathname.slice(0, url.pathname.lastIndexOf('/') + 1)
    if (this.learned.get(directory) === undefined) {
      this.learned.set(directory, true)
      this.allowed.clear()
    }
    this.lastUrl = statusListCredential
    this.lastDirectory = directory
  }

  /** True when `statusListCredential` may be fetched for a link signed by an untrusted party. */
  allows(statusListCredential: string): boolean {
    if (this.allowed.get(statusListCredential) !== undefined) return true
    const url = httpUrl(statusListCredential)
    if (url === null) return false
    const href = url.href
    let ok = false
    for (const p of this.explicit) if (p.endsWith('/') ? href.startsWith(p) : href === p) ok = true
    // Every directory of the URL's path, deepest first: /v1/status-lists/, /v1/, /.
    for (let end = url.pathname.lastIndexOf('/'); !ok && end >= 0; end = end === 0 ? -1 : url.pathname.lastIndexOf('/', end - 1)) {
      if (this.learned.get(url.origin + url.pathname.slice(0, end + 1)) !== undefined) ok = true
    }
    if (ok) this.allowed.set(statusListCredential, true)
    return ok
  }
}

/**
 * Fetches, verifies (signed by the credential's own issuer), decodes and caches Bitstring Status
 * Lists. A list is reused for `ttlMs`; when a refresh fails, a list fetched less than
 * `ttlMs + graceMs` ago is still used (a short outage of the issuer does not stop every service),
 * and past that the answer is ERR_STATUS_UNAVAILABLE: fail closed.
 */
export class StatusLists {
  private readonly cache = new BoundedCache<string, CachedList>(1024)
  private readonly inflight = new Map<string, Promise<CachedList>>()
  private changes = 0

  constructor(
    private readonly options: StatusOptions,
    private readonly keys: KeyResolver,
  ) {}

  /**
   * The status value of `index` in the list at `url`, issued by `issuer` (or, given a set, by any
   * of those issuers: delegation links are signed by agents, their lists by a trusted issuer).
   */
  async status(url: string, issuer: string | ReadonlySet<string>, index: number): Promise<number> {
    const cached = this.cache.get(url)
    const now = this.options.now()
    let entry: CachedList
    if (cached && now < this.freshUntilOf(cached)) {
      entry = cached
    } else {
      try {
        entry = await this.refresh(url, issuer)
      } catch (error) {
        if (cached && accepts(issuer, cached.issuer) && now - cached.fetchedAt < this.options.ttlMs + this.options.graceMs && now < cached.expiresAt) {
          entry = cached
        } else {
          throw error
        }
      }
    }
    return this.valueIn(entry, url, issuer, index)
  }

  /**
   * {@link status} without a promise when the list is cached and fresh (fetched less than `ttlMs`
   * ago, not expired); undefined when it must be fetched (then call `status`). Throws as `status` does.
   */
  /**
   * Counts the changes of the cache (a list added, replaced, evicted or dropped). While it stays the
   * same, what {@link statusSync} answers for a URL changes only with time, at {@link freshUntil}.
   */
  get version(): number {
    return this.changes
  }

  /** Until when (ms, exclusive) {@link statusSync} answers from the list cached for `url`; -Infinity when none is. */
  freshUntil(url: string): number {
    const cached = this.cache.get(url)
    return cached === undefined ? Number.NEGATIVE_INFINITY : this.freshUntilOf(cached)
  }

  /** The one rule of a cached list's freshness: fetched less than `ttlMs` ago and not expired. */
  private freshUntilOf(entry: CachedList): number {
    return Math.min(entry.fetchedAt + this.options.ttlMs, entry.expiresAt)
  }

  statusSync(url: string, issuer: string | ReadonlySet<string>, index: number): number | undefined {
    const cached = this.cache.get(url)
    if (cached === undefined) return undefined
    const now = this.options.now()
    if (!(now < this.freshUntilOf(cached))) return undefined
    return this.valueIn(cached, url, issuer, index)
  }

  private valueIn(entry: CachedList, url: string, issuer: string | ReadonlySet<string>, index: number): number {
    if (!accepts(issuer, entry.issuer)) unavailable(url, 'the status list belongs to another issuer')
    try {
      return entry.list.get(index)
    } catch (cause) {
      if (cause instanceof StatusListError) {
        throw new VerificationError('ERR_MALFORMED', 'credentialStatus.statusListIndex is past the end of the status list', {
          details: { statusListError: cause.statusListError, statusListCredential: url },
        })
      }
      throw cause
    }
  }

  /**
   * The list at `url` fetched now (never from the cache) and verified as {@link status} verifies it:
   * signed by `issuer`, unexpired, a revocation BitstringStatusList, within the byte caps.
   */
  async fetchNow(url: string, issuer: string): Promise<StatusList> {
    return (await this.refresh(url, issuer)).list
  }

  /** Drops every cached list (tests, or an operator forcing a refresh). */
  clear(): void {
    this.cache.clear()
    this.changes++
  }

  private refresh(url: string, issuer: string | ReadonlySet<string>): Promise<CachedList> {
    const key = `${typeof issuer === 'string' ? issuer : [...issuer].sort().join(',')} ${url}`
    let pending = this.inflight.get(key)
    if (!pending) {
      pending = this.load(url, issuer).finally(() => this.inflight.delete(key))
      this.inflight.set(key, pending)
    }
    return pending
  }

  private async load(url: string, issuers: string | ReadonlySet<string>): Promise<CachedList> {
    const { fetch, fetchTimeoutMs, maxListBytes, maxListJwtBytes } = this.options
    let body: string
    // One signal for the request and the body: the timeout, or the cap (abort closes the connection).
    const capped = new AbortController()
    const signal = AbortSignal.any([AbortSignal.timeout(fetchTimeoutMs), capped.signal])
    try {
      const response = await fetch(url, { signal, headers: { accept: 'application/vc+jwt, application/jwt' } })
      if (!response.ok) {
        await response.body?.cancel().catch(() => undefined)
        unavailable(url, `HTTP ${response.status}`)
      }
      // Streamed and cut at the cap (+ a little for surrounding whitespace): a 100 MB answer is never read whole.
      body = (await readBodyCapped(response, maxListJwtBytes + 1024, signal)).toString('utf8').trim()
      if (body.length > maxListJwtBytes) unavailable(url, 'status list credential is too large')
    } catch (cause) {
      if (cause instanceof AgentIdError && cause.code === 'ERR_PAYLOAD_TOO_LARGE') {
        capped.abort(cause)
        return unavailable(url, 'status list credential is too large', cause)
      }
      if (cause instanceof VerificationError) throw cause
      return unavailable(url, 'fetch failed', cause)
    }
    let jwt
    try {
      jwt = decodeJwt(body, maxListJwtBytes)
    } catch (cause) {
      return unavailable(url, 'not a compact EdDSA JWT', cause)
    }
    if (!ACCEPTED_TYP.has(jwt.header.typ)) unavailable(url, 'unexpected typ')
    const p = jwt.payload
    if (typeof p.iss !== 'string' || !accepts(issuers, p.iss)) unavailable(url, 'signed by another issuer')
    const issuer = p.iss
    try {
      const keys = await this.keys.keysFor(issuer, 'assertionMethod', jwt.header.kid)
      let verified = false
      for (const key of keys) {
        try {
          await key.verify(jwt, false)
          verified = true
          break
        } catch {
          // try the next assertion key
        }
      }
      if (!verified) unavailable(url, 'signature does not verify')
    } catch (cause) {
      if (cause instanceof VerificationError && cause.code === 'ERR_STATUS_UNAVAILABLE') throw cause
      return unavailable(url, 'issuer key not usable', cause)
    }
    const nowSec = this.options.now() / 1000
    const skew = this.options.clockSkewSec
    if (p.exp !== undefined && (!isNumericDate(p.exp) || p.exp + skew <= nowSec)) unavailable(url, 'status list credential has expired')
    if (p.nbf !== undefined && (!isNumericDate(p.nbf) || p.nbf - skew > nowSec)) unavailable(url, 'status list credential is not yet valid')
    if (p.iat !== undefined && (!isNumericDate(p.iat) || p.iat - skew > nowSec)) unavailable(url, 'status list credential is issued in the future')
    if (p.jti !== undefined && p.jti !== url) unavailable(url, 'status list credential id is not its URL')
    const vc = p.vc
    if (!isRecord(vc) || !Array.isArray(vc.type) || !vc.type.includes(STATUS_LIST_CREDENTIAL)) unavailable(url, 'not a BitstringStatusListCredential')
    if (vc.id !== undefined && vc.id !== url) unavailable(url, 'status list credential id is not its URL')
    const subject = vc.credentialSubject
    if (!isRecord(subject) || subject.type !== 'BitstringStatusList') unavailable(url, 'credentialSubject is not a BitstringStatusList')
    if (subject.statusPurpose !== 'revocation') unavailable(url, 'status list purpose is not revocation')
    let list: StatusList
    try {
      list = StatusList.decode(subject.encodedList, { maxBytes: maxListBytes })
    } catch (cause) {
      return unavailable(url, 'encodedList cannot be decoded', cause)
    }
    const entry: CachedList = {
      list,
      issuer,
      fetchedAt: this.options.now(),
      expiresAt: typeof p.exp === 'number' ? (p.exp + skew) * 1000 : Infinity,
    }
    this.cache.set(url, entry)
    this.changes++
    return entry
  }
}
