// The MCP server the guard fronts for one upstream: an SDK low-level Server whose handlers forward
// each request to the upstream's SDK Client and scrub upstream secrets from whatever comes back.
// It holds no authorization logic: the guard authenticates every HTTP request and authorizes each
// message before it reaches these handlers.
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { safeParse } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  GetPromptResultSchema,
  ListPromptsRequestSchema,
  ListPromptsResultSchema,
  ListResourcesRequestSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesRequestSchema,
  ListResourceTemplatesResultSchema,
  ListToolsRequestSchema,
  ListToolsResultSchema,
  McpError,
  ReadResourceRequestSchema,
  ReadResourceResultSchema,
  ResultSchema,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js'
import type { Signer } from '@agentid/core'
import { appendHop, LINEAGE_SEPARATOR, MCP_CREDENTIALS_META, MCP_LINEAGE_META, mcpCommand } from '@agentid/lineage'
import { verifiedLineage, type DirectCall, type DirectRequest, type DirectRequestHandler } from '@agentid/mcp'
import type { Logger } from './logger.js'
import { Cancellation, rawRequest, type CancelSignal } from './raw-call.js'
import type { Redactor } from './redact.js'
import type { Upstream } from './upstream.js'

export interface ForwardingServerOptions {
  upstream: Upstream
  redactor: Redactor
  logger: Logger
  /** Per-request timeout towards the upstream. Default 60,000 ms (the SDK's). */
  timeoutMs?: number
  /**
   * The gateway's agent identity: a `tools/call` whose lineage the guard verified is forwarded with the
   * gateway's own hop appended (target `mcp://<serverId>/<tool>`, callee the upstream's agent if any).
   */
  lineage?: { signer: Signer; credential: string; serverId: string; callee: string | undefined }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The credentials to send on: those received, then the gateway's own, each once. */
function withCredential(received: unknown, own: string): string {
  const list = typeof received === 'string' && received !== '' ? received.split(LINEAGE_SEPARATOR) : []
  if (!list.includes(own)) list.push(own)
  return list.join(LINEAGE_SEPARATOR)
}

type AnyRequest = { method: string; params?: Record<string, unknown> }
type Extra = { signal: CancelSignal; requestId: string | number; sessionId?: string; sendNotification: (n: { method: 'notifications/progress'; params: { progressToken: string | number; progress: number; total?: number; message?: string } }) => Promise<void> }

/** Strips the SDK's `MCP error <code>: ` prefix so a re-thrown upstream error does not carry it twice. */
function upstreamMessage(error: Error): string {
  return error.message.replace(/^MCP error -?\d+: /, '')
}

/**
 * A JSON-RPC error for the agent. Not an McpError: its message would gain a second `MCP error <code>: `
 * prefix on the client (the SDK server sends `message` as is, and the client prefixes it).
 */
function rpcError(code: number, message: string): Error & { code: number } {
  return Object.assign(new Error(message), { code })
}

type ResultSchemaOf = Parameters<Awaited<ReturnType<Upstream['client']>>['request']>[1]

/** A real AbortSignal for the SDK Client, following `signal` (a {@link Cancellation} is not one). */
function abortSignal(signal: CancelSignal): AbortSignal {
  if (signal instanceof AbortSignal) return signal
  const controller = new AbortController()
  if (signal.aborted) controller.abort(signal.reason)
  else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true })
  return controller.signal
}

/**
 * What sends one request to the upstream (through its SDK Client) and gives back its redacted result, or
 * throws the JSON-RPC error for the agent. `raw`: send it over an HTTP upstream's session as a plain
 * JSON-RPC POST (rawRequest) when no progress is asked for, its result not parsed on the way in (the SDK
 * Server, or the direct path, validates it on the way out).
 */
