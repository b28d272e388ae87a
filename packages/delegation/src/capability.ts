import { DATA_ACCESS_CLASSES, isNumericDate, isPlainResourceIdentifier, isPrintableText, throwFieldError as fail, type AgentIdErrorCode, type DataAccessClass } from '@agentid/core'

/**
 * What a link lets its subject do: `actions` on `resource`. `resource` is an exact identifier
 * (`mcp://erp/tools/invoices.read`, no `*`) or a prefix pattern ending in `/*` (`mcp://erp/tools/*`,
 * every identifier that starts with `mcp://erp/tools/` and is longer). The action `*` means all actions.
 */
export interface Capability {
  readonly resource: string
  readonly actions: readonly string[]
}

/** A constraint value: a scalar must be matched exactly; a string array means "one of these". */
export type ConstraintValue = string | number | boolean | readonly string[]

/**
 * Limits on a link's capabilities. An absent caveat does not limit (the chain length still does).
 * `notBefore`/`expiresAt` are unix seconds, the window is `[notBefore, expiresAt)`.
 */
export interface Caveats {
  readonly notBefore?: number
  readonly expiresAt?: number
  /** Highest data class the capabilities may touch (public < internal < confidential < restricted). */
  readonly maxDataClass?: DataAccessClass
  /** How many further delegations are allowed below this link (0: none). */
  readonly remainingDepth?: number
  /** Services where the capabilities may be invoked. */
  readonly audience?: readonly string[]
  /** Free-form key/value limits the invoked service enforces; a child may only narrow them. */
  readonly constraints?: Readonly<Record<string, ConstraintValue>>
}

/** The caveats by name, as failures report them. */
export type CaveatName = 'notBefore' | 'expiresAt' | 'maxDataClass' | 'remainingDepth' | 'audience' | 'constraints'

/** What one link grants: its capabilities under its caveats. */
export interface Grant {
  readonly capabilities: readonly Capability[]
  readonly caveats: Caveats
}

/** Verdict of {@link isAttenuation}; a failure names the wider capability (and action) or caveat (and constraint key). */
export type AttenuationResult =
  | { readonly ok: true }
  | {
      readonly ok: false
      readonly reason: string
      readonly capability?: Capability
      readonly action?: string
      readonly caveat?: CaveatName
      readonly constraint?: string
    }

/** A request to check against a grant (see {@link grantCovers}). */
export interface CapabilityRequest {
  resource: string
  action: string
  /** Data class the action touches; checked against `maxDataClass` when given. */
  dataClass?: DataAccessClass
  /** The service where the capability is invoked; required when the grant names an audience. */
  audience?: string
  /** Unix seconds; checked against the caveats' time window when given. */
  at?: number
}

const LIMITS = { resource: 2048, action: 256, capabilities: 256, actions: 64, audience: 64, constraints: 64, values: 256, text: 2048 } as const
const CAVEAT_KEYS = new Set<string>(['notBefore', 'expiresAt', 'maxDataClass', 'remainingDepth', 'audience', 'constraints'])
const CAPABILITY_KEYS = new Set(['resource', 'actions'])
/**
 * Largest `remainingDepth` accepted; longer chains are refused by every verifier anyway.
 * @example
 * parseCaveats({ remainingDepth: MAX_REMAINING_DEPTH }) // accepted; one more is refused
 */
export const MAX_REMAINING_DEPTH = 64


function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const SPACE = /\s/

function isToken(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length !== 0 && value.length <= max && !SPACE.test(value) && isPrintableText(value)
}

function tokenError(field: string, max: number, code: AgentIdErrorCode): never {
  fail(code, field, `must be a non-empty string of at most ${max} characters without spaces, control or bidirectional formatting characters`)
}

function token(value: unknown, field: string, max: number, code: AgentIdErrorCode): string {
  if (!isToken(value, max)) tokenError(field, max, code)
  return value
}

