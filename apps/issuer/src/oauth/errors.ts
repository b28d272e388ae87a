// OAuth 2.0 errors of the token endpoint (RFC 6749 §5.2, RFC 9449, RFC 9396, RFC 8707): a JSON body
// `{ error, error_description }`, status 400 (401 for invalid_client), never the agentid error shape.

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unsupported_grant_type'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'invalid_authorization_details'
  | 'invalid_target'
  | 'server_error'
  | 'temporarily_unavailable'

export class OAuthError extends Error {
  readonly status: number
  constructor(readonly error: OAuthErrorCode, readonly description: string, readonly headers: Record<string, string> = {}) {
    super(description)
    this.name = 'OAuthError'
    this.status = error === 'invalid_client' ? 401 : error === 'server_error' ? 500 : error === 'temporarily_unavailable' ? 503 : 400
  }

  get body(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.description }
  }
}

export function oauthFail(error: OAuthErrorCode, description: string): never {
  throw new OAuthError(error, description)
}
