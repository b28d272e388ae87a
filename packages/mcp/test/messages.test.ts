import { describe, expect, it } from 'vitest'
import { checkBody, gateMessage } from '../src/messages.js'

const req = (method: string, params?: unknown, id: unknown = 1) => ({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) })

describe('gateMessage', () => {
  it('tools/call is authorized as callTool on the tool named exactly as sent', () => {
    for (const name of ['echo', 'Echo', 'echo\u200b', 'ec\u04bbo', '../echo', 'echo/../admin']) {
      expect(gateMessage(req('tools/call', { name, arguments: {} }), 'demo')).toEqual({
        kind: 'authorize', action: 'callTool', resource: { type: 'Tool', server: 'demo', name }, target: name,
      })
    }
  })

  it('resources/read, resources/subscribe, prompts/get and completion/complete are authorized', () => {
    expect(gateMessage(req('resources/read', { uri: 'docs://readme' }), 's')).toMatchObject({ kind: 'authorize', action: 'readResource', resource: { type: 'Resource', server: 's', uri: 'docs://readme' } })
    expect(gateMessage(req('resources/subscribe', { uri: 'docs://x' }), 's')).toMatchObject({ kind: 'authorize', action: 'readResource' })
    expect(gateMessage(req('prompts/get', { name: 'greet' }), 's')).toMatchObject({ kind: 'authorize', action: 'getPrompt', resource: { type: 'Prompt', server: 's', name: 'greet' } })
    expect(gateMessage(req('completion/complete', { ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'a', value: '' } }), 's')).toMatchObject({ kind: 'authorize', action: 'getPrompt' })
    expect(gateMessage(req('completion/complete', { ref: { type: 'ref/resource', uri: 'docs://{x}' }, argument: { name: 'x', value: '' } }), 's')).toMatchObject({ kind: 'authorize', action: 'readResource' })
  })

  it('a resource URI with a dot segment, an encoded slash or a backslash is refused before any decision', () => {
    for (const uri of ['docs://public/../secrets', 'docs://public/%2e%2e/secrets', 'docs://public/%2E%2E/secrets', 'docs://public/./x', 'docs://public/..%2fsecrets', 'docs://public\\..\\secrets']) {
      for (const m of ['resources/read', 'resources/subscribe']) {
        expect(gateMessage(req(m, { uri }), 's'), `${m} ${uri}`).toMatchObject({ kind: 'refuse', rpcCode: -32602, reason: 'invalid-params', method: m, target: uri })
      }
      expect(gateMessage(req('completion/complete', { ref: { type: 'ref/resource', uri }, argument: { name: 'x', value: '' } }), 's')).toMatchObject({ kind: 'refuse', rpcCode: -32602 })
    }
  })

  it('malformed params are refused without a decision', () => {
    for (const params of [undefined, {}, { name: 42 }, { name: '' }, { name: ['echo'] }, ['echo'], 'echo']) {
      expect(gateMessage(req('tools/call', params), 's')).toMatchObject({ kind: 'refuse', rpcCode: -32602, reason: 'invalid-params' })
    }
    expect(gateMessage(req('resources/read', { uri: { href: 'x' } }), 's')).toMatchObject({ kind: 'refuse', rpcCode: -32602 })
    expect(gateMessage(req('completion/complete', { ref: { type: 'ref/tool', name: 'echo' } }), 's')).toMatchObject({ kind: 'refuse', rpcCode: -32602 })
  })

  it('lists are filtered; lifecycle passes; unknown methods and stray notifications are refused', () => {
    expect(gateMessage(req('tools/list'), 's')).toEqual({ kind: 'list', list: 'tools' })
    expect(gateMessage(req('prompts/list'), 's')).toEqual({ kind: 'list', list: 'prompts' })
    expect(gateMessage(req('resources/list'), 's')).toEqual({ kind: 'list', list: 'resources' })
    expect(gateMessage(req('resources/templates/list'), 's')).toEqual({ kind: 'list', list: 'resourceTemplates' })
    for (const m of ['initialize', 'ping', 'logging/setLevel']) expect(gateMessage(req(m, {}), 's')).toEqual({ kind: 'pass' })
    expect(gateMessage({ jsonrpc: '2.0', method: 'notifications/initialized' }, 's')).toEqual({ kind: 'pass' })
    expect(gateMessage({ jsonrpc: '2.0', id: 7, result: {} }, 's')).toEqual({ kind: 'pass' })
    for (const m of ['tools/Call', 'TOOLS/CALL', 'tools/call ', 'tasks/list', 'admin/exec', '']) {
      expect(gateMessage(req(m, { name: 'echo' }), 's')).toMatchObject({ kind: 'refuse', rpcCode: -32601, reason: 'method-not-allowed' })
    }
    // A notification that names a request method is dropped, never handed on.
    expect(gateMessage({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'admin' } }, 's')).toMatchObject({ kind: 'refuse' })
  })
})

