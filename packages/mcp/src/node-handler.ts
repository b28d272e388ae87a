import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { AgentIdError, lingerAfterAnswer, parseStrictJson } from '@agentid/core'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js'
import { ErrorCode, SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { headerValues } from './authenticate.js'
import { MCP_FORBIDDEN } from './challenge.js'
import type { GuardInternals } from './guard.js'
import { checkBody, gateMessage, LIST_ACTION, LIST_FIELD, listEntryCheck, type ListKind } from './messages.js'
import type { Caller, DirectCall, DirectRequest, McpServerLike, NodeHandlerOptions } from './types.js'
import type { RequestHeaders } from '@agentid/verifier'
import { VerificationError } from '@agentid/core'
import { MCP_LINEAGE_META } from '@agentid/lineage'
import type { VerifiedLineage } from '@agentid/verifier'
import { approvedLastHop, authInfoWithLineage, callerWithLineage, lineageCall, MCP_LINEAGE_REFUSED, receiptFor, spendLineageApproval, verifyCallLineage } from './lineage.js'

const MAX_BATCH = 100
/** Nesting a request body may have (JSON-RPC envelope plus tool arguments). */
const MAX_BODY_DEPTH = 64

interface Session {
  lastSeen: number
  readonly id: string
  readonly agent: string
  readonly user: string | null
  /** The user's identity provider: a user id is unique only at its issuer. */
  readonly userIssuer: string | null
  readonly transport: StreamableHTTPServerTransport
  readonly server: McpServerLike
  readonly gate: SessionGate
}

type Transport = StreamableHTTPServerTransport
type MessageExtra = Parameters<NonNullable<Transport['onmessage']>>[1]
type RequestId = string | number
/** A JSON-RPC request as the fast path takes it: exactly these members (see {@link fastRequests}). */
interface FastRequest { jsonrpc: '2.0'; id: RequestId; method: string; params?: Record<string, unknown> }

/** The guard's hold on one session's transport (see `guardTransport`). */
interface SessionGate {
  /** Whether `id` names a request of this session not yet answered (handed to the server, or on the fast path). */
  busy(id: RequestId): boolean
  /**
   * Hands `requests` to the session's server through the same gate as the transport's messages, without the
   * SDK transport; resolves with one answer per request, in order (the request's own, or the gate's refusal).
   */
  deliver(requests: readonly FastRequest[], extra: MessageExtra): Promise<JSONRPCMessage[]>
}

const FAST_KEYS = new Set(['jsonrpc', 'id', 'method', 'params'])

/**
 * The body's messages if the fast path may take them, else null. Only plain requests qualify: exactly the
 * members `jsonrpc`, `id`, `method` and an optional object `params` without `_meta`, `method` not
 * `initialize`. For these the SDK transport's own parse (`JSONRPCMessageSchema`, strict) succeeds and
 * returns the same message, so skipping it changes nothing; anything else — notifications, responses,
 * extra members, `_meta`, non-object params — takes the SDK transport, which decides as before.
 * `checkBody` has already checked `jsonrpc` and the ids.
 */
function fastRequests(body: unknown): FastRequest[] | null {
  const messages = Array.isArray(body) ? body : [body]
  for (const m of messages as Record<string, unknown>[]) {
    if (typeof m.method !== 'string' || m.method === 'initialize' || m.id === undefined) return null
    for (const key in m) if (!FAST_KEYS.has(key)) return null
    const params = m.params
    if (params !== undefined && (!isRecord(params) || params._meta !== undefined)) return null
  }
  return messages as FastRequest[]
}

/** The single value of header `name`, joined like fetch `Headers.get` when repeated; null when absent. */
function joinedHeader(headers: Parameters<typeof headerValues>[0], name: string): string | null {
  if (typeof (headers as { get?: unknown }).get !== 'function') {
    // One value or none (nearly always): found without building the list, by headerValues' rule for keys.
    const record = headers as Record<string, string | readonly string[] | undefined>
    let only: string | null = null
    let count = 0
    for (const key in record) {
      if (key !== name && (key.length !== name.length || key.toLowerCase() !== name)) continue
      if (!Object.hasOwn(record, key)) continue
      const value = record[key]
      if (typeof value === 'string') {
        only = value
        count++
      } else if (Array.isArray(value)) {
        for (const v of value as unknown[]) {
          if (typeof v !== 'string') continue
          only = v
          count++
        }
      }
    }
    if (count <= 1) return only
  }
  const values = headerValues(headers, name)
  return values.length === 0 ? null : values.join(', ')
}

/**
 * Whether the request's headers pass the SDK transport's POST checks as they are (Accept lists JSON and
 * SSE, Content-Type is JSON, a protocol version header if any is supported); if not, the SDK transport
 * answers (406, 415, 400) as before.
 */
function fastHeaders(headers: Parameters<typeof headerValues>[0]): boolean {
  const accept = joinedHeader(headers, 'accept')
  if (accept === null || !accept.includes('application/json') || !accept.includes('text/event-stream')) return false
  if (!isJsonContentType(joinedHeader(headers, 'content-type'))) return false
  const version = joinedHeader(headers, 'mcp-protocol-version')
  return version === null || SUPPORTED_PROTOCOL_VERSIONS.includes(version)
}

/**
 * The request's headers as the guard reads them, every line of a repeated header apart: `req.headers`
 * when no header name is repeated (it then holds what `headersDistinct` would, each value alone instead
 * of in a one-element array, which `headerValues` reads the same), else `headersDistinct`. Node's
 * `req.headers` keeps one key per distinct name (lower case), so fewer keys than lines means a name came
 * twice: Node kept only the first Authorization, or joined two DPoP or Mcp-Session-Id lines, and the guard
 * must see each. (A name Node cannot store as a key, `__proto__`, leaves a key missing too.) Node builds
 * `req.headers` for every request anyway; `headersDistinct` is a second, dictionary-mode object on which
 * each of the guard's ~8 header look-ups (a `for…in` over every name) allocated its key list: ≈ 3 KB per call.
 */
export function checkedHeaders(req: IncomingMessage): Record<string, string | string[] | undefined> {
  const headers = req.headers
  let names = 0
  for (const _ in headers) names++
  return names * 2 === req.rawHeaders.length ? headers : req.headersDistinct
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * A Map for the entries of requests in flight on one session (ids, waiters, direct calls): each entry
 * is deleted when its request is answered, and a map left empty is replaced by a new one. A session's
 * map lives long, so its backing store is in the old generation; V8 rehashes a Map whose entries come
 * and go every few inserts (OrderedHashTable::Rehash), allocating the next store in the old generation
 * too and leaving the entries live at that moment in the store it drops, with a link to the next: old
 * objects pointing at request closures (and what they reach), which the scavenger keeps until a
 * mark-compact. An emptied map's store holds nothing and links nowhere, and a new map starts young.
 * Promoted per gateway call 0.43-0.51 -> 0.35-0.38 KB (bench/gateway-gc.mjs).
 */
export class InFlight<K, V> {
  #map = new Map<K, V>()

  get size(): number {
    return this.#map.size
  }

  has(key: K): boolean {
    return this.#map.has(key)
  }

  get(key: K): V | undefined {
    return this.#map.get(key)
  }

  set(key: K, value: V): this {
    this.#map.set(key, value)
    return this
  }

  delete(key: K): boolean {
    const deleted = this.#map.delete(key)
    if (deleted && this.#map.size === 0) this.#map = new Map()
    return deleted
  }

  /** The entries in insertion order, copied (callers delete while walking them). */
  entries(): [K, V][] {
    return [...this.#map]
  }
}

/**
 * The `requestInfo` the fast path hands the server with each request: its URL and headers, each built
 * only if read (`req.headers`, which node:http builds for every request anyway).
 * A class with getters on its prototype, not an object literal with `get` members: V8 allocates the
 * accessor pair of each such literal's getter in the old generation (Factory::NewAccessorPair), so every
 * request left old objects pointing at its young closures, and through them at the request (`req`, its
 * headers and body): each scavenge had to copy all of it twice (promoted ~4 KB per call, 99 % of what
 * survived one scavenge survived the next) until a mark-compact found the pairs dead.
 */
export class LazyRequestInfo {
  readonly #req: IncomingMessage
  readonly #target: string
  readonly #origin: string
  constructor(req: IncomingMessage, target: string, origin: string) {
    this.#req = req
    this.#target = target
    this.#origin = origin
  }

  /** The request's URL, resolved against the resource's origin (a new URL on each read, as before). */
  get url(): URL {
    return new URL(this.#target, this.#origin)
  }

  /** Node's `req.headers` (names lower case, repeated values joined). */
  get headers(): IncomingMessage['headers'] {
    return this.#req.headers
  }
}

function writeJson(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  // An answer before the body was read (401, 413): Connection: close, the rest read and dropped within bounds.
  lingerAfterAnswer(res)
  res.statusCode = status
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(body))
}

function rpcError(code: number, message: string, agentidCode: string): unknown {
  return { jsonrpc: '2.0', id: null, error: { code, message, data: { code: agentidCode } } }
}

/** Reads the request body, refusing (ERR_PAYLOAD_TOO_LARGE) past `max` bytes without buffering more. */
function readBody(req: IncomingMessage, max: number, contentLength: string | undefined): Promise<string> {
  const declared = Number(contentLength)
  if (Number.isFinite(declared) && declared > max) return Promise.reject(new AgentIdError('ERR_PAYLOAD_TOO_LARGE', `body larger than ${max} bytes`))
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > max) {
        // Nothing more is kept; the 413 (writeJson) closes the connection lingering, so the client still
        // sending reads it (destroying the request here reset the connection and lost the answer).
        cleanup()
        return reject(new AgentIdError('ERR_PAYLOAD_TOO_LARGE', `body larger than ${max} bytes`))
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'))
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    const onClose = () => {
      cleanup()
      reject(new AgentIdError('ERR_INVALID_INPUT', 'the request ended before its body'))
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`nodeHandler: ${name} must be a positive integer`)
  return value
}

/**
 * The guarded Streamable HTTP endpoint: the RFC 9728 document at `metadataPath`, and at the path of
 * `resource` one SDK server per session, each session bound to the agent (and user) that opened it.
 */
export function createNodeHandler(internals: GuardInternals, options: NodeHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  if (!options || typeof options.createServer !== 'function') throw new TypeError('nodeHandler: options.createServer is required')
  const maxBodyBytes = positiveInt('maxBodyBytes', options.maxBodyBytes, 1024 * 1024)
  const maxSessions = positiveInt('maxSessions', options.maxSessions, 1000)
  const maxSessionsPerAgent = positiveInt('maxSessionsPerAgent', options.maxSessionsPerAgent, 20)
  const sessionIdleMs = positiveInt('sessionIdleMs', options.sessionIdleMs, 1_800_000)
  const maxStreamMs = positiveInt('maxStreamMs', options.maxStreamMs, 300_000)
  const jsonResponses = options.enableJsonResponse === true
  if (options.fastPath !== undefined && typeof options.fastPath !== 'boolean') throw new TypeError('nodeHandler: fastPath must be a boolean')
  const fastPath = jsonResponses && options.fastPath !== false
  if (options.directRequest !== undefined && typeof options.directRequest !== 'function') throw new TypeError('nodeHandler: directRequest must be a function')
  const directRequest = fastPath ? options.directRequest : undefined
  const { guard, serverId, resource } = internals
  const endpointPath = resource.pathname
  // (URL's origin getter builds its string on every read: read once, it is the same for every request.)
  const resourceOrigin = resource.origin
  const sessions = new Map<string, Session>()
  const perAgent = new Map<string, number>()
  let opening = 0
  const openingFor = new Map<string, number>()
  let lastSweep = 0

  /** Drops a session from the maps (once). */
  function forget(session: Session): void {
    if (sessions.get(session.id) !== session) return
    sessions.delete(session.id)
    const n = (perAgent.get(session.agent) ?? 1) - 1
    if (n <= 0) perAgent.delete(session.agent)
    else perAgent.set(session.agent, n)
  }

  /** Closes idle sessions; runs at most once a second, on a request (no timer keeps the process alive). */
  function sweep(now: number): void {
    if (now - lastSweep < 1000) return
    lastSweep = now
    for (const session of [...sessions.values()]) {
      if (now - session.lastSeen <= sessionIdleMs) continue
      forget(session)
      void session.transport.close().catch(() => undefined)
    }
  }
  // The last request-target parsed, and what the handler reads of it: agents call the same target again and again.
  let lastUrl: { target: string; url: Pick<URL, 'origin' | 'pathname' | 'href'> } | undefined
  /** The origin, path and href of a request-target resolved against the resource's origin (a pure function of `target`). */
  function requestUrl(target: string): Pick<URL, 'origin' | 'pathname' | 'href'> {
    if (lastUrl !== undefined && lastUrl.target === target) return lastUrl.url
    const parsed = new URL(target, resourceOrigin)
    const url = Object.freeze({ origin: parsed.origin, pathname: parsed.pathname, href: parsed.href })
    lastUrl = { target, url }
    return url
  }
  // The authenticated caller of each HTTP request, found again from the AuthInfo the transport hands to onmessage.
  const callers = new WeakMap<AuthInfo, Caller>()
  // The fast path's AuthInfo of a caller: the same for every request with it (a caller is made once per access
  // token), so made once, frozen, instead of an object and a `callers` entry per request.
  const fastAuthInfos = new WeakMap<Caller, AuthInfo>()
  function fastAuthInfo(caller: Caller): AuthInfo {
    let authInfo = fastAuthInfos.get(caller)
    if (authInfo === undefined) {
      authInfo = Object.freeze({ token: '', clientId: caller.agent, scopes: Object.freeze([]) as unknown as string[], extra: Object.freeze({ agent: caller.agent, user: caller.user, via: caller.via }) })
      callers.set(authInfo, caller)
      fastAuthInfos.set(caller, authInfo)
    }
    return authInfo
  }

  function refuse(res: ServerResponse, error: unknown): void {
    const c = guard.challenge(error)
    writeJson(res, c.status, c.headers, c.body)
  }

  /**
   * Puts the guard between the transport and the server: every message is gated, every list result filtered.
   * Messages reach the gate from the SDK transport, or from the fast path (`deliver`); both go through
   * the same gate and the same filter, and only the way an answer travels back differs.
   */
  function guardTransport(transport: Transport): SessionGate {
    const toServer = transport.onmessage
    if (typeof toServer !== 'function') throw new Error('nodeHandler: the server did not attach to the transport')
    const send = transport.send.bind(transport)
    const generated = new WeakSet<object>()
    // Ids of the client's requests handed to the server and not yet answered: a response is matched to its
    // request by id alone, so an id may not be reused while in flight (else a second request's answer
    // could take the place of a filtered list).
    const inflight = new InFlight<RequestId, true>()
    // Request id → what its result must be filtered by (list requests in flight).
    const lists = new InFlight<RequestId, { list: ListKind; caller: Caller }>()
    // Request id → where its answer goes, for the requests the fast path delivered and not yet answered.
    const fast = new InFlight<RequestId, (answer: JSONRPCMessage) => void>()
    // Request id → the verified lineage of the call in flight, when the server's agent signs receipts (dropped
    // when the guard answers the request itself, so that a later request reusing the id gets no receipt).
    const receipts = new InFlight<RequestId, VerifiedLineage>()
    // Request id → the fast-path requests answered by `directRequest`, not yet answered nor cancelled.
    const directs = new InFlight<RequestId, DirectCall>()

    /** Hands a message for the agent on: to the fast path's waiter of its request, else to the SDK transport. */
    function emit(message: JSONRPCMessage, sendOptions?: Parameters<Transport['send']>[1]): Promise<void> {
      const id = (message as { id?: RequestId }).id
      if (id !== undefined && ('result' in message || 'error' in message)) {
        const waiter = fast.get(id)
        if (waiter !== undefined) {
          fast.delete(id)
          waiter(message)
          return Promise.resolve()
        }
      } else if (sendOptions?.relatedRequestId !== undefined && fast.has(sendOptions.relatedRequestId)) {
        // A notification or request about a fast-path request: a JSON response carries only the answer, as in
        // the SDK transport's JSON mode.
        return Promise.resolve()
      }
      return send(message, sendOptions)
    }

    function answer(id: RequestId, code: number, message: string, viaFast: boolean, data?: Record<string, unknown>): void {
      if (!inflight.has(id)) receipts.delete(id) // (a refused duplicate id leaves the request in flight its receipt)
      const error: JSONRPCMessage = { jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } }
      if (viaFast) {
        void emit(error)
        return
      }
      generated.add(error)
      send(error, { relatedRequestId: id }).catch(() => undefined)
    }

    function forward(message: JSONRPCMessage, extra: MessageExtra | undefined, id: RequestId | undefined, viaFast = false): void {
      if (id !== undefined) inflight.set(id, true)
      if (viaFast && id !== undefined && directRequest !== undefined && extra?.authInfo !== undefined) {
        const call = directRequest(message as DirectRequest, { authInfo: extra.authInfo, sessionId: transport.sessionId })
        if (call !== undefined) return direct(id, call)
      }
      toServer!(message, extra)
    }

    /** Sends a direct call's answer the way the server's answer goes (`transport.send`), unless it was cancelled. */
    function direct(id: RequestId, call: DirectCall): void {
      directs.set(id, call)
      call.result.then(
        (result) => ({ result, jsonrpc: '2.0', id }) as JSONRPCMessage,
        // As the SDK's Protocol answers a handler's error.
        (error: { code?: unknown; message?: string; data?: unknown }) => ({
          jsonrpc: '2.0', id,
          error: { code: Number.isSafeInteger(error?.code) ? (error.code as number) : ErrorCode.InternalError, message: error?.message ?? 'Internal error', ...(error?.data !== undefined && { data: error.data }) },
        }) as JSONRPCMessage,
      ).then((answer) => {
        if (directs.get(id) !== call) return // cancelled: no answer, as the SDK server sends none
        directs.delete(id)
        return transport.send(answer)
      }).catch(() => undefined)
    }

    /** The agent's `notifications/cancelled` for a direct call: cancel it (the SDK server aborts its handler the same way). */
    function cancelDirect(message: JSONRPCMessage): void {
      if ((message as { method?: unknown }).method !== 'notifications/cancelled') return
      const params = (message as { params?: unknown }).params
      if (!isRecord(params)) return
      const requestId = params.requestId as RequestId
      if (!requestId || (typeof requestId !== 'string' && !Number.isSafeInteger(requestId))) return
      const call = directs.get(requestId)
      if (call === undefined) return
      directs.delete(requestId)
      call.cancel(params.reason)
    }

    /**
     * The lineage of a `tools/call`, `resources/read` or `prompts/get`, verified before the gate (async: the id
     * stays in flight meanwhile, so it cannot be reused): a refused lineage is answered with
     * MCP_LINEAGE_REFUSED and audited; a verified one goes to the gate and the handler with the caller's
     * policy subject and the AuthInfo carrying it.
     */
    function gateLineage(message: JSONRPCMessage, extra: MessageExtra | undefined, viaFast: boolean): void {
      const call = lineageCall(message)
      const caller = extra?.authInfo ? callers.get(extra.authInfo) : undefined
      const id = (message as { id?: RequestId }).id
      if (call === null || caller === undefined || id === undefined || inflight.has(id)) return gateOne(message, extra, viaFast)
      const meta = call.meta
      if (!internals.lineage.required && !(isRecord(meta) && meta[MCP_LINEAGE_META] !== undefined)) return gateOne(message, extra, viaFast)
      inflight.set(id, true)
      const headers = (extra as { requestInfo?: { headers?: RequestHeaders } } | undefined)?.requestInfo?.headers
      void verifyCallLineage(internals.verifier, internals.lineage, serverId, caller, call, headers).then(
        (verified) => {
          inflight.delete(id)
          if (verified === null) return gateOne(message, extra, viaFast)
          const authInfo = authInfoWithLineage(extra!.authInfo!, verified)
          callers.set(authInfo, callerWithLineage(caller, verified))
          if (internals.lineage.signer !== undefined) receipts.set(id, verified)
          gateOne(message, { ...extra, authInfo } as MessageExtra, viaFast)
        },
        (error: unknown) => {
          inflight.delete(id)
          const v = error instanceof VerificationError ? error : null
          const data = { code: v?.code ?? 'ERR_INTERNAL', hop: (v?.details.hop as number | null | undefined) ?? null, reason: (v?.details.reason as string | null | undefined) ?? null }
          const sessionId = transport.sessionId
          internals.audit({
            agent: caller.agent, user: caller.user, server: serverId, action: call.method, target: call.name,
            decision: 'deny', policies: [], reason: 'lineage-refused', lineageRefused: data, ...(sessionId === undefined ? {} : { sessionId }),
          })
          const refusal = { jsonrpc: '2.0', id, error: v === null ? { code: -32603, message: 'Internal error' } : { code: MCP_LINEAGE_REFUSED, message: 'Lineage refused', data } } as JSONRPCMessage
          if (viaFast) return void emit(refusal)
          generated.add(refusal)
          send(refusal, { relatedRequestId: id }).catch(() => undefined)
        },
      )
    }

    /** The gate: the same for both paths; `viaFast` only says where a refusal goes. */
    function gateOne(message: JSONRPCMessage, extra: MessageExtra | undefined, viaFast: boolean): void {
      const caller = extra?.authInfo ? callers.get(extra.authInfo) : undefined
      const raw = (message as { id?: RequestId }).id
      const isRequest = typeof (message as { method?: unknown }).method === 'string' && raw !== undefined
      const id = isRequest ? raw : undefined
      const sessionId = transport.sessionId
      if (caller === undefined) {
        // Never happens through this handler; fail closed if it does.
        if (id !== undefined) answer(id, MCP_FORBIDDEN, 'Forbidden', viaFast)
        return
      }
      if (id !== undefined && inflight.has(id)) return answer(id, -32600, 'Invalid Request: request id already in use', viaFast)
      const gate = gateMessage(message, serverId)
      switch (gate.kind) {
        case 'pass':
          if (directs.size > 0) cancelDirect(message)
          return forward(message, extra, id, viaFast)
        case 'list':
          // Listing tools is itself an action policies decide on; the list is then filtered per tool.
          if (gate.list === 'tools' && !guard.authorize(caller, 'listTools', { type: 'McpServer', id: serverId }, sessionId).allowed) {
            return answer(id!, MCP_FORBIDDEN, 'Forbidden: denied by policy', viaFast)
          }
          lists.set(id!, { list: gate.list, caller })
          return forward(message, extra, id)
        case 'refuse':
          internals.audit({
            agent: caller.agent, user: caller.user, server: serverId, action: gate.method, target: gate.target,
            decision: 'deny', policies: [], reason: gate.reason, ...(sessionId === undefined ? {} : { sessionId }),
          })
          if (id !== undefined) answer(id, gate.rpcCode, gate.message, viaFast)
          return
        case 'authorize': {
          const decision = guard.authorize(caller, gate.action, gate.resource, sessionId)
          if (!decision.allowed && decision.reason === 'approval-required' && internals.approve && gate.resource.type === 'Tool' && id !== undefined) {
            // Denied only for lack of a human's approval: verify the receipt it carries, or ask for one (async;
            // the id stays in flight meanwhile, so it cannot be reused).
            const params = (message as { params?: unknown }).params
            const headers = (extra as { requestInfo?: { headers?: RequestHeaders } } | undefined)?.requestInfo?.headers
            inflight.set(id, true)
            void internals.approve(caller, gate.resource, isRecord(params) ? params : {}, headers, decision, sessionId)
              .catch(() => ({ allow: false as const, rpcCode: MCP_FORBIDDEN, message: 'Forbidden', data: { code: 'ERR_INTERNAL' }, reason: 'approval-failed' }))
              .then((outcome) => {
                inflight.delete(id)
                if (outcome.allow) return forward(message, extra, id, viaFast)
                answer(id, outcome.rpcCode, outcome.message, viaFast, outcome.data)
              })
            return
          }
          if (!decision.allowed) return answer(id!, MCP_FORBIDDEN, 'Forbidden: denied by policy', viaFast)
          // Every form of the target the server may act on must be allowed too (each decision audited).
          for (const other of gate.also ?? []) {
            if (!guard.authorize(caller, gate.action, other, sessionId).allowed) return answer(id!, MCP_FORBIDDEN, 'Forbidden: denied by policy', viaFast)
          }
          // A human approval carried in the lineage for this very call is spent here, once (async: the id
          // stays in flight meanwhile). The approval step above spends its receipt itself.
          if (id === undefined || approvedLastHop(caller) === undefined) return forward(message, extra, id, viaFast)
          inflight.set(id, true)
          const params = (message as { params?: unknown }).params
          const headers = (extra as { requestInfo?: { headers?: RequestHeaders } } | undefined)?.requestInfo?.headers
          void spendLineageApproval(internals.verifier, caller, isRecord(params) ? params : {}, headers).then(
            () => {
              inflight.delete(id)
              forward(message, extra, id, viaFast)
            },
            (error: unknown) => {
              inflight.delete(id)
              const code = error instanceof AgentIdError ? error.code : 'ERR_INTERNAL'
              internals.audit({
                agent: caller.agent, user: caller.user, server: serverId, action: gate.action, target: gate.target,
                decision: 'deny', policies: [], reason: 'approval-invalid', ...(sessionId === undefined ? {} : { sessionId }),
              })
              answer(id, MCP_FORBIDDEN, 'Forbidden: the approval in the lineage does not verify for this call, or was used before', viaFast, { code })
            },
          )
          return
        }
      }
    }

    transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtra) => gateLineage(message, extra, false)

    transport.send = async (message: JSONRPCMessage, sendOptions?: Parameters<Transport['send']>[1]) => {
      if (generated.has(message)) return send(message, sendOptions)
      const id = (message as { id?: RequestId }).id
      const isResponse = id !== undefined && ('result' in message || 'error' in message)
      if (!isResponse) return emit(message, sendOptions)
      inflight.delete(id)
      const custody = receipts.get(id)
      if (custody !== undefined) {
        receipts.delete(id)
        // The server agent's receipt of the call answered, in the result's _meta (errors carry none).
        if ('result' in message && isRecord(message.result)) {
          const record = await receiptFor(internals.lineage, custody, message.result).catch(() => null)
          if (record !== null) message = { ...message, result: { ...message.result, _meta: { ...(isRecord(message.result._meta) ? message.result._meta : {}), [MCP_LINEAGE_META]: record } } }
        }
      }
      const pending = lists.get(id)
      if (pending === undefined) return emit(message, sendOptions)
      lists.delete(id)
      if (!('result' in message) || !isRecord(message.result)) return emit(message, sendOptions)
      const field = LIST_FIELD[pending.list]
      const entries = message.result[field]
      const all: unknown[] = Array.isArray(entries) ? entries : []
      const shown = all.filter((entry) => {
        const check = listEntryCheck(pending.list, entry, serverId)
        return check !== null && internals.decide(pending.caller, check.action, check.resource).allowed
      })
      const recorded = internals.audit({
        agent: pending.caller.agent,
        user: pending.caller.user,
        server: serverId,
        action: LIST_ACTION[pending.list],
        target: null,
        decision: 'allow',
        policies: [],
        reason: 'filtered',
        shown: shown.length,
        total: all.length,
        ...(transport.sessionId === undefined ? {} : { sessionId: transport.sessionId }),
      })
      return emit({ ...message, result: { ...message.result, [field]: recorded ? shown : [] } }, sendOptions)
    }

    // When the session closes, the server sends nothing more: the fast path's waiters get a connection-closed error.
    const closed = transport.onclose
    transport.onclose = () => {
      closed?.()
      // The SDK server aborts its handlers when the session closes: so are the direct calls.
      for (const [id, call] of directs.entries()) {
        directs.delete(id)
        call.cancel(undefined)
      }
      for (const [id, waiter] of fast.entries()) {
        fast.delete(id)
        waiter({ jsonrpc: '2.0', id, error: { code: ErrorCode.ConnectionClosed, message: 'Connection closed' } })
      }
    }

    return {
      busy: (id) => inflight.has(id) || fast.has(id),
      deliver(requests, extra) {
        return new Promise<JSONRPCMessage[]>((resolve) => {
          const answers: JSONRPCMessage[] = new Array(requests.length)
          const gated: FastRequest[] = []
          let left = requests.length
          requests.forEach((request, i) => {
            // An id still unanswered is refused here, as the gate refuses it, before its waiter could take the
            // place of the earlier request's (checkBody has refused an id twice in one body).
            if (inflight.has(request.id) || fast.has(request.id)) {
              answers[i] = { jsonrpc: '2.0', id: request.id, error: { code: -32600, message: 'Invalid Request: request id already in use' } }
              left--
              return
            }
            gated.push(request)
            fast.set(request.id, (a) => {
              answers[i] = a
              if (--left === 0) resolve(answers)
            })
          })
          if (left === 0) return resolve(answers)
          for (const request of gated) gateLineage(request as JSONRPCMessage, extra, true)
        })
      },
    }
  }

  async function openSession(caller: Caller): Promise<Transport> {
    const server = await options.createServer()
    let session: Session | undefined
    let gate: SessionGate | undefined
    const transport: Transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: jsonResponses,
      onsessioninitialized: (id) => {
        session = { id, agent: caller.agent, user: caller.user, userIssuer: caller.subject.user?.issuer ?? null, transport, server, gate: gate!, lastSeen: internals.now() }
        sessions.set(id, session)
        perAgent.set(caller.agent, (perAgent.get(caller.agent) ?? 0) + 1)
      },
    })
    transport.onclose = () => {
      if (session !== undefined) forget(session)
    }
    await server.connect(transport)
    gate = guardTransport(transport)
    return transport
  }

  return async function guardedMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reserved: string | undefined
    try {
      sweep(internals.now())
      const target = req.url ?? '/'
      const url = requestUrl(target)
      const method = req.method ?? 'GET'
      // A request-target naming another host (`//evil.example/mcp`, absolute form) would make that host the
      // origin the DPoP proof's htu is checked against: only this resource's origin is served.
      if (url.origin !== resourceOrigin) return writeJson(res, 404, {}, rpcError(-32000, 'Not found', 'ERR_NOT_FOUND'))
      if (url.pathname === guard.metadataPath) {
        if (method !== 'GET' && method !== 'HEAD') return writeJson(res, 405, { allow: 'GET, HEAD' }, rpcError(-32000, 'Method not allowed', 'ERR_INVALID_INPUT'))
        return writeJson(res, 200, { 'cache-control': 'max-age=300', 'access-control-allow-origin': '*' }, guard.protectedResourceMetadata())
      }
      if (url.pathname !== endpointPath) return writeJson(res, 404, {}, rpcError(-32000, 'Not found', 'ERR_NOT_FOUND'))

      // 1. Who calls: every request, so a revoked agent is refused mid-session.
      const headers = checkedHeaders(req)
      let caller: Caller
      try {
        // (url is on the resource's origin, checked above: guard.authenticate would parse it again to check that.)
        caller = await internals.authenticateOnOrigin({ method, url: url.href, headers })
      } catch (error) {
        return refuse(res, error)
      }

      // 2. The session must be the caller's own.
      const sessionIds = headerValues(headers, 'mcp-session-id')
      if (sessionIds.length > 1) return refuse(res, new AgentIdError('ERR_INVALID_INPUT', 'more than one Mcp-Session-Id'))
      let session: Session | undefined
      if (sessionIds.length === 1) {
        session = sessions.get(sessionIds[0]!)
        if (session !== undefined && (session.agent !== caller.agent || session.user !== caller.user || session.userIssuer !== (caller.subject.user?.issuer ?? null))) {
          internals.audit({ agent: caller.agent, user: caller.user, server: serverId, action: 'session', target: null, decision: 'deny', policies: [], reason: 'session-bound-to-another-caller', sessionId: session.id })
          session = undefined
        }
        // Another caller's session answers exactly like an unknown one.
        if (session === undefined) return refuse(res, new AgentIdError('ERR_NOT_FOUND', 'session not found'))
      }

      // 3. The body, parsed once here; the transport gets the parsed value, so both read the same messages.
      let body: unknown
      if (method === 'POST') {
        const text = await readBody(req, maxBodyBytes, headerValues(headers, 'content-length')[0])
        try {
          // The verifier's strict parser: a member named twice (at any depth) is refused, not read as its last value.
          body = parseStrictJson(text, { what: 'request body', maxDepth: MAX_BODY_DEPTH })
        } catch {
          return writeJson(res, 400, {}, rpcError(-32700, 'Parse error', 'ERR_INVALID_INPUT'))
        }
        const problem = checkBody(body, MAX_BATCH)
        if (problem !== null) return writeJson(res, 400, {}, rpcError(-32600, `Invalid Request: ${problem}`, 'ERR_INVALID_INPUT'))
      }

      let transport: Transport
      let fresh = false
      if (session !== undefined) {
        session.lastSeen = internals.now()
        transport = session.transport
        // 4. The fast path: plain requests on an open session in JSON mode skip the SDK transport (see fastRequests).
        // Plain requests reusing an id still in flight take it in any mode: the SDK transport maps answers to
        // HTTP responses by id alone, and would hand the first request's answer to nobody.
        const requests = method === 'POST' ? fastRequests(body) : null
        if (requests !== null && (fastPath || requests.some((r) => session!.gate.busy(r.id))) && fastHeaders(headers)) {
          const authInfo = fastAuthInfo(caller)
          // (Its URL and headers are built only if server code reads them: `url` is the handler's, shared by the requests to this target.)
          const requestInfo = new LazyRequestInfo(req, target, resourceOrigin)
          const answers = await session.gate.deliver(requests, { authInfo, requestInfo } as MessageExtra)
          if (res.headersSent || res.destroyed) return
          // With its length: writeHead fixes the header before end() sees the body, so without one node:http
          // sent the answer chunked (a chunk header, the body and a terminating chunk, in more pieces).
          const text = JSON.stringify(answers.length === 1 ? answers[0] : answers)
          res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': session.id, 'content-length': Buffer.byteLength(text) })
          res.end(text)
          return
        }
      } else {
        if (method !== 'POST' || !isRecord(body) || body.method !== 'initialize') {
          return writeJson(res, 400, {}, rpcError(-32000, 'Bad Request: Mcp-Session-Id header is required', 'ERR_INVALID_INPUT'))
        }
        // Sessions being opened count until their initialize is answered, so a burst cannot pass the caps.
        if (sessions.size + opening >= maxSessions || (perAgent.get(caller.agent) ?? 0) + (openingFor.get(caller.agent) ?? 0) >= maxSessionsPerAgent) {
          return refuse(res, new AgentIdError('ERR_UNAVAILABLE', 'too many sessions'))
        }
        opening++
        openingFor.set(caller.agent, (openingFor.get(caller.agent) ?? 0) + 1)
        reserved = caller.agent
        transport = await openSession(caller)
        fresh = true
      }

      const authInfo: AuthInfo = { token: '', clientId: caller.agent, scopes: [], extra: { agent: caller.agent, user: caller.user, via: caller.via } }
      callers.set(authInfo, caller)
      ;(req as IncomingMessage & { auth?: AuthInfo }).auth = authInfo
      if (method === 'GET') {
        // The standalone stream is authenticated once, when it opens: bound its life so it is authenticated again.
        const timer = setTimeout(() => res.end(), maxStreamMs)
        timer.unref()
        res.once('close', () => clearTimeout(timer))
      }
      await transport.handleRequest(req, res, body)
      if (fresh && transport.sessionId === undefined) await transport.close() // initialize refused: nothing to keep
    } catch (error) {
      refuse(res, error)
    } finally {
      if (reserved !== undefined) {
        opening--
        const n = (openingFor.get(reserved) ?? 1) - 1
        if (n <= 0) openingFor.delete(reserved)
        else openingFor.set(reserved, n)
      }
    }
  }
}
