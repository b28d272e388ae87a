import type { IncomingMessage, ServerResponse } from 'node:http'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { Ed25519PrivateJwk, Signer } from '@agentid/core'
import type { RequestHeaders, Verifier } from '@agentid/verifier'
import type { McpApprovalOptions } from './approval.js'
import type { AuthorizationSubject, PolicyAction, PolicyDecision, PolicyEngine, PolicyResource } from '@agentid/policy'

/** Options of {@link createMcpGuard}. */
export interface McpGuardOptions {
  /** `createVerifier(...)` of @agentid/verifier; build it with a short `statusTtlMs` so revocation applies mid-session. */
  verifier: Verifier
  /** The policy engine (`loadPolicyEngine` of @agentid/policy). */
  policy: PolicyEngine
  /** The `McpServer` entity id in policies (`McpServer::"<serverId>"`, `Tool.server`). */
  serverId: string
  /**
   * This MCP endpoint's public URL (`https://tools.example/mcp`): the RFC 9728 `resource`, the audience
   * access tokens and presentations must name, and the origin DPoP proofs' `htu` must name.
   */
  resource: string
  /** agentid issuer base URL(s), the `authorization_servers` of the RFC 9728 document. Non-empty. */
  authorizationServers: readonly string[]
  /** Where each decision goes. Default: one JSON line per decision on stderr. */
  audit?: (event: AuditEvent) => void
  /** Clock in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number
  /**
   * Human approvals: where a call the policy allows only with an approval (`@approval("required")`) gets its
   * approval request. Without it such calls are simply denied.
   */
  approvals?: McpApprovalOptions
  /**
   * Refuse `tools/call`, `resources/read` and `prompts/get` requests that carry no lineage in
   * `params._meta["io.agentid/lineage"]` (JSON-RPC error {@link MCP_LINEAGE_REFUSED}, reason `missing`).
   * Default false: a call without one is decided as before (no `context.lineage`); a call with one is
   * always verified, and refused when it does not verify.
   */
  requireLineage?: boolean
  /**
   * This server's own agent identity, when it has one. Hops to it must name `did` as their callee (`sub`),
   * so that it may call further on the same lineage; with `signer` (or `privateJwk`) and `credential` the
   * guard answers each call that carried a lineage with the server's signed receipt in
   * `result._meta["io.agentid/lineage"]`.
   */
  lineageAgent?: McpLineageAgent
}

/** The server's agent identity in the chain of custody (see {@link McpGuardOptions.lineageAgent}). */
export interface McpLineageAgent {
  /** The server agent's did:key. */
  did: string
  /** Its key, to sign receipts: a Signer, or its private JWK. */
  signer?: Signer
  privateJwk?: Ed25519PrivateJwk
  /** Its identity credential (compact JWT), referenced by its receipts. */
  credential?: string
}

/** A call's lineage as its audit event records it. */
export interface AuditLineage {
  transactionId: string
  user: string | null
  /** What entry 0 names as the origin (`request`, `grant`, …), or null. */
  origin: string | null
  entries: readonly (
    | { index: number; kind: 'hop'; actor: string; purpose: string; target: string; callee: string | null; command: string; argsDigest: string; hash: string }
    | { index: number; kind: 'receipt'; actor: string; purpose: string; answers: number; outputDigest: string; outcome: string; hash: string }
  )[]
}

/** An authenticated request: who calls, for whom, and the subject policies decide on. */
export interface Caller {
  /** The agent's DID. */
  readonly agent: string
  /** With token exchange, the user the agent acts for (the token's `sub`); else null. */
  readonly user: string | null
  /** `token`: `Authorization: DPoP` + `DPoP` proof; `presentation`: `Authorization: AgentID <vp-jwt>`. */
  readonly via: 'token' | 'presentation'
  /** Ready for `policy.authorize`. */
  readonly subject: AuthorizationSubject
}

/** One decision, as written to the audit sink. */
export interface AuditEvent {
  /** ISO 8601. */
  time: string
  agent: string
  user: string | null
  server: string
  /** A policy action (`callTool`, `readResource`, `getPrompt`, `listTools`) or `session` or an MCP method the guard refuses. */
  action: string
  /** The tool name, resource URI or prompt name, exactly as sent; null when there is none. */
  target: string | null
  decision: 'allow' | 'deny'
  policies: readonly string[]
  reason: string
  sessionId?: string
  /** The approval request a call waits for (reason `approval-required`) or was allowed with (reason `approved`). */
  approvalId?: string
  /** The verified lineage of the call decided (every entry), when it carried one. */
  lineage?: AuditLineage
  /** Why the call's lineage was refused (reason `lineage-refused`): the agentid code, the entry, the reason. */
  lineageRefused?: { code: string; hop: number | null; reason: string | null }
  /** For `listTools` (and other list filters): how many entries the caller was shown, of how many. */
  shown?: number
  total?: number
}

/** An SDK server the guard can front: the high-level `McpServer` or the low-level `Server`. */
export type McpServerLike = McpServer | Server

