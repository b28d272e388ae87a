import { hash, randomBytes, timingSafeEqual } from 'node:crypto'

/** Prefixes make a leaked key recognisable (secret scanners) and say what it unlocks. */
export type ApiKeyKind = 'orch' | 'admin'

/** A new random API key: `aid_<kind>_` + 32 random bytes, base64url. Shown once, stored only as a hash. */
export function newApiKey(kind: ApiKeyKind): string {
  return `aid_${kind}_${randomBytes(32).toString('base64url')}`
}

/**
 * SHA-256 (hex) of an API key. The keys are 256-bit random values, so a fast hash is enough:
 * a slow password hash guards low-entropy secrets, which these are not.
 */
export function hashApiKey(key: string): string {
  return hash('sha256', key, 'hex') // one shot: no Hash object per request
}

/** Constant-time comparison of two hex hashes. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex')
  const y = Buffer.from(b, 'hex')
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y)
}

/** True when `key` looks like one of ours (cheap filter before any lookup). */
export function isApiKeyShape(key: unknown, kind: ApiKeyKind): key is string {
  return typeof key === 'string' && key.length === `aid_${kind}_`.length + 43 && key.startsWith(`aid_${kind}_`) && /^[A-Za-z0-9_-]+$/.test(key)
}
