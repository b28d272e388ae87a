import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import { describe, expect, it } from 'vitest'
import { AGENTID_CEDAR_SCHEMA, loadPolicyEngine, validatePolicyDirectory, type AuthorizationSubject, type PolicyResource } from '@agentid/policy'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

describe('AGENTID_CEDAR_SCHEMA', () => {
  it('is schema.cedarschema, word for word (regenerate with scripts/schema-to-ts.mjs)', () => {
    expect(AGENTID_CEDAR_SCHEMA).toBe(readFileSync(here('../src/schema.cedarschema'), 'utf8'))
  })

  it('parses, in the AgentId namespace, with the five actions', () => {
    expect(cedar.checkParseSchema(AGENTID_CEDAR_SCHEMA).type).toBe('success')
    const json = cedar.schemaToJson(AGENTID_CEDAR_SCHEMA)
    if (json.type !== 'success') throw new Error('schemaToJson failed')
    const ns = json.json['AgentId']!
    expect(Object.keys(ns.actions).sort()).toEqual(['callTool', 'getPrompt', 'invokeWorkflow', 'listTools', 'readResource'])
    expect(Object.keys(ns.entityTypes).sort()).toEqual(['Agent', 'McpServer', 'Prompt', 'Resource', 'Tool', 'User', 'Workflow'])
    expect(ns.actions['callTool']!.appliesTo!.resourceTypes).toEqual(['Tool'])
    expect(ns.actions['listTools']!.appliesTo!.resourceTypes).toEqual(['McpServer'])
  })

  it('validates the shipped examples folder', async () => {
    const result = await validatePolicyDirectory(here('../examples'))
    expect(result.diagnostics).toEqual([])
    expect(result.ok).toBe(true)
    expect(result.policies).toBeGreaterThanOrEqual(10)
  })

  it('decides every case of examples/cases.json as it expects', async () => {
    const engine = await loadPolicyEngine({ dir: here('../examples') })
    const cases = JSON.parse(readFileSync(here('../examples/cases.json'), 'utf8')) as { name: string; subject: AuthorizationSubject; action: string; resource: PolicyResource; expect: string }[]
    expect(cases.filter((c) => c.expect === 'allow').length).toBeGreaterThan(5)
    expect(cases.filter((c) => c.expect === 'deny').length).toBeGreaterThan(5)
    for (const c of cases) expect(engine.authorize(c.subject, c.action, c.resource).decision, c.name).toBe(c.expect)
  })
})
