// The gateway's raw upstream POST connections (http1.ts): the answer parser fed hostile and split answers,
// and the keep-alive pool against a scripted TCP server (connections counted, stale, cut, streamed).
import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { AnswerParser, Http1Poster, UpstreamProtocolError, type PostTarget } from '../src/http1.js'
import { onWholeRequests } from './scripted-requests.js'

/** Feeds `text` to a new parser in pieces cut at `cuts`; the parser and whether the answer completed. */
function parse(text: string | Buffer, cuts: number[] = [], maxBytes = 1 << 20): { parser: AnswerParser; done: boolean } {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text
  const parser = new AnswerParser(maxBytes, 16 * 1024)
  let done = false
  let from = 0
  for (const cut of [...cuts, bytes.length]) {
    const at = Math.min(cut, bytes.length)
    if (at <= from) continue
    expect(done).toBe(false)
    done = parser.feed(bytes.subarray(from, at))
    from = at
  }
  return { parser, done }
}

function refused(text: string, maxBytes?: number): string {
  try {
    parse(text, [], maxBytes)
  } catch (error) {
    expect(error).toBeInstanceOf(UpstreamProtocolError)
    return (error as Error).message
  }
  throw new Error('not refused')
}

const CHUNKED = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: Application/JSON; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n' +
  '5;ext=1\r\n{"a":\r\n' + 'a\r\n"0123456"}\r\n' + '0\r\nx-trailer: yes\r\n\r\n'

