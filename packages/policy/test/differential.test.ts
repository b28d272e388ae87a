import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AGENTID_CEDAR_SCHEMA, loadPolicyEngine, type AuthorizationSubject, type PolicyAction, type PolicyResource } from '@agentid/policy'
import { SLICE_TUNING } from '../src/internal/policy-index.js'
import { policyDir } from './fixtures.js'

// Differential test of the index, the slices and the memo: for random policy sets and random requests, the
// engine decides exactly as plain Cedar isAuthorized over the whole set (same decision, same determining
// policies, same erroring policies). The Cedar entities are built here by hand from the documented schema,
// independently of the engine's own encoding.

const AGENTS = ['did:key:zA', 'did:key:zB', 'did:key:zC']
const SERVERS = ['s0', 's1', 's2']
const NAMES = ['n0', 'n1', 'n2']
const ACTIONS: PolicyAction[] = ['callTool', 'listTools', 'readResource', 'getPrompt', 'invokeWorkflow']
const WORKFLOWS = ['w0', 'w1']
const TIERS = ['standard', 'sandbox', 'ops']
const CLASSES = ['public', 'internal', 'confidential', 'restricted'] as const
const NS = 'AgentId'

const q = (s: string) => JSON.stringify(s)
const agentRef = (i: number) => `${NS}::Agent::${q(AGENTS[i]!)}`
const serverRef = (s: string) => `${NS}::McpServer::${q(s)}`
const childRef = (type: 'Tool' | 'Resource' | 'Prompt', s: string, n: string) => `${NS}::${type}::${q(`${s}/${n}`)}`

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs)

const principalScope = fc.oneof(
  fc.constant('principal'),
  pick([0, 1, 2]).map((i) => `principal == ${agentRef(i)}`),
  pick([0, 1, 2]).map((i) => `principal in ${agentRef(i)}`),
  fc.constant(`principal is ${NS}::Agent`),
  pick([0, 1]).map((i) => `principal is ${NS}::Agent in ${agentRef(i)}`),
  fc.constant(`principal in ${NS}::User::"u0"`),
)

const actionScope = fc.oneof(
  fc.constant('action'),
  pick(ACTIONS).map((a) => `action == ${NS}::Action::${q(a)}`),
  fc.subarray(ACTIONS, { minLength: 1, maxLength: 3 }).map((as) => `action in [${as.map((a) => `${NS}::Action::${q(a)}`).join(', ')}]`),
)

const resourceEntityRef = fc.oneof(
  pick(SERVERS).map(serverRef),
  fc.tuple(pick(['Tool', 'Resource', 'Prompt'] as const), pick(SERVERS), pick(NAMES)).map(([t, s, n]) => childRef(t, s, n)),
  pick(WORKFLOWS).map((w) => `${NS}::Workflow::${q(w)}`),
)

const resourceScope = fc.oneof(
  fc.constant('resource'),
  resourceEntityRef.map((e) => `resource == ${e}`),
  resourceEntityRef.map((e) => `resource in ${e}`),
  pick(['Tool', 'McpServer', 'Workflow', 'Prompt']).map((t) => `resource is ${NS}::${t}`),
  fc.tuple(pick(['Tool', 'Resource']), pick(SERVERS)).map(([t, s]) => `resource is ${NS}::${t} in ${serverRef(s)}`),
)

const condition = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: pick(TIERS).map((t) => `when { principal.policyTier == ${q(t)} }`) },
  { weight: 1, arbitrary: pick([0, 1, 2, 3]).map((l) => `when { principal.dataAccessLevel >= ${l} }`) },
  { weight: 1, arbitrary: pick([0, 1, 2]).map((d) => `unless { context.delegationDepth <= ${d} }`) },
  { weight: 1, arbitrary: pick([1500, 2500]).map((t) => `when { context.time < ${t} }`) },
  { weight: 1, arbitrary: fc.constant('when { context has requestedDataLevel && context.requestedDataLevel > principal.dataAccessLevel }') },
  { weight: 1, arbitrary: pick(['u0', 'u1']).map((u) => `when { principal has user && principal.user == ${NS}::User::${q(u)} }`) },
  { weight: 1, arbitrary: pick(SERVERS).map((s) => `when { resource in ${serverRef(s)} }`) },
  { weight: 1, arbitrary: pick(NAMES).map((n) => `when { principal.toolProfile.contains(${q(n)}) }`) },
  { weight: 1, arbitrary: fc.constant('when { context.authorizationGrants.contains({ type: "t", action: "a", location: "" }) }') },
  // Overflows (an evaluation error, so the policy is skipped and listed in errors) when the depth is 2 or more.
  { weight: 1, arbitrary: fc.constant('when { context.delegationDepth * 4611686018427387904 >= 0 }') },
)

