import { invalid, isRecord, only } from '../domain/input.js'

function proofOf(body: Record<string, unknown>): string {
  if (typeof body.proof !== 'string' || body.proof.length === 0 || body.proof.length > 8192) invalid('proof', 'a proof of possession (compact JWT, purpose svid) is required')
  return body.proof
}

function lifetime(value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) invalid('lifetimeSec', `must be an integer from ${min} to ${max}`)
  return value
}

/** Validates the body of `POST /v1/agents/:did/svids/x509`: `{ proof, lifetimeSec? }` (60 to `max` s). */
export function parseX509SvidRequest(body: unknown, max: number): { proof: string; lifetimeSec: number | undefined } {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['proof', 'lifetimeSec'])
  return { proof: proofOf(body), lifetimeSec: lifetime(body.lifetimeSec, 60, max) }
}

/**
 * Validates the body of `POST /v1/agents/:did/svids/jwt`: `{ proof, audience, lifetimeSec? }`, where
 * `audience` is one string or a list of 1 to 8 distinct strings (each 1 to 512 characters, no control
 * characters or spaces) and `lifetimeSec` 10 to `max` s.
 */
export function parseJwtSvidRequest(body: unknown, max: number): { proof: string; audience: string[]; lifetimeSec: number | undefined } {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['proof', 'audience', 'lifetimeSec'])
  const list = typeof body.audience === 'string' ? [body.audience] : body.audience
  if (!Array.isArray(list) || list.length === 0 || list.length > 8) invalid('audience', 'is required: a string or a list of 1 to 8 strings')
  const seen = new Set<string>()
  for (const a of list) {
    if (typeof a !== 'string' || a.length === 0 || a.length > 512 || /[\s\u0000-\u001f\u007f-\u009f]/.test(a)) invalid('audience', 'each audience is 1 to 512 characters without spaces or control characters')
    if (seen.has(a)) invalid('audience', 'is listed twice')
    seen.add(a)
  }
  return { proof: proofOf(body), audience: [...seen], lifetimeSec: lifetime(body.lifetimeSec, 10, max) }
}
