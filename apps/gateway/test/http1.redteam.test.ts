// Red team on the gateway's own HTTP/1.1 client (http1.ts), as a hostile or broken upstream and as a network
// adversary: answers node:http's parser (llhttp) refuses must be refused too (a framing difference is how one
// answer gets read as two), and the pool must neither replay a call the upstream may have run nor keep
// sockets without end for answers nobody waits for.
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { AnswerParser, UpstreamProtocolError } from '../src/http1.js'

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
