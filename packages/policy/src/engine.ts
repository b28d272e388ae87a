import { randomBytes } from 'node:crypto'
import { AgentIdError } from '@agentid/core'
import type {
  AuthorizationSubject,
  PolicyAction,
  PolicyDecision,
  PolicyDecisionReason,
  PolicyDiagnostic,
  PolicyEngine,
  PolicyEngineOptions,
  PolicyResource,
  PolicyValidation,
} from './types.js'
import { cedar, NS } from './internal/cedar.js'
import { loadPolicyFolder, type CompiledPolicy } from './internal/load.js'
import { Lru } from './internal/lru.js'
import { entityKey, PolicyIndex } from './internal/policy-index.js'
import { pick, policyReads, type Reads } from './internal/reads.js'
import { ACTION_RESOURCE, principalEntities, requestContext, RequestError, resourceEntity } from './internal/request.js'

const DEFAULT_MEMO = 10_000
const SLICE_CAPACITY = 4096
// Preparsed policy sets live in the Cedar module, shared by every copy of this package loaded in the process:
// ids carry a random part so that two copies never overwrite each other's sets.
const INSTANCE = randomBytes(6).toString('hex')
let engines = 0

function decision(allowed: boolean, reason: PolicyDecisionReason, policies: readonly string[] = [], errors: readonly string[] = []): PolicyDecision {
  return Object.freeze({
    allowed,
    decision: allowed ? 'allow' : 'deny',
    // Sorted: Cedar reports sets, and audit lines and CLI output should not change order from run to run.
    policies: Object.freeze([...policies].sort()),
    errors: Object.freeze([...errors].sort()),
    reason,
  })
}

const NO_POLICY = decision(false, 'no-matching-policy')

/**
 * Whether nothing reachable from `value` can change: every object frozen, with data properties only and
 * the plain object or array prototype (or none), nested at most `depth` deep.
 */
function deepFrozen(value: unknown, depth = 32): boolean {
  if (typeof value !== 'object' || value === null) return typeof value !== 'function'
  if (depth === 0 || !Object.isFrozen(value)) return false
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) return false
  for (const key of Reflect.ownKeys(value)) {
    const property = Object.getOwnPropertyDescriptor(value, key)!
    if (!('value' in property) || !deepFrozen(property.value, depth - 1)) return false
  }
  return true
}

/**
 * The memo key of a subject's last request, kept by subject while the subject cannot change (deepFrozen,
 * checked once): the same subject asking the same action on the same resource in the same second has the
 * same Cedar input, so the key (and the decision it finds) need not be built again. The resource is
 * compared by the members the request is built from.
 */
const SEEN_ONCE = Symbol('seen once')
interface SubjectMemo {
  readonly state: State
  readonly action: string
  readonly second: number
  readonly type: unknown
  readonly server: unknown
  readonly name: unknown
  readonly uri: unknown
  readonly id: unknown
  readonly key: string
}

/** What one successful load produced: the index and the memo live and die with it. */
interface State {
  readonly version: number
  readonly policies: readonly CompiledPolicy[]
  readonly index: PolicyIndex
  readonly memo: Lru<string, PolicyDecision>
  readonly reads: Reads
  /** Validator warnings (e.g. a policy that can never apply): logged, not refused. */
  readonly warnings: readonly PolicyDiagnostic[]
  /** The approval requirement of each policy marked `@approval("required")`, by id. */
  readonly approvals: ReadonlyMap<string, { readonly group: string | null }>
}

function invalid(dir: string, diagnostics: readonly PolicyDiagnostic[]): AgentIdError {
  const errors = diagnostics.filter((d) => d.severity === 'error')
  const first = errors[0]
  const where = first ? `${first.file || dir}${first.line ? `:${first.line}:${first.column}` : ''}${first.policy ? ` (${first.policy})` : ''}: ${first.message}` : 'invalid'
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''
  return new AgentIdError('ERR_POLICY_INVALID', `policy folder ${dir} is invalid: ${where}${more}`, { details: { dir, diagnostics: errors } })
}

/**
 * Parses and validates a policy folder against AGENTID_CEDAR_SCHEMA (Cedar strict mode) without building an
 * engine: what `agentid policy validate` runs.
 * @example
 * const { ok, diagnostics } = await validatePolicyDirectory('./policies')
 * for (const d of diagnostics) console.error(`${d.file}:${d.line ?? 0} ${d.policy ?? ''} ${d.message}`)
 */
export async function validatePolicyDirectory(dir: string): Promise<PolicyValidation> {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('validatePolicyDirectory: dir must be a path')
  const loaded = await loadPolicyFolder(dir)
  return Object.freeze({ ok: loaded.ok, policies: loaded.ok ? loaded.policies.length : 0, diagnostics: Object.freeze([...loaded.diagnostics]) })
}

