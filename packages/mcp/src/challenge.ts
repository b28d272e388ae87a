import { AgentIdError, VerificationError } from '@agentid/core'
import { DPOP_ALGS, dpopChallenge } from '@agentid/verifier'

/**
 * JSON-RPC error code of an MCP request the policy denied (answered for its id, HTTP 200; the handler never runs).
 * @example
 * try { await client.callTool({ name: 'admin', arguments: {} }) } catch (e) { if (e instanceof McpError && e.code === MCP_FORBIDDEN) … }
 */
export const MCP_FORBIDDEN = -32003

/** What `challenge` answers: an HTTP status, headers, and a JSON-RPC error body (`error.data.code` is the agentid code). */
export interface GuardChallenge {
  status: number
  headers: Record<string, string>
  body: { jsonrpc: '2.0'; id: null; error: { code: number; message: string; data: { code: string } } }
}

function rpcBody(code: number, message: string, agentidCode: string): GuardChallenge['body'] {
  return { jsonrpc: '2.0', id: null, error: { code, message, data: { code: agentidCode } } }
}

const STATUS_BY_CODE: Partial<Record<string, { status: number; rpc: number; message: string }>> = {
  ERR_FORBIDDEN: { status: 403, rpc: MCP_FORBIDDEN, message: 'Forbidden' },
  ERR_NOT_FOUND: { status: 404, rpc: -32001, message: 'Session not found' },
  ERR_INVALID_INPUT: { status: 400, rpc: -32600, message: 'Invalid Request' },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, rpc: -32600, message: 'Request body too large' },
  ERR_UNAVAILABLE: { status: 503, rpc: -32000, message: 'Service unavailable' },
}

/**
 * The answer to a refused request. VerificationError: 401 with `WWW-Authenticate: DPoP error="…",
 * algs="…", resource_metadata="<metadataUrl>"` (no `error` when the request carried no credentials,
 * RFC 6750 §3.1), `DPoP-Nonce` for `use_dpop_nonce`, 400 for `invalid_request`, 503 when the status list
 * is unavailable. AgentIdError ERR_FORBIDDEN: 403 `error="insufficient_scope"`; ERR_NOT_FOUND: 404;
 * ERR_INVALID_INPUT: 400; ERR_PAYLOAD_TOO_LARGE: 413; ERR_UNAVAILABLE: 503. Anything else: 500 ERR_INTERNAL.
 */
export function guardChallenge(error: unknown, metadataUrl: string): GuardChallenge {
  const resourceMetadata = `resource_metadata="${metadataUrl}"`
  if (error instanceof VerificationError) {
    if (error.code === 'ERR_STATUS_UNAVAILABLE') {
      return { status: 503, headers: { 'cache-control': 'no-store', 'retry-after': '5' }, body: rpcBody(-32000, 'credential status unavailable', error.code) }
    }
    const base = dpopChallenge(error)!
    const none = error.details?.credentials === 'none'
    const headers = { ...base.headers }
    headers['www-authenticate'] = none
      ? `DPoP algs="${DPOP_ALGS.join(' ')}", ${resourceMetadata}`
      : `${base.headers['www-authenticate']}, ${resourceMetadata}`
    return { status: base.status, headers, body: rpcBody(-32001, base.body.error.message, error.code) }
  }
  if (error instanceof AgentIdError) {
    const entry = STATUS_BY_CODE[error.code]
    if (entry) {
      const headers: Record<string, string> = { 'cache-control': 'no-store' }
      if (entry.status === 403) headers['www-authenticate'] = `DPoP error="insufficient_scope", algs="${DPOP_ALGS.join(' ')}", ${resourceMetadata}`
      return { status: entry.status, headers, body: rpcBody(entry.rpc, entry.message, error.code) }
    }
  }
  return { status: 500, headers: { 'cache-control': 'no-store' }, body: rpcBody(-32603, 'Internal error', 'ERR_INTERNAL') }
}
