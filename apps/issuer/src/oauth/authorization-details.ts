// RFC 9396 authorization_details of type `agentid_action`, checked against the agent's identity claims.
import { DATA_ACCESS_CLASSES, dataClassCovers, isPlainResourceIdentifier, isPrintableText, parseStrictJson, type AgentClaims, type DataAccessClass } from '@agentid/core'
import { resourceCovers } from '@agentid/delegation'
import { oauthFail } from './errors.js'

export const AGENTID_ACTION = 'agentid_action'

export interface AgentIdActionDetail {
  type: typeof AGENTID_ACTION
  actions: string[]
  locations: string[]
  datatypes?: DataAccessClass[]
  identifiers?: string[]
}

const MAX_DETAILS = 16
const MAX_ITEMS = 64
const MAX_STRING = 512
const ALLOWED = new Set(['type', 'actions', 'locations', 'datatypes', 'identifiers'])

const bad = (message: string): never => oauthFail('invalid_authorization_details', message)

function stringList(value: unknown, field: string, required: boolean): string[] | undefined {
  if (value === undefined && !required) return undefined
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ITEMS) bad(`${field} must be a non-empty array of at most ${MAX_ITEMS} strings`)
  const list = value as unknown[]
  for (const item of list) {
    if (typeof item !== 'string' || item.length === 0 || item.length > MAX_STRING || !isPrintableText(item)) {
      bad(`${field} must hold non-empty strings of at most ${MAX_STRING} characters, without control or bidirectional formatting characters`)
    }
  }
  return [...new Set(list as string[])]
}

/** Parses the `authorization_details` form field (a JSON array); absent means none (an empty list). */
export function parseAuthorizationDetails(raw: string | undefined): AgentIdActionDetail[] {
  if (raw === undefined) return []
  let parsed: unknown
  try {
    parsed = parseStrictJson(raw, { what: 'authorization_details', maxDepth: 4 }) // duplicate members refused, as in a token
  } catch {
    return bad('authorization_details is not valid JSON (or repeats a member, or nests deeper than 4)')
  }
  if (!Array.isArray(parsed)) return bad('authorization_details must be a JSON array')
  if (parsed.length > MAX_DETAILS) bad(`authorization_details holds at most ${MAX_DETAILS} entries`)
  return parsed.map((entry: unknown) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return bad('each authorization_details entry must be an object')
    const e = entry as Record<string, unknown>
    if (e.type !== AGENTID_ACTION) return bad(`unsupported authorization_details type (supported: ${AGENTID_ACTION})`)
    const unknown = Object.keys(e).find((k) => !ALLOWED.has(k))
    if (unknown !== undefined) bad(`unknown authorization_details member ${JSON.stringify(unknown.slice(0, 64))}`)
    const locations = stringList(e.locations, 'locations', true)!
    for (const location of locations) {
      if (!isPlainResourceIdentifier(location)) bad(`location ${JSON.stringify(location.slice(0, 128))} holds a dot segment, an encoded slash, a backslash or a control character`)
    }
    const detail: AgentIdActionDetail = { type: AGENTID_ACTION, actions: stringList(e.actions, 'actions', true)!, locations }
    const datatypes = stringList(e.datatypes, 'datatypes', false)
    if (datatypes !== undefined) {
      if (!datatypes.every((d) => (DATA_ACCESS_CLASSES as readonly string[]).includes(d))) bad(`datatypes must be among ${DATA_ACCESS_CLASSES.join(', ')}`)
      detail.datatypes = datatypes as DataAccessClass[]
    }
    const identifiers = stringList(e.identifiers, 'identifiers', false)
    if (identifiers !== undefined) detail.identifiers = identifiers
    return detail
  })
}

/** Refuses (invalid_authorization_details) any detail wider than the agent's tool profile or data access class. */
export function checkAgainstClaims(details: readonly AgentIdActionDetail[], claims: AgentClaims): void {
  const profile = typeof claims.toolProfile === 'string' ? [claims.toolProfile] : [...claims.toolProfile]
  for (const detail of details) {
    for (const location of detail.locations) {
      if (!profile.some((entry) => resourceCovers(entry, location))) bad(`location ${JSON.stringify(location.slice(0, 128))} is not in the agent's tool profile`)
    }
    for (const datatype of detail.datatypes ?? []) {
      if (!dataClassCovers(claims.dataAccessClass, datatype)) bad(`datatype ${datatype} is above the agent's data access class (${claims.dataAccessClass})`)
    }
  }
}
