import { describe, expect, it } from 'vitest'
import { loadPolicyEngine, type PolicyResource } from '@agentid/policy'
import { DIDS, policyDir, subject, tool, writeFiles } from './fixtures.js'

const PROFILE = `@id("profile")
permit (principal, action == AgentId::Action::"callTool", resource)
when { principal.toolProfile.containsAny([resource.name, resource.qualifiedName]) };
`

const engineWith = (files: Record<string, string>, options: { clock?: () => number; memoSize?: number } = {}) => loadPolicyEngine({ dir: policyDir(files), ...options })

describe('deny by default', () => {
  it('denies everything with no policies', async () => {
    const engine = await engineWith({})
    for (const [action, resource] of [
      ['callTool', tool('gh', 'search_issues')],
      ['listTools', { type: 'McpServer', id: 'gh' }],
      ['readResource', { type: 'Resource', server: 'gh', uri: 'file:///etc/passwd' }],
      ['getPrompt', { type: 'Prompt', server: 'gh', name: 'p' }],
      ['invokeWorkflow', { type: 'Workflow', id: 'w' }],
    ] as [string, PolicyResource][]) {
      expect(engine.authorize(subject('alice'), action, resource)).toEqual({ allowed: false, decision: 'deny', policies: [], errors: [], reason: 'no-matching-policy' })
    }
  })

  it('denies with an empty tool profile, and a named profile lists no tools', async () => {
    const engine = await engineWith({ 'p.cedar': PROFILE })
    expect(engine.authorize(subject('alice', { toolProfile: [] }), 'callTool', tool('gh', 'search_issues')).allowed).toBe(false)
    expect(engine.authorize(subject('alice', { toolProfile: 'search_issues' }), 'callTool', tool('gh', 'search_issues')).allowed).toBe(false)
    expect(engine.authorize(subject('alice', { toolProfile: ['search_issues'] }), 'callTool', tool('gh', 'search_issues'))).toMatchObject({ allowed: true, policies: ['profile'], reason: 'policy' })
    expect(engine.authorize(subject('alice', { toolProfile: ['gh/search_issues'] }), 'callTool', tool('gh', 'search_issues')).allowed).toBe(true)
    expect(engine.authorize(subject('alice', { toolProfile: ['gh/search_issues'] }), 'callTool', tool('other', 'search_issues')).allowed).toBe(false)
  })

  it('denies an unknown tool, and tool names that differ by case, look-alikes or path tricks', async () => {
    const engine = await engineWith({ 'p.cedar': PROFILE })
    const alice = subject('alice', { toolProfile: ['search_issues'] })
    for (const name of ['delete_repo', 'Search_Issues', 'SEARCH_ISSUES', 'search_issues ', ' search_issues', 'search\u0456ssues', 'ѕearch_issues', 'search_issues\u200b', '../search_issues', 'search_issues/..', 'x/../search_issues']) {
      expect(engine.authorize(alice, 'callTool', tool('gh', name)).allowed, name).toBe(false)
    }
    expect(engine.authorize(alice, 'callTool', tool('gh', 'search_issues')).allowed).toBe(true)
  })

  it('denies an unknown action without consulting policies', async () => {
    const engine = await engineWith({ 'p.cedar': 'permit (principal, action, resource);' })
    for (const action of ['deleteEverything', 'CallTool', 'calltool', '', 'toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      expect(engine.authorize(subject('alice'), action, tool('gh', 'x'))).toMatchObject({ allowed: false, reason: 'unknown-action' })
    }
    expect(engine.authorize(subject('alice'), 42 as unknown as string, tool('gh', 'x'))).toMatchObject({ allowed: false, reason: 'unknown-action' })
    expect(engine.authorize(subject('alice'), 'callTool', tool('gh', 'x'))).toMatchObject({ allowed: true, policies: ['p.cedar#0'] })
  })

  it('denies malformed resources, and a resource type the action does not apply to', async () => {
    const engine = await engineWith({ 'p.cedar': 'permit (principal, action, resource);' })
    const bad: unknown[] = [
      null,
      'gh/x',
      {},
      { type: 'Tool', server: 'gh' },
      { type: 'Tool', server: '', name: 'x' },
      { type: 'Tool', server: 'gh', name: '' },
      { type: 'Tool', server: 'g/h', name: 'x' },
      { type: 'Tool', server: 'gh', name: 'x\u0000y' },
      { type: 'Tool', server: 'gh', name: 7 },
      { type: 'Tool', server: 'gh', name: 'x'.repeat(5000) },
      { type: 'tool', server: 'gh', name: 'x' },
      { type: 'McpServer', server: 'gh', name: 'x' },
      { type: 'Workflow', id: ['w'] },
      { type: 'Robot', id: 'r' },
    ]
    for (const resource of bad) {
      expect(engine.authorize(subject('alice'), 'callTool', resource as PolicyResource), JSON.stringify(resource)).toMatchObject({ allowed: false, reason: 'invalid-request' })
    }
    expect(engine.authorize(subject('alice'), 'callTool', { type: 'McpServer', id: 'gh' })).toMatchObject({ allowed: false, reason: 'invalid-request' })
    expect(engine.authorize(subject('alice'), 'listTools', tool('gh', 'x'))).toMatchObject({ allowed: false, reason: 'invalid-request' })
    expect(engine.authorize(subject('alice'), 'invokeWorkflow', { type: 'Workflow', id: 'w' }).allowed).toBe(true)
  })

  it('denies a malformed subject instead of throwing', async () => {
    const engine = await engineWith({ 'p.cedar': 'permit (principal, action, resource);' })
    const good = subject('alice')
    const bad: unknown[] = [
      null,
      {},
      { agent: { did: DIDS.alice } },
      { agent: { did: '', claims: good.agent.claims } },
      { agent: { did: DIDS.alice, claims: { ...good.agent.claims, dataAccessClass: 'secret' } } },
      { agent: { did: DIDS.alice, claims: { ...good.agent.claims, toolProfile: [1] } } },
      { agent: { did: DIDS.alice, claims: { ...good.agent.claims, model: 'gpt' } } },
      { ...good, user: { id: 5 } },
      { ...good, delegation: { root: DIDS.bob, depth: -1 } },
      { ...good, delegation: { root: DIDS.bob, depth: 1.5 } },
      { ...good, authorizationDetails: [{ type: 'x', actions: 'all', locations: [] }] },
      { ...good, requestedDataClass: 'top-secret' },
      { ...good, time: Number.NaN },
    ]
    for (const s of bad) {
      expect(engine.authorize(s as never, 'callTool', tool('gh', 'x')), JSON.stringify(s)).toMatchObject({ allowed: false, reason: 'invalid-request' })
    }
    expect(engine.authorize(good, 'callTool', tool('gh', 'x')).allowed).toBe(true)
  })
})

describe('decisions', () => {
  it('forbid overrides permit, and names the forbid', async () => {
    const engine = await engineWith({
      'p.cedar': PROFILE,
      'f.cedar': '@id("no-prod")\nforbid (principal, action, resource in AgentId::McpServer::"prod") when { principal.policyTier != "ops" };',
    })
    const alice = subject('alice', { toolProfile: ['deploy'] })
    expect(engine.authorize(alice, 'callTool', tool('dev', 'deploy'))).toMatchObject({ allowed: true, policies: ['profile'] })
    expect(engine.authorize(alice, 'callTool', tool('prod', 'deploy'))).toEqual({ allowed: false, decision: 'deny', policies: ['no-prod'], errors: [], reason: 'policy' })
    expect(engine.authorize(subject('alice', { toolProfile: ['deploy'], policyTier: 'ops' }), 'callTool', tool('prod', 'deploy')).allowed).toBe(true)
  })

  it('lists every determining policy', async () => {
    const engine = await engineWith({ 'a.cedar': `${PROFILE}\n@id("alice-gh")\npermit (principal == AgentId::Agent::"${DIDS.alice}", action, resource in AgentId::McpServer::"gh");` })
    const d = engine.authorize(subject('alice', { toolProfile: ['x'] }), 'callTool', tool('gh', 'x'))
    expect([...d.policies].sort()).toEqual(['alice-gh', 'profile'])
    expect(engine.authorize(subject('bob', { toolProfile: ['y'] }), 'callTool', tool('gh', 'x')).allowed).toBe(false)
  })

  it('sees the user an agent acts for, with its issuer', async () => {
    const engine = await engineWith({
      'u.cedar': `permit (principal, action == AgentId::Action::"invokeWorkflow", resource)
        when { principal has user && principal.user == AgentId::User::"alice@corp" && principal.user has issuer && principal.user.issuer == "https://idp.corp" };`,
    })
    const wf = { type: 'Workflow', id: 'payroll' } as const
    expect(engine.authorize(subject('bob', {}, { user: { id: 'alice@corp', issuer: 'https://idp.corp' } }), 'invokeWorkflow', wf).allowed).toBe(true)
    expect(engine.authorize(subject('bob', {}, { user: { id: 'alice@corp', issuer: 'https://evil.example' } }), 'invokeWorkflow', wf).allowed).toBe(false)
    expect(engine.authorize(subject('bob', {}, { user: { id: 'alice@corp' } }), 'invokeWorkflow', wf).allowed).toBe(false)
    expect(engine.authorize(subject('bob', {}, { user: null }), 'invokeWorkflow', wf).allowed).toBe(false)
    expect(engine.authorize(subject('bob'), 'invokeWorkflow', wf).allowed).toBe(false)
  })

  it('compares data classes by level and bounds delegation depth', async () => {
    const engine = await engineWith({
      'p.cedar': `permit (principal, action == AgentId::Action::"readResource", resource);
        forbid (principal, action, resource) when { context has requestedDataLevel && context.requestedDataLevel > principal.dataAccessLevel };
        forbid (principal, action, resource) when { context.delegationDepth > 1 };
        forbid (principal, action, resource) when { context has delegationRoot && context.delegationRoot == "${DIDS.mallory}" };`,
    })
    const doc = { type: 'Resource', server: 'docs', uri: 'docs://handbook' } as const
    const internal = subject('alice', { dataAccessClass: 'internal' })
    expect(engine.authorize({ ...internal, requestedDataClass: 'public' }, 'readResource', doc).allowed).toBe(true)
    expect(engine.authorize({ ...internal, requestedDataClass: 'internal' }, 'readResource', doc).allowed).toBe(true)
    expect(engine.authorize({ ...internal, requestedDataClass: 'confidential' }, 'readResource', doc)).toMatchObject({ allowed: false, policies: ['p.cedar#1'] })
    expect(engine.authorize({ ...internal, delegation: { root: DIDS.bob, depth: 1 } }, 'readResource', doc).allowed).toBe(true)
    expect(engine.authorize({ ...internal, delegation: { root: DIDS.bob, depth: 2 } }, 'readResource', doc)).toMatchObject({ allowed: false, policies: ['p.cedar#2'] })
    expect(engine.authorize({ ...internal, delegation: { root: DIDS.mallory, depth: 1 } }, 'readResource', doc)).toMatchObject({ allowed: false, policies: ['p.cedar#3'] })
  })

  it('matches authorization details through context.authorizationGrants', async () => {
    const engine = await engineWith({
      'p.cedar': `permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"pay/refund")
        when { context.authorizationGrants.contains({ type: "payment", action: "refund", location: "https://mcp/pay" }) };`,
    })
    const refund = tool('pay', 'refund')
    const details = (actions: string[], locations: string[]) => ({ authorizationDetails: [{ type: 'payment', actions, locations }] })
    expect(engine.authorize(subject('alice', {}, details(['read', 'refund'], ['https://mcp/other', 'https://mcp/pay'])), 'callTool', refund).allowed).toBe(true)
    expect(engine.authorize(subject('alice', {}, details(['read'], ['https://mcp/pay'])), 'callTool', refund).allowed).toBe(false)
    expect(engine.authorize(subject('alice', {}, details(['refund'], ['https://mcp/other'])), 'callTool', refund).allowed).toBe(false)
    expect(engine.authorize(subject('alice'), 'callTool', refund).allowed).toBe(false)
    // RFC 9396 requires only `type`: an entry without lists is well formed and grants nothing.
    expect(engine.authorize(subject('alice', {}, { authorizationDetails: [{ type: 'payment' }] as never }), 'callTool', refund)).toMatchObject({ allowed: false, reason: 'no-matching-policy' })
  })

  it('reads the time from the injected clock, or from the subject, and memoizes per second only when a policy reads it', async () => {
    let now = Date.UTC(2026, 0, 1, 12) // noon
    const noon = now / 1000
    const engine = await engineWith(
      { 't.cedar': `permit (principal, action == AgentId::Action::"listTools", resource) when { context.time < ${noon + 3600} };` },
      { clock: () => now },
    )
    const server = { type: 'McpServer', id: 'gh' } as const
    expect(engine.authorize(subject('alice'), 'listTools', server).allowed).toBe(true)
    now += 2 * 3600 * 1000
    expect(engine.authorize(subject('alice'), 'listTools', server).allowed).toBe(false) // same request, later: not served from the memo
    expect(engine.authorize(subject('alice', {}, { time: noon }), 'listTools', server).allowed).toBe(true)
  })

  it('keeps decisions apart for different principals, claims, users and resources (memo key)', async () => {
    const engine = await engineWith({ 'p.cedar': PROFILE, 'f.cedar': 'forbid (principal, action, resource) when { principal has user };' })
    const x = tool('gh', 'x')
    expect(engine.authorize(subject('alice', { toolProfile: ['x'] }), 'callTool', x).allowed).toBe(true)
    expect(engine.authorize(subject('alice', { toolProfile: ['y'] }), 'callTool', x).allowed).toBe(false)
    expect(engine.authorize(subject('alice', { toolProfile: ['x'] }, { user: { id: 'u' } }), 'callTool', x).allowed).toBe(false)
    expect(engine.authorize(subject('alice', { toolProfile: ['x'] }), 'callTool', tool('gh', 'y')).allowed).toBe(false)
    expect(engine.authorize(subject('alice', { toolProfile: ['x'] }), 'callTool', tool('gl', 'x')).allowed).toBe(true)
    expect(engine.authorize(subject('alice', { toolProfile: ['x'] }), 'callTool', x).allowed).toBe(true)
  })

  it('skips a policy that errs at evaluation and lists it in errors', async () => {
    const engine = await engineWith({
      'e.cedar': `@id("overflow")\npermit (principal, action == AgentId::Action::"listTools", resource) when { context.delegationDepth * 4611686018427387904 >= 0 };
        @id("overflow-forbid")\nforbid (principal, action, resource) when { context.delegationDepth * 4611686018427387904 >= 0 };`,
    })
    const server = { type: 'McpServer', id: 'gh' } as const
    const d = engine.authorize(subject('alice', {}, { delegation: { root: DIDS.bob, depth: 2 } }), 'listTools', server)
    expect(d).toMatchObject({ allowed: false, reason: 'no-matching-policy', policies: [] })
    expect(d.errors.map((e) => e.split(':')[0]).sort()).toEqual(['overflow', 'overflow-forbid'])
    expect(engine.authorize(subject('alice', {}, { delegation: { root: DIDS.bob, depth: 1 } }), 'listTools', server)).toMatchObject({ allowed: false, policies: ['overflow-forbid'], errors: [] })
  })

  it('returns frozen decisions (a caller cannot poison the memo)', async () => {
    const engine = await engineWith({ 'p.cedar': PROFILE })
    const d = engine.authorize(subject('alice', { toolProfile: ['x'] }), 'callTool', tool('gh', 'x'))
    expect(Object.isFrozen(d)).toBe(true)
    expect(Object.isFrozen(d.policies)).toBe(true)
    expect(() => {
      ;(d as { allowed: boolean }).allowed = false
    }).toThrow(TypeError)
  })

  it('serves a frozen subject asking again from its last key, and never a subject that could have changed', async () => {
    let now = Date.UTC(2026, 0, 1, 12)
    const noon = now / 1000
    const engine = await engineWith({ 'p.cedar': PROFILE, 't.cedar': `forbid (principal, action, resource) when { context.time >= ${noon + 1} };` }, { clock: () => now })
    const deepFreeze = <T>(value: T): T => {
      if (value !== null && typeof value === 'object') for (const v of Object.values(value)) deepFreeze(v)
      return Object.freeze(value)
    }
    const frozen = deepFreeze(subject('alice', { toolProfile: ['x'] }))
    for (let i = 0; i < 3; i++) {
      expect(engine.authorize(frozen, 'callTool', tool('gh', 'x')).allowed, `call ${i}`).toBe(true)
      expect(engine.authorize(frozen, 'callTool', tool('gh', 'y')).allowed).toBe(false) // another resource
      expect(engine.authorize(frozen, 'callTool', { type: 'Tool', server: 'gl', name: 'x' }).allowed).toBe(true)
      expect(engine.authorize(frozen, 'listTools', { type: 'McpServer', id: 'gh' }).allowed).toBe(false) // another action
    }
    now += 1000 // the next second: asked again (the forbid reads the time)
    expect(engine.authorize(frozen, 'callTool', tool('gh', 'x')).allowed).toBe(false)
    now -= 1000
    // A subject that is not frozen through is read afresh on every call: changed between calls, decided anew.
    const open = subject('alice', { toolProfile: ['x'] })
    const openFrozenTop = Object.freeze({ ...open, agent: { ...open.agent, claims: { ...open.agent.claims, toolProfile: ['x'] } } })
    for (const s of [open, openFrozenTop]) {
      for (let i = 0; i < 3; i++) expect(engine.authorize(s, 'callTool', tool('gh', 'x')).allowed).toBe(true)
      ;(s.agent.claims as { toolProfile: string[] }).toolProfile = ['y']
      expect(engine.authorize(s, 'callTool', tool('gh', 'x')).allowed).toBe(false)
      ;(s.agent.claims as { toolProfile: string[] }).toolProfile = ['x']
    }
    // A getter is not data that cannot change.
    let profile = ['x']
    const claimsWithGetter = Object.freeze(Object.defineProperty({ ...frozen.agent.claims }, 'toolProfile', { get: () => profile, enumerable: true }))
    const withGetter = Object.freeze({ ...frozen, agent: Object.freeze({ did: frozen.agent.did, claims: claimsWithGetter }) })
    for (let i = 0; i < 3; i++) expect(engine.authorize(withGetter, 'callTool', tool('gh', 'x')).allowed).toBe(true)
    profile = ['y']
    expect(engine.authorize(withGetter, 'callTool', tool('gh', 'x')).allowed).toBe(false)
    // A reload is a new policy set: the same frozen subject is decided by it.
    const dir = policyDir({ 'p.cedar': PROFILE })
    const reloading = await loadPolicyEngine({ dir, clock: () => now })
    for (let i = 0; i < 3; i++) expect(reloading.authorize(frozen, 'callTool', tool('gh', 'x')).allowed).toBe(true)
    writeFiles(dir, { 'p.cedar': 'forbid (principal, action, resource);' })
    await reloading.reload()
    expect(reloading.authorize(frozen, 'callTool', tool('gh', 'x')).allowed).toBe(false)
  })

  it('decides the same with and without the memo', async () => {
    const files = { 'p.cedar': PROFILE, 'f.cedar': 'forbid (principal, action, resource in AgentId::McpServer::"prod");' }
    const memo = await engineWith(files)
    const plain = await engineWith(files, { memoSize: 0 })
    for (const [name, server, profile] of [['x', 'dev', ['x']], ['x', 'prod', ['x']], ['y', 'dev', ['x']]] as const) {
      const s = subject('alice', { toolProfile: [...profile] })
      for (let i = 0; i < 2; i++) expect(memo.authorize(s, 'callTool', tool(server, name))).toEqual(plain.authorize(s, 'callTool', tool(server, name)))
    }
  })
})
