import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { AgentIdError } from '@agentid/core'
import { AGENTID_CEDAR_SCHEMA, loadPolicyEngine, validatePolicyDirectory, type AuthorizationSubject, type PolicyDecision, type PolicyDiagnostic, type PolicyResource } from '@agentid/policy'
import type { Context } from '../context.js'
import { ExitStatus, UsageError } from '../errors.js'
import { clean, json } from '../output.js'

/** Largest request file `policy test` reads. */
const MAX_REQUEST_BYTES = 1024 * 1024

/** Exit codes of `agentid policy`, for GitOps pipelines. */
export const POLICY_EXIT = Object.freeze({ ok: 0, invalid: 1, usage: 2, denied: 3 })

/** One request of a `policy test` file. */
interface TestRequest {
  subject: AuthorizationSubject
  action: string
  resource: PolicyResource
  expect?: 'allow' | 'deny'
  name?: string
}

/** `agentid policy validate <dir>`, `agentid policy test <dir> <request.json>` and `agentid policy schema`. */
export function registerPolicy(program: Command, ctx: Context): void {
  const policy = program
    .command('policy')
    .description('check a Cedar policy folder against the agentid schema, and try requests on it (no issuer needed)')
    .addHelpText('after', `
Exit codes: 0 valid / every decision as expected, 1 the folder does not validate (diagnostics on stderr),
2 usage error or unreadable request file, 3 a decision that is not the expected one (default: allow).`)

  policy
    .command('validate')
    .argument('<dir>', 'the policy folder: every *.cedar file under it (hidden entries skipped)')
    .option('--json', 'print { ok, policies, diagnostics } as JSON')
    .description('parse and validate every policy of a folder against the agentid Cedar schema (strict mode)')
    .action(async (dir: string, options: { json?: boolean }) => {
      const result = await validatePolicyDirectory(dir)
      if (options.json) ctx.io.stdout(json(result))
      printDiagnostics(ctx, result.diagnostics)
      if (!result.ok) {
        ctx.io.stderr(`agentid: ERR_POLICY_INVALID: ${clean(dir)} does not validate (${count(result.diagnostics, 'error')})\n`)
        throw new ExitStatus(POLICY_EXIT.invalid)
      }
      if (result.policies === 0) ctx.io.stderr(`warning: ${clean(dir)} holds no policies: every request would be denied\n`)
      if (!options.json) ctx.io.stdout(`${clean(dir)}: ${result.policies} ${result.policies === 1 ? 'policy' : 'policies'} valid\n`)
    })

  policy
    .command('schema')
    .description('print the agentid Cedar schema (for editors and the cedar CLI: agentid policy schema > agentid.cedarschema)')
    .action(() => {
      ctx.io.stdout(AGENTID_CEDAR_SCHEMA)
    })

  policy
    .command('test')
    .argument('<dir>', 'the policy folder')
    .argument('<request.json|->', 'a request { subject, action, resource, expect? } or a list of them; - reads standard input')
    .option('--json', 'print the decisions as JSON')
    .description('decide requests with the policies of a folder: decision, reason and determining policies')
    .addHelpText('after', `
A request: { "subject": { "agent": { "did": "did:key:...", "claims": { ...AgentClaims } }, "user"?: { "id", "issuer"? },
"delegation"?: { "root", "depth" }, "authorizationDetails"?: [...], "requestedDataClass"?, "time"? },
"action": "callTool", "resource": { "type": "Tool", "server": "github", "name": "create_issue" },
"expect"?: "allow" | "deny", "name"?: "a label" }. Exit code 3 when a decision is not its "expect" (default allow).`)
    .action(async (dir: string, file: string, options: { json?: boolean }) => {
      const requests = parseRequests(await readRequestFile(ctx, file))
      let engine
      try {
        engine = await loadPolicyEngine({ dir, memoSize: 0 })
      } catch (error) {
        if (!(error instanceof AgentIdError) || error.code !== 'ERR_POLICY_INVALID') throw error
        const diagnostics = (error.details.diagnostics ?? []) as PolicyDiagnostic[]
        if (options.json) ctx.io.stdout(json({ ok: false, diagnostics }))
        printDiagnostics(ctx, diagnostics)
        ctx.io.stderr(`agentid: ERR_POLICY_INVALID: ${clean(dir)} does not validate (${count(diagnostics, 'error')})\n`)
        throw new ExitStatus(POLICY_EXIT.invalid)
      }
      const results = requests.map((r, i) => {
        const decision = engine.authorize(r.subject, r.action, r.resource)
        const expect = r.expect ?? 'allow'
        return { request: i, ...(r.name === undefined ? {} : { name: r.name }), action: r.action, resource: r.resource, ...decision, expect, pass: decision.decision === expect }
      })
      const ok = results.every((r) => r.pass)
      if (options.json) {
        ctx.io.stdout(json({ ok, policies: engine.policyCount, results }))
      } else {
        for (const [i, r] of results.entries()) ctx.io.stdout(render(requests[i]!, r, r.expect, requests.length > 1 || requests[i]!.expect !== undefined))
        if (requests.length > 1) {
          const failed = results.filter((r) => !r.pass).length
          ctx.io.stdout(`\n${results.length} requests: ${results.length - failed} as expected${failed ? `, ${failed} not` : ''}\n`)
        }
      }
      if (!ok) throw new ExitStatus(POLICY_EXIT.denied)
    })
}

