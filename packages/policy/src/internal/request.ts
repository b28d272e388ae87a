import { DATA_ACCESS_CLASSES } from '@agentid/core'
import type { AuthorizationSubject, PolicyAction, PolicyResource } from '../types.js'
import { NS } from './cedar.js'
import { commandAliases } from './command-forms.js'

/** Every action of the schema, with the one resource type it applies to. */
export const ACTION_RESOURCE: Readonly<Record<PolicyAction, PolicyResource['type']>> = Object.freeze({
  callTool: 'Tool',
  listTools: 'McpServer',
  readResource: 'Resource',
  getPrompt: 'Prompt',
  invokeWorkflow: 'Workflow',
})

/** Bounds on request members: longer is malformed (and denied). */
const MAX = Object.freeze({ id: 2048, text: 4096, list: 1024 })

type Json = string | number | boolean | Json[] | { [key: string]: Json }
interface EntityJson {
  uid: { type: string; id: string }
  attrs: Record<string, Json>
  parents: { type: string; id: string }[]
}

/** A request ready for Cedar, plus the keys the index and the memo use. */
export interface CedarRequest {
  readonly principal: { type: string; id: string }
  readonly action: { type: string; id: string }
  readonly resource: { type: string; id: string }
  readonly parent: { type: string; id: string } | null
  readonly context: Record<string, Json>
  readonly entities: EntityJson[]
}

export class RequestError extends Error {}

