import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { AgentIdError } from '@agentid/core'
import { describe, expect, it } from 'vitest'
import { loadPolicyEngine, validatePolicyDirectory, type PolicyDiagnostic } from '@agentid/policy'
import { policyDir, subject, tool, writeFiles } from './fixtures.js'

const PERMIT_PROFILE = `@id("profile")
permit (principal, action == AgentId::Action::"callTool", resource)
when { principal.toolProfile.contains(resource.name) };
`

async function refused(dir: string): Promise<readonly PolicyDiagnostic[]> {
  const error = await loadPolicyEngine({ dir }).then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(AgentIdError)
  expect((error as AgentIdError).code).toBe('ERR_POLICY_INVALID')
  return (error as AgentIdError).details.diagnostics as PolicyDiagnostic[]
}

describe('policy folders', () => {
  it('refuses a folder with a syntax error, naming file and line', async () => {
    const dir = policyDir({ 'ok.cedar': PERMIT_PROFILE, 'sub/bad.cedar': '\n\npermit (principal, action, resource) when { principal. };\n' })
    const diagnostics = await refused(dir)
    expect(diagnostics).toHaveLength(1)
    expect(diagnostics[0]).toMatchObject({ file: 'sub/bad.cedar', line: 3, severity: 'error' })
    const v = await validatePolicyDirectory(dir)
    expect(v.ok).toBe(false)
    expect(v.policies).toBe(0)
  })

  it('refuses a schema violation, naming file, policy and line', async () => {
    const dir = policyDir({
      'a.cedar': PERMIT_PROFILE,
      'b.cedar': `permit (principal, action, resource);\n\n@id("typo")\npermit (principal, action, resource)\n  when { principal.toolProfil.contains("x") };\n`,
    })
    const diagnostics = await refused(dir)
    expect(diagnostics).toEqual([expect.objectContaining({ file: 'b.cedar', policy: 'typo', line: 5, severity: 'error' })])
  })

  it('refuses an unknown entity type, an unknown action and a wrong context type', async () => {
    for (const text of [
      'permit (principal == AgentId::Robot::"x", action, resource);',
      'permit (principal, action == AgentId::Action::"deleteEverything", resource);',
      'permit (principal, action, resource) when { context.time == "noon" };',
      'permit (principal, action, resource) when { principal.dataAccessClass > 1 };',
      // strict mode: an optional attribute read without `has`
      'permit (principal, action, resource) when { principal.user.issuer == "x" };',
    ]) {
      const diagnostics = await refused(policyDir({ 'p.cedar': text }))
      expect(diagnostics.length).toBeGreaterThan(0)
      expect(diagnostics[0]).toMatchObject({ file: 'p.cedar', policy: 'p.cedar#0' })
    }
  })

  it('reports every problem at once: syntax in one file, schema in another', async () => {
    const dir = policyDir({ 'a.cedar': 'permit (principal, action, resource) when { x };', 'b.cedar': 'permit (principal, action, resource) when { principal.nope };' })
    const diagnostics = await refused(dir)
    expect(diagnostics.map((d) => d.file).sort()).toEqual(['a.cedar', 'b.cedar'])
  })

  it('refuses duplicate policy ids, templates and a bad @id', async () => {
    expect((await refused(policyDir({ 'a.cedar': PERMIT_PROFILE, 'b.cedar': PERMIT_PROFILE })))[0]).toMatchObject({ file: 'b.cedar', policy: 'profile' })
    expect((await refused(policyDir({ 'a.cedar': '@id("a.cedar#1")\npermit (principal, action, resource);\npermit (principal, action, resource);' })))[0]).toMatchObject({ policy: 'a.cedar#1' })
    expect(await refused(policyDir({ 't.cedar': 'permit (principal == ?principal, action, resource);' }))).toHaveLength(1)
    expect(await refused(policyDir({ 'i.cedar': '@id("")\npermit (principal, action, resource);' }))).toHaveLength(1)
  })

  it('refuses a missing folder, a file instead of a folder and a file that is not UTF-8', async () => {
    const dir = policyDir({ 'a.cedar': PERMIT_PROFILE })
    await refused(join(dir, 'missing'))
    await refused(join(dir, 'a.cedar'))
    const binary = policyDir()
    writeFiles(binary, { 'x.cedar': '' })
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(binary, 'x.cedar'), Buffer.from([0x70, 0xff, 0xfe, 0x00]))
    await refused(binary)
  })

  it('reads .cedar files recursively, skips hidden entries and other files, follows links', async () => {
    const dir = policyDir({
      'a.cedar': PERMIT_PROFILE,
      'nested/deeper/b.cedar': 'permit (principal, action == AgentId::Action::"listTools", resource);',
      '.git/ignored.cedar': 'this is not cedar',
      'notes.md': 'not a policy',
      '.hidden.cedar': 'not cedar either',
    })
    const linked = policyDir({ 'c.cedar': 'forbid (principal, action, resource == AgentId::Tool::"s/x");' })
    symlinkSync(linked, join(dir, 'linked'))
    symlinkSync(dir, join(dir, 'nested', 'loop')) // a loop is read once
    const v = await validatePolicyDirectory(dir)
    expect(v.diagnostics).toEqual([])
    expect(v.policies).toBe(3)
    const engine = await loadPolicyEngine({ dir })
    expect(engine.policyCount).toBe(3)
    const d = engine.authorize(subject('alice', { toolProfile: ['x'] }), 'callTool', tool('s', 'x'))
    expect(d).toMatchObject({ allowed: false, policies: ['linked/c.cedar#0'] })
    expect(engine.authorize(subject('alice'), 'listTools', { type: 'McpServer', id: 's' }).policies).toEqual(['nested/deeper/b.cedar#0'])
  })

  it('loads an empty folder: zero policies, everything denied', async () => {
    const engine = await loadPolicyEngine({ dir: policyDir({ 'README.md': '# nothing yet' }) })
    expect(engine.policyCount).toBe(0)
    expect(engine.authorize(subject('alice'), 'callTool', tool('s', 'search_issues'))).toMatchObject({ allowed: false, reason: 'no-matching-policy' })
    expect(await validatePolicyDirectory(policyDir())).toMatchObject({ ok: true, policies: 0 })
  })

  it('reload: a good folder replaces the set and bumps the version; a bad one keeps the last good set and logs', async () => {
    const dir = policyDir({ 'a.cedar': PERMIT_PROFILE })
    const logged: { level: string; o: Record<string, unknown> }[] = []
    const logger = { info: (o: object) => logged.push({ level: 'info', o: o as Record<string, unknown> }), error: (o: object) => logged.push({ level: 'error', o: o as Record<string, unknown> }) }
    const engine = await loadPolicyEngine({ dir, logger })
    expect(engine.version).toBe(1)
    const alice = subject('alice')
    expect(engine.authorize(alice, 'callTool', tool('gh', 'get_issue')).allowed).toBe(true)

    writeFiles(dir, { 'b.cedar': 'forbid (principal, action, resource in AgentId::McpServer::"gh");' })
    expect(await engine.reload()).toEqual({ ok: true, policies: 2 })
    expect(engine.version).toBe(2)
    expect(engine.authorize(alice, 'callTool', tool('gh', 'get_issue'))).toMatchObject({ allowed: false, policies: ['b.cedar#0'] })

    writeFiles(dir, { 'b.cedar': 'forbid (principal, action, resource in AgentId::McpServer::"gh") when { principal.bogus };' })
    const failed = await engine.reload()
    expect(failed.ok).toBe(false)
    if (!failed.ok) expect(failed.error.code).toBe('ERR_POLICY_INVALID')
    expect(engine.version).toBe(2)
    expect(engine.policyCount).toBe(2)
    expect(engine.authorize(alice, 'callTool', tool('gh', 'get_issue'))).toMatchObject({ allowed: false, policies: ['b.cedar#0'] })
    const error = logged.find((l) => l.level === 'error')
    expect(error?.o).toMatchObject({ code: 'ERR_POLICY_INVALID', version: 2 })
    expect((error?.o.diagnostics as PolicyDiagnostic[])[0]).toMatchObject({ file: 'b.cedar' })
  })

  it('serializes concurrent reloads: each one sees the folder as it is when its turn comes', async () => {
    const dir = policyDir({ 'a.cedar': PERMIT_PROFILE })
    const engine = await loadPolicyEngine({ dir })
    const results = await Promise.all([engine.reload(), engine.reload(), engine.reload()])
    expect(results).toEqual([{ ok: true, policies: 1 }, { ok: true, policies: 1 }, { ok: true, policies: 1 }])
    expect(engine.version).toBe(4)
  })

  it('rejects misuse with TypeError', async () => {
    await expect(loadPolicyEngine({ dir: '' })).rejects.toThrow(TypeError)
    await expect(loadPolicyEngine({ dir: policyDir(), memoSize: -1 })).rejects.toThrow(TypeError)
    await expect(validatePolicyDirectory('')).rejects.toThrow(TypeError)
  })
})
