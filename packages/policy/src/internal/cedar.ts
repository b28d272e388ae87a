// The one import of the Cedar wasm bindings (the Node build: synchronous, no fetch of the .wasm file).
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import type { DetailedError, EntityUidJson, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs'

export { cedar }
export type { DetailedError, EntityUidJson, PolicyJson }

/** The namespace of the agentid schema. */
export const NS = 'AgentId'

/** The entity type and id named by a scope constraint ({ type, id } or { __entity: { type, id } }). */
export function entityOf(uid: EntityUidJson): { type: string; id: string } {
  return '__entity' in uid ? uid.__entity : uid
}

/** One line for a Cedar error: its message, plus the help text when there is one. */
export function describe(error: DetailedError): string {
  return error.help ? `${error.message} (${error.help})` : error.message
}
