// The gateway's raw upstream POST (NodeFetch.post) on its own HTTP/1.1 keep-alive connections: one socket
// write per request (request line, header lines made once per session, body) and a strict response parser,
// instead of node:http's ClientRequest, Agent and IncomingMessage stream. node:http's client cost ≈ 85 µs of
// CPU per request on the bench machine against ≈ 30 µs for this (same upstream, same load), and the gateway
// makes one such request per forwarded tools/call. Only what the gateway's POST needs: no redirects, no
// Expect, no upgrade, no pipelining (one request per connection at a time).
//
// The parser refuses what node:http's llhttp refuses by default and what would let an upstream make one
// answer read as two (or two as one): a malformed status line, obs-fold or a bad header line, a header block
// over node:http's maxHeaderSize, Content-Length with Transfer-Encoding, a second Content-Length, a
// transfer coding other than a final `chunked`, a malformed chunk. A body without length is read to the end
// of the connection (which is then not reused); bytes after a complete answer close the connection.
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'

/** A whole upstream answer. */
export interface PostAnswer {
  readonly status: number
  /** The media type of `content-type`, lower case, without parameters ('' when absent). */
  readonly type: string
  readonly body: Buffer
}

/** Where posts go: one origin. */
export interface PostTarget {
  readonly secure: boolean
  /** The host to connect to (an IPv6 address without brackets). */
  readonly hostname: string
  readonly port: number
  /** The request-target: path and query. */
  readonly path: string
  /** The Host header's value. */
  readonly host: string
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** A field value or reason phrase: visible characters, spaces and tabs (no CR, LF or NUL). */
const FIELD_TEXT = /^[\t\x20-\x7e\x80-\xff]*$/
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/
// As llhttp: no space after the size, and each extension a token name with an optional token or quoted value.
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})(?:;[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:=(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*$/
const DIGITS = /^\d{1,15}$/
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;])[\t ]*timeout[\t ]*=[\t ]*(\d{1,9})[\t ]*(?:$|[,;])/i
/**
 * How long an idle connection is kept when the upstream does not say (`Keep-Alive: timeout=N`), and how much
 * sooner than it says: undici's defaults. A POST is never sent again (it may have run), so a connection is
 * dropped before the upstream's idle timeout can close it under a request; node:http and uvicorn servers close
 * idle connections after 5 s.
 */
const IDLE_MS = 4000
const IDLE_MARGIN_MS = 1000
/**
 * How long a JSON answer nobody waits for any more (the call timed out or was cancelled) is still read, to keep
 * its connection: past it the connection is closed, else an upstream that never answers holds a socket per call.
 */
const ABORT_GRACE_MS = 10_000
/** Longest chunk-size line, or trailer section, read before giving up. */
const MAX_CHUNK_LINE = 1024

/** A protocol error in an upstream's answer: the connection is closed. */
export class UpstreamProtocolError extends Error {
  override readonly name = 'UpstreamProtocolError'
}

const enum State { Head, Length, ChunkSize, ChunkData, ChunkEnd, Trailers, UntilClose, Done }

/**
 * One answer read from a connection, fed its bytes as they come. `feed` returns true once the answer is
 * complete (`leftover`: bytes past it); throws UpstreamProtocolError on a malformed answer or past `maxBytes`.
 */
export class AnswerParser {
  state = State.Head
  status = 0
  type = ''
  keepAlive = true
  /** The idle time the upstream allows (`Keep-Alive: timeout=N`), in ms; undefined when it does not say. */
  keepAliveMs: number | undefined
  streaming = false
  /** Bytes received so far on this exchange (any). */
  received = 0
  leftover = false
  #pending: Buffer | null = null
  /** A head arriving in pieces, kept as a list until its end comes (joined at each piece, a dripped head costs its length squared). */
  #headParts: Buffer[] | null = null
  #headLength = 0
  /** How many bytes of CRLFCRLF the head so far ends with (0-3): its end may come across pieces. */
  #headRun = 0
  #scanFrom = 0
  #remaining = 0
  #trailerBytes = 0
  // The body: its first piece, and the others if any (no array literal per answer: see Exchange).
  #first: Buffer | null = null
  #more: Buffer[] | null = null
  #size = 0
  readonly #maxBytes: number
  readonly #maxHeaderBytes: number
  /** Called once the head is read (streaming known). */
  onHead: (() => void) | undefined

  constructor(maxBytes: number, maxHeaderBytes: number) {
    this.#maxBytes = maxBytes
    this.#maxHeaderBytes = maxHeaderBytes
  }

  get body(): Buffer {
    if (this.#first === null) return Buffer.alloc(0)
    return this.#more === null ? this.#first : Buffer.concat([this.#first, ...this.#more], this.#size)
  }

  feed(chunk: Buffer): boolean {
    this.received += chunk.length
    if (this.#headParts !== null) {
      let run = crlfRun(this.#headRun, chunk, 0, Math.min(3, chunk.length))
      if (run !== 4 && chunk.indexOf('\r\n\r\n', 0, 'latin1') === -1) {
        this.#headLength += chunk.length
        if (this.#headLength > this.#maxHeaderBytes) throw new UpstreamProtocolError('upstream answer headers are too large')
        this.#headParts.push(chunk)
        if (chunk.length > 3) run = crlfRun(0, chunk, chunk.length - 3, chunk.length)
        this.#headRun = run
        return false
      }
      // Its end is here: joined once, and read below from just before this piece.
      this.#pending = this.#headParts.length === 1 ? this.#headParts[0]! : Buffer.concat(this.#headParts, this.#headLength)
      this.#scanFrom = Math.max(0, this.#headLength - 3)
      this.#headParts = null
    }
    let buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk])
    this.#pending = null
    let pos = 0
    for (;;) {
      switch (this.state) {
        case State.Head: {
          const end = buf.indexOf('\r\n\r\n', Math.max(pos, this.#scanFrom), 'latin1')
          if (end === -1) {
            if (buf.length - pos > this.#maxHeaderBytes) throw new UpstreamProtocolError('upstream answer headers are too large')
            const rest = buf.subarray(pos)
            this.#headParts = [rest]
            this.#headLength = rest.length
            this.#headRun = crlfRun(0, rest, Math.max(0, rest.length - 3), rest.length)
            return false
          }
          if (end - pos > this.#maxHeaderBytes) throw new UpstreamProtocolError('upstream answer headers are too large')
          const head = buf.toString('latin1', pos, end)
          pos = end + 4
          this.#scanFrom = 0
          this.#readHead(head)
          if ((this.state as State) === State.Done) return this.#finish(buf, pos)
          break
        }
        case State.Length: {
          pos = this.#takeRemaining(buf, pos)
          if (this.#remaining > 0) return false
          this.state = State.Done
          return this.#finish(buf, pos)
        }
        case State.ChunkSize: {
          const end = buf.indexOf('\r\n', pos, 'latin1')
          if (end === -1) return this.#wait(buf, pos)
          const m = end - pos > MAX_CHUNK_LINE ? null : CHUNK_SIZE.exec(buf.toString('latin1', pos, end))
          if (m === null) throw new UpstreamProtocolError('upstream answer has a malformed chunk size')
          pos = end + 2
          this.#remaining = Number.parseInt(m[1]!, 16)
          this.state = this.#remaining === 0 ? State.Trailers : State.ChunkData
          break
        }
        case State.ChunkData: {
          pos = this.#takeRemaining(buf, pos)
          if (this.#remaining > 0) return false
          this.state = State.ChunkEnd
          break
        }
        case State.ChunkEnd: {
          if (buf.length - pos < 2) return this.#wait(buf, pos)
          if (buf[pos] !== 0x0d || buf[pos + 1] !== 0x0a) throw new UpstreamProtocolError('upstream answer has a malformed chunk')
          pos += 2
          this.state = State.ChunkSize
          break
        }
        case State.Trailers: {
          const end = buf.indexOf('\r\n', pos, 'latin1')
          if (end === -1) return this.#wait(buf, pos)
          this.#trailerBytes += end - pos + 2
          if (this.#trailerBytes > this.#maxHeaderBytes) throw new UpstreamProtocolError('upstream answer trailers are too large')
          const line = buf.toString('latin1', pos, end)
          pos = end + 2
          if (line === '') {
            this.state = State.Done
            return this.#finish(buf, pos)
          }
          // Checked, not kept; a Content-Length there is refused, as llhttp does.
          if (headerLine(line)[0].toLowerCase() === 'content-length') throw new UpstreamProtocolError('upstream answer has a Content-Length trailer')
          break
        }
        case State.UntilClose: {
          if (buf.length > pos) this.#take(buf, pos, buf.length - pos)
          return false
        }
        case State.Done:
          return this.#finish(buf, pos)
      }
    }
  }

  /** The connection ended: true when that completes the answer (a body read to the end). */
  end(): boolean {
    if (this.state !== State.UntilClose) return false
    this.state = State.Done
    return true
  }

  #wait(buf: Buffer, pos: number): false {
    if (buf.length - pos > MAX_CHUNK_LINE) throw new UpstreamProtocolError('upstream answer has a malformed chunk')
    this.#pending = buf.subarray(pos)
    return false
  }

  #finish(buf: Buffer, pos: number): true {
    this.leftover = pos < buf.length
    return true
  }

  /** Takes what `buf` holds from `pos` of the #remaining body bytes (a Content-Length body or a chunk); returns the position after them. */
  #takeRemaining(buf: Buffer, pos: number): number {
    const n = Math.min(this.#remaining, buf.length - pos)
    if (n > 0) this.#take(buf, pos, n)
    this.#remaining -= n
    return pos + n
  }

  #take(buf: Buffer, pos: number, n: number): void {
    this.#size += n
    if (this.#size > this.#maxBytes) throw new UpstreamProtocolError(`upstream response larger than ${this.#maxBytes} bytes`)
    const piece = pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n)
    if (this.#first === null) this.#first = piece
    else (this.#more ??= []).push(piece)
  }

  #readHead(head: string): void {
    const lines = head.split('\r\n')
    const status = STATUS_LINE.exec(lines[0]!)
    if (status === null || (status[3] !== undefined && !FIELD_TEXT.test(status[3]))) throw new UpstreamProtocolError('upstream answer has a malformed status line')
    let contentLength: string | undefined
    let transferEncoding: string | undefined
    let type: string | undefined
    let close = status[1] === '0'
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!
      const [name, value] = headerLine(line)
      switch (name.length) {
        case 10: {
          const lower = name.toLowerCase()
          if (lower === 'connection') {
            for (const option of value.toLowerCase().split(',')) if (option.trim() === 'close') close = true
          } else if (lower === 'keep-alive') {
            const timeout = KEEP_ALIVE_TIMEOUT.exec(value)
            if (timeout !== null) this.keepAliveMs = Math.min(this.keepAliveMs ?? Infinity, Number(timeout[1]) * 1000)
          }
          break
        }
        case 12:
          if (type === undefined && name.toLowerCase() === 'content-type') type = value
          break
        case 14:
          if (name.toLowerCase() === 'content-length') {
            // (A tab after the digits: llhttp refuses it.)
            if (contentLength !== undefined || !DIGITS.test(value) || line.endsWith('\t')) throw new UpstreamProtocolError('upstream answer has a malformed or repeated Content-Length')
            contentLength = value
          }
          break
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            // `chunked` then a tab is not chunked to llhttp (it reads to the end of the connection).
            if (line.endsWith('\t')) throw new UpstreamProtocolError('upstream answer has a malformed Transfer-Encoding')
            transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`
          }
          break
      }
    }
    const code = Number(status[2])
    if (code < 200) {
      // An interim answer (100 Continue, 103 Early Hints) has no body; the answer follows. No upgrade is asked for.
      if (code === 101) throw new UpstreamProtocolError('upstream switched protocols')
      // One that closes the connection (HTTP/1.0, Connection: close) leaves no room for the answer: llhttp refuses what follows.
      if (close) throw new UpstreamProtocolError('upstream interim answer closes the connection')
      return
    }
    this.status = code
    this.type = type === undefined ? '' : type.split(';', 1)[0]!.trim().toLowerCase()
    this.streaming = this.type === 'text/event-stream'
    this.keepAlive = !close
    this.onHead?.()
    if (transferEncoding !== undefined) {
      if (contentLength !== undefined) throw new UpstreamProtocolError('upstream answer has both Content-Length and Transfer-Encoding')
      // Chunked last, and once (RFC 9112 §6.1).
      const codings = transferEncoding.toLowerCase().split(',').map((c) => c.trim())
      if (codings.indexOf('chunked') !== codings.length - 1) throw new UpstreamProtocolError('upstream answer has a transfer coding other than a final chunked')
    }
    if (code === 204 || code === 304) {
      this.state = State.Done
    } else if (transferEncoding !== undefined) {
      this.state = State.ChunkSize
    } else if (contentLength !== undefined) {
      this.#remaining = Number(contentLength)
      if (this.#remaining > this.#maxBytes) throw new UpstreamProtocolError(`upstream response larger than ${this.#maxBytes} bytes`)
      this.state = this.#remaining === 0 ? State.Done : State.Length
    } else {
      this.state = State.UntilClose
      this.keepAlive = false
    }
  }
}

/** The CRLFCRLF matcher's state after `bytes[from, to)`, from state `run` (4: matched). */
function crlfRun(run: number, bytes: Buffer, from: number, to: number): number {
  for (let i = from; i < to && run !== 4; i++) {
    const b = bytes[i]
    run = b === (run === 1 || run === 3 ? 0x0a : 0x0d) ? run + 1 : b === 0x0d ? 1 : 0
  }
  return run
}

/** A header (or trailer) line's name and value (OWS trimmed); throws on a malformed line, obs-fold included. */
function headerLine(line: string): [string, string] {
  const colon = line.indexOf(':')
  const name = colon > 0 ? line.slice(0, colon) : ''
  const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, '')
  if (!TOKEN.test(name) || !FIELD_TEXT.test(value)) throw new UpstreamProtocolError('upstream answer has a malformed header line')
  return [name, value]
}

/**
 * One post's exchange on a connection. Exchanges, answers and calls are class instances, not object literals:
 * V8 pretenures a literal site whose objects are often alive at a young collection (allocation-site
 * pretenuring), and an exchange literal stored on the long-lived connection was: each call then left a dead old
 * object pointing at its young parser, closures and request text, which every scavenge kept and promoted until a
 * full collection (bench/gateway-gc.mjs: 0.60-1.16 KB promoted per gateway call and a mark-compact every ≈ 8 s,
 * against 0.24 KB with `--no-allocation-site-pretenuring` and 0.2 KB before this client).
 */
class Exchange {
  constructor(readonly parser: AnswerParser, readonly settle: (error: Error | undefined) => void) {}
}

/** A whole answer (a class: see Exchange). */
class Answer implements PostAnswer {
  constructor(readonly status: number, readonly type: string, readonly body: Buffer) {}
}

/** What `post` returns (a class: see Exchange). */
class PostCall {
  constructor(readonly answer: Promise<PostAnswer>, readonly abort: () => void) {}
}

interface Connection {
  readonly socket: net.Socket
  /** Until when (clock ms) it may be taken from the pool: dropped before the upstream's idle timeout closes it. */
  idleUntil: number
  /** After abort(): closes the connection if its answer has not ended by then. */
  grace: NodeJS.Timeout | undefined
  exchange: Exchange | null
}

/**
 * POSTs on keep-alive HTTP/1.1 connections to one origin at a time (a new origin starts a new pool). `post`
 * resolves with the whole answer, read up to `maxBytes` (else rejects, the connection closed); `abort()`: the
 * answer is no longer wanted: an SSE answer (which may not end) is cut at once, or as soon as its head
 * arrives, and rejects; any other is read to its end, keeping the connection. A post is never sent twice:
 * a kept-alive connection closing before any byte of the answer rejects (the upstream may have read the
 * request and run the tool), and idle connections are dropped before the upstream would close them.
 */
export class Http1Poster {
  #free: Connection[] = []
  readonly #all = new Set<Connection>()
  #origin = ''
  readonly #maxFree: number
  #destroyed = false
  /** The request head up to Content-Length, by header list (one list per upstream session). */
  readonly #heads = new WeakMap<readonly string[], { target: PostTarget; head: string }>()

  readonly #clock: () => number
  readonly #abortGraceMs: number

  /**
   * `maxFree`: idle connections kept; `clock`: milliseconds, for the idle limit; `abortGraceMs`: how long a JSON
   * answer is still read after `abort()` before its connection is closed.
   */
  constructor(options: { maxFree?: number; clock?: () => number; abortGraceMs?: number } = {}) {
    this.#maxFree = options.maxFree ?? 256
    this.#clock = options.clock ?? (() => performance.now())
    this.#abortGraceMs = options.abortGraceMs ?? ABORT_GRACE_MS
  }

  post(target: PostTarget, headers: readonly string[], body: string, maxBytes: number): { readonly answer: Promise<PostAnswer>; abort(): void } {
    const origin = `${target.secure ? 's' : ''}${target.hostname}|${target.port}`
    if (origin !== this.#origin) {
      for (const c of this.#free) c.socket.destroy()
      this.#free = []
      this.#origin = origin
    }
    const text = `${this.#head(target, headers)}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    let aborted = false
    // Set once an SSE answer is cut: whatever the connection then gives, the answer rejects.
    let cut = false
    let current: Connection | undefined
    // This post's exchange: once it has ended, its connection may carry another post, which abort() must not touch.
    let mine: Exchange | undefined
    const cutStream = () => {
      cut = true
      current?.socket.destroy()
    }
    const grace = this.#abortGraceMs
    // A fixed time, not socket inactivity: an upstream dripping a byte now and then would never reach that.
    const bound = (conn: Connection) => {
      conn.grace ??= setTimeout(() => conn.socket.destroy(new Error('upstream gave no answer within the grace after abort')), grace).unref()
    }
    const send = (): Promise<PostAnswer> => new Promise<PostAnswer>((resolve, reject) => {
      const start = (conn: Connection) => {
        current = conn
        const parser = new AnswerParser(maxBytes, http.maxHeaderSize)
        parser.onHead = () => {
          if (aborted && parser.streaming) cutStream()
        }
        conn.exchange = mine = new Exchange(parser, (error) => {
          conn.exchange = null
          if (conn.grace !== undefined) {
            clearTimeout(conn.grace)
            conn.grace = undefined
          }
          if (cut) {
            conn.socket.destroy()
            return reject(new Error('the upstream answer is no longer wanted'))
          }
          if (error === undefined) {
            this.#release(conn, parser)
            return resolve(new Answer(parser.status, parser.type, parser.body))
          }
          conn.socket.destroy()
          // Not sent again, even on a kept-alive connection closed before any byte of the answer: nothing tells a
          // close before the request arrived from one after the upstream read it and ran the tool (a crash), and a
          // tools/call is not idempotent. (Go's net/http does not replay a POST either.)
          reject(error)
        })
        conn.socket.write(text)
        if (aborted) bound(conn)
      }
      if (this.#destroyed) return reject(new Error('the upstream connections are closed'))
      const pooled = this.#idle()
      if (pooled === undefined) return start(this.#connect(target))
      // A pooled connection is written to only after the event loop has polled once more (two setImmediate turns:
      // one may run in the check phase right after the current poll): a close the upstream sent while it was idle
      // (its FIN here but not yet read, as when it restarts just before this call) is seen first and a new
      // connection taken, since a request once written is never sent again.
      setImmediate(() => setImmediate(() => {
        if (this.#destroyed) return reject(new Error('the upstream connections are closed'))
        if (!pooled.socket.destroyed && pooled.socket.writable) return start(pooled)
        pooled.socket.destroy()
        start(this.#connect(target))
      }))
    })
    return new PostCall(send(), () => {
      aborted = true
      if (mine === undefined || current?.exchange !== mine) return
      const parser = mine.parser
      // An SSE head already read is cut now; one still to come is cut when it arrives (onHead); any other
      // answer is read for a while yet.
      if (parser.state !== State.Head && parser.streaming) cutStream()
      else bound(current)
    })
  }

  /** Closes every connection, idle or busy; later posts reject. */
  destroy(): void {
    this.#destroyed = true
    for (const c of this.#all) c.socket.destroy()
    this.#free = []
  }

  #head(target: PostTarget, headers: readonly string[]): string {
    const known = this.#heads.get(headers)
    if (known !== undefined && known.target === target) return known.head
    let head = `POST ${target.path} HTTP/1.1\r\nhost: ${target.host}\r\n`
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i]!
      const value = headers[i + 1]!
      // node:http's own checks (a secret with a line break would otherwise add a header line).
      http.validateHeaderName(name)
      http.validateHeaderValue(name, value)
      const lower = name.toLowerCase()
      if (lower === 'host' || lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') continue
      head += `${name}: ${value}\r\n`
    }
    this.#heads.set(headers, { target, head })
    return head
  }

  #connect(target: PostTarget): Connection {
    const socket = target.secure
      ? tls.connect({ host: target.hostname, port: target.port, ...(net.isIP(target.hostname) === 0 ? { servername: target.hostname } : {}) })
      : net.connect({ host: target.hostname, port: target.port })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 1000)
    const conn: Connection = { socket, idleUntil: 0, grace: undefined, exchange: null }
    this.#all.add(conn)
    let failure: Error | undefined
    socket.on('data', (chunk: Buffer) => {
      const exchange = conn.exchange
      // Bytes nobody asked for: the connection is out of step with its answers.
      if (exchange === null) return void socket.destroy()
      let done: boolean
      try {
        done = exchange.parser.feed(chunk)
      } catch (error) {
        return exchange.settle(error as Error)
      }
      if (done) exchange.settle(undefined)
    })
    socket.on('error', (error) => {
      failure = error
    })
    socket.on('close', () => {
      this.#all.delete(conn)
      const i = this.#free.indexOf(conn)
      if (i !== -1) this.#free.splice(i, 1)
      const exchange = conn.exchange
      if (exchange === null) return
      // (A body read to the end is complete only if the connection ended cleanly, not reset.)
      if (failure === undefined && exchange.parser.end()) return exchange.settle(undefined)
      exchange.settle(failure ?? new Error(exchange.parser.received === 0 ? 'upstream closed the connection' : 'upstream response cut short'))
    })
    return conn
  }

  /** The newest idle connection still open and young enough (node:http's agent also takes the last one freed), kept alive again. */
  #idle(): Connection | undefined {
    const now = this.#clock()
    for (let conn = this.#free.pop(); conn !== undefined; conn = this.#free.pop()) {
      if (conn.socket.destroyed || !conn.socket.writable) continue
      if (now > conn.idleUntil) {
        conn.socket.destroy()
        continue
      }
      conn.socket.ref()
      return conn
    }
    return undefined
  }

  #release(conn: Connection, parser: AnswerParser): void {
    const idle = parser.keepAliveMs === undefined ? IDLE_MS : parser.keepAliveMs - IDLE_MARGIN_MS
    if (!parser.keepAlive || idle <= 0 || parser.leftover || this.#destroyed || conn.socket.destroyed || this.#free.length >= this.#maxFree) {
      conn.socket.destroy()
      return
    }
    conn.idleUntil = this.#clock() + idle
    // An idle connection does not keep the process alive (as node:http's agent unrefs its free sockets).
    conn.socket.unref()
    this.#free.push(conn)
  }
}
