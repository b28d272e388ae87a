import { DPOP_ALGS } from '@agentid/verifier'

/** Path of the RFC 9728 document: `/.well-known/oauth-protected-resource` + the path of `resource` (§3.1). */
export function metadataPathFor(resource: URL): string {
  const path = resource.pathname === '/' ? '' : resource.pathname.replace(/\/$/, '')
  return `/.well-known/oauth-protected-resource${path}`
}

/** The RFC 9728 OAuth Protected Resource Metadata of a guarded MCP endpoint. */
export function protectedResourceMetadata(resource: string, authorizationServers: readonly string[]): Record<string, unknown> {
  return {
    resource,
    authorization_servers: [...authorizationServers],
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    dpop_bound_access_tokens_required: true,
  }
}
