import type { VerifiedRequest, VerifyRequestOptions } from '../request.js'
import type { Verifier } from '../verifier.js'
import { dpopChallenge } from './challenge.js'
import { lineageRefusal, verifyHttpLineage, type AdapterLineageOptions } from './lineage.js'
import type { VerifiedLineage } from '../lineage.js'

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

/**
 * Verifies a fetch-API `Request` and its lineage (`Agentid-Lineage`, `Agentid-Credentials`): first the
 * DPoP-bound token and proof as {@link verifyFetchRequest}, then the lineage for this service,
 * `METHOD /path` and the body (read from a clone). Throws VerificationError; answer it with
 * `lineageErrorResponse(error) ?? dpopErrorResponse(error)`.
 * @example
 * const { request: verified, lineage } = await verifyFetchLineage(verifier, request, { audience: 'https://pay.example' }, { self: myDid })
 */
export async function verifyFetchLineage(
  verifier: Verifier,
  request: Request,
  options?: VerifyRequestOptions,
  lineage: AdapterLineageOptions = {},
): Promise<{ request: VerifiedRequest; lineage: VerifiedLineage | null }> {
  const verified = await verifyFetchRequest(verifier, request, options)
  const bytes = request.body === null ? undefined : new Uint8Array(await request.clone().arrayBuffer())
  try {
    return { request: verified, lineage: await verifyHttpLineage(verifier, { method: request.method, url: request.url, headers: request.headers, body: bytes }, { ...lineage, defaultAudience: options?.audience ?? verified.audience, caller: verified.agent, user: verified.user }) }
  } catch (error) {
    if (error instanceof Error) Object.defineProperty(error, LINEAGE_STAGE, { value: true })
    throw error
  }
}

const LINEAGE_STAGE = Symbol.for('agentid.lineage-stage')

/** The 401/403 `Response` for a lineage `verifyFetchLineage` refused, or undefined for any other error (then try `dpopErrorResponse`). */
export function lineageErrorResponse(error: unknown): Response | undefined {
  if (!(error instanceof Error) || !(LINEAGE_STAGE in error)) return undefined
  const refusal = lineageRefusal(error)
  if (!refusal) return undefined
  return new Response(JSON.stringify(refusal.body), { status: refusal.status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } })
}
