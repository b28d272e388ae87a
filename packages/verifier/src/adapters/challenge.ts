import { VerificationError } from '@agentid/core'
import { DPOP_ALGS } from '../dpop.js'

/** An HTTP answer to a refused request: status, headers (`WWW-Authenticate`, `DPoP-Nonce`), JSON body. */
export interface DpopChallenge {
  status: number
  headers: Record<string, string>
  body: { error: { code: string; message: string } }
}

/**
 * The answer to a request `verifyRequest` refused (RFC 9449 §7.1, §9): 401 with
 * `WWW-Authenticate: DPoP error="..."` (and `DPoP-Nonce` for `use_dpop_nonce`); 400 for
 * `invalid_request`. Returns undefined for anything but a VerificationError (a server fault).
 */
export function dpopChallenge(error: unknown): DpopChallenge | undefined {
  if (!(error instanceof VerificationError)) return undefined
  const details = error.details ?? {}
  const dpopError = typeof details.dpopError === 'string' ? details.dpopError : 'invalid_token'
  const headers: Record<string, string> = {
    'www-authenticate': `DPoP error="${dpopError}", algs="${DPOP_ALGS.join(' ')}"`,
    'cache-control': 'no-store',
  }
  if (dpopError === 'use_dpop_nonce' && typeof details.dpopNonce === 'string') headers['dpop-nonce'] = details.dpopNonce
  const message = dpopError === 'use_dpop_nonce' ? 'a DPoP nonce is required' : 'the request could not be authenticated'
  return { status: dpopError === 'invalid_request' ? 400 : 401, headers, body: { error: { code: error.code, message } } }
}
