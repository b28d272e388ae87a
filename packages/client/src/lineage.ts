// The agent's side of the chain of custody: a hop for each outgoing call (HTTP through createAgentFetch,
// MCP through mcpLineageMeta), built on the lineage received with the call being served.
import { signerFromJwk, type Ed25519PrivateJwk, type Signer } from '@agentid/core'
import {
  appendHop,
  CREDENTIALS_HEADER,
  httpArgs,
  httpCommand,
  LINEAGE_HEADER,
  LINEAGE_SEPARATOR,
  MCP_CREDENTIALS_META,
  MCP_LINEAGE_META,
  mcpCommand,
  mcpTarget,
  type HttpBody,
} from '@agentid/lineage'

/** `createAgentFetch({ lineage })`: what every hop of this agent needs. */
export interface AgentFetchLineageOptions {
  /** The agent's identity credential (compact JWT VC), referenced by every hop it signs and sent along. */
  credential: string
  /**
   * The agent serving each target, when it is an agent that may call further (its DID becomes the hop's
   * `sub`, the only signer allowed next): by origin (`{ 'https://b.example': 'did:key:…' }`) or a function
   * of the URL. A target with none ends the lineage.
   */
  callees?: Readonly<Record<string, string>> | ((url: string) => string | undefined)
  /** Lifetime of each hop in seconds (default 60, at most 300). */
  ttlSec?: number
}

/** `init.lineage` of one agent-fetch call: what this call continues, and how it is named. */
export interface CallLineage {
  /** The lineage received with the call this agent is serving (its `Agentid-Lineage`). Absent: a new transaction. */
  from?: string
  /** The credentials received with it (its `Agentid-Credentials`), sent on with the agent's own. */
  credentials?: string
  /** The target, exactly as the service names itself. Default: the URL's origin. */
  target?: string
  /** The agent serving the target (overrides `callees`); null: none (the lineage ends there). */
  callee?: string | null
  /** The arguments signed. Default `httpArgs(url, body)`. */
  args?: unknown
  /** The user on whose behalf (a new transaction; a received lineage keeps its own). */
  user?: string
  /** New transaction: the originating request or grant, hashed into the first hop. */
  origin?: string | Uint8Array
  /** New transaction: what `origin` is (`request`, `grant`, …). */
  originKind?: string
  /** New transaction: its id (default random). A call retried after approval keeps its transaction. */
  transactionId?: string
  /** The delegation chain this call relies on (link JWTs, root first): its hash is signed. */
  delegationChain?: readonly string[]
  /**
   * The human approval receipt this call carries (object or JSON text): its RFC 8785 digest is signed in the
   * hop (`apr`), so the approval is part of the lineage. An agent fetch takes it from the request's
   * `Agentid-Approval` header by itself.
   */
  approval?: unknown
}

/** The credentials to send on: those received, then the agent's own, each once. */
export function forwardCredentials(received: string | undefined, own: string): string {
  const list = received === undefined || received === '' ? [] : received.split(LINEAGE_SEPARATOR)
  if (!list.includes(own)) list.push(own)
  return list.join(LINEAGE_SEPARATOR)
}

function calleeFor(options: AgentFetchLineageOptions, url: string): string | undefined {
  const callees = options.callees
  if (callees === undefined) return undefined
  if (typeof callees === 'function') return callees(url)
  return callees[new URL(url).origin]
}

async function bodyValue(body: unknown): Promise<HttpBody> {
  if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer || body instanceof URLSearchParams) return body as HttpBody
  if (typeof Blob !== 'undefined' && body instanceof Blob) return new Uint8Array(await body.arrayBuffer())
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  // FormData is serialised with a random boundary only when sent: its bytes cannot be signed beforehand.
  throw new TypeError('agent fetch: with a lineage, the body must be text, bytes, URLSearchParams or a Blob (not FormData or a stream)')
}

