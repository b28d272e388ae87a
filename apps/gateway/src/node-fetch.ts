// A fetch for the gateway's upstream HTTP transport on node:http(s) with keep-alive, instead of the
// global fetch (undici): the gateway makes one upstream request per forwarded call, and undici's fetch
// costs several times more CPU per request. It follows no redirects (an upstream's credentials never
// go to another URL), and streams `text/event-stream` bodies.
import http from 'node:http'
import https from 'node:https'
import { Readable } from 'node:stream'
import { Http1Poster, type PostAnswer, type PostTarget } from './http1.js'

type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>
export type { PostAnswer }

/** The gateway's upstream fetch: node:http(s) with keep-alive; `destroy()` closes its sockets. */
export type NodeFetch = FetchLike & {
  destroy(): void
  /**
   * POSTs `body` (JSON text) to `url` on keep-alive connections of its own (`http1.ts`: one write per request,
   * a strict HTTP/1.1 answer parser; not node:http's ClientRequest), without the fetch API around it, and
   * reads the whole answer, JSON or SSE, up to `maxBytes` (else rejects, the connection closed). `abort()`:
   * the answer is no longer wanted; an SSE stream (which may not end) is cut at once, or as soon as it
   * starts, and rejects; a JSON body is read to its end (up to `maxBytes`), keeping the connection alive.
   * `headers`: lower-case names, as a record or as a flat list of names and values (`[name, value, ...]`);
   * Host and Content-Length are added.
   */
  post(url: string, headers: Readonly<Record<string, string>> | readonly string[], body: string, maxBytes: number): { readonly answer: Promise<PostAnswer>; abort(): void }
}

const NULL_BODY = new Set([101, 204, 205, 304])
/** Largest complete upstream response held in memory (the stdio transport's limit is 10 MB too). */
const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024

/**
 * A complete (non-streaming) response as the SDK's client transport reads it — `ok`, `status`,
 * `headers.get`, `json()`, `text()`, `body?.cancel()` — without a web stream behind it: the body is
 * already in memory, and wrapping it in a WHATWG Response costs more than the rest of the hop.
 */
function bufferedResponse(url: string, status: number, statusText: string, raw: http.IncomingHttpHeaders, body: Buffer): Response {
  const headers = {
    get(name: string): string | null {
      const value = raw[name.toLowerCase()]
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
    },
    has(name: string): boolean {
      return raw[name.toLowerCase()] !== undefined
    },
  }
  const text = () => body.toString('utf8')
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText,
    url,
    type: 'basic',
    redirected: false,
    headers,
    body: null,
    bodyUsed: false,
    text: async () => text(),
    json: async () => JSON.parse(text()),
  } as unknown as Response
}

const LF = 0x0a

/**
 * An SSE body that errors (and closes the connection) once one event grows past `max` bytes: the
 * stream itself may live for hours, so its total is not bounded, but the SDK's event parser buffers an
 * event until its blank line, and an upstream sending one endless event would grow it without end.
 * An event ends at an empty line (`\n\n` or `\n\r\n`).
 */
export function eventBounded(stream: ReadableStream<Uint8Array>, max: number, destroy: () => void): ReadableStream<Uint8Array> {
  let pending = 0 // bytes since the last event boundary
  let tail = Buffer.alloc(0) // the last two bytes, to see a boundary split across chunks
  return stream.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      const view = tail.length === 0 ? bytes : Buffer.concat([tail, bytes])
      let boundary = -1
      for (let i = view.lastIndexOf(LF); i > 0; i = view.lastIndexOf(LF, i - 1)) {
        if (view[i - 1] === LF || (view[i - 1] === 0x0d && i > 1 && view[i - 2] === LF)) {
          boundary = i
          break
        }
      }
      pending = boundary === -1 ? pending + bytes.length : view.length - boundary - 1
      tail = Buffer.from(view.subarray(Math.max(0, view.length - 2)))
      if (pending > max) {
        destroy()
        controller.error(new Error(`upstream SSE event larger than ${max} bytes`))
        return
      }
      controller.enqueue(chunk)
    },
  }))
}