function forwarder(options: ForwardingServerOptions) {
  const { upstream, redactor, logger } = options
  const timeoutMs = options.timeoutMs ?? 60_000
  return async (request: AnyRequest, extra: Extra, schema: ResultSchemaOf, raw = false): Promise<Record<string, unknown>> => {
    // (The raw path only serializes params; the SDK Client's path gets a copy of its own, below.)
    const params = request.params
    const meta = params?._meta as { progressToken?: string | number } | undefined
    const progressToken = meta?.progressToken
    const send = async (retry: boolean): Promise<Record<string, unknown>> => {
      let client
      try {
        client = await upstream.client()
      } catch (error) {
        logger.error({ upstream: upstream.id, method: request.method, err: error }, 'upstream unavailable')
        throw rpcError(ErrorCode.InternalError, `upstream "${upstream.id}" is unavailable`)
      }
      try {
        const link = raw && progressToken === undefined ? (upstream.httpLink?.(client) ?? null) : null
        if (link !== null) return redactor.redactValue(await rawRequest(link, request.method, params, { signal: extra.signal, timeoutMs }))
        const result = await client.request({ method: request.method, ...(params ? { params: { ...params } } : {}) } as never, schema, {
          signal: abortSignal(extra.signal),
          timeout: timeoutMs,
          ...(progressToken !== undefined
            ? {
                onprogress: (p: { progress: number; total?: number; message?: string }) =>
                  void extra.sendNotification({ method: 'notifications/progress', params: redactor.redactValue({ ...p, progressToken }) }).catch(() => undefined),
              }
            : {}),
        })
        return redactor.redactValue(result as Record<string, unknown>)
      } catch (error) {
        if (error instanceof McpError && error.code !== ErrorCode.ConnectionClosed && error.code !== ErrorCode.RequestTimeout) {
          // The upstream answered with a JSON-RPC error: pass its code and (redacted) message, not its data.
          throw rpcError(error.code, redactor.redact(upstreamMessage(error)))
        }
        if (retry && error instanceof StreamableHTTPError && error.code === 404) {
          // The upstream no longer knows the gateway's session (it restarted): the request was not
          // processed. Open a new session and send it once more.
          logger.warn({ upstream: upstream.id }, 'upstream session expired; reconnecting')
          await upstream.reset(client)
          return send(false)
        }
        logger.error({ upstream: upstream.id, method: request.method, err: error }, 'upstream request failed')
        const code = error instanceof McpError ? error.code : ErrorCode.InternalError
        throw rpcError(code, `upstream "${upstream.id}" did not answer ${request.method}`)
      }
    }
    return send(true)
  }
}

/**
 * Builds one SDK `Server` (one per MCP session, as the SDK binds a server to a transport) that forwards
 * tools, resources and prompts to `upstream`, advertising only what the upstream itself supports.
 * Results and errors are redacted; an upstream that cannot be reached is an InternalError without details.
 * @example
 * guard.nodeHandler({ createServer: () => createForwardingServer({ upstream, redactor, logger }) })
 */
export function createForwardingServer(options: ForwardingServerOptions): Server {
  const { upstream } = options
  const upstreamCaps = upstream.capabilities ?? {}
  const capabilities: ServerCapabilities = {}
  if (upstreamCaps.tools) capabilities.tools = {}
  if (upstreamCaps.resources) capabilities.resources = {}
  if (upstreamCaps.prompts) capabilities.prompts = {}
  const server = new Server({ name: `agentid-gateway/${upstream.id}`, version: '0.1.0' }, { capabilities })
  const forward = forwarder(options)

  if (capabilities.tools) {
    server.setRequestHandler(ListToolsRequestSchema, (r, extra) => forward(r, extra as Extra, ListToolsResultSchema) as never)
    // The SDK Server validates every tools/call result against CallToolResultSchema before it is sent;
    // validating it here as well would parse each result twice.
    server.setRequestHandler(CallToolRequestSchema, async (r, extra) => {
      const received = options.lineage === undefined ? null : verifiedLineage(extra)
      if (received === null) return forward(r, extra as Extra, ResultSchema, true) as never
      // The gateway's own hop: it holds custody (the agent's hop named it), and the upstream gets the call
      // with the lineage extended by it. A stdio upstream is no agent: the hop names no callee, and records
      // custody all the same.
      const { signer, credential, serverId, callee } = options.lineage!
      const meta = isRecord(r.params._meta) ? r.params._meta : {}
      const sent = await appendHop(received.lineage, {
        signer, credential, target: `mcp://${serverId}/${r.params.name}`, command: mcpCommand('tools/call', r.params.name), args: r.params.arguments,
        ...(callee === undefined ? {} : { callee }),
      })
      const params = { ...r.params, _meta: { ...meta, [MCP_LINEAGE_META]: sent, [MCP_CREDENTIALS_META]: withCredential(meta[MCP_CREDENTIALS_META], credential) } }
      const result = await forward({ method: r.method, params }, extra as Extra, ResultSchema, true)
      // The upstream's record (the gateway's hop answered by its receipt) is kept for the guard's receipt only
      // when it extends what was sent; anything else an upstream puts there is dropped.
      if (isRecord(result._meta) && MCP_LINEAGE_META in result._meta) {
        const record = result._meta[MCP_LINEAGE_META]
        if (typeof record !== 'string' || !record.startsWith(`${sent}${LINEAGE_SEPARATOR}`)) {
          const { [MCP_LINEAGE_META]: _dropped, ...rest } = result._meta
          return { ...result, _meta: rest } as never
        }
      }
      return result as never
    })
  }
  if (capabilities.resources) {
    server.setRequestHandler(ListResourcesRequestSchema, (r, extra) => forward(r, extra as Extra, ListResourcesResultSchema) as never)
    server.setRequestHandler(ListResourceTemplatesRequestSchema, (r, extra) => forward(r, extra as Extra, ListResourceTemplatesResultSchema) as never)
    server.setRequestHandler(ReadResourceRequestSchema, (r, extra) => forward(r, extra as Extra, ReadResourceResultSchema) as never)
  }
  if (capabilities.prompts) {
    server.setRequestHandler(ListPromptsRequestSchema, (r, extra) => forward(r, extra as Extra, ListPromptsResultSchema) as never)
    server.setRequestHandler(GetPromptRequestSchema, (r, extra) => forward(r, extra as Extra, GetPromptResultSchema) as never)
  }
  return server
}