/** Options of {@link McpGuard.nodeHandler}. */
export interface NodeHandlerOptions {
  /** Builds one SDK server per MCP session (the SDK binds a server to one transport). */
  createServer: () => McpServerLike | Promise<McpServerLike>
  /** Answer POSTs with one JSON body instead of an SSE stream. Default false (the SDK's default). */
  enableJsonResponse?: boolean
  /**
   * With `enableJsonResponse`: plain JSON-RPC requests POSTed on an open session go from the guard to the
   * session's server without the SDK's transport (no conversion to web Request/Response, no second parse),
   * through exactly the same authentication, session binding, per-message gate, list filtering and audit.
   * Everything else (initialize, notifications, responses, GET, DELETE, SSE) takes the SDK transport.
   * Default true; false sends requests through the SDK transport, except plain requests reusing an id still
   * in flight (answered by the guard in any mode, so that the first request's answer is not lost).
   */
  fastPath?: boolean
  /**
   * On the fast path: may answer a request the gate admitted (authentication, session, lineage, policy and
   * audit all done) itself, instead of the session's SDK server — e.g. a proxy forwarding a `tools/call`
   * upstream without the SDK server's dispatch. Returns undefined to leave the request to the server.
   * Its answer takes the server's way back (list filter, receipts, the fast path's waiter); an error
   * becomes the JSON-RPC error the SDK server makes of a handler's error. The agent's
   * `notifications/cancelled` for the request, or its session closing, calls `cancel` (once); no answer
   * is sent after that, as the SDK server sends none for a cancelled request.
   */
  directRequest?: DirectRequestHandler
  /** Largest request body accepted, in bytes. Default 1 MiB. */
  maxBodyBytes?: number
  /** Most open sessions at once (all agents); further `initialize` requests get 503. Default 1,000. */
  maxSessions?: number
  /** Most open sessions per agent. Default 20. */
  maxSessionsPerAgent?: number
  /** A session without a request for this long is closed (its next request gets 404). Default 1,800,000 ms (30 min). */
  sessionIdleMs?: number
  /**
   * A server-to-client SSE stream (GET) is ended after this long; the client opens it again, authenticated
   * again, so a revoked agent loses its stream within this time. Default 300,000 ms (5 min).
   */
  maxStreamMs?: number
}

/** A plain JSON-RPC request the fast path admitted (see {@link NodeHandlerOptions.directRequest}). */
export interface DirectRequest {
  readonly jsonrpc: '2.0'
  readonly id: string | number
  readonly method: string
  readonly params?: Record<string, unknown>
}

/** A request answered by a {@link DirectRequestHandler}. */
export interface DirectCall {
  /**
   * The request's `result`; a rejection's `code` (a safe integer, else -32603), `message` and `data` make the
   * JSON-RPC error, as the SDK server answers a handler's error.
   */
  readonly result: Promise<Record<string, unknown>>
  /** The agent cancelled the request (`reason`: what it gave), or its session closed (`reason` undefined). */
  cancel(reason: unknown): void
}

/** Answers an admitted fast-path request itself, or returns undefined to leave it to the SDK server. */
export type DirectRequestHandler = (request: DirectRequest, extra: { readonly authInfo: AuthInfo; readonly sessionId: string | undefined }) => DirectCall | undefined

/** The guard: authentication, per-message authorization, audit, RFC 9728 metadata, and a Node handler. */
export interface McpGuard {
  /** `/.well-known/oauth-protected-resource` + the path of `resource` (RFC 9728 §3.1). */
  readonly metadataPath: string
  /** The absolute URL of the RFC 9728 document (what `resource_metadata` in challenges names). */
  readonly metadataUrl: string
  /** The RFC 9728 OAuth Protected Resource Metadata document. */
  protectedResourceMetadata(): Record<string, unknown>
  /**
   * Authenticates one HTTP request (`url` absolute, or a path resolved against `resource`'s origin):
   * a DPoP-bound agentid access token, or an agentid presentation. Throws VerificationError.
   */
  authenticate(request: { method: string; url: string; headers: RequestHeaders }): Promise<Caller>
  /** The HTTP answer to a refused request: 401 (`WWW-Authenticate: DPoP …, resource_metadata="…"`), 400, 403, or 500. */
  challenge(error: unknown): { status: number; headers: Record<string, string>; body: unknown }
  /** Asks the policy and writes one audit event. Fails closed: a throwing engine denies. */
  authorize(caller: Caller, action: PolicyAction, resource: PolicyResource, sessionId?: string): PolicyDecision
  /** The tools the caller may call (`callTool` allowed), in order; writes one `listTools` audit event. */
  filterTools<T extends { name: string }>(caller: Caller, tools: readonly T[], serverId?: string, sessionId?: string): T[]
  /** A Node http handler for a guarded Streamable HTTP MCP endpoint in front of an SDK server. */
  nodeHandler(options: NodeHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void>
}