async function readRequestFile(ctx: Context, file: string): Promise<string> {
  if (file === '-') return ctx.io.readStdin!()
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  if (bytes.length > MAX_REQUEST_BYTES) throw new UsageError(`${file} is larger than ${MAX_REQUEST_BYTES} bytes`)
  return bytes.toString('utf8')
}

function parseRequests(text: string): TestRequest[] {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`the request file is not JSON: ${(error as Error).message}`)
  }
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0) throw new UsageError('the request file holds no request')
  return list.map((item: unknown, i) => {
    const where = Array.isArray(value) ? `request ${i}` : 'the request'
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new UsageError(`${where} must be an object`)
    const r = item as Record<string, unknown>
    if (typeof r.subject !== 'object' || r.subject === null) throw new UsageError(`${where}: "subject" must be an object ({ agent: { did, claims }, ... })`)
    if (typeof r.action !== 'string') throw new UsageError(`${where}: "action" must be a string`)
    if (typeof r.resource !== 'object' || r.resource === null) throw new UsageError(`${where}: "resource" must be an object ({ type: "Tool", server, name }, ...)`)
    if (r.expect !== undefined && r.expect !== 'allow' && r.expect !== 'deny') throw new UsageError(`${where}: "expect" must be "allow" or "deny"`)
    if (r.name !== undefined && typeof r.name !== 'string') throw new UsageError(`${where}: "name" must be a string`)
    return r as unknown as TestRequest
  })
}

function describeResource(resource: PolicyResource): string {
  const r = resource as unknown as Record<string, unknown>
  const name = r.type === 'McpServer' || r.type === 'Workflow' ? r.id : `${String(r.server)}/${String(r.uri ?? r.name)}`
  return `${String(r.type)} ${String(name)}`
}

function render(request: TestRequest, d: PolicyDecision, expect: string, showExpectation: boolean): string {
  const agent = (request.subject as { agent?: { did?: unknown } }).agent?.did
  const lines = [
    `${d.decision.toUpperCase()}  ${request.name === undefined ? '' : `${request.name}: `}${request.action} ${describeResource(request.resource)}`,
    `  agent     ${String(agent)}`,
    `  reason    ${d.reason}`,
    `  policies  ${d.policies.length > 0 ? d.policies.join(', ') : '-'}`,
    ...d.errors.map((e) => `  error     ${e}`),
    ...(showExpectation ? [`  expected  ${expect}${d.decision === expect ? '' : '  <-- NOT AS EXPECTED'}`] : []),
  ]
  return lines.map(clean).join('\n') + '\n'
}

function printDiagnostics(ctx: Context, diagnostics: readonly PolicyDiagnostic[]): void {
  for (const d of diagnostics) {
    const at = d.line === undefined ? d.file || '.' : `${d.file}:${d.line}:${d.column}`
    ctx.io.stderr(`${clean(at)}: ${d.severity}: ${d.policy === undefined ? '' : `[${clean(d.policy)}] `}${clean(d.message)}\n`)
  }
}

function count(diagnostics: readonly PolicyDiagnostic[], severity: 'error' | 'warning'): string {
  const n = diagnostics.filter((d) => d.severity === severity).length
  return `${n} ${severity}${n === 1 ? '' : 's'}`
}