// Field names are built only for an error message: this runs for every list of every link read.
function stringList(value: unknown, field: string, maxItems: number, maxLength: number, code: AgentIdErrorCode): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > maxItems) fail(code, field, `must be a non-empty array of at most ${maxItems} strings`)
  const out = new Array<string>(value.length)
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i]
    if (!isToken(v, maxLength)) tokenError(`${field}[${i}]`, maxLength, code)
    // A repeat: pairwise for the short lists links carry, a set beyond.
    if (value.length <= 16) {
      for (let j = 0; j < i; j++) if (out[j] === v) fail(code, field, 'must not repeat a value')
    }
    out[i] = v
  }
  if (value.length > 16 && new Set(out).size !== out.length) fail(code, field, 'must not repeat a value')
  return out
}

/**
 * True when `resource` is a prefix pattern (`…/*`).
 * @example
 * isResourcePattern('mcp://erp/tools/*') // true
 */
export function isResourcePattern(resource: string): boolean {
  return resource.endsWith('/*')
}

function parseResource(value: unknown, field: () => string, code: AgentIdErrorCode): string {
  if (!isToken(value, LIMITS.resource)) tokenError(field(), LIMITS.resource, code)
  const resource = value
  const star = resource.indexOf('*')
  if (star !== -1 && (star !== resource.length - 1 || !resource.endsWith('/*') || resource.length < 3)) {
    fail(code, field(), 'must be an exact identifier (no *) or a prefix pattern ending in /*')
  }
  if (!isPlainResourceIdentifier(resource)) fail(code, field(), 'must not hold a dot segment, an encoded slash, a backslash or a control character')
  return resource
}

/**
 * Validates untrusted input as a non-empty list of capabilities and returns a clean copy.
 * @example
 * parseCapabilities([{ resource: 'mcp://erp/tools/*', actions: ['invoke'] }])
 */
export function parseCapabilities(input: unknown, code: AgentIdErrorCode = 'ERR_INVALID_INPUT'): Capability[] {
  if (!Array.isArray(input) || input.length === 0 || input.length > LIMITS.capabilities) fail(code, 'capabilities', `must be a non-empty array of at most ${LIMITS.capabilities} capabilities`)
  const out = new Array<Capability>(input.length)
  for (let i = 0; i < input.length; i++) {
    const c: unknown = input[i]
    if (!isRecord(c)) fail(code, `capabilities[${i}]`, 'must be an object')
    for (const key in c) if (Object.hasOwn(c, key) && !CAPABILITY_KEYS.has(key)) fail(code, `capabilities[${i}].${key}`, 'is not a capability member')
    const resource = parseResource(c.resource, () => `capabilities[${i}].resource`, code)
    const actions = stringList(c.actions, `capabilities[${i}].actions`, LIMITS.actions, LIMITS.action, code)
    for (let j = 0; j < actions.length; j++) if (actions[j] !== '*' && actions[j]!.includes('*')) fail(code, `capabilities[${i}].actions[${j}]`, 'only the action * may contain *')
    out[i] = Object.freeze({ resource, actions: Object.freeze(actions) })
  }
  return out
}

function time(value: unknown, field: string, code: AgentIdErrorCode): number {
  if (!isNumericDate(value)) fail(code, field, 'must be a NumericDate (unix seconds, 0 to 9999-12-31)')
  return value
}

/**
 * Validates untrusted input as caveats and returns a clean copy. Unknown caveats are refused: a
 * verifier that does not understand a limit must not ignore it.
 * @example
 * parseCaveats({ maxDataClass: 'internal', remainingDepth: 1, constraints: { region: ['eu', 'us'] } })
 */
