// Suite "policy": @agentid/policy decisions beside plain Cedar wasm on the same policies, in the same run.
// Realistic generated policy sets of 10 and 1,000 policies (per-agent/per-tool permits, per-server tier
// permits, per-tool and global forbids), written to a folder and loaded by loadPolicyEngine. Three cases
// per size, each over the same pool of requests (an agent calling a tool on a server, with its claims):
//   plain: cedar statefulIsAuthorized on the whole preparsed set, called as the engine calls Cedar (no schema,
//          validateRequest off), with the request's full entities built beforehand (no request building at all);
//   miss:  engine.authorize with memoSize 0: every call builds the request, finds its slice and calls Cedar;
//   hit:   engine.authorize with the memo on, over a pool it has seen (every call a memo hit).
// Throughput: interleaved rounds (lib/measure.mjs); latency: p50/p99 of single calls, timed one by one.
// Before timing, every request of the pool is decided by both and the decisions must agree.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { measureInterleaved } from './lib/measure.mjs'
import { progress, report } from './lib/suite.mjs'

// The built package, and the very Cedar module instance it uses (preparsed sets live in that instance).
const { loadPolicyEngine } = await import(new URL('../packages/policy/dist/index.js', import.meta.url).href)
const cedar = createRequire(new URL('../packages/policy/package.json', import.meta.url))('@cedar-policy/cedar-wasm/nodejs')

const ROUNDS = Number(process.env.BENCH_POLICY_ROUNDS ?? 5)
const LATENCY_CALLS = Number(process.env.BENCH_POLICY_CALLS ?? 2000)
const POOL = 1000
const NS = 'AgentId'
const log = (m) => progress('policy', m)

// A deterministic generator (mulberry32): the same sets and requests on every run.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const q = JSON.stringify

/** A world of agents, servers and tools sized for `n` policies, the policy texts, and a request pool. */
function world(n, seed) {
  const rand = rng(seed)
  const pick = (xs) => xs[Math.floor(rand() * xs.length)]
  const agents = Array.from({ length: Math.max(4, Math.ceil(n / 8)) }, (_, i) => `did:key:z6MkBenchAgent${String(i).padStart(5, '0')}`)
  const servers = Array.from({ length: Math.max(2, Math.ceil(n / 50)) }, (_, i) => `server-${i}`)
  const toolsOf = Object.fromEntries(servers.map((s) => [s, Array.from({ length: 12 }, (_, k) => `tool_${k}`)]))
  const tiers = ['standard', 'sandbox', 'ops', 'finance']
  const policies = []
  // Global rules first (a real folder starts with a baseline).
  policies.push(`@id("baseline/list-tools")\npermit (principal, action == ${NS}::Action::"listTools", resource);`)
  policies.push(`@id("baseline/delegation-depth")\nforbid (principal, action, resource) when { context.delegationDepth > 3 };`)
  policies.push(`@id("baseline/data-class")\nforbid (principal, action, resource) when { context has requestedDataLevel && context.requestedDataLevel > principal.dataAccessLevel };`)
  let i = 0
  while (policies.length < n) {
    const r = rand()
    const server = pick(servers)
    const tool = pick(toolsOf[server])
    i++
    if (r < 0.8) {
      // An agent may call one tool (80 %).
      policies.push(`@id("agent-tool-${i}")\npermit (principal == ${NS}::Agent::${q(pick(agents))}, action == ${NS}::Action::"callTool", resource == ${NS}::Tool::${q(`${server}/${tool}`)})\nwhen { context.delegationDepth <= 2 };`)
    } else if (r < 0.9) {
      // A tier may call the tools of its profile on a server (10 %).
      policies.push(`@id("tier-server-${i}")\npermit (principal, action == ${NS}::Action::"callTool", resource in ${NS}::McpServer::${q(server)})\nwhen { principal.policyTier == ${q(pick(tiers))} && principal.toolProfile.contains(resource.name) };`)
    } else {
      // Some tools are off limits below a data class, or for sandbox agents (10 %).
      policies.push(r < 0.95
        ? `@id("forbid-tool-${i}")\nforbid (principal, action, resource == ${NS}::Tool::${q(`${server}/${tool}`)})\nwhen { principal.dataAccessLevel < 2 };`
        : `@id("forbid-sandbox-${i}")\nforbid (principal, action, resource in ${NS}::McpServer::${q(server)})\nwhen { principal.policyTier == "sandbox" };`)
    }
  }
  const classes = ['public', 'internal', 'confidential', 'restricted']
  const requests = Array.from({ length: POOL }, () => {
    const server = pick(servers)
    const tools = toolsOf[server]
    const subject = {
      agent: {
        did: pick(agents),
        claims: {
          purpose: 'bench',
          controller: 'did:web:bench.example',
          model: { name: 'model', version: '1', provider: 'bench' },
          toolProfile: tools.filter(() => rand() < 0.3),
          policyTier: pick(tiers),
          dataAccessClass: pick(classes),
        },
      },
      ...(rand() < 0.2 ? { delegation: { root: pick(agents), depth: 1 + Math.floor(rand() * 4) } } : {}),
      ...(rand() < 0.3 ? { requestedDataClass: pick(classes) } : {}),
      time: 1_800_000_000,
    }
    return { subject, resource: { type: 'Tool', server, name: pick(tools) } }
  })
  return { policies: policies.slice(0, n), requests }
}

