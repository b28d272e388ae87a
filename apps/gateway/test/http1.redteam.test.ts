// Red team on the gateway's own HTTP/1.1 client (http1.ts), as a hostile or broken upstream and as a network
// adversary: answers node:http's parser (llhttp) refuses must be refused too (a framing difference is how one
// answer gets read as two), and the pool must neither replay a call the upstream may have run nor keep
// sockets without end for answers nobody waits for.
import { createRequire } from 'node:module'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { AnswerParser, Http1Poster, UpstreamProtocolError, type PostTarget } from '../src/http1.js'
import { createNodeFetch } from '../src/node-fetch.js'
import { onWholeRequests } from './scripted-requests.js'

const require = createRequire(import.meta.url)
// node:http's own response parser, to hold the cases below against.
const { HTTPParser } = require('_http_common') as { HTTPParser: any }

/**
 * The body of the first final answer llhttp reads whole from `bytes`, as node:http's client runs it (1xx
 * bodies skipped), whatever follows it; undefined if it refuses the bytes before that answer ends.
 */
function llhttpBody(bytes: Buffer): string | undefined {
  const parser = new HTTPParser()
  parser.initialize(HTTPParser.RESPONSE, {}, 16 * 1024, 0)
  let status = 0
  let body: Buffer[] = []
  let first: string | undefined
  parser[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, _h: unknown, _m: unknown, _u: unknown, code: number) => {
    status = code
    body = []
    return code < 200 ? 1 : 0
  }
  parser[HTTPParser.kOnBody] = (b: Buffer) => void body.push(Buffer.from(b))
  parser[HTTPParser.kOnMessageComplete] = () => {
    if (status >= 200 && first === undefined) first = Buffer.concat(body).toString('latin1')
  }
  parser.execute(bytes)
  return first
}

const llhttpAccepts = (bytes: Buffer): boolean => llhttpBody(bytes) !== undefined

function oursAccepts(bytes: Buffer): boolean {
  try {
    return new AnswerParser(1 << 20, 16 * 1024).feed(bytes)
  } catch (error) {
    expect(error).toBeInstanceOf(UpstreamProtocolError)
    return false
  }
}

