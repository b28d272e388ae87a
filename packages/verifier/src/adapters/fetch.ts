import type { VerifiedRequest, VerifyRequestOptions } from '../request.js'
import type { Verifier } from '../verifier.js'
import { dpopChallenge } from './challenge.js'

/**
 * Verifies a fetch-API `Request` (Workers, Deno, Bun, Next.js route handlers) carrying a DPoP-bound
 * access token and its proof. Throws VerificationError; answer it with `dpopErrorResponse(error)`.
 * @example
 * try { const { agent } = await verifyFetchRequest(verifier, request) } catch (e) { return dpopErrorResponse(e) ?? new Response(null, { status: 500 }) }
 */
export function verifyFetchRequest(verifier: Verifier, request: Request, options?: VerifyRequestOptions): Promise<VerifiedRequest> {
  return verifier.verifyRequest({ method: request.method, url: request.url, headers: request.headers }, options)
}

/** The 401/400 `Response` for a refused request, or undefined when `error` is not a VerificationError. */
export function dpopErrorResponse(error: unknown): Response | undefined {
  const challenge = dpopChallenge(error)
  if (!challenge) return undefined
  return new Response(JSON.stringify(challenge.body), { status: challenge.status, headers: { ...challenge.headers, 'content-type': 'application/json' } })
}
