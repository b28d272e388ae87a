// One JSON-RPC request to a Streamable HTTP upstream as a plain POST on the gateway's own upstream session,
// without the SDK Client: the gateway is a proxy, and the SDK Server in front of the agent validates the
// result once on the way out. Errors take the shapes the SDK Client gives them (McpError for a JSON-RPC
// error, StreamableHTTPError for an HTTP status), so the caller handles both paths alike.
import { StreamableHTTPError, type StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js'
import type { NodeFetch } from './node-fetch.js'

/** What a raw request needs of one upstream HTTP connection. */
export interface HttpLink {
  readonly url: string
  /** The upstream's configured headers, secrets resolved. */
  readonly headers: Readonly<Record<string, string>>
  /** The connection's SDK client transport: its session id and negotiated protocol version. */
  readonly transport: StreamableHTTPClientTransport
  /** The connection's SDK client: cancellations go through it. */
  readonly client: Client
  readonly fetch: NodeFetch
}

/** What rawRequest reads of an AbortSignal: an AbortSignal, or a lighter {@link Cancellation}. */
export type CancelSignal = Pick<AbortSignal, 'aborted' | 'reason'> & {
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

/**
 * A one-listener abort signal for rawRequest, without an AbortController: building one (and its event
 * target) per call costs tens of µs of the event loop, and only a cancelled call needs it.
 */
export class Cancellation implements CancelSignal {
  aborted = false
  reason: unknown = undefined
  #listener: (() => void) | undefined
  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listener = listener
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = undefined
  }
  /** Aborts once with `reason` (undefined: an AbortError, as `AbortController.abort()` gives). */
  abort(reason?: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason
    const listener = this.#listener
    this.#listener = undefined
    listener?.()
  }
}

let counter = 0
/** Largest answer read (the gateway's upstream fetch refuses a larger JSON body; the stdio limit is the same). */
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The JSON-RPC messages of a complete SSE body (`data:` lines of each event joined). */
function sseMessages(text: string): unknown[] {
  const out: unknown[] = []
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data: string[] = []
    for (const line of event.split(/\r?\n/)) {
      if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5))
    }
    if (data.length === 0) continue
    try {
      out.push(JSON.parse(data.join('\n')))
    } catch {
      // Not JSON: not a message of ours.
    }
  }
  return out
}

/**
 * The header lines of every request on `link` as a flat list (`[name, value, ...]`, names lower case as fetch
 * sends them): the upstream's configured headers, then content type, accept, the session id and protocol
 * version. The same for each call of a session: made again only when the session or its version changes.
 */
const linkHeaders = new WeakMap<HttpLink, { sessionId: string | undefined; version: string | undefined; lines: readonly string[] }>()
function headerLines(link: HttpLink): readonly string[] {
  const sessionId = link.transport.sessionId
  const version = link.transport.protocolVersion
  const known = linkHeaders.get(link)
  if (known !== undefined && known.sessionId === sessionId && known.version === version) return known.lines
  const headers: Record<string, string> = Object.fromEntries(Object.entries(link.headers).map(([k, v]) => [k.toLowerCase(), v]))
  headers['content-type'] = 'application/json'
  headers.accept = 'application/json, text/event-stream'
  if (sessionId !== undefined) headers['mcp-session-id'] = sessionId
  if (version !== undefined) headers['mcp-protocol-version'] = version
  const lines = Object.freeze(Object.entries(headers).flat())
  linkHeaders.set(link, { sessionId, version, lines })
  return lines
}

/**
 * Sends `{ method, params }` over `link` and resolves with the response's `result` (a JSON object, not
 * otherwise validated here). Rejects with McpError (the upstream's JSON-RPC error, or RequestTimeout after
 * `timeoutMs`), StreamableHTTPError (an HTTP status other than 2xx: 404 = the upstream forgot the session),
 * or the abort reason of `signal`; on timeout or abort the upstream is sent `notifications/cancelled`.
 * @example
 * const result = await rawRequest(link, 'tools/call', { name: 'echo', arguments: {} }, { signal, timeoutMs: 60_000 })
 */
export function rawRequest(link: HttpLink, method: string, params: Record<string, unknown> | undefined, options: { signal?: CancelSignal; timeoutMs: number }): Promise<Record<string, unknown>> {
  const id = `gw-${++counter}`
  const headers = headerLines(link)
  const body = JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) })
  const { signal, timeoutMs } = options
  if (signal?.aborted) return Promise.reject(signal.reason)

  return new Promise<Record<string, unknown>>((resolve, reject) => {
    let settled = false
    let answered = false
    const cancel = (reason: string) => {
      link.client.notification({ method: 'notifications/cancelled', params: { requestId: id, reason } }).catch(() => undefined)
    }
    const finish = (error: unknown, result?: Record<string, unknown>) => {
      if (settled) return
      settled = true
      // Settled before the answer (timeout, abort): a streamed (SSE) body is cut, so an upstream cannot
      // make the gateway hold an endless stream.
      if (!answered) exchange.abort()
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (error !== undefined) reject(error)
      else resolve(result!)
    }
    // The whole answer, JSON or SSE, read up to the cap (a body past it is cut at the chunk that crosses it).
    const exchange = link.fetch.post(link.url, headers, body, MAX_RESPONSE_BYTES)
    const timer = setTimeout(() => {
      if (settled) return
      cancel('timeout')
      finish(new McpError(ErrorCode.RequestTimeout, 'Request timed out', { timeout: timeoutMs }))
    }, timeoutMs)
    const onAbort = () => {
      if (settled) return
      cancel(String(signal?.reason ?? 'aborted'))
      finish(signal?.reason ?? new Error('aborted'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })

    exchange.answer.then((response) => {
      answered = true
      if (settled) return
      const text = response.body.toString('utf8')
      if (response.status < 200 || response.status >= 300) return finish(new StreamableHTTPError(response.status, `Error POSTing to endpoint: ${text}`))
      const type = response.type
      let messages: unknown[]
      if (type === 'application/json') {
        const data: unknown = JSON.parse(text)
        messages = Array.isArray(data) ? data : [data]
      } else if (type === 'text/event-stream') {
        messages = sseMessages(text)
      } else {
        return finish(new StreamableHTTPError(-1, `Unexpected content type: ${type}`))
      }
      for (const m of messages) {
        if (!isRecord(m) || m.id !== id || m.jsonrpc !== '2.0') continue
        if ('result' in m && !('error' in m)) {
          if (!isRecord(m.result)) return finish(new McpError(ErrorCode.InvalidParams, 'upstream result is not an object'))
          return finish(undefined, m.result)
        }
        const e = m.error
        if (isRecord(e) && Number.isSafeInteger(e.code) && typeof e.message === 'string') return finish(new McpError(e.code as number, e.message, e.data))
        return finish(new McpError(ErrorCode.InvalidRequest, 'upstream sent a malformed response'))
      }
      finish(new McpError(ErrorCode.ConnectionClosed, 'upstream ended the response without an answer'))
    }).catch((error: unknown) => finish(error ?? new Error('upstream request failed')))
  })
}
