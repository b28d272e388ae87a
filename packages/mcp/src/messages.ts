// What the guard does with each JSON-RPC message before the SDK server sees it.
import { isPlainResourceIdentifier } from '@agentid/core'
import type { PolicyAction, PolicyResource } from '@agentid/policy'

/** The MCP list methods whose results the guard filters, and the entry field it authorizes on. */
export type ListKind = 'tools' | 'resources' | 'resourceTemplates' | 'prompts'

/** The guard's verdict on one incoming message. */
export type Gate =
  /** Handed to the server unchanged (lifecycle, ping, notifications, the client's responses). */
  | { kind: 'pass' }
  /** Handed to the server; its result is filtered to what the caller may use. */
  | { kind: 'list'; list: ListKind }
  /**
   * Handed to the server only if the policy allows `action` on `resource`, and on each of `also` (other forms
   * of the same target a server may act on: a resource URI as `new URL()` normalises it).
   */
  | { kind: 'authorize'; action: PolicyAction; resource: PolicyResource; target: string; also?: readonly PolicyResource[] }
  /** Refused without asking the policy: a method the guard does not allow, or malformed params. */
  | { kind: 'refuse'; rpcCode: number; message: string; reason: string; method: string; target: string | null }

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Requests the guard passes without a decision: they reveal nothing a policy protects. */
const PASS_REQUESTS = new Set(['initialize', 'ping', 'logging/setLevel', 'resources/unsubscribe'])
const LIST_REQUESTS: ReadonlyMap<string, ListKind> = new Map([
  ['tools/list', 'tools'],
  ['resources/list', 'resources'],
  ['resources/templates/list', 'resourceTemplates'],
  ['prompts/list', 'prompts'],
])

function invalidParams(method: string, what: string): Gate {
  return { kind: 'refuse', rpcCode: -32602, message: `Invalid params: ${what}`, reason: 'invalid-params', method, target: null }
}

/** A non-empty string param, exactly as sent (no trimming, case-folding or Unicode normalisation). */
function stringParam(params: unknown, key: string): string | undefined {
  if (!isRecord(params)) return undefined
  const value = params[key]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * The URI as the SDK's McpServer resolves it (`new URL(uri).href`: scheme and host case, surrounding
 * whitespace, tabs and newlines, dot segments, default ports), when that differs from the URI as sent; else null.
 * A server may act on either form, so the policy must allow both.
 */
function normalUri(uri: string): string | null {
  let href: string
  try {
    href = new URL(uri).href
  } catch {
    return null
  }
  return href === uri ? null : href
}

// readResource on a URI as sent and, when the SDK would resolve it to another form, on that form too.
// A URI with a dot segment, an encoded slash or a backslash is refused before any policy (core's
// isPlainResourceIdentifier, the rule the token endpoint and verifyDelegation apply): a grant on
// `docs://public/*` must not reach `docs://public/../secrets` through any resolver.
function readResourceGate(uri: string, serverId: string, method: string): Gate {
  if (!isPlainResourceIdentifier(uri)) {
    return { kind: 'refuse', rpcCode: -32602, message: 'Invalid params: uri must not hold a dot segment, an encoded slash, a backslash or a control character', reason: 'invalid-params', method, target: uri }
  }
  const normal = normalUri(uri)
  return {
    kind: 'authorize', action: 'readResource', resource: { type: 'Resource', server: serverId, uri }, target: uri,
    ...(normal === null ? {} : { also: [{ type: 'Resource', server: serverId, uri: normal }] }),
  }
}

/**
 * Classifies one JSON-RPC message (already validated as JSON-RPC by the SDK transport). Deny by
 * default: a request for a method the guard does not know is refused, a notification outside
 * `notifications/*` is dropped.
 */