describe('AnswerParser', () => {
  it('reads a chunked answer after an interim one, whatever byte it is split at', () => {
    for (let cut = 0; cut <= CHUNKED.length; cut++) {
      for (const second of [cut + 1, cut + 7]) {
        const { parser, done } = parse(CHUNKED, [cut, second])
        expect(done).toBe(true)
        expect(parser.status).toBe(200)
        expect(parser.type).toBe('application/json')
        expect(parser.body.toString()).toBe('{"a":"0123456"}')
        expect(parser.keepAlive).toBe(true)
        expect(parser.leftover).toBe(false)
      }
    }
  })

  it('reads a Content-Length answer byte by byte, and sees bytes past it', () => {
    const text = 'HTTP/1.1 202 Accepted\r\ncontent-length: 4\r\n\r\nnullEXTRA'
    const { parser, done } = parse(text, Array.from({ length: 44 }, (_, i) => i + 1))
    expect(done).toBe(true)
    expect(parser.body.toString()).toBe('null')
    expect(parser.leftover).toBe(true)
  })

  it('a body without length is read to the end of the connection, which is then not reused', () => {
    const { parser, done } = parse('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nabc')
    expect(done).toBe(false)
    parser.feed(Buffer.from('def'))
    expect(parser.end()).toBe(true)
    expect(parser.body.toString()).toBe('abcdef')
    expect(parser.keepAlive).toBe(false)
  })

  it('a framed answer cut short is not complete', () => {
    const { parser, done } = parse('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc')
    expect(done).toBe(false)
    expect(parser.end()).toBe(false)
  })

  it('Connection: close, HTTP/1.0, 204 and 304', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n').parser.keepAlive).toBe(false)
    expect(parse('HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n').parser.keepAlive).toBe(false)
    for (const status of [204, 304]) {
      const { parser, done } = parse(`HTTP/1.1 ${status} X\r\ncontent-length: 5\r\n\r\n`)
      expect(done).toBe(true)
      expect(parser.body.length).toBe(0)
    }
    expect(parse('HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n').done).toBe(true) // no reason phrase
  })

  it('refuses what could make one answer read as two, or two as one', () => {
    expect(refused('HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n')).toMatch(/both/)
    expect(refused('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nContent-Length: 3\r\n\r\n')).toMatch(/both/)
    expect(refused('HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\n')).toMatch(/Content-Length/)
    expect(refused('HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n')).toMatch(/Content-Length/)
    expect(refused('HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n')).toMatch(/Content-Length/)
    expect(refused('HTTP/1.1 200 OK\r\ncontent-length: 0x10\r\n\r\n')).toMatch(/Content-Length/)
    expect(refused('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n')).toMatch(/chunked/)
    expect(refused('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: identity\r\n\r\n')).toMatch(/chunked/)
    expect(refused('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, x\r\n\r\n')).toMatch(/chunked/)
    expect(refused('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n')).toMatch(/chunked/)
    expect(parse('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n0\r\n\r\n').done).toBe(true)
    expect(refused('HTTP/1.1 200 OK\r\nx: a\r\n folded\r\ncontent-length: 0\r\n\r\n')).toMatch(/header line/)
    expect(refused('HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n')).toMatch(/header line/)
    expect(refused('HTTP/1.1 200 OK\r\nno colon\r\n\r\n')).toMatch(/header line/)
    expect(refused('HTTP/1.1 200 OK\r\n: empty name\r\n\r\n')).toMatch(/header line/)
    expect(refused('HTTP/1.1 200 OK\r\nx: a\nb\r\ncontent-length: 0\r\n\r\n')).toMatch(/header line/)
    expect(refused('HTTP/1.1 200 OK\r\nx: a\0b\r\ncontent-length: 0\r\n\r\n')).toMatch(/header line/)
    expect(refused('HTTP/1.1 200 OK\ncontent-length: 0\n\n\r\n\r\n')).toMatch(/status line|header line/)
    expect(refused('HTTP/2 200 OK\r\n\r\n')).toMatch(/status line/)
    expect(refused('HTTP/1.1 20 OK\r\n\r\n')).toMatch(/status line/)
    expect(refused('HTTP/1.1 200 O\rK\r\n\r\n')).toMatch(/status line/)
    expect(refused(' HTTP/1.1 200 OK\r\n\r\n')).toMatch(/status line/)
    expect(refused('HTTP/1.1 101 Switching Protocols\r\n\r\n')).toMatch(/switched/)
  })

  it('refuses malformed chunks', () => {
    const head = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'
    expect(refused(`${head}g\r\n`)).toMatch(/chunk size/)
    expect(refused(`${head}-1\r\n`)).toMatch(/chunk size/)
    expect(refused(`${head} 1\r\n`)).toMatch(/chunk size/)
    expect(refused(`${head}123456789\r\n`)).toMatch(/chunk size/)
    expect(refused(`${head}1\r\nab\r\n`)).toMatch(/malformed chunk/)
    expect(refused(`${head}1\r\na\n0\r\n\r\n`)).toMatch(/malformed chunk/)
    expect(refused(`${head}${'1'.repeat(2000)}`)).toMatch(/malformed chunk/) // a size line without end
    expect(refused(`${head}0\r\nbad trailer\r\n\r\n`)).toMatch(/header line/)
  })

  it('refuses a head over the limit, and a body over maxBytes (declared or received)', () => {
    expect(refused(`HTTP/1.1 200 OK\r\nx: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/too large/)
    expect(refused(`HTTP/1.1 200 OK\r\nx: ${'a'.repeat(20_000)}`)).toMatch(/too large/) // no end in sight
    expect(refused('HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n', 10)).toMatch(/larger than 10/)
    expect(refused('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\naaaaaa\r\n5\r\naaaaa\r\n', 10)).toMatch(/larger than 10/)
    expect(refused('HTTP/1.1 200 OK\r\n\r\naaaaaaaaaaa', 10)).toMatch(/larger than 10/)
  })
})

/** A scripted upstream: `answer(request, socket, n)` writes what it likes for the n-th request of the server. */
let server: Server | undefined
let poster: Http1Poster | undefined
afterEach(async () => {
  poster?.destroy()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

async function scripted(answer: (request: string, socket: Socket, n: number) => void): Promise<{ target: PostTarget; connections: () => number; requests: string[] }> {
  let connections = 0
  let n = 0
  const requests: string[] = []
  server = createServer((socket) => {
    connections++
    onWholeRequests(socket, (request) => {
      requests.push(request)
      answer(request, socket, n++)
    })
  })
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const port = (server!.address() as AddressInfo).port
  poster = new Http1Poster()
  return { target: { secure: false, hostname: '127.0.0.1', port, path: '/mcp?x=1', host: `127.0.0.1:${port}` }, connections: () => connections, requests }
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
const HEADERS = Object.freeze(['authorization', 'Bearer s3cret-token', 'content-type', 'application/json']) as readonly string[]

describe('Http1Poster', () => {
  it('sends one well-formed request and keeps the connection for the next', async () => {
    const up = await scripted((_r, socket) => socket.write(ok('{"ok":1}')))
    for (let i = 0; i < 5; i++) {
      const answer = await poster!.post(up.target, HEADERS, `{"i":${i}}`, 1 << 20).answer
      expect(answer).toEqual({ status: 200, type: 'application/json', body: Buffer.from('{"ok":1}') })
    }
    expect(up.connections()).toBe(1)
    expect(up.requests[0]).toBe(`POST /mcp?x=1 HTTP/1.1\r\nhost: ${up.target.host}\r\nauthorization: Bearer s3cret-token\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"i":0}`)
  })

  it('requests at once each get a connection, and their own answer', async () => {
    const up = await scripted((request, socket) => {
      const body = request.slice(request.indexOf('\r\n\r\n') + 4)
      setTimeout(() => socket.write(ok(body)), 5)
    })
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => poster!.post(up.target, HEADERS, `{"n":${i}}`, 1 << 20).answer))
    expect(answers.map((a) => a.body.toString())).toEqual(Array.from({ length: 8 }, (_, i) => `{"n":${i}}`))
    expect(up.connections()).toBe(8)
    await Promise.all(Array.from({ length: 8 }, (_, i) => poster!.post(up.target, HEADERS, `{"n":${i}}`, 1 << 20).answer))
    expect(up.connections()).toBe(8)
  })

  it('does not reuse a connection after Connection: close, bytes past the answer, or bytes nobody asked for', async () => {
    const up = await scripted((_r, socket, n) => {
      if (n === 0) socket.write(ok('{}', 'connection: close\r\n'))
      else if (n === 1) socket.write(`${ok('{}')}HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}`)
      else if (n === 2) {
        socket.write(ok('{}'))
        setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}'), 20)
      } else socket.write(ok('{}'))
    })
    for (let i = 0; i < 3; i++) await poster!.post(up.target, HEADERS, '{}', 1 << 20).answer
    await new Promise((r) => setTimeout(r, 60)) // the unsolicited answer arrives on the idle connection
    await poster!.post(up.target, HEADERS, '{}', 1 << 20).answer
    expect(up.connections()).toBe(4)
  })

  it('a kept connection the upstream closes before answering rejects and is not sent again (the call may have run); a new one closing too', async () => {
    const up = await scripted((_r, socket, n) => {
      if (n === 1) return void socket.destroy() // the upstream read the call, and may have run it
      if (n === 2) return void socket.end() // a fresh connection's request gets no answer
      socket.write(ok(`{"n":${n}}`))
    })
    expect((await poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).body.toString()).toBe('{"n":0}')
    await expect(poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).rejects.toThrow(/closed the connection/)
    await expect(poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).rejects.toThrow(/closed the connection/)
    expect(up.connections()).toBe(2)
    expect(up.requests.length).toBe(3) // none sent twice
  })

  it('a body without length ends with the connection, and only a clean end completes it', async () => {
    const up = await scripted((_r, socket, n) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"to":')
      setTimeout(() => (n === 0 ? socket.end('"end"}') : socket.resetAndDestroy()), 10)
    })
    expect((await poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).body.toString()).toBe('{"to":"end"}')
    await expect(poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).rejects.toThrow(/ECONNRESET/)
    expect(up.connections()).toBe(2)
  })

  it('an answer cut short, malformed or too large rejects and closes its connection', async () => {
    const up = await scripted((_r, socket, n) => {
      if (n === 0) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc')
      else if (n === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n')
      else if (n === 2) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n')
      else socket.write(ok('{}'))
    })
    await expect(poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).rejects.toThrow(/cut short/)
    await expect(poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).rejects.toThrow(UpstreamProtocolError)
    await expect(poster!.post(up.target, HEADERS, '{}', 50).answer).rejects.toThrow(/larger than 50/)
    await poster!.post(up.target, HEADERS, '{}', 1 << 20).answer
    expect(up.connections()).toBe(4)
  })

  it('abort: an SSE answer is cut (before or after its head), a JSON answer is read to its end and its connection kept', async () => {
    const up = await scripted((request, socket) => {
      if (request.includes('"sse"')) {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n')
        const timer = setInterval(() => socket.write('6\r\n: x\n\n\n\r\n'), 5)
        socket.on('close', () => clearInterval(timer))
      } else setTimeout(() => socket.write(ok('{"late":true}')), 30)
    })
    const early = poster!.post(up.target, HEADERS, '"sse"', 1 << 20)
    early.abort()
    await expect(early.answer).rejects.toThrow(/no longer wanted/)
    const late = poster!.post(up.target, HEADERS, '"sse"', 1 << 20)
    await new Promise((r) => setTimeout(r, 30))
    late.abort()
    await expect(late.answer).rejects.toThrow(/no longer wanted/)
    const json = poster!.post(up.target, HEADERS, '"json"', 1 << 20)
    json.abort()
    expect((await json.answer).body.toString()).toBe('{"late":true}')
    const before = up.connections()
    await poster!.post(up.target, HEADERS, '"json"', 1 << 20).answer
    expect(up.connections()).toBe(before)
  })

  it('refuses a header line break (a secret with CR/LF would add a header) and posts nothing', async () => {
    const up = await scripted((_r, socket) => socket.write(ok('{}')))
    expect(() => poster!.post(up.target, ['authorization', 'Bearer a\r\nx-evil: 1'], '{}', 1 << 20)).toThrow()
    expect(() => poster!.post(up.target, ['bad name', 'v'], '{}', 1 << 20)).toThrow()
    await poster!.post(up.target, HEADERS, '{}', 1 << 20).answer
    expect(up.requests.length).toBe(1)
  })

  it('after destroy() every post rejects', async () => {
    const up = await scripted((_r, socket) => socket.write(ok('{}')))
    await poster!.post(up.target, HEADERS, '{}', 1 << 20).answer
    poster!.destroy()
    await expect(poster!.post(up.target, HEADERS, '{}', 1 << 20).answer).rejects.toThrow(/closed/)
  })
})