export function parseCaveats(input: unknown, code: AgentIdErrorCode = 'ERR_INVALID_INPUT'): Caveats {
  if (!isRecord(input)) fail(code, 'caveats', 'must be an object')
  for (const key of Object.keys(input)) if (!CAVEAT_KEYS.has(key)) fail(code, `caveats.${key}`, 'is not a known caveat')
  const out: {
    notBefore?: number
    expiresAt?: number
    maxDataClass?: DataAccessClass
    remainingDepth?: number
    audience?: readonly string[]
    constraints?: Readonly<Record<string, ConstraintValue>>
  } = {}
  if (input.notBefore !== undefined) out.notBefore = time(input.notBefore, 'caveats.notBefore', code)
  if (input.expiresAt !== undefined) out.expiresAt = time(input.expiresAt, 'caveats.expiresAt', code)
  if (out.notBefore !== undefined && out.expiresAt !== undefined && out.notBefore >= out.expiresAt) fail(code, 'caveats.expiresAt', 'must be after notBefore')
  if (input.maxDataClass !== undefined) {
    if (typeof input.maxDataClass !== 'string' || !(DATA_ACCESS_CLASSES as readonly string[]).includes(input.maxDataClass)) {
      fail(code, 'caveats.maxDataClass', `must be one of ${DATA_ACCESS_CLASSES.join(', ')}`)
    }
    out.maxDataClass = input.maxDataClass as DataAccessClass
  }
  if (input.remainingDepth !== undefined) {
    const d = input.remainingDepth
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_REMAINING_DEPTH) fail(code, 'caveats.remainingDepth', `must be an integer from 0 to ${MAX_REMAINING_DEPTH}`)
    out.remainingDepth = d
  }
  if (input.audience !== undefined) out.audience = Object.freeze(stringList(input.audience, 'caveats.audience', LIMITS.audience, LIMITS.text, code))
  if (input.constraints !== undefined) {
    const c = input.constraints
    if (!isRecord(c) || Object.keys(c).length > LIMITS.constraints) fail(code, 'caveats.constraints', `must be an object of at most ${LIMITS.constraints} members`)
    const entries: [string, ConstraintValue][] = []
    for (const [key, value] of Object.entries(c)) {
      const field = `caveats.constraints.${key}`
      token(key, 'caveats.constraints key', LIMITS.action, code)
      if (typeof value === 'string') entries.push([key, token(value, field, LIMITS.text, code)])
      else if (typeof value === 'boolean') entries.push([key, value])
      else if (typeof value === 'number' && Number.isFinite(value)) entries.push([key, value])
      else if (Array.isArray(value)) entries.push([key, Object.freeze(stringList(value, field, LIMITS.values, LIMITS.text, code))])
      else fail(code, field, 'must be a string, a finite number, a boolean or a non-empty array of strings')
    }
    out.constraints = Object.freeze(Object.fromEntries(entries))
  }
  return Object.freeze(out)
}

/**
 * True when the resource pattern or identifier `granted` includes every identifier `wanted` names.
 * A `wanted` that is not plain (a `.`/`..` segment, also percent-encoded, an encoded slash, a
 * backslash, a control character: core's `isPlainResourceIdentifier`) is covered by nothing:
 * `mcp://erp/public/../payroll/run` is not under `mcp://erp/public/*`.
 * @example
 * resourceCovers('mcp://erp/tools/*', 'mcp://erp/tools/invoices.read') // true
 * resourceCovers('mcp://erp/tools/*', 'mcp://erp/toolsmith') // false
 */
export function resourceCovers(granted: string, wanted: string): boolean {
  if (!isPlainResourceIdentifier(wanted)) return false
  if (!isResourcePattern(granted)) return granted === wanted
  const prefix = granted.slice(0, -1) // keeps the trailing '/'
  if (isResourcePattern(wanted)) return wanted.slice(0, -1).startsWith(prefix)
  return wanted.length > prefix.length && wanted.startsWith(prefix)
}

// A loop, not parents.some(closure): a closure per action checked, on every link of every chain.
function actionCovered(parents: readonly Capability[], resource: string, action: string): boolean {
  for (let i = 0; i < parents.length; i++) {
    const p = parents[i]!
    if (resourceCovers(p.resource, resource) && (p.actions.includes('*') || (action !== '*' && p.actions.includes(action)))) return true
  }
  return false
}

