import { AgentIdError, isAgentIdError, parseStrictJson } from '@agentid/core'

/** Nesting a request body may have; claim-level limits (e.g. `attestation`) are checked after. */
export const MAX_BODY_DEPTH = 32

/**
 * Parses a JSON request body with the verifier's strict parser: a duplicate member name at any
 * depth is refused (JSON.parse keeps the last one, so `"dataAccessClass":"public",…,"dataAccessClass":"restricted"`
 * would be read as restricted by us and as public by a proxy or log that keeps the first), and so
 * are `__proto__` members and `constructor.prototype` (prototype poisoning, refused as Fastify's own
 * parser did). Throws `ERR_INVALID_INPUT` (400).
 * @example
 * parseJsonBody('{"a":1,"a":2}') // throws ERR_INVALID_INPUT
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new AgentIdError('ERR_INVALID_INPUT', 'request body is empty', { details: { field: 'body' } })
  let value: unknown
  try {
    value = parseStrictJson(text, { what: 'request body', maxDepth: MAX_BODY_DEPTH })
  } catch (cause) {
    // The strict parser's own message ("request body has a duplicate member name", "… is nested deeper than 32", "… is not valid JSON").
    throw new AgentIdError('ERR_INVALID_INPUT', isAgentIdError(cause) ? cause.message : 'request body is not valid JSON', { cause, details: { field: 'body' } })
  }
  refusePoisoning(value)
  return value
}

function refusePoisoning(root: unknown): void {
  const stack = [root]
  while (stack.length > 0) {
    const value = stack.pop()
    if (typeof value !== 'object' || value === null) continue
    if (!Array.isArray(value)) {
      if (Object.hasOwn(value, '__proto__')) throw new AgentIdError('ERR_INVALID_INPUT', 'request body has a __proto__ member', { details: { field: 'body' } })
      const ctor = (value as Record<string, unknown>).constructor
      if (Object.hasOwn(value, 'constructor') && typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) {
        throw new AgentIdError('ERR_INVALID_INPUT', 'request body has a constructor.prototype member', { details: { field: 'body' } })
      }
    }
    for (const v of Object.values(value)) stack.push(v)
  }
}