/** Whether `value` is a plain object of JSON.parse's kind (or redactValue's copy of one). */
function isPlain(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype
}

/**
 * Whether the SDK's CallToolResultSchema would return `value` unchanged (a deep copy of it, same members in the
 * same order): exactly `content`, or `content` then a boolean `isError`, and every block exactly `type: 'text'`
 * then a string `text` — what nearly every tool answers. Anything else goes through the schema itself.
 */
function plainTextResult(value: Record<string, unknown>): boolean {
  if (!isPlain(value)) return false
  let members = 0
  for (const key in value) {
    if (key !== (members === 0 ? 'content' : members === 1 ? 'isError' : undefined)) return false
    members++
  }
  if (members === 0 || (members === 2 && typeof value.isError !== 'boolean')) return false
  const content = value.content
  if (!Array.isArray(content) || Object.getPrototypeOf(content) !== Array.prototype) return false
  for (let i = 0; i < content.length; i++) {
    const block: unknown = content[i]
    if (!isPlain(block)) return false
    let n = 0
    for (const key in block) {
      if (key !== (n === 0 ? 'type' : n === 1 ? 'text' : undefined)) return false
      n++
    }
    if (n !== 2 || block.type !== 'text' || typeof block.text !== 'string') return false
  }
  return true
}

/**
 * A tools/call result as the SDK Server checks it before sending (CallToolResultSchema), with its answer when
 * the check fails: the schema's output, or for a plain text result ({@link plainTextResult}) the value itself,
 * which is what the schema would return (test/result-check.test.ts compares the two on many shapes). The
 * schema's parse of a result costs several µs per call; this check, a walk of its few members.
 */
export function checkedToolResult(value: Record<string, unknown>): Record<string, unknown> {
  if (plainTextResult(value)) return value
  const checked = safeParse(CallToolResultSchema, value)
  if (!checked.success) throw new McpError(ErrorCode.InvalidParams, `Invalid tools/call result: ${checked.error instanceof Error ? checked.error.message : String(checked.error)}`)
  return checked.data as Record<string, unknown>
}

/** A direct call asks for no progress (it has no `_meta`): nothing is ever sent through this. */
const noProgress = (): Promise<void> => Promise.resolve()

/**
 * The `tools/call` requests the guard's fast path may hand to the gateway itself rather than to the
 * session's SDK Server (`directRequest` of `@agentid/mcp`): forwarded to an HTTP upstream as a plain
 * JSON-RPC POST on the gateway's upstream session (rawRequest), the result redacted and validated once,
 * exactly as through the Server — without its dispatch (the request parsed twice by zod, an
 * AbortController and a promise chain per call). Only calls the Server would handle unchanged: `params`
 * with `name` and, if any, a plain object of `arguments` and nothing else (no `_meta`, no `task`), and no
 * verified lineage (the gateway's hop is the Server's); anything else goes to the Server.
 * @example
 * guard.nodeHandler({ createServer, enableJsonResponse: true, directRequest: directToolCalls({ upstream, redactor, logger }) })
 */
export function directToolCalls(options: ForwardingServerOptions): DirectRequestHandler {
  const { upstream } = options
  if (upstream.config.transport !== 'http') return () => undefined
  const forward = forwarder(options)
  return (request: DirectRequest, extra): DirectCall | undefined => {
    if (request.method !== 'tools/call' || !upstream.capabilities?.tools) return undefined
    const params = request.params
    if (params === undefined || typeof params.name !== 'string') return undefined
    for (const key in params) if (key !== 'name' && key !== 'arguments') return undefined
    const args = params.arguments
    // zod's record copies `arguments` into a new object: an own `__proto__` member would not survive it.
    if (args !== undefined && (!isRecord(args) || Object.getPrototypeOf(args) !== Object.prototype || Object.hasOwn(args, '__proto__'))) return undefined
    if (verifiedLineage(extra) !== null) return undefined
    const signal = new Cancellation()
    // The SDK Server's own check of a tools/call result, and its answer when it fails.
    const result = forward(request, { signal, requestId: request.id, sendNotification: noProgress }, ResultSchema, true).then(checkedToolResult)
    return { result, cancel: (reason) => signal.abort(reason) }
  }
}