function rank(dataClass: DataAccessClass | undefined): number {
  return DATA_ACCESS_CLASSES.indexOf(dataClass ?? 'restricted')
}

function allowed(value: ConstraintValue): readonly (string | number | boolean)[] {
  return Array.isArray(value) ? value : [value as string | number | boolean]
}

const narrower = (child: readonly string[] | undefined, parent: readonly string[] | undefined): boolean =>
  parent === undefined || (child !== undefined && child.every((v) => parent.includes(v)))

// A link read by parseCapabilityLink has deep-frozen, clean capabilities and caveats, which
// parseCapabilities / parseCaveats would accept and copy unchanged. isAttenuation reads them as they
// are (a verifier compares each link with its parent: parsing both again cost two copies per link).
// Its caveats object carries, in a private field, the capability list parsed with it: a private
// field is invisible (no property, not copied by a spread or a clone) and cannot be added or read
// outside this class, so nothing else can pass for a parsed grant. It is stamped on the plain object
// (a base constructor that returns its argument: the prototype stays Object.prototype), which costs
// about what a property does; a WeakSet entry cost ~0.5 µs each, more than re-parsing saved on a
// one-link chain.
class Returns {
  constructor(value: object) {
    return value
  }
}

class ParsedGrant extends Returns {
  readonly #capabilities: readonly Capability[]

  private constructor(caveats: Caveats, capabilities: readonly Capability[]) {
    super(caveats)
    this.#capabilities = capabilities
  }

  static stamp(caveats: Caveats, capabilities: readonly Capability[]): void {
    new ParsedGrant(caveats, capabilities)
  }

  /** The capability list parsed with these caveats, or undefined when they were not stamped. */
  static capabilitiesOf(caveats: unknown): readonly Capability[] | undefined {
    return typeof caveats === 'object' && caveats !== null && #capabilities in caveats ? (caveats as ParsedGrant).#capabilities : undefined
  }
}

/**
 * Internal (not exported from index.ts): records that `caveats` and `capabilities` are a link's parsed
 * grant. `capabilities` must be frozen (items and actions frozen by parseCapabilities); `caveats`, made
 * from parseCaveats' output, must not be frozen yet (the caller freezes it right after: a private
 * field is added before, as the language will stop allowing it on a frozen object).
 */
export function markParsedGrant(capabilities: readonly Capability[], caveats: Caveats): void {
  if (!Object.isFrozen(capabilities) || Object.isFrozen(caveats)) throw new TypeError('markParsedGrant: frozen capabilities and caveats not yet frozen are expected')
  ParsedGrant.stamp(caveats, capabilities)
}

/**
 * Decides exactly whether `child` grants nothing that `parent` does not: every (resource, action,
 * data class, time, audience, constraint assignment) the child allows, the parent allows, and the
 * child's `remainingDepth` is below the parent's. The rules are in the package README.
 * @example
 * isAttenuation(
 *   { capabilities: [{ resource: 'mcp://erp/tools/invoices.read', actions: ['invoke'] }], caveats: { maxDataClass: 'internal' } },
 *   { capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['*'] }], caveats: {} },
 * ) // { ok: true }
 */