/** The `Agentid-Lineage` and `Agentid-Credentials` headers of one outgoing HTTP call. Internal to createAgentFetch. */
export async function lineageHeaders(
  signer: Signer,
  options: AgentFetchLineageOptions,
  call: CallLineage,
  request: { method: string; url: string; body: unknown; clock: () => number },
): Promise<Record<string, string>> {
  if (typeof call !== 'object' || call === null) throw new TypeError('agent fetch: init.lineage must be an object or false')
  const callee = call.callee === null ? undefined : (call.callee ?? calleeFor(options, request.url))
  const args = 'args' in call ? call.args : httpArgs(request.url, await bodyValue(request.body))
  const lineage = await appendHop(call.from, {
    signer,
    credential: options.credential,
    clock: request.clock,
    ...(options.ttlSec === undefined ? {} : { ttlSec: options.ttlSec }),
    target: call.target ?? new URL(request.url).origin,
    command: httpCommand(request.method, request.url),
    args,
    ...(callee === undefined ? {} : { callee }),
    ...(call.user === undefined ? {} : { user: call.user }),
    ...(call.origin === undefined ? {} : { origin: call.origin }),
    ...(call.originKind === undefined ? {} : { originKind: call.originKind }),
    ...(call.transactionId === undefined ? {} : { transactionId: call.transactionId }),
    ...(call.delegationChain === undefined ? {} : { delegationChain: call.delegationChain }),
    ...(call.approval === undefined ? {} : { approval: call.approval }),
  })
  return { [LINEAGE_HEADER]: lineage, [CREDENTIALS_HEADER]: forwardCredentials(call.credentials, options.credential) }
}

/** Options of {@link mcpLineageMeta}. */
export interface McpLineageOptions extends Omit<CallLineage, 'target' | 'args'> {
  /** The agent's key: a Signer, or its private JWK. */
  signer?: Signer
  privateJwk?: Ed25519PrivateJwk
  /** The agent's identity credential (compact JWT VC). */
  credential: string
  /** The MCP server's id (the `mcp://<server>/` of the target). */
  server: string
  /** The tool called (`tools/call`), or the resource URI / prompt name with `method`. */
  name: string
  /** Default `tools/call`. */
  method?: 'tools/call' | 'resources/read' | 'prompts/get'
  /** The tool's `arguments` exactly as sent (for a resource or prompt: its parameters, else omitted). */
  arguments?: unknown
  ttlSec?: number
  clock?: () => number
}

/**
 * The `_meta` members of an MCP request carrying its lineage: a hop for `tools/call <name>` on
 * `mcp://<server>/<name>` with the RFC 8785 digest of `arguments`, built on `from`, and the credentials.
 * @example
 * const _meta = await mcpLineageMeta({ privateJwk, credential, server: 'erp', name: 'invoices.read', arguments: args, from: received })
 * await client.callTool({ name: 'invoices.read', arguments: args, _meta })
 */
export async function mcpLineageMeta(options: McpLineageOptions): Promise<Record<string, string>> {
  if (!options || typeof options !== 'object') throw new TypeError('mcpLineageMeta: options are required')
  const signer = options.signer ?? (options.privateJwk === undefined ? undefined : signerFromJwk(options.privateJwk))
  if (!signer) throw new TypeError('mcpLineageMeta: signer or privateJwk is required')
  const lineage = await appendHop(options.from, {
    signer,
    credential: options.credential,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.ttlSec === undefined ? {} : { ttlSec: options.ttlSec }),
    target: mcpTarget(options.server, options.name),
    command: mcpCommand(options.method ?? 'tools/call', options.name),
    args: options.arguments,
    ...(options.callee === undefined || options.callee === null ? {} : { callee: options.callee }),
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    ...(options.originKind === undefined ? {} : { originKind: options.originKind }),
    ...(options.transactionId === undefined ? {} : { transactionId: options.transactionId }),
    ...(options.delegationChain === undefined ? {} : { delegationChain: options.delegationChain }),
    ...(options.approval === undefined ? {} : { approval: options.approval }),
  })
  return { [MCP_LINEAGE_META]: lineage, [MCP_CREDENTIALS_META]: forwardCredentials(options.credentials, options.credential) }
}