/**
 * Loads and validates a policy folder and returns an engine that decides requests, deny by default.
 * Throws AgentIdError `ERR_POLICY_INVALID` (details.diagnostics: file, policy, line, message) when the folder
 * does not parse or does not validate: a service should not start on it.
 * @example
 * const policy = await loadPolicyEngine({ dir: './policies' })
 * const d = policy.authorize(subject, 'callTool', { type: 'Tool', server: 'github', name: 'create_issue' })
 * if (!d.allowed) return forbidden(d.reason, d.policies)
 */
export async function loadPolicyEngine(options: PolicyEngineOptions): Promise<PolicyEngine> {
  if (typeof options !== 'object' || options === null) throw new TypeError('loadPolicyEngine: options are required')
  const { dir, logger } = options
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('loadPolicyEngine: dir must be a path')
  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') throw new TypeError('loadPolicyEngine: clock must be a function')
  const memoSize = options.memoSize ?? DEFAULT_MEMO
  if (!Number.isSafeInteger(memoSize) || memoSize < 0) throw new TypeError('loadPolicyEngine: memoSize must be a non-negative integer')
  const prefix = `agentid-policy-${INSTANCE}-${++engines}`

  const build = async (version: number): Promise<State> => {
    const loaded = await loadPolicyFolder(dir)
    if (!loaded.ok) throw invalid(dir, loaded.diagnostics)
    return {
      version,
      policies: loaded.policies,
      // Every state of this engine uses the same slice ids: a new state overwrites the old one's preparsed sets.
      index: new PolicyIndex(loaded.policies, prefix, SLICE_CAPACITY),
      memo: new Lru(memoSize),
      reads: policyReads(loaded.policies),
      warnings: loaded.diagnostics.filter((d) => d.severity === 'warning'),
      approvals: new Map(loaded.policies.filter((p) => p.approval !== null).map((p) => [p.id, p.approval!])),
    }
  }

  let state = await build(1)
  logger?.info({ dir, policies: state.policies.length, version: state.version, warnings: state.warnings }, 'policies loaded')
  if (state.policies.length === 0) logger?.info({ dir }, 'the policy folder holds no policies: every request is denied')

  const authorize = (subject: AuthorizationSubject, action: string, resource: PolicyResource): PolicyDecision => {
    const s = state
    return withApproval(s, subject, decide(s, subject, action, resource))
  }

  // An allow that rests only on permits marked @approval("required") stands only with an approval for the
  // group they name (all of them the same group; permits naming different groups cannot be satisfied by one
  // approval, so the first is asked for). Denies, and allows with any unmarked permit, are unchanged.
  const withApproval = (s: State, subject: AuthorizationSubject, d: PolicyDecision): PolicyDecision => {
    if (!d.allowed || s.approvals.size === 0) return d
    const marks = d.policies.map((id) => s.approvals.get(id))
    if (marks.some((m) => m === undefined)) return d
    const group = marks[0]!.group
    const given = subject.approval
    const satisfied = given !== undefined && given !== null && marks.every((m) => m!.group === group) && (given.group ?? null) === group
    if (satisfied) return Object.freeze({ ...d, approval: Object.freeze({ group, approved: true }) })
    return Object.freeze({
      allowed: false,
      decision: 'deny' as const,
      policies: d.policies,
      errors: d.errors,
      reason: 'approval-required' as const,
      approval: Object.freeze({ group, approved: false }),
    })
  }

  // Subjects that cannot change (a service's caller, reused for each of its requests): their last memo key,
  // or null when the subject could change. A subject seen once is only marked: one built per request (with a
  // lineage, an approval) is not walked for a memo it would never use again.
  const subjects = new WeakMap<object, SubjectMemo | null | typeof SEEN_ONCE>()

  const decide = (s: State, subject: AuthorizationSubject, action: string, resource: PolicyResource): PolicyDecision => {
    if (typeof action !== 'string' || !Object.hasOwn(ACTION_RESOURCE, action)) {
      return decision(false, 'unknown-action', [], [`unknown action ${JSON.stringify(String(action)).slice(0, 80)}`])
    }
    let second: number | undefined
    try {
      second = Math.floor(clock() / 1000)
    } catch {
      // Refused below, where the clock is read again, as before.
    }
    const r = resource as unknown as Record<string, unknown>
    let last: SubjectMemo | null | undefined
    if (memoSize > 0 && second !== undefined && typeof subject === 'object' && subject !== null && typeof resource === 'object' && resource !== null) {
      const known = subjects.get(subject)
      if (known === undefined) {
        subjects.set(subject, SEEN_ONCE)
        last = null
      } else if (known === SEEN_ONCE) {
        last = deepFrozen(subject) ? undefined : null
        if (last === null) subjects.set(subject, null)
      } else last = known
      if (
        last != null && last.state === s && last.action === action && last.second === second && last.type === r.type &&
        last.server === r.server && last.name === r.name && last.uri === r.uri && last.id === r.id
      ) {
        const hit = s.memo.get(last.key)
        if (hit) return hit
      }
    }
    let request
    try {
      const expected = ACTION_RESOURCE[action as PolicyAction]
      const { entity, parent } = resourceEntity(resource)
      if (entity.uid.type !== `${NS}::${expected}`) throw new RequestError(`resource.type: ${action} applies to ${expected}`)
      const principal = principalEntities(subject)
      const context = requestContext(subject, second ?? Math.floor(clock() / 1000))
      request = { entity, parent, principal, context }
    } catch (error) {
      if (error instanceof RequestError) return decision(false, 'invalid-request', [], [error.message])
      return decision(false, 'invalid-request', [], ['malformed request'])
    }
    const { entity, parent, principal, context } = request
    const agent = principal[0]!

    // What Cedar gets is what some policy can read: attributes no policy names and context members no policy
    // reads are left out (Cedar has no other way to reach them), and so is the user when no policy reads
    // `user`. A tool's server needs no entity: the tool lists it as its parent. The memo key is this exact
    // Cedar input, so two requests share a decision only when Cedar could not tell them apart.
    const read = s.reads
    const entities = []
    for (const e of principal) {
      if (e !== agent && !read.attributes.has('user')) continue
      entities.push({ uid: e.uid, attrs: pick(e.attrs, read.attributes), parents: e.parents })
    }
    entities.push({ uid: entity.uid, attrs: pick(entity.attrs, read.attributes), parents: entity.parents })
    const cedarContext = read.context === 'all' ? context : pick(context, read.context)

    let key: string | undefined
    if (memoSize > 0) {
      key = JSON.stringify([action, entities, cedarContext])
      if (last !== null && second !== undefined) {
        subjects.set(subject, { state: s, action, second, type: r.type, server: r.server, name: r.name, uri: r.uri, id: r.id, key })
      }
      const hit = s.memo.get(key)
      if (hit) return hit
    }

    const resources = [entityKey(entity.uid.type, entity.uid.id)]
    if (parent) resources.push(entityKey(parent.uid.type, parent.uid.id))
    let result: PolicyDecision
    let slice
    try {
      slice = s.index.slice(entityKey(agent.uid.type, agent.uid.id), action, resources)
    } catch (error) {
      return decision(false, 'evaluation-failed', [], [(error as Error).message])
    }
    if (!slice) {
      result = NO_POLICY
    } else {
      // No schema at decision time: every policy passed strict validation at load, and the request builder's
      // output conforms to the schema (test/request.test.ts); parsing the entities against it again would
      // cost about a third of a decision.
      const answer = cedar.statefulIsAuthorized({
        principal: agent.uid,
        action: { type: `${NS}::Action`, id: action },
        resource: entity.uid,
        context: cedarContext,
        entities,
        preparsedPolicySetId: slice.id,
        validateRequest: false,
      })
      if (answer.type === 'failure') {
        // Not memoized: a failure says nothing about the next identical request.
        return decision(false, 'evaluation-failed', [], answer.errors.map((e) => e.message))
      }
      const { decision: verdict, diagnostics } = answer.response
      const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`)
      const allowed = verdict === 'allow'
      result = decision(allowed, diagnostics.reason.length > 0 ? 'policy' : 'no-matching-policy', diagnostics.reason, errors)
    }
    if (key !== undefined) s.memo.set(key, result)
    return result
  }

  let reloading: Promise<unknown> = Promise.resolve()
  const reload = (): Promise<{ ok: true; policies: number } | { ok: false; error: AgentIdError }> => {
    const run = reloading.then(async () => {
      try {
        const next = await build(state.version + 1)
        state = next
        logger?.info({ dir, policies: next.policies.length, version: next.version, warnings: next.warnings }, 'policies reloaded')
        return { ok: true as const, policies: next.policies.length }
      } catch (error) {
        const e = error instanceof AgentIdError ? error : new AgentIdError('ERR_POLICY_INVALID', `policy folder ${dir} could not be loaded`, { cause: error, details: { dir, diagnostics: [] } })
        logger?.error({ dir, code: e.code, diagnostics: e.details.diagnostics, version: state.version }, 'policy reload refused: the last good policy set stays in force')
        return { ok: false as const, error: e }
      }
    })
    reloading = run
    return run
  }

  return Object.freeze({
    authorize,
    reload,
    get policyCount() {
      return state.policies.length
    },
    get version() {
      return state.version
    },
  })
}
