#!/usr/bin/env node
// A lean MCP upstream for the gateway bench: Streamable HTTP in JSON mode over node:http, the tool `echo`
// (answers `http:<text>`, as the SDK fixture does), a bearer secret, and nothing else. It answers
// initialize (with an Mcp-Session-Id), notifications (202), ping, tools/list and tools/call; GET (no
// SSE stream) 405, DELETE 200. The SDK fixture (test/fixtures/http-server.mjs) keeps about 10 KB of
// every call through two young collections (the SDK's web-standard transport) and pauses 3–7 ms every
// ≈ 270 ms: those pauses sit in both paths' tails and made the direct reference's p99 vary from 1 to
// 18 ms between rounds. Run: node bench/lib/lean-upstream.mjs <port> <secret>; prints {"url":…}.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'

const [portArg, secret] = process.argv.slice(2)
if (!secret) throw new Error('usage: lean-upstream.mjs <port> <secret>')
const expected = `Bearer ${secret}`
const TOOLS = { tools: [{ name: 'echo', description: 'Echoes its input', inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } }] }
const VERSIONS = new Set(['2025-06-18', '2025-03-26', '2024-11-05', '2025-11-25'])

function answer(message) {
  switch (message.method) {
    case 'initialize': {
      const asked = message.params?.protocolVersion
      return { result: { protocolVersion: VERSIONS.has(asked) ? asked : '2025-06-18', capabilities: { tools: { listChanged: false } }, serverInfo: { name: 'lean-upstream', version: '1.0.0' } } }
    }
    case 'ping': return { result: {} }
    case 'tools/list': return { result: TOOLS }
    case 'tools/call': {
      const p = message.params
      if (p?.name !== 'echo' || typeof p.arguments?.text !== 'string') return { error: { code: -32602, message: 'unknown tool or bad arguments' } }
      return { result: { content: [{ type: 'text', text: `http:${p.arguments.text}` }] } }
    }
    default: return { error: { code: -32601, message: 'Method not found' } }
  }
}

const server = createServer((req, res) => {
  if (req.headers.authorization !== expected) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}')
  if (req.method === 'GET') return void res.writeHead(405, { allow: 'POST, DELETE' }).end()
  if (req.method === 'DELETE') return void res.writeHead(200).end()
  if (req.method !== 'POST') return void res.writeHead(405).end()
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    let message
    try {
      message = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}')
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return void res.writeHead(400).end()
    if (message.id === undefined) return void res.writeHead(202).end() // a notification or a response
    const headers = { 'content-type': 'application/json' }
    if (message.method === 'initialize') headers['mcp-session-id'] = randomUUID()
    res.writeHead(200, headers).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, ...answer(message) }))
  })
})
server.keepAliveTimeout = 65_000
server.listen(Number(portArg ?? 0), '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}/mcp` })}\n`))