export function isAttenuation(child: Grant, parent: Grant): AttenuationResult {
  let childCapabilities: readonly Capability[]
  let parentCapabilities: readonly Capability[]
  let cc: Caveats
  let pc: Caveats
  try {
    // A link's parsed grant as it is (its caveats stamped frozen, the capabilities the ones parsed with them).
    const childParsed = ParsedGrant.capabilitiesOf(child?.caveats)
    childCapabilities = childParsed !== undefined && childParsed === child.capabilities ? childParsed : parseCapabilities(child?.capabilities)
    cc = childParsed !== undefined && Object.isFrozen(child.caveats) ? child.caveats : parseCaveats(child?.caveats)
    const parentParsed = ParsedGrant.capabilitiesOf(parent?.caveats)
    parentCapabilities = parentParsed !== undefined && parentParsed === parent.capabilities ? parentParsed : parseCapabilities(parent?.capabilities)
    pc = parentParsed !== undefined && Object.isFrozen(parent.caveats) ? parent.caveats : parseCaveats(parent?.caveats)
  } catch (error) {
    return { ok: false, reason: `malformed grant: ${error instanceof Error ? error.message : String(error)}` }
  }
  for (const capability of childCapabilities) {
    for (const action of capability.actions) {
      if (!actionCovered(parentCapabilities, capability.resource, action)) {
        return { ok: false, reason: `action ${action} on ${capability.resource} is not granted by the parent`, capability, action }
      }
    }
  }
  if ((cc.notBefore ?? -Infinity) < (pc.notBefore ?? -Infinity)) return { ok: false, reason: 'notBefore is earlier than the parent\'s', caveat: 'notBefore' }
  if ((cc.expiresAt ?? Infinity) > (pc.expiresAt ?? Infinity)) return { ok: false, reason: 'expiresAt is later than the parent\'s', caveat: 'expiresAt' }
  if (rank(cc.maxDataClass) > rank(pc.maxDataClass)) return { ok: false, reason: 'maxDataClass is above the parent\'s', caveat: 'maxDataClass' }
  if (pc.remainingDepth !== undefined) {
    if (pc.remainingDepth === 0) return { ok: false, reason: 'the parent allows no further delegation', caveat: 'remainingDepth' }
    if (cc.remainingDepth === undefined || cc.remainingDepth > pc.remainingDepth - 1) {
      return { ok: false, reason: `remainingDepth must be at most ${pc.remainingDepth - 1}`, caveat: 'remainingDepth' }
    }
  }
  if (!narrower(cc.audience, pc.audience)) return { ok: false, reason: 'audience names a service the parent does not', caveat: 'audience' }
  const parentConstraints = pc.constraints
  if (parentConstraints !== undefined) for (const key of Object.keys(parentConstraints)) {
    const value = parentConstraints[key]!
    const mine = cc.constraints?.[key]
    if (mine === undefined) return { ok: false, reason: `constraint ${key} is dropped`, caveat: 'constraints', constraint: key }
    const parentValues = allowed(value)
    if (!allowed(mine).every((v) => parentValues.some((w) => w === v))) {
      return { ok: false, reason: `constraint ${key} allows a value the parent does not`, caveat: 'constraints', constraint: key }
    }
  }
  return { ok: true }
}

/**
 * Why `grant` does not cover `request`, or null when it does: a capability names the resource
 * (exactly or by prefix) with the action or `*`; `dataClass` is at most `maxDataClass`; an
 * audience-restricted grant requires `request.audience` among its audience; `at` is in the window.
 * Constraints are not checked here: the invoked service enforces them on the call's arguments.
 * @example
 * grantCovers(leaf, { resource: 'mcp://erp/tools/invoices.read', action: 'invoke' }) // null
 */
export function grantCovers(grant: Grant, request: CapabilityRequest): string | null {
  if (typeof request.resource !== 'string' || request.resource.includes('*')) throw new TypeError('grantCovers: resource must be an exact identifier')
  if (typeof request.action !== 'string' || request.action.length === 0 || request.action.includes('*')) throw new TypeError('grantCovers: action must be a named action')
  if (!actionCovered(grant.capabilities, request.resource, request.action)) return 'capability'
  const caveats = grant.caveats
  if (request.dataClass !== undefined && rank(request.dataClass) > rank(caveats.maxDataClass)) return 'maxDataClass'
  if (request.dataClass !== undefined && rank(request.dataClass) === -1) return 'maxDataClass'
  if (caveats.audience !== undefined && (request.audience === undefined || !caveats.audience.includes(request.audience))) return 'audience'
  if (request.at !== undefined && ((caveats.notBefore !== undefined && request.at < caveats.notBefore) || (caveats.expiresAt !== undefined && request.at >= caveats.expiresAt))) return 'time'
  return null
}
