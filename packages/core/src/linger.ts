import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** The bounds of a lingering close: whichever comes first ends it. */
export interface LingerOptions {
  /** Longest the connection stays open after the answer, ms. Default 2,000 ({@link LINGER_MAX_MS}). */
  maxMs?: number
  /** Most bytes read and discarded after the answer. Default 8 MiB ({@link LINGER_MAX_BYTES}). */
  maxBytes?: number
}

/** Default of {@link LingerOptions.maxMs}. */
export const LINGER_MAX_MS = 2_000
/** Default of {@link LingerOptions.maxBytes}. */
export const LINGER_MAX_BYTES = 8 * 1024 * 1024

// Sockets already lingering: a second close (a late client error) changes nothing.
const lingering = new WeakSet<Duplex>()

function bound(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`closeLingering: ${name} must be a non-negative integer`)
  return value
}

/**
 * Starts the socket's handle reading if it is stopped. Node's HTTP server reads a socket through its
 * native parser and stops the handle when the request's buffer is full; given back to the JS stream,
 * the socket then believes a read is under way and never starts it again, so resume() alone reads
 * nothing. This is what Node's own HTTP server does on resume (onSocketResume).
 */
function readAgain(socket: Duplex): void {
  const handle = (socket as Duplex & { _handle?: { reading?: boolean; readStart?: () => number } | null })._handle
  if (handle == null || handle.reading === true || typeof handle.readStart !== 'function') return
  handle.reading = true
  handle.readStart()
}

/**
 * Closes a server's connection without losing what it wrote last (a lingering close, as HTTP servers
 * do after an early answer): writes `answer` if given, half-closes (our FIN follows the answer), and
 * then only reads and discards what the client still sends - nothing more reaches an HTTP parser, so
 * no further request on the connection is served - until the client closes its side, `maxBytes` have
 * arrived or `maxMs` have passed, and then destroys the socket. Closing at once instead, with the
 * client's data unread, sends a TCP reset that can destroy the answer before the client reads it (a
 * client still uploading sees EPIPE or ECONNRESET, not the 413). Memory stays flat (nothing is kept)
 * and the connection's life is bounded whatever the client does.
 * @example
 * server.on('clientError', (error, socket) => closeLingering(socket, {}, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'))
 */
export function closeLingering(socket: Duplex, options: LingerOptions = {}, answer?: string | Uint8Array): void {
  const maxMs = bound('maxMs', options.maxMs, LINGER_MAX_MS)
  const maxBytes = bound('maxBytes', options.maxBytes, LINGER_MAX_BYTES)
  if (lingering.has(socket)) return
  if (socket.destroyed || !socket.writable) return void socket.destroy()
  lingering.add(socket)
  const stop = () => socket.destroy()
  const timer = setTimeout(stop, maxMs)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
  socket.on('error', () => {}) // a reset while lingering ends it; nothing to report
  // Node's HTTP server reads through its own 'data' and 'end' listeners (or straight from the handle,
  // given back to JS streams when a 'data' listener is added): removed, what follows is discarded.
  socket.removeAllListeners('data')
  socket.removeAllListeners('end')
  let read = 0
  socket.on('data', (chunk: Uint8Array) => {
    read += chunk.length
    if (read > maxBytes) stop()
  })
  socket.once('end', stop)
  socket.resume()
  readAgain(socket)
  if (answer === undefined) socket.end()
  else socket.end(answer)
}

/**
 * For an answer a Node HTTP server may send before it has read the request's body (a 413, a refusal
 * before reading): when a body is still to come, the answer says `Connection: close` and, once it is
 * written, the connection closes lingering ({@link closeLingering}) instead of at once. Call it before
 * the answer's headers are sent; a request without a body, or read in full, is left as it is
 * (keep-alive), as is an answer whose headers are already sent. Returns whether the connection will linger.
 * @example
 * lingerAfterAnswer(res)
 * res.writeHead(413, { 'content-type': 'application/json' }).end(body)
 */
export function lingerAfterAnswer(res: ServerResponse, options: LingerOptions = {}): boolean {
  bound('maxMs', options.maxMs, LINGER_MAX_MS)
  bound('maxBytes', options.maxBytes, LINGER_MAX_BYTES)
  const req = res.req
  const socket = res.socket
  if (req === undefined || req.complete || res.headersSent || socket === null || socket.destroyed) return false
  const headers = req.headers
  if (headers['transfer-encoding'] === undefined && !(Number(headers['content-length']) > 0)) return false
  res.setHeader('connection', 'close')
  // The body is dropped from now on (no handler reads it), which also keeps the socket reading: paused
  // by a full request buffer, it would read nothing more while it lingers.
  req.resume()
  // Node's HTTP server ends a `Connection: close` connection, once the answer is written, with
  // socket.destroySoon() (end, then destroy when our side is flushed): on this socket, that end lingers.
  ;(socket as Duplex & { destroySoon?: () => void }).destroySoon = () => closeLingering(socket, options)
  return true
}