/** A fetch over a keep-alive node:http(s) agent pair; close with `destroy()`. Refuses a complete response over `maxResponseBytes`. */
export function createNodeFetch(maxResponseBytes = DEFAULT_MAX_RESPONSE_BYTES): NodeFetch {
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }
  // The gateway posts to one URL per upstream: parsed once (http.request only reads it).
  let lastInput: string | undefined
  let lastUrl: URL | undefined
  const parse = (input: string | URL): URL => {
    if (typeof input !== 'string') return new URL(input)
    if (input !== lastInput) {
      lastUrl = new URL(input)
      lastInput = input
    }
    return lastUrl!
  }
  const fetchImpl = (input: string | URL, init: RequestInit = {}, retried = false): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const url = parse(input)
      const secure = url.protocol === 'https:'
      if (!secure && url.protocol !== 'http:') return reject(new TypeError(`unsupported protocol ${url.protocol}`))
      const headers: Record<string, string> = {}
      const given = init.headers
      if (given instanceof Headers) {
        // The SDK hands a Headers object: read it as is rather than copy it into another one.
        given.forEach((value, key) => {
          headers[key] = value
        })
      } else if (given !== undefined && !Array.isArray(given) && Object.getPrototypeOf(given) === Object.prototype) {
        // A plain object of strings (the gateway's own raw requests): no Headers object built.
        for (const [key, value] of Object.entries(given as Record<string, string>)) headers[key.toLowerCase()] = String(value)
      } else {
        new Headers(given).forEach((value, key) => {
          headers[key] = value
        })
      }
      if (init.signal?.aborted) return reject(init.signal.reason ?? new Error('aborted'))
      const body = init.body
      if (body !== undefined && body !== null && typeof body !== 'string') return reject(new TypeError('node fetch: only string bodies'))
      if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body))
      const request = (secure ? https : http).request(
        url,
        // The SDK passes one transport-wide signal with every request; listening on it per request would pile
        // up listeners under load. It aborts only when the transport closes, which destroys the agents' sockets.
        // A retry goes out on a new connection of its own: the other pooled sockets may be as stale as the first.
        { method: init.method ?? 'GET', headers, agent: retried ? false : secure ? agents.https : agents.http },
        (res) => {
          const status = res.statusCode ?? 502
          if ((res.headers['content-type'] ?? '').includes('text/event-stream') && !NULL_BODY.has(status)) {
            const responseHeaders = new Headers()
            for (const [key, value] of Object.entries(res.headers)) {
              if (Array.isArray(value)) for (const v of value) responseHeaders.append(key, v)
              else if (value !== undefined) responseHeaders.set(key, value)
            }
            return resolve(new Response(eventBounded(Readable.toWeb(res) as ReadableStream<Uint8Array>, maxResponseBytes, () => res.destroy()), { status, statusText: res.statusMessage ?? '', headers: responseHeaders }))
          }
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (c: Buffer) => {
            size += c.length
            if (size > maxResponseBytes) {
              res.destroy()
              request.destroy()
              return reject(new Error(`upstream response larger than ${maxResponseBytes} bytes`))
            }
            chunks.push(c)
          })
          res.on('error', reject)
          res.on('end', () => resolve(bufferedResponse(url.href, status, res.statusMessage ?? '', res.headers, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))))
        },
      )
      request.on('error', (error: NodeJS.ErrnoException) => {
        // The upstream closed an idle keep-alive socket as this request went out on it: sent again once, on a new
        // connection (the pattern Node's http docs give) — but not a POST: ECONNRESET ("socket hang up") is also
        // what an upstream gives that read the JSON-RPC call, ran it and closed without answering (a crash), and a
        // tools/call is not idempotent. (node:http's agent drops idle sockets at the upstream's Keep-Alive timeout.)
        if (!retried && request.reusedSocket && error.code === 'ECONNRESET' && (init.method ?? 'GET').toUpperCase() !== 'POST') resolve(fetchImpl(input, init, true))
        else reject(error)
      })
      request.end(body ?? undefined)
    })
  // The raw POSTs on connections of their own (http1.ts), the URL parsed once per upstream URL.
  const poster = new Http1Poster()
  let postUrl: string | undefined
  let postTarget: PostTarget | undefined
  const post: NodeFetch['post'] = (input, headers, body, maxBytes) => {
    if (input !== postUrl) {
      const url = new URL(input)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`unsupported protocol ${url.protocol}`)
      const secure = url.protocol === 'https:'
      // `host`: the Host header node:http would set (IPv6 in brackets, the port unless the scheme's default, which URL drops).
      postTarget = Object.freeze({
        secure, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
        path: `${url.pathname}${url.search}`, host: url.host,
      })
      postUrl = input
    }
    const lines: readonly string[] = Array.isArray(headers) ? (headers as readonly string[]) : Object.entries(headers).flat()
    return poster.post(postTarget!, lines, body, maxBytes)
  }
  return Object.assign((input: string | URL, init?: RequestInit) => fetchImpl(input, init), {
    post,
    destroy() {
      agents.http.destroy()
      agents.https.destroy()
      poster.destroy()
    },
  })
}
