// The console's session cookie: its name, scoped to one issuer, and how a request's value is read.
import { sha256Hex } from '../domain/issue.js'

/**
 * The session cookie's name for the issuer at `baseUrl`: `agentid_console_` and 12 hex characters of
 * SHA-256 of the base URL, with the `__Host-` prefix when `secure` (Secure, Path=/, no Domain: no
 * sibling host can set it). Browsers keep cookies per host, not per port or path, so two issuers on
 * one host (different ports) under one name signed each other's operators out; each name is now its
 * issuer's own. That separates sessions, not trust: another issuer on the host can still read and
 * set this cookie (any page there can), so separate hostnames remain the real protection.
 * @example
 * consoleCookieName('https://issuer.example', true) // '__Host-agentid_console_' + 12 hex characters
 */
export function consoleCookieName(baseUrl: string, secure: boolean): string {
  const href = new URL(baseUrl).href.replace(/\/+$/, '')
  const tag = sha256Hex(href).slice(0, 12)
  return `${secure ? '__Host-' : ''}agentid_console_${tag}`
}

/** Every value of cookie `name` in a Cookie header (none from a header over 8 KiB). */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (typeof header !== 'string' || header.length > 8192) return []
  return header.split(';').map((p) => p.trim()).filter((p) => p.startsWith(`${name}=`)).map((p) => p.slice(name.length + 1))
}