export function gateMessage(message: unknown, serverId: string): Gate {
  if (!isRecord(message)) return { kind: 'refuse', rpcCode: -32600, message: 'Invalid Request', reason: 'invalid-request', method: '', target: null }
  const method = message.method
  if (typeof method !== 'string') return { kind: 'pass' } // a response to a server-initiated request
  const isRequest = message.id !== undefined
  if (!isRequest) {
    return method.startsWith('notifications/')
      ? { kind: 'pass' }
      : { kind: 'refuse', rpcCode: -32601, message: 'Method not found', reason: 'method-not-allowed', method, target: null }
  }
  if (PASS_REQUESTS.has(method)) return { kind: 'pass' }
  const list = LIST_REQUESTS.get(method)
  if (list !== undefined) return { kind: 'list', list }
  const params = message.params
  switch (method) {
    case 'tools/call': {
      const name = stringParam(params, 'name')
      if (name === undefined) return invalidParams(method, 'name must be a non-empty string')
      return { kind: 'authorize', action: 'callTool', resource: { type: 'Tool', server: serverId, name }, target: name }
    }
    case 'resources/read':
    case 'resources/subscribe': {
      const uri = stringParam(params, 'uri')
      if (uri === undefined) return invalidParams(method, 'uri must be a non-empty string')
      return readResourceGate(uri, serverId, method)
    }
    case 'prompts/get': {
      const name = stringParam(params, 'name')
      if (name === undefined) return invalidParams(method, 'name must be a non-empty string')
      return { kind: 'authorize', action: 'getPrompt', resource: { type: 'Prompt', server: serverId, name }, target: name }
    }
    case 'completion/complete': {
      // Completing a prompt's or a resource template's arguments is using it.
      const ref = isRecord(params) ? params.ref : undefined
      if (isRecord(ref) && ref.type === 'ref/prompt') {
        const name = stringParam(ref, 'name')
        if (name !== undefined) return { kind: 'authorize', action: 'getPrompt', resource: { type: 'Prompt', server: serverId, name }, target: name }
      }
      if (isRecord(ref) && ref.type === 'ref/resource') {
        const uri = stringParam(ref, 'uri')
        if (uri !== undefined) return readResourceGate(uri, serverId, method)
      }
      return invalidParams(method, 'ref must name a prompt or a resource')
    }
    default:
      return { kind: 'refuse', rpcCode: -32601, message: 'Method not found', reason: 'method-not-allowed', method, target: null }
  }
}

/** The policy action and resource that decide whether an entry of a list result is shown. */
export function listEntryCheck(list: ListKind, entry: unknown, serverId: string): { action: PolicyAction; resource: PolicyResource } | null {
  if (!isRecord(entry)) return null
  switch (list) {
    case 'tools':
      return typeof entry.name === 'string' ? { action: 'callTool', resource: { type: 'Tool', server: serverId, name: entry.name } } : null
    case 'prompts':
      return typeof entry.name === 'string' ? { action: 'getPrompt', resource: { type: 'Prompt', server: serverId, name: entry.name } } : null
    case 'resources':
      return typeof entry.uri === 'string' ? { action: 'readResource', resource: { type: 'Resource', server: serverId, uri: entry.uri } } : null
    case 'resourceTemplates':
      return typeof entry.uriTemplate === 'string' ? { action: 'readResource', resource: { type: 'Resource', server: serverId, uri: entry.uriTemplate } } : null
  }
}

/** The field of a list result that holds its entries. */
export const LIST_FIELD: Readonly<Record<ListKind, string>> = Object.freeze({
  tools: 'tools',
  resources: 'resources',
  resourceTemplates: 'resourceTemplates',
  prompts: 'prompts',
})

/** The policy action a list method's visibility check uses, for the audit event. */
export const LIST_ACTION: Readonly<Record<ListKind, string>> = Object.freeze({
  tools: 'listTools',
  resources: 'listResources',
  resourceTemplates: 'listResourceTemplates',
  prompts: 'listPrompts',
})

/**
 * Checks the shape of a POST body before the transport sees it: one JSON-RPC message object or a
 * non-empty batch (at most `maxBatch`) of them, with no request id twice. Returns a reason when refused.
 */
export function checkBody(body: unknown, maxBatch: number): string | null {
  const messages = Array.isArray(body) ? body : [body]
  if (Array.isArray(body) && (body.length === 0 || body.length > maxBatch)) return `a batch must hold 1 to ${maxBatch} messages`
  const ids = new Set<unknown>()
  for (const m of messages) {
    if (!isRecord(m) || m.jsonrpc !== '2.0') return 'every message must be a JSON-RPC 2.0 object'
    if (typeof m.method === 'string' && m.id !== undefined) {
      if (typeof m.id !== 'string' && !(typeof m.id === 'number' && Number.isSafeInteger(m.id))) return 'a request id must be a string or an integer'
      const key = `${typeof m.id}:${String(m.id)}`
      if (ids.has(key)) return 'a request id appears twice in the batch'
      ids.add(key)
    }
  }
  return null
}