const policy = fc
  .record({ effect: fc.constantFrom('permit', 'permit', 'forbid'), p: principalScope, a: actionScope, r: resourceScope, c: condition, id: fc.boolean() })
  .map(({ effect, p, a, r, c, id }) => ({ text: `${effect} (${p}, ${a}, ${r}) ${c};`, named: id }))

const request = fc.record({
  agent: pick([0, 1, 2]),
  tier: pick(TIERS),
  dataClass: pick(CLASSES),
  profile: fc.subarray(NAMES),
  user: fc.option(pick(['u0', 'u1']), { nil: undefined }),
  depth: fc.option(pick([1, 2, 3]), { nil: undefined }),
  requested: fc.option(pick(CLASSES), { nil: undefined }),
  grant: fc.boolean(),
  time: pick([1000, 2000, 3000]),
  action: pick(ACTIONS),
  server: pick(SERVERS),
  name: pick(NAMES),
  workflow: pick(WORKFLOWS),
})
type Req = typeof request extends fc.Arbitrary<infer T> ? T : never

// A request and a near twin that differs from it in one field only: the memo must keep them apart
// whenever some policy can tell them apart.
const FIELDS = ['agent', 'tier', 'dataClass', 'profile', 'user', 'depth', 'requested', 'grant', 'time', 'server', 'name', 'workflow'] as const
const pair = fc.tuple(request, request, fc.constantFrom(...FIELDS)).map(([r, other, field]) => [r, { ...r, [field]: other[field] }] as [Req, Req])

function toSubject(r: Req): AuthorizationSubject {
  return {
    agent: {
      did: AGENTS[r.agent]!,
      claims: { purpose: 'p', controller: 'c', model: { name: 'm', version: '1' }, toolProfile: r.profile, policyTier: r.tier, dataAccessClass: r.dataClass },
    },
    ...(r.user ? { user: { id: r.user, issuer: 'https://idp' } } : {}),
    ...(r.depth ? { delegation: { root: 'did:key:zRoot', depth: r.depth } } : {}),
    ...(r.requested ? { requestedDataClass: r.requested } : {}),
    ...(r.grant ? { authorizationDetails: [{ type: 't', actions: ['a'], locations: [] }] } : {}),
    time: r.time,
  }
}

function toResource(r: Req): PolicyResource {
  switch (r.action) {
    case 'callTool':
      return { type: 'Tool', server: r.server, name: r.name }
    case 'listTools':
      return { type: 'McpServer', id: r.server }
    case 'readResource':
      return { type: 'Resource', server: r.server, uri: r.name }
    case 'getPrompt':
      return { type: 'Prompt', server: r.server, name: r.name }
    case 'invokeWorkflow':
      return { type: 'Workflow', id: r.workflow }
  }
}