const chunked = (body: string) => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`

describe('AnswerParser against llhttp (red team)', () => {
  it('refuses every answer llhttp refuses here (each was accepted before)', () => {
    const cases = [
      chunked('5 \r\nhello\r\n0\r\n\r\n'), // space after the chunk size
      chunked('5\t\r\nhello\r\n0\r\n\r\n'),
      chunked('5 ;a=b\r\nhello\r\n0\r\n\r\n'),
      chunked('5;\r\nhello\r\n0\r\n\r\n'), // an empty extension
      chunked('5;a b\r\nhello\r\n0\r\n\r\n'),
      chunked('5;a:b\r\nhello\r\n0\r\n\r\n'),
      chunked('5;a=b"\r\nhello\r\n0\r\n\r\n'),
      chunked('5;a=\tb\r\nhello\r\n0\r\n\r\n'),
      chunked('5\r\nhello\r\n0\r\nContent-Length: 3\r\n\r\n'), // Content-Length as a trailer
      'HTTP/1.1 200 OK\r\nContent-Length: 5\t\r\n\r\nhello',
      'HTTP/1.1 200 OK\r\nContent-Length: 5 \t\r\n\r\nhello',
      // `chunked` then a tab is no chunked coding to llhttp: it would read this answer to the end of the connection.
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      // An interim answer that closes the connection, then an answer on it.
      'HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
      'HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
      'HTTP/1.1 103 Early Hints\r\nconnection: keep-alive, close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
    ]
    for (const text of cases) {
      const bytes = Buffer.from(text, 'latin1')
      expect([text, llhttpAccepts(bytes)]).toEqual([text, false])
      expect([text, oursAccepts(bytes)]).toEqual([text, false])
    }
  })

  it('still reads what both accept: extensions with token and quoted values, OWS around framing values', () => {
    const cases = [
      chunked('5;a=b;c;d="x \\" y"\r\nhello\r\n0;last\r\nx-t: 1\r\n\r\n'),
      'HTTP/1.1 200 OK\r\nContent-Length:\t5 \r\n\r\nhello',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding:\tgzip ,  chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
    ]
    for (const text of cases) {
      const bytes = Buffer.from(text, 'latin1')
      expect([text, llhttpAccepts(bytes)]).toEqual([text, true])
      const parser = new AnswerParser(1 << 20, 16 * 1024)
      expect([text, parser.feed(bytes)]).toEqual([text, true])
      expect(parser.body.toString()).toBe('hello')
    }
  })

  it('agrees with llhttp on random mutations of well-formed answers: never accepts what it refuses, never reads another body', () => {
    const seeds = [
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello',
      chunked('5;a=b\r\nhello\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n'),
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
    ]
    const alphabet = ['\r', '\n', ' ', '\t', ':', ';', ',', '0', '5', 'a', 'g', '-', '+', '"', '=', '\x00', '\x7f', '\xff', 'Content-Length: 1\r\n', 'Transfer-Encoding: chunked\r\n', '\r\n', 'HTTP/1.0 ']
    let state = 0x2545f491
    const random = (n: number) => {
      // xorshift32: the same cases on every run.
      state ^= state << 13
      state ^= state >>> 17
      state ^= state << 5
      return (state >>> 0) % n
    }
    let accepted = 0
    for (let i = 0; i < 40_000; i++) {
      let text = seeds[random(seeds.length)]!
      for (let k = 1 + random(3); k > 0; k--) {
        const at = random(text.length + 1)
        const piece = alphabet[random(alphabet.length)]!
        const op = random(3)
        text = op === 0 ? text.slice(0, at) + piece + text.slice(at) : op === 1 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + piece + text.slice(at + 1)
      }
      const bytes = Buffer.from(text, 'latin1')
      const parser = new AnswerParser(1 << 20, 16 * 1024)
      try {
        if (!parser.feed(bytes)) continue
      } catch {
        continue
      }
      accepted++
      expect([text, llhttpBody(bytes)]).toEqual([text, parser.body.toString('latin1')])
    }
    expect(accepted).toBeGreaterThan(1000)
  })
})

describe('AnswerParser, dripped (red team)', () => {
  it('a head dripped a byte at a time costs its length, not its length squared (failed before: ~134 MB copied for 16 KB)', () => {
    const head = `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-pad: ${'a'.repeat(16 * 1024 - 100)}\r\ncontent-length: 2\r\n\r\n{}`
    const bytes = Buffer.from(head, 'latin1')
    const concat = Buffer.concat
    let copied = 0
    const spy = vi.spyOn(Buffer, 'concat').mockImplementation((list, length) => {
      const joined = concat(list, length)
      copied += joined.length
      return joined
    })
    try {
      const parser = new AnswerParser(1 << 20, 16 * 1024)
      let done = false
      for (let i = 0; i < bytes.length; i++) done = parser.feed(bytes.subarray(i, i + 1))
      expect(done).toBe(true)
      expect(parser.body.toString()).toBe('{}')
    } finally {
      spy.mockRestore()
    }
    expect(copied).toBeLessThan(4 * bytes.length)
  })

  it('reads the same answer however it is cut into pieces of 1 to 5 bytes', () => {
    const text = 'HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n4\r\n\r\n\r\n\r\n0\r\nx: \r\n\r\n'
    const bytes = Buffer.from(text, 'latin1')
    let state = 7
    for (let round = 0; round < 500; round++) {
      const parser = new AnswerParser(1 << 20, 16 * 1024)
      let done = false
      for (let i = 0; i < bytes.length && !done; ) {
        state = (state * 48271) % 0x7fffffff
        const n = 1 + (state % 5)
        done = parser.feed(bytes.subarray(i, i + n))
        i += n
      }
      expect(done).toBe(true)
      expect(parser.body.toString('latin1')).toBe('hello\r\n\r\n')
    }
  })
})

let server: Server | undefined
let poster: Http1Poster | undefined

afterEach(async () => {
  poster?.destroy()
  poster = undefined
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())))
  server = undefined
})

/** A TCP upstream that hands each whole request (head and Content-Length body) to `answer`. */
async function upstream(answer: (socket: Socket, n: number) => void, options?: ConstructorParameters<typeof Http1Poster>[0]): Promise<{ target: PostTarget; connections: () => number; requests: () => number; open: () => number }> {
  let connections = 0
  let open = 0
  let n = 0
  server = createServer((socket) => {
    connections++
    open++
    socket.on('close', () => open--)
    onWholeRequests(socket, () => answer(socket, n++))
  })
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const port = (server!.address() as AddressInfo).port
  poster = new Http1Poster(options)
  return { target: { secure: false, hostname: '127.0.0.1', port, path: '/mcp', host: `127.0.0.1:${port}` }, connections: () => connections, requests: () => n, open: () => open }
}

const ok = (extra = '') => `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n${extra}\r\n{}`
const call = (target: PostTarget) => poster!.post(target, [], '{"jsonrpc":"2.0","id":1,"method":"tools/call"}', 1 << 20).answer

describe('Http1Poster (red team)', () => {
  it('never sends a tools/call twice: a kept connection the upstream closes after reading the request rejects (failed before: replayed)', async () => {
    // The upstream reads the second call, runs the tool (a transfer, say), and crashes before answering.
    const up = await upstream((socket, n) => {
      if (n === 0) socket.write(ok())
      else setTimeout(() => socket.destroy(), 20)
    })
    await call(up.target)
    await expect(call(up.target)).rejects.toThrow(/closed the connection/)
    await new Promise((r) => setTimeout(r, 50))
    expect(up.requests()).toBe(2)
  })

  it('an upstream closing each connection right after its answer (no Connection: close): every call answered, each sent once', async () => {
    // Its FIN arrives with the answer but is read after it: the pooled connection must not be written to first.
    const up = await upstream((socket) => socket.end(ok()))
    for (let i = 0; i < 20; i++) expect((await call(up.target)).status).toBe(200)
    expect(up.requests()).toBe(20)
    expect(up.connections()).toBe(20)
  })

  it('drops an idle connection before the upstream would: its Keep-Alive timeout less 1 s, else 4 s (failed before: kept for ever)', async () => {
    let now = 0
    const up = await upstream((socket, n) => socket.write(ok(n < 2 ? 'keep-alive: timeout=1\r\n' : 'Keep-Alive: max=100, timeout=5\r\n')), { clock: () => now })
    await call(up.target)
    await call(up.target) // timeout=1: not kept at all
    expect(up.connections()).toBe(2)
    await call(up.target) // timeout=5: kept for 4 s
    now += 3999
    await call(up.target)
    expect(up.connections()).toBe(3)
    now += 4001
    await call(up.target)
    expect(up.connections()).toBe(4)
  })

  it('without a Keep-Alive timeout, an idle connection is kept 4 s', async () => {
    let now = 0
    const up = await upstream((socket) => socket.write(ok()), { clock: () => now })
    await call(up.target)
    now += 4000
    await call(up.target)
    expect(up.connections()).toBe(1)
    now += 4001
    await call(up.target)
    expect(up.connections()).toBe(2)
  })

  it('a call given up on (timeout, abort) whose upstream never answers does not hold its socket for ever (failed before: one socket per call, kept)', async () => {
    const up = await upstream(() => undefined, { abortGraceMs: 50 })
    const exchanges = Array.from({ length: 5 }, () => poster!.post(up.target, [], '{}', 1 << 20))
    for (const e of exchanges) e.answer.catch(() => undefined)
    await new Promise((r) => setTimeout(r, 20))
    expect(up.open()).toBe(5)
    for (const e of exchanges) e.abort()
    for (const e of exchanges) await expect(e.answer).rejects.toThrow(/no answer/)
    await new Promise((r) => setTimeout(r, 20))
    expect(up.open()).toBe(0)
  })

  it('a JSON answer that ends within the grace after abort is still read, and its connection kept', async () => {
    const up = await upstream((socket) => setTimeout(() => socket.write(ok()), 30), { abortGraceMs: 500 })
    const first = poster!.post(up.target, [], '{}', 1 << 20)
    setTimeout(() => first.abort(), 5)
    expect((await first.answer).status).toBe(200)
    await new Promise((r) => setTimeout(r, 600)) // past the grace: the kept connection is not closed by it
    expect((await call(up.target)).status).toBe(200)
    expect(up.connections()).toBe(1)
  })

  it('the grace is a fixed time: an upstream dripping its answer a byte at a time is cut too', async () => {
    const up = await upstream((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n')
      const drip = setInterval(() => (socket.destroyed ? clearInterval(drip) : socket.write('x')), 10)
    }, { abortGraceMs: 100 })
    const exchange = poster!.post(up.target, [], '{}', 1 << 20)
    exchange.answer.catch(() => undefined)
    await new Promise((r) => setTimeout(r, 20))
    const start = performance.now()
    exchange.abort()
    await expect(exchange.answer).rejects.toThrow(/no answer/)
    expect(performance.now() - start).toBeLessThan(1000)
  })

  it("a late abort() of an answered post touches nothing: not the next post's stream on the same connection (failed before: cut it)", async () => {
    const up = await upstream((socket, n) => {
      if (n === 0) socket.write(ok())
      else socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\n: hi\n\r\n')
      if (n === 1) setTimeout(() => socket.write('0\r\n\r\n'), 100)
    })
    const first = poster!.post(up.target, [], '{}', 1 << 20)
    await first.answer
    const second = poster!.post(up.target, [], '{}', 1 << 20)
    await new Promise((r) => setTimeout(r, 40)) // the second's head has come, on the same connection
    first.abort()
    expect((await second.answer).body.toString()).toBe(': hi\n')
    expect(up.connections()).toBe(1)
  })

  it("the SDK path's fetch does not send a POST twice either (a tools/call with a progress token goes that way; failed before: replayed)", async () => {
    const up = await upstream((socket, n) => {
      if (n === 0) socket.write(ok())
      else socket.destroy() // read the call, maybe ran it, gave no answer
    })
    const fetch = createNodeFetch()
    try {
      const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":2,"method":"tools/call"}' }
      expect((await fetch(`http://${up.target.host}/mcp`, init)).status).toBe(200)
      await expect(fetch(`http://${up.target.host}/mcp`, init)).rejects.toThrow(/socket hang up/)
      await new Promise((r) => setTimeout(r, 50))
      expect(up.requests()).toBe(2)
    } finally {
      fetch.destroy()
    }
  })
})
