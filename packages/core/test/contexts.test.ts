import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { AGENTID_CONTEXT_V1_DOCUMENT, AGENTID_CONTEXT_V1_SHA256 } from '@agentid/core'
import { describe, expect, it } from 'vitest'

describe('AGENTID_CONTEXT_V1_DOCUMENT', () => {
  it('equals the shipped contexts/agentid-v1.json', () => {
    const file: unknown = JSON.parse(readFileSync(new URL('../src/contexts/agentid-v1.json', import.meta.url), 'utf8'))
    expect(AGENTID_CONTEXT_V1_DOCUMENT).toEqual(file)
  })

  it('is protected and defines both credential types and every claim', () => {
    const ctx = AGENTID_CONTEXT_V1_DOCUMENT['@context']
    expect(ctx['@protected']).toBe(true)
    for (const term of ['AgentIdentityCredential', 'AgentCapabilityCredential', 'purpose', 'controller', 'model', 'toolProfile', 'policyTier',
      'dataAccessClass', 'attestation', 'spiffeId', 'capabilities', 'caveats', 'parentHash']) {
      expect(ctx, term).toHaveProperty(term)
    }
    expect(ctx.attestation['@type']).toBe('@json')
  })

  it('is shipped as @agentid/core/contexts/agentid-v1.json, whose SHA-256 is AGENTID_CONTEXT_V1_SHA256', () => {
    const path = createRequire(import.meta.url).resolve('@agentid/core/contexts/agentid-v1.json')
    const bytes = readFileSync(path)
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(AGENTID_CONTEXT_V1_SHA256)
    expect(JSON.parse(bytes.toString('utf8'))).toEqual(AGENTID_CONTEXT_V1_DOCUMENT)
  })

  it('is frozen', () => {
    expect(Object.isFrozen(AGENTID_CONTEXT_V1_DOCUMENT['@context'].model)).toBe(true)
  })
})