/** Plain Cedar over the whole set, with entities built from the schema's documentation. */
function reference(policies: Record<string, string>, r: Req) {
  const agent = { type: `${NS}::Agent`, id: AGENTS[r.agent]! }
  const entities: cedar.EntityJson[] = [
    {
      uid: agent,
      attrs: {
        purpose: 'p',
        controller: 'c',
        model: { name: 'm', version: '1' },
        policyTier: r.tier,
        dataAccessClass: r.dataClass,
        dataAccessLevel: CLASSES.indexOf(r.dataClass),
        toolProfile: r.profile,
        // What principalEntities gives a credential without verified attestation evidence.
        attested: false,
        attestationKinds: [],
        attestedDigests: [],
        attestedPcr0: [],
        ...(r.user ? { user: { __entity: { type: `${NS}::User`, id: r.user } } } : {}),
      },
      parents: [],
    },
  ]
  if (r.user) entities.push({ uid: { type: `${NS}::User`, id: r.user }, attrs: { issuer: 'https://idp' }, parents: [] })
  const server = { type: `${NS}::McpServer`, id: r.server }
  let resource: { type: string; id: string }
  if (r.action === 'listTools') {
    resource = server
    entities.push({ uid: server, attrs: {}, parents: [] })
  } else if (r.action === 'invokeWorkflow') {
    resource = { type: `${NS}::Workflow`, id: r.workflow }
    entities.push({ uid: resource, attrs: {}, parents: [] })
  } else {
    const type = { callTool: 'Tool', readResource: 'Resource', getPrompt: 'Prompt' }[r.action]
    resource = { type: `${NS}::${type}`, id: `${r.server}/${r.name}` }
    const member = type === 'Resource' ? 'uri' : 'name'
    entities.push({ uid: resource, attrs: { [member]: r.name, server: r.server, qualifiedName: resource.id }, parents: [server] })
    entities.push({ uid: server, attrs: {}, parents: [] })
  }
  const context: cedar.Context = {
    delegationDepth: r.depth ?? 0,
    authorizationDetails: r.grant ? [{ type: 't', actions: ['a'], locations: [], datatypes: [], identifiers: [] }] : [],
    authorizationGrants: r.grant ? [{ type: 't', action: 'a', location: '' }] : [],
    time: r.time,
    ...(r.depth ? { delegationRoot: 'did:key:zRoot' } : {}),
    ...(r.requested ? { requestedDataClass: r.requested, requestedDataLevel: CLASSES.indexOf(r.requested) } : {}),
  }
  const answer = cedar.isAuthorized({
    principal: agent,
    action: { type: `${NS}::Action`, id: r.action },
    resource,
    context,
    entities,
    policies: { staticPolicies: policies },
    schema: AGENTID_CEDAR_SCHEMA,
    validateRequest: true,
  })
  if (answer.type !== 'success') throw new Error(`reference isAuthorized failed: ${JSON.stringify(answer.errors)}`)
  return answer.response
}

describe('sliced + memoized decisions equal plain Cedar over the whole set', () => {
  // Twice: as shipped (a slice holding most of the set is the whole set), and with every request sliced.
  it.each([
    ['as shipped', SLICE_TUNING.wholeSetAbove],
    ['every request sliced', Number.POSITIVE_INFINITY],
  ])('for random policy sets and requests (%s)', async (_, wholeSetAbove) => {
    const saved = SLICE_TUNING.wholeSetAbove
    SLICE_TUNING.wholeSetAbove = wholeSetAbove
    try {
      await property()
    } finally {
      SLICE_TUNING.wholeSetAbove = saved
    }
  }, 120_000)
})

async function property(): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(policy, { minLength: 0, maxLength: 40 }), fc.array(pair, { minLength: 1, maxLength: 20 }), async (policies, pairs) => {
      // Half the policies in one file, half in a nested one; some carry an @id.
      const files: Record<string, string[]> = { 'a.cedar': [], 'nested/b.cedar': [] }
      const ids: Record<string, string> = {}
      policies.forEach((p, i) => {
        const file = i % 2 === 0 ? 'a.cedar' : 'nested/b.cedar'
        const n = files[file]!.length
        const id = p.named ? `policy-${i}` : `${file}#${n}`
        files[file]!.push(p.named ? `@id(${q(id)})\n${p.text}` : p.text)
        ids[id] = p.text
      })
      const engine = await loadPolicyEngine({ dir: policyDir({ 'a.cedar': files['a.cedar']!.join('\n'), 'nested/b.cedar': files['nested/b.cedar']!.join('\n') }), memoSize: 16 })
      // Each request twice in a row (the second from the memo), then its twin, then the whole list again
      // (after memo evictions).
      const requests = pairs.flat()
      for (const r of [...pairs.flatMap(([r, twin]) => [r, r, twin]), ...requests]) {
        const expected = reference(ids, r)
        const got = engine.authorize(toSubject(r), r.action, toResource(r))
        expect(got.decision).toBe(expected.decision)
        expect([...got.policies].sort()).toEqual([...expected.diagnostics.reason].sort())
        expect(got.errors.map((e) => e.slice(0, e.indexOf(':'))).sort()).toEqual(expected.diagnostics.errors.map((e) => e.policyId).sort())
      }
    }),
    { numRuns: 80 },
  )
}
