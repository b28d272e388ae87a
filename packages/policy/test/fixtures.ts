import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { AgentClaims } from '@agentid/core'
import type { AuthorizationSubject } from '@agentid/policy'

/** A fresh folder holding `files` (relative path → content). */
export function policyDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentid-policy-'))
  writeFiles(dir, files)
  return dir
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
}

export const DIDS = {
  alice: 'did:key:z6MkALICEaliceALICEaliceALICEaliceALICEalice',
  bob: 'did:key:z6MkBOBbobBOBbobBOBbobBOBbobBOBbobBOBbobBOB',
  mallory: 'did:key:z6MkMALLORYmalloryMALLORYmalloryMALLORYmal',
} as const

export function claims(overrides: Partial<AgentClaims> = {}): AgentClaims {
  return {
    purpose: 'issue-triage',
    controller: 'did:web:acme.example',
    model: { name: 'claude', version: '4', provider: 'anthropic' },
    toolProfile: ['search_issues', 'get_issue'],
    policyTier: 'standard',
    dataAccessClass: 'internal',
    ...overrides,
  }
}

export function subject(name: keyof typeof DIDS, overrides: Partial<AgentClaims> = {}, extra: Partial<AuthorizationSubject> = {}): AuthorizationSubject {
  return { agent: { did: DIDS[name], claims: claims(overrides) }, ...extra }
}

export const tool = (server: string, name: string) => ({ type: 'Tool' as const, server, name })