describe('checkBody', () => {
  it('accepts one message or a batch', () => {
    expect(checkBody(req('ping'), 100)).toBeNull()
    expect(checkBody([req('ping', undefined, 1), req('ping', undefined, 2), { jsonrpc: '2.0', method: 'notifications/x' }], 100)).toBeNull()
  })

  it('refuses what is not JSON-RPC 2.0, empty or oversized batches, and a request id twice', () => {
    for (const body of [null, 1, 'x', [], [1], [null], { id: 1, method: 'ping' }, { jsonrpc: '1.0', id: 1, method: 'ping' }, [req('ping'), 'x']]) {
      expect(checkBody(body, 100)).toEqual(expect.any(String))
    }
    expect(checkBody(Array.from({ length: 101 }, (_, i) => req('ping', undefined, i)), 100)).toMatch(/batch/)
    expect(checkBody([req('tools/call', { name: 'echo' }, 1), req('tools/call', { name: 'admin' }, 1)], 100)).toMatch(/twice/)
    expect(checkBody([req('ping', undefined, 'a'), req('ping', undefined, 'a')], 100)).toMatch(/twice/)
    expect(checkBody(req('ping', undefined, 1.5), 100)).toMatch(/integer/)
    expect(checkBody(req('ping', undefined, { x: 1 }), 100)).toMatch(/integer/)
    // 1 and "1" are different ids.
    expect(checkBody([req('ping', undefined, 1), req('ping', undefined, '1')], 100)).toBeNull()
  })
})

describe('gateMessage: resource URIs in every form the server may read', () => {
  it('a URI not in URL normal form is authorized as sent and as new URL() normalises it; a normal one once', () => {
    const read = (uri: string) => gateMessage({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri } }, 'demo')
    expect(read('docs://readme')).toEqual({ kind: 'authorize', action: 'readResource', resource: { type: 'Resource', server: 'demo', uri: 'docs://readme' }, target: 'docs://readme' })
    for (const [uri, normal] of [['DOCS://secrets', 'docs://secrets'], [' docs://secrets', 'docs://secrets'], ['HTTP://Example.com:80/a', 'http://example.com/a']]) {
      expect(read(uri!), uri).toMatchObject({ kind: 'authorize', target: uri, resource: { uri }, also: [{ type: 'Resource', server: 'demo', uri: normal }] })
    }
    // A dot segment or a control character inside is refused outright (core's isPlainResourceIdentifier), not decided twice.
    for (const uri of ['docs://sec\trets', 'file:///etc/./passwd']) expect(read(uri), uri).toMatchObject({ kind: 'refuse', rpcCode: -32602 })
    // Not a URL at all: only the string as sent (the SDK McpServer cannot read it either).
    expect(read('not a url')).not.toHaveProperty('also')
  })

  it('completion/complete on a resource reference is decided on both forms as well', () => {
    const complete = (uri: string) => gateMessage({ jsonrpc: '2.0', id: 1, method: 'completion/complete', params: { ref: { type: 'ref/resource', uri }, argument: { name: 'x', value: '' } } }, 'demo')
    expect(complete('DOCS://secrets')).toMatchObject({ kind: 'authorize', action: 'readResource', target: 'DOCS://secrets', also: [{ type: 'Resource', server: 'demo', uri: 'docs://secrets' }] })
    expect(complete('docs://readme')).not.toHaveProperty('also')
  })
})