const fail = (message: string): never => {
  throw new RequestError(message)
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

function text(value: unknown, field: string, max: number = MAX.text, allowEmpty = false): string {
  if (typeof value !== 'string') return fail(`${field}: must be a string`)
  if ((!allowEmpty && value.length === 0) || value.length > max) return fail(`${field}: must be 1 to ${max} characters`)
  return value
}

function identifier(value: unknown, field: string): string {
  const s = text(value, field, MAX.id)
  if (CONTROL.test(s)) fail(`${field}: must not contain control characters`)
  return s
}

function strings(value: unknown, field: string, optional = false): string[] {
  if (value === undefined && optional) return []
  if (!Array.isArray(value) || value.length > MAX.list) return fail(`${field}: must be a list of at most ${MAX.list} strings`)
  return value.map((v, i) => text(v, `${field}[${i}]`, MAX.text, true))
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The level of a data class (public 0 … restricted 3): `Agent.dataAccessLevel`, `context.requestedDataLevel`. */
export function dataLevel(value: unknown, field: string): number {
  const level = typeof value === 'string' ? (DATA_ACCESS_CLASSES as readonly string[]).indexOf(value) : -1
  if (level < 0) fail(`${field}: must be one of ${DATA_ACCESS_CLASSES.join(', ')}`)
  return level
}

/** The Cedar entity of a resource: its uid and its parent server. Throws RequestError when malformed. */
export function resourceEntity(resource: unknown): { entity: EntityJson; parent: EntityJson | null } {
  if (!isRecord(resource)) return fail('resource: must be an object')
  const server = (): string => {
    const id = identifier(resource.server, 'resource.server')
    if (id.includes('/')) fail('resource.server: must not contain "/"')
    return id
  }
  const child = (type: string, member: 'name' | 'uri') => {
    const s = server()
    const name = identifier(resource[member], `resource.${member}`)
    const parent: EntityJson = { uid: { type: `${NS}::McpServer`, id: s }, attrs: {}, parents: [] }
    const id = `${s}/${name}`
    return { entity: { uid: { type: `${NS}::${type}`, id }, attrs: { [member]: name, server: s, qualifiedName: id }, parents: [parent.uid] }, parent }
  }
  switch (resource.type) {
    case 'McpServer': {
      const id = identifier(resource.id, 'resource.id')
      if (id.includes('/')) fail('resource.id: a server id must not contain "/"')
      return { entity: { uid: { type: `${NS}::McpServer`, id }, attrs: {}, parents: [] }, parent: null }
    }
    case 'Workflow':
      return { entity: { uid: { type: `${NS}::Workflow`, id: identifier(resource.id, 'resource.id') }, attrs: {}, parents: [] }, parent: null }
    case 'Tool':
      return child('Tool', 'name')
    case 'Prompt':
      return child('Prompt', 'name')
    case 'Resource':
      return child('Resource', 'uri')
    default:
      return fail('resource.type: must be McpServer, Tool, Resource, Prompt or Workflow')
  }
}

/** The Agent entity (and the User it acts for) from a verified subject. Throws RequestError when malformed. */
export function principalEntities(subject: AuthorizationSubject): EntityJson[] {
  if (!isRecord(subject)) return fail('subject: must be an object')
  const agent = subject.agent as unknown
  if (!isRecord(agent)) return fail('subject.agent: must be an object')
  const did = identifier(agent.did, 'subject.agent.did')
  const claims = agent.claims
  if (!isRecord(claims)) return fail('subject.agent.claims: must be an object')
  const model = claims.model
  if (!isRecord(model)) return fail('subject.agent.claims.model: must be an object')
  const modelAttrs: Record<string, Json> = { name: text(model.name, 'claims.model.name'), version: text(model.version, 'claims.model.version') }
  if (model.provider !== undefined) modelAttrs.provider = text(model.provider, 'claims.model.provider')
  const attrs: Record<string, Json> = {
    purpose: text(claims.purpose, 'claims.purpose', MAX.text, true),
    controller: text(claims.controller, 'claims.controller'),
    model: modelAttrs,
    policyTier: text(claims.policyTier, 'claims.policyTier', MAX.text, true),
    dataAccessClass: claims.dataAccessClass as string,
    dataAccessLevel: dataLevel(claims.dataAccessClass, 'claims.dataAccessClass'),
  }
  Object.assign(attrs, attestationAttributes(claims.attestation))
  if (typeof claims.toolProfile === 'string') {
    attrs.toolProfile = []
    attrs.toolProfileName = text(claims.toolProfile, 'claims.toolProfile')
  } else {
    attrs.toolProfile = strings(claims.toolProfile, 'claims.toolProfile')
  }
  const out: EntityJson[] = [{ uid: { type: `${NS}::Agent`, id: did }, attrs, parents: [] }]
  const user = subject.user as unknown
  if (user !== undefined && user !== null) {
    if (!isRecord(user)) return fail('subject.user: must be an object or null')
    const uid = { type: `${NS}::User`, id: identifier(user.id, 'subject.user.id') }
    const userAttrs: Record<string, Json> = {}
    if (user.issuer !== undefined && user.issuer !== null) userAttrs.issuer = identifier(user.issuer, 'subject.user.issuer')
    attrs.user = { __entity: uid }
    out.push({ uid, attrs: userAttrs, parents: [] })
  }
  return out
}

/** The request context (`RequestContext` in the schema). `now` is unix seconds. Throws RequestError when malformed. */
export function requestContext(subject: AuthorizationSubject, now: number): Record<string, Json> {
  const context: Record<string, Json> = { delegationDepth: 0, authorizationDetails: [], authorizationGrants: [] }
  const delegation = subject.delegation as unknown
  if (delegation !== undefined && delegation !== null) {
    if (!isRecord(delegation)) return fail('subject.delegation: must be an object or null')
    const depth = delegation.depth
    if (typeof depth !== 'number' || !Number.isSafeInteger(depth) || depth < 0) fail('subject.delegation.depth: must be a non-negative integer')
    context.delegationDepth = depth as number
    context.delegationRoot = identifier(delegation.root, 'subject.delegation.root')
  }
  const details = subject.authorizationDetails as unknown
  if (details !== undefined && details !== null) {
    if (!Array.isArray(details) || details.length > MAX.list) return fail(`subject.authorizationDetails: must be a list of at most ${MAX.list} entries`)
    const grants: Json[] = []
    context.authorizationDetails = details.map((d: unknown, i) => {
      const field = `subject.authorizationDetails[${i}]`
      if (!isRecord(d)) return fail(`${field}: must be an object`)
      const detail = {
        type: text(d.type, `${field}.type`),
        // RFC 9396 requires only `type`: a missing list grants nothing.
        actions: strings(d.actions, `${field}.actions`, true),
        locations: strings(d.locations, `${field}.locations`, true),
        datatypes: strings(d.datatypes, `${field}.datatypes`, true),
        identifiers: strings(d.identifiers, `${field}.identifiers`, true),
      }
      for (const action of detail.actions) {
        for (const location of detail.locations.length > 0 ? detail.locations : ['']) {
          if (grants.length >= MAX.list) fail(`subject.authorizationDetails: more than ${MAX.list} (type, action, location) grants`)
          grants.push({ type: detail.type, action, location })
        }
      }
      return detail
    })
    context.authorizationGrants = grants
  }
  if (subject.requestedDataClass !== undefined) {
    context.requestedDataLevel = dataLevel(subject.requestedDataClass, 'subject.requestedDataClass')
    context.requestedDataClass = subject.requestedDataClass
  }
  const approval = subject.approval as unknown
  if (approval !== undefined && approval !== null) {
    if (!isRecord(approval)) return fail('subject.approval: must be an object or null')
    if (typeof approval.selfApproval !== 'boolean') fail('subject.approval.selfApproval: must be a boolean')
    if (approval.group !== null && typeof approval.group !== 'string') fail('subject.approval.group: must be a string or null')
    context.approval = {
      approverId: text(approval.approverId, 'subject.approval.approverId'),
      approver: text(approval.approver, 'subject.approval.approver'),
      group: approval.group === null ? '' : text(approval.group, 'subject.approval.group'),
      selfApproval: approval.selfApproval as boolean,
    }
  }
  const lineage = subject.lineage as unknown
  if (lineage !== undefined && lineage !== null) context.lineage = lineageContext(lineage)
  const time = subject.time === undefined ? now : subject.time
  if (typeof time !== 'number' || !Number.isFinite(time) || Math.abs(time) > 8.64e12) fail('subject.time: must be unix seconds')
  context.time = Math.floor(time)
  return context
}

/** A lineage text in `trail`: the delimiters `<`, `>`, `|` (and `%`) inside it percent-encoded, so a hop always reads `<purpose|command>`. */
function trailText(value: string): string {
  return value.replace(/[%<>|]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** `context.lineage` (the schema's `Lineage`) from a verified lineage. Throws RequestError when malformed. */
export function lineageContext(lineage: unknown): Record<string, Json> {
  if (!isRecord(lineage)) return fail('subject.lineage: must be an object or null')
  const entries = lineage.entries
  if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX.list) return fail(`subject.lineage.entries: must be a list of 1 to ${MAX.list} entries`)
  const origin = lineage.origin
  if (!isRecord(origin) || (origin.kind !== null && typeof origin.kind !== 'string')) return fail('subject.lineage.origin.kind: must be a string or null')
  const originKind = origin.kind === null ? '' : text(origin.kind, 'subject.lineage.origin.kind')
  const actors = new Set<string>()
  const purposes = new Set<string>()
  const controllers = new Set<string>()
  const commands = new Set<string>()
  const targets = new Set<string>()
  const steps = new Map<string, Json>()
  const answered = new Map<string, Json>()
  const answeredCalls = new Map<string, Json>()
  const hops = new Map<number, { purpose: string; command: string; target: string }>()
  const approvals = new Map<string, Json>()
  const approvedCommands = new Set<string>()
  const approvedCalls = new Map<string, Json>()
  let selfApproved = false
  const approvers = new Set<string>()
  let firstApproved = false
  let trail = ''
  let first: { actor: string; purpose: string } | undefined
  entries.forEach((e: unknown, i) => {
    const field = `subject.lineage.entries[${i}]`
    if (!isRecord(e) || !isRecord(e.actor) || !isRecord(e.actor.claims)) return fail(`${field}: must be an entry with an actor and its claims`)
    if (e.index !== i) fail(`${field}.index: must be ${i}`)
    const purpose = text(e.actor.claims.purpose, `${field}.actor.claims.purpose`, MAX.text, true)
    if (e.kind === 'receipt') {
      const hop = typeof e.answers === 'number' ? hops.get(e.answers) : undefined
      if (hop === undefined) return fail(`${field}.answers: must be the index of an earlier hop`)
      const outcome = text(e.outcome, `${field}.outcome`)
      const answer = { purpose: hop.purpose, command: hop.command, outcome }
      answered.set(JSON.stringify(answer), answer)
      const call = { purpose: hop.purpose, target: hop.target, command: hop.command, outcome }
      answeredCalls.set(JSON.stringify(call), call)
      return
    }
    if (e.kind !== 'hop') return fail(`${field}.kind: must be hop or receipt`)
    const actor = identifier(e.actor.did, `${field}.actor.did`)
    const command = text(e.command, `${field}.command`)
    const target = identifier(e.target, `${field}.target`)
    actors.add(actor)
    purposes.add(purpose)
    controllers.add(text(e.actor.claims.controller, `${field}.actor.claims.controller`))
    commands.add(command)
    for (const alias of commandAliases(command)) commands.add(alias)
    targets.add(target)
    const step = { purpose, command }
    steps.set(JSON.stringify(step), step)
    hops.set(i, { ...step, target })
    const approval = verifiedApproval(e.approval, `${field}.approval`, actor, command)
    if (approval !== null) {
      const a = { purpose, command, target, ...approval }
      approvals.set(JSON.stringify(a), a)
      approvedCommands.add(command)
      approvedCalls.set(JSON.stringify([target, command]), { target, command })
      if (approval.selfApproval) selfApproved = true
      approvers.add(approval.approverId)
      if (first === undefined) firstApproved = true
    }
    trail += `<${trailText(purpose)}|${trailText(command)}>`
    first ??= { actor, purpose }
  })
  if (first === undefined) return fail('subject.lineage.entries: must hold a hop')
  const out: Record<string, Json> = {
    transactionId: identifier(lineage.transactionId, 'subject.lineage.transactionId'),
    hopCount: hops.size,
    entryCount: entries.length,
    originKind,
    // A request is what the first agent asserts; an approval counts only when verified (its receipt checked).
    humanOrigin: originKind === 'request' || firstApproved,
    approved: approvals.size > 0,
    approvedCommands: [...approvedCommands],
    approvedCalls: [...approvedCalls.values()],
    selfApproved,
    approvals: [...approvals.values()],
    approvers: [...approvers],
    actors: [...actors],
    purposes: [...purposes],
    controllers: [...controllers],
    commands: [...commands],
    targets: [...targets],
    steps: [...steps.values()],
    answered: [...answered.values()],
    answeredCalls: [...answeredCalls.values()],
    firstActor: first.actor,
    firstPurpose: first.purpose,
    trail,
  }
  if (lineage.user !== null && lineage.user !== undefined) out.user = identifier(lineage.user, 'subject.lineage.user')
  return out
}

/**
 * The verified approval of a lineage hop (`hop.approval.verified`, set by `verifyLineage` only for a receipt
 * that `verifyApproval` checked for this hop), as policies see it; null when the hop names none or only its
 * digest (`apr` claimed, no receipt verified). The approval must be of this hop's signer and command.
 */
function verifiedApproval(value: unknown, field: string, actor: string, command: string): { approverId: string; approver: string; group: string; selfApproval: boolean } | null {
  if (value === undefined || value === null) return null
  if (!isRecord(value)) return fail(`${field}: must be an object or null`)
  const v = value.verified
  if (v === undefined || v === null) return null
  if (!isRecord(v) || !isRecord(v.approver) || !isRecord(v.call)) return fail(`${field}.verified: must be a verified approval`)
  if (v.call.agent !== actor || v.call.command !== command) fail(`${field}.verified: is not an approval of this hop`)
  if (typeof v.selfApproval !== 'boolean') fail(`${field}.verified.selfApproval: must be a boolean`)
  const group = v.call.group
  if (group !== null && typeof group !== 'string') fail(`${field}.verified.call.group: must be a string or null`)
  return {
    approverId: text(v.approver.id, `${field}.verified.approver.id`),
    approver: text(v.approver.name, `${field}.verified.approver.name`),
    group: group === null ? '' : text(group, `${field}.verified.call.group`),
    selfApproval: v.selfApproval as boolean,
  }
}

/**
 * The attestation attributes of an Agent, from the issuer-written `attestation.verified` list of its
 * (verified) credential: whether any evidence was verified, its kinds, the Sigstore build digests and
 * the Nitro PCR0 values. Anything else in `attestation` (free-form, not verified) gives nothing.
 */
export function attestationAttributes(attestation: unknown): { attested: boolean; attestationKinds: string[]; attestedDigests: string[]; attestedPcr0: string[] } {
  const verified = isRecord(attestation) && Array.isArray(attestation.verified) ? attestation.verified.filter(isRecord) : []
  const kinds = new Set<string>()
  const digests = new Set<string>()
  const pcr0 = new Set<string>()
  for (const v of verified) {
    if (v.kind === 'eat' || v.kind === 'sigstore' || v.kind === 'nitro') kinds.add(v.kind)
    if (v.kind === 'sigstore' && isRecord(v.subject)) {
      if (typeof v.subject.sha256 === 'string') digests.add(`sha256:${v.subject.sha256}`)
      if (typeof v.subject.sha512 === 'string') digests.add(`sha512:${v.subject.sha512}`)
    }
    if (v.kind === 'nitro' && isRecord(v.pcrs) && typeof v.pcrs['0'] === 'string') pcr0.add(v.pcrs['0'])
  }
  return { attested: kinds.size > 0, attestationKinds: [...kinds].sort(), attestedDigests: [...digests].sort(), attestedPcr0: [...pcr0].sort() }
}
