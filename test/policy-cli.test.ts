// `agentid policy validate|test` through the real CLI binary (apps/cli/dist/bin.js): the exit codes a GitOps
// pipeline relies on, on a good folder (the shipped examples), a syntax error, a schema violation and an empty one.
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cleanup, cli, cliErrorCode, ROOT, tempDir } from './harness.js'

afterAll(cleanup)

const EXAMPLES = join(ROOT, 'packages/policy/examples')

const claims = (overrides: Record<string, unknown> = {}) => ({
  purpose: 'issue-triage',
  controller: 'did:web:acme.example',
  model: { name: 'claude', version: '4', provider: 'anthropic' },
  toolProfile: ['search_issues'],
  policyTier: 'standard',
  dataAccessClass: 'internal',
  ...overrides,
})
const agent = (overrides: Record<string, unknown> = {}) => ({ agent: { did: 'did:key:z6MkTriageAgent', claims: claims(overrides) } })

function requestFile(value: unknown): string {
  const file = join(tempDir(), 'request.json')
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value))
  return file
}

function folder(files: Record<string, string>): string {
  const dir = tempDir('agentid-policies-')
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const SYNTAX = folder({ 'ok.cedar': 'permit (principal, action == AgentId::Action::"listTools", resource);', 'broken.cedar': '\npermit (principal, action, resource) when { principal.purpose == };\n' })
const SCHEMA = folder({ 'typo.cedar': '@id("typo")\npermit (principal, action, resource) when { principal.purpos == "x" };\n' })
const EMPTY = folder({})

describe('agentid policy validate', () => {
  it('exit 0 on the shipped examples', async () => {
    const r = await cli(['policy', 'validate', EXAMPLES])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/25 policies valid/) // 13 + bank.cedar's 3 (approvals) + lineage.cedar's 4 + attested.cedar's 3 + approved-lineage.cedar's 2
    const j = await cli(['policy', 'validate', EXAMPLES, '--json'])
    expect(j.code).toBe(0)
    expect(j.json()).toEqual({ ok: true, policies: 25, diagnostics: [] })
  })

  it('exit 1 on a syntax error, with file:line on stderr', async () => {
    const r = await cli(['policy', 'validate', SYNTAX])
    expect(r.code).toBe(1)
    expect(cliErrorCode(r)).toBe('ERR_POLICY_INVALID')
    expect(r.stderr).toMatch(/^broken\.cedar:2:\d+: error: /m)
    const j = await cli(['policy', 'validate', SYNTAX, '--json'])
    expect(j.code).toBe(1)
    expect(j.json().diagnostics).toEqual([expect.objectContaining({ file: 'broken.cedar', line: 2, severity: 'error' })])
  })

  it('exit 1 on a schema violation, naming the policy', async () => {
    const r = await cli(['policy', 'validate', SCHEMA])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^typo\.cedar:2:\d+: error: \[typo\] .*purpos/m)
    expect((await cli(['policy', 'validate', SCHEMA, '--json'])).json()).toMatchObject({ ok: false, policies: 0, diagnostics: [{ file: 'typo.cedar', policy: 'typo' }] })
  })

  it('exit 0 on an empty folder, with a warning that everything is denied', async () => {
    const r = await cli(['policy', 'validate', EMPTY])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/0 policies valid/)
    expect(r.stderr).toMatch(/every request would be denied/)
  })

  it('exit 1 on a missing folder, exit 2 on usage errors', async () => {
    expect((await cli(['policy', 'validate', join(EMPTY, 'nope')])).code).toBe(1)
    expect((await cli(['policy', 'validate'])).code).toBe(2)
    expect((await cli(['policy', 'validate', EXAMPLES, '--frobnicate'])).code).toBe(2)
  })
})