/** The Cedar call for a request, as plain Cedar gets it (entities built here, before timing). */
function plainCall(setId, { subject, resource }) {
  const claims = subject.agent.claims
  const levels = ['public', 'internal', 'confidential', 'restricted']
  const agent = { type: `${NS}::Agent`, id: subject.agent.did }
  const server = { type: `${NS}::McpServer`, id: resource.server }
  const tool = { type: `${NS}::Tool`, id: `${resource.server}/${resource.name}` }
  const context = { delegationDepth: subject.delegation?.depth ?? 0, authorizationDetails: [], authorizationGrants: [], time: subject.time }
  if (subject.delegation) context.delegationRoot = subject.delegation.root
  if (subject.requestedDataClass) Object.assign(context, { requestedDataClass: subject.requestedDataClass, requestedDataLevel: levels.indexOf(subject.requestedDataClass) })
  return {
    principal: agent,
    action: { type: `${NS}::Action`, id: 'callTool' },
    resource: tool,
    context,
    entities: [
      { uid: agent, attrs: { purpose: claims.purpose, controller: claims.controller, model: claims.model, policyTier: claims.policyTier, dataAccessClass: claims.dataAccessClass, dataAccessLevel: levels.indexOf(claims.dataAccessClass), toolProfile: claims.toolProfile }, parents: [] },
      { uid: tool, attrs: { name: resource.name, server: resource.server, qualifiedName: tool.id }, parents: [server] },
      { uid: server, attrs: {}, parents: [] },
    ],
    preparsedPolicySetId: setId,
    validateRequest: false,
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** p50/p99 in µs of `calls` single calls of fn(i), each timed on its own. */
function latency(fn, calls) {
  for (let i = 0; i < Math.min(200, calls); i++) fn(i)
  const times = new Float64Array(calls)
  for (let i = 0; i < calls; i++) {
    const t = performance.now()
    fn(i)
    times[i] = (performance.now() - t) * 1000
  }
  times.sort()
  return { p50: percentile(times, 50), p99: percentile(times, 99) }
}

const dir = mkdtempSync(join(tmpdir(), 'agentid-bench-policy-'))
const rows = []
const data = {}
try {
  for (const n of [10, 1000]) {
    const { policies, requests } = world(n, 0xa9e1d + n)
    const folder = join(dir, `p${n}`)
    mkdirSync(join(folder, 'servers'), { recursive: true })
    // Split over a few files, as a team would.
    const perFile = Math.ceil(policies.length / 4)
    for (let f = 0; f < 4; f++) writeFileSync(join(folder, f === 0 ? 'baseline.cedar' : `servers/part-${f}.cedar`), policies.slice(f * perFile, (f + 1) * perFile).join('\n\n') + '\n')
    log(`${n} policies: loading (validation of the folder included)`)
    const t0 = performance.now()
    const miss = await loadPolicyEngine({ dir: folder, memoSize: 0 })
    const loadMs = performance.now() - t0
    const hit = await loadPolicyEngine({ dir: folder, memoSize: 10_000 })
    if (miss.policyCount !== n) throw new Error(`expected ${n} policies, loaded ${miss.policyCount}`)
    const setId = `bench-full-${n}`
    // The same policy ids as the engine's (the @id annotations), so that determining policies compare.
    const byId = Object.fromEntries(policies.map((text) => [/^@id\("([^"]+)"\)/.exec(text)[1], text]))
    const whole = cedar.preparsePolicySet(setId, { staticPolicies: byId })
    if (whole.type !== 'success') throw new Error(`preparse of the whole set failed: ${JSON.stringify(whole.errors)}`)
    const calls = requests.map((r) => plainCall(setId, r))
    // The same decisions, or the comparison means nothing.
    let allowed = 0
    for (const [i, r] of requests.entries()) {
      const a = cedar.statefulIsAuthorized(calls[i])
      if (a.type !== 'success') throw new Error(`plain Cedar failed: ${JSON.stringify(a.errors)}`)
      const d = miss.authorize(r.subject, 'callTool', r.resource)
      const h = hit.authorize(r.subject, 'callTool', r.resource)
      if (d.decision !== a.response.decision || h.decision !== d.decision || [...d.policies].sort().join() !== [...a.response.diagnostics.reason].sort().join()) {
        throw new Error(`decisions differ for request ${i}: plain ${JSON.stringify(a.response)} engine ${JSON.stringify(d)}`)
      }
      if (d.allowed) allowed++
    }
    log(`${n} policies: ${allowed}/${requests.length} requests allowed; timing ${ROUNDS} interleaved rounds`)
    let k = 0
    const next = () => (k = (k + 1) % requests.length)
    const r = await measureInterleaved({
      plain: { fn: () => cedar.statefulIsAuthorized(calls[next()]), sync: true, batch: n >= 1000 ? 8 : 64 },
      miss: { fn: () => { const q = requests[next()]; return miss.authorize(q.subject, 'callTool', q.resource) }, sync: true, batch: 64 },
      hit: { fn: () => { const q = requests[next()]; return hit.authorize(q.subject, 'callTool', q.resource) }, sync: true, batch: 1024 },
    }, { rounds: ROUNDS, log })
    const lat = {
      plain: latency((i) => cedar.statefulIsAuthorized(calls[i % calls.length]), n >= 1000 ? Math.min(LATENCY_CALLS, 1000) : LATENCY_CALLS),
      miss: latency((i) => { const q = requests[i % requests.length]; miss.authorize(q.subject, 'callTool', q.resource) }, LATENCY_CALLS),
      hit: latency((i) => { const q = requests[i % requests.length]; hit.authorize(q.subject, 'callTool', q.resource) }, LATENCY_CALLS),
    }
    data[n] = { throughput: r, latencyUs: lat, loadMs, allowed, pool: requests.length }
    const m = (key) => r[key].median
    const target = n >= 1000 ? { min: 10 } : undefined
    rows.push(
      { figure: `${n} policies: plain Cedar statefulIsAuthorized (whole set)`, value: m('plain'), unit: 'ops/s' },
      { figure: `${n} policies: authorize, memo miss (sliced)`, value: m('miss'), unit: 'ops/s' },
      { figure: `${n} policies: authorize, memo hit`, value: m('hit'), unit: 'ops/s' },
      { figure: `${n} policies: memo miss / plain Cedar`, value: m('miss') / m('plain'), unit: 'x', ...(target ? { target } : {}) },
      { figure: `${n} policies: memo hit / plain Cedar`, value: m('hit') / m('plain'), unit: 'x' },
      { figure: `${n} policies: plain Cedar latency p50`, value: lat.plain.p50, unit: 'µs' },
      { figure: `${n} policies: plain Cedar latency p99`, value: lat.plain.p99, unit: 'µs' },
      { figure: `${n} policies: memo miss latency p50`, value: lat.miss.p50, unit: 'µs' },
      { figure: `${n} policies: memo miss latency p99`, value: lat.miss.p99, unit: 'µs' },
      { figure: `${n} policies: memo hit latency p50`, value: lat.hit.p50, unit: 'µs' },
      { figure: `${n} policies: memo hit latency p99`, value: lat.hit.p99, unit: 'µs' },
      { figure: `${n} policies: load + validate the folder`, value: loadMs, unit: 'ms' },
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

report({
  suite: 'policy',
  title: `policy decisions, 10 and 1,000 policies, beside plain Cedar wasm statefulIsAuthorized (median of ${ROUNDS} interleaved rounds ≥ 1 s; Node ${process.version})`,
  rows,
  notes: [
    `a pool of ${POOL} distinct requests (callTool, one agent and tool each) per size; decisions checked equal (decision and determining policies) before timing.`,
    'plain: the whole set preparsed once, full request entities built before timing, no schema and validateRequest off (as the engine calls Cedar); miss: memoSize 0, so every call validates the subject, builds entities and context, keeps only the attributes some policy reads, gathers its slice (cached preparsed set) and calls Cedar; hit: memo on, every request seen before.',
    'the ≥ 10× target is judged on the memo miss (the honest figure); memo hits are reported beside it.',
  ],
  data,
})