describe('agentid policy schema', () => {
  it('prints the schema policies are validated against', async () => {
    const r = await cli(['policy', 'schema'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(readFileSync(join(ROOT, 'packages/policy/src/schema.cedarschema'), 'utf8'))
  })
})

describe('agentid policy test', () => {
  it('exit 0 on allow, with the determining policy', async () => {
    const file = requestFile({ ...{ subject: agent() }, action: 'callTool', resource: { type: 'Tool', server: 'github', name: 'search_issues' } })
    const r = await cli(['policy', 'test', EXAMPLES, file])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^ALLOW /)
    expect(r.stdout).toMatch(/github\/triage-issues/)
    const j = await cli(['policy', 'test', EXAMPLES, file, '--json'])
    expect(j.code).toBe(0)
    expect(j.json().results[0]).toMatchObject({ decision: 'allow', allowed: true, reason: 'policy', pass: true })
    expect([...j.json().results[0].policies].sort()).toEqual(['baseline/call-profile-tools', 'github/triage-issues'])
  })

  it('exit 3 on deny (forbid over permit), and on an unknown tool or action', async () => {
    const forbid = requestFile({ subject: agent({ toolProfile: ['delete_repository'] }), action: 'callTool', resource: { type: 'Tool', server: 'github', name: 'delete_repository' } })
    const r = await cli(['policy', 'test', EXAMPLES, forbid, '--json'])
    expect(r.code).toBe(3)
    expect(r.json().results[0]).toMatchObject({ decision: 'deny', policies: ['github/no-repo-deletion'], reason: 'policy' })
    const unknown = requestFile({ subject: agent({ purpose: 'other' }), action: 'callTool', resource: { type: 'Tool', server: 'github', name: 'Search_Issues' } })
    expect((await cli(['policy', 'test', EXAMPLES, unknown])).code).toBe(3)
    const action = requestFile({ subject: agent(), action: 'dropTables', resource: { type: 'Tool', server: 'github', name: 'search_issues' } })
    const a = await cli(['policy', 'test', EXAMPLES, action, '--json'])
    expect(a.code).toBe(3)
    expect(a.json().results[0]).toMatchObject({ decision: 'deny', reason: 'unknown-action' })
  })

  it('a list of requests with expectations: exit 0 when all hold, 3 when one does not', async () => {
    const cases = [
      { name: 'triage searches', subject: agent(), action: 'callTool', resource: { type: 'Tool', server: 'github', name: 'search_issues' }, expect: 'allow' },
      { name: 'nobody deletes', subject: agent({ toolProfile: ['delete_repository'] }), action: 'callTool', resource: { type: 'Tool', server: 'github', name: 'delete_repository' }, expect: 'deny' },
      { name: 'deep chains refused', subject: { ...agent(), delegation: { root: 'did:key:z6MkRoot', depth: 4 } }, action: 'callTool', resource: { type: 'Tool', server: 'github', name: 'search_issues' }, expect: 'deny' },
    ]
    const good = await cli(['policy', 'test', EXAMPLES, requestFile(cases)])
    expect(good.code).toBe(0)
    expect(good.stdout).toMatch(/3 requests: 3 as expected/)
    const bad = await cli(['policy', 'test', EXAMPLES, requestFile([...cases, { ...cases[1], name: 'wrong expectation', expect: 'allow' }])])
    expect(bad.code).toBe(3)
    expect(bad.stdout).toMatch(/NOT AS EXPECTED/)
    expect(bad.stdout).toMatch(/4 requests: 3 as expected, 1 not/)
  })

  it('exit 3 on every request against an empty folder, 1 against an invalid one', async () => {
    const file = requestFile({ subject: agent(), action: 'listTools', resource: { type: 'McpServer', id: 'github' } })
    expect((await cli(['policy', 'test', EMPTY, file])).code).toBe(3)
    const syntax = await cli(['policy', 'test', SYNTAX, file])
    expect(syntax.code).toBe(1)
    expect(cliErrorCode(syntax)).toBe('ERR_POLICY_INVALID')
    expect(syntax.stderr).toMatch(/broken\.cedar:2/)
    expect((await cli(['policy', 'test', SCHEMA, file])).code).toBe(1)
  })

  it('exit 2 on a missing, non-JSON or ill-shaped request file', async () => {
    expect((await cli(['policy', 'test', EXAMPLES, join(EMPTY, 'missing.json')])).code).toBe(2)
    expect((await cli(['policy', 'test', EXAMPLES, requestFile('{ not json')])).code).toBe(2)
    expect((await cli(['policy', 'test', EXAMPLES, requestFile({ action: 'callTool' })])).code).toBe(2)
    expect((await cli(['policy', 'test', EXAMPLES, requestFile([])])).code).toBe(2)
    expect((await cli(['policy', 'test', EXAMPLES])).code).toBe(2)
  })

  it('prints hostile strings from the request without terminal escapes', async () => {
    const file = requestFile({ name: 'x\u001b[2J\u202eevil', subject: agent(), action: 'callTool', resource: { type: 'Tool', server: 'github', name: 'a\u001b]0;pwned\u0007' } })
    const r = await cli(['policy', 'test', EXAMPLES, file])
    expect(r.code).toBe(3)
    expect(r.stdout).not.toMatch(/[\u001b\u0007\u202e]/)
  })

  it('exit 0 on the examples against their own cases.json (must-allow and must-deny requests)', async () => {
    const r = await cli(['policy', 'test', EXAMPLES, join(EXAMPLES, 'cases.json')])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/(\d+) requests: \1 as expected\n$/)
  })

  it('works on a copy of the examples in a nested layout', async () => {
    const dir = tempDir('agentid-policies-')
    cpSync(EXAMPLES, join(dir, 'repo', 'policies'), { recursive: true })
    expect((await cli(['policy', 'validate', dir])).code).toBe(0)
  })
})
