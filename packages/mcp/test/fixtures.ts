import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AgentClaims } from '@agentid/core'
import type { Caller } from '@agentid/mcp'

export const DIDS = {
  alice: 'did:key:z6MkALICEaliceALICEaliceALICEaliceALICEalice',
  bob: 'did:key:z6MkBOBbobBOBbobBOBbobBOBbobBOBbobBOBbobBOB',
} as const

/** The policy folder of the unit tests: tools in the caller's profile, `admin` for tier ops, one resource, one prompt. */
export const POLICIES = `
@id("call-profile-tools")
permit (principal, action == AgentId::Action::"callTool", resource in AgentId::McpServer::"demo")
when { principal.toolProfile.contains(resource.name) };

@id("admin-for-ops")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"demo/admin")
when { principal.policyTier == "ops" };

@id("list-tools")
permit (principal, action == AgentId::Action::"listTools", resource == AgentId::McpServer::"demo");

@id("read-readme")
permit (principal, action == AgentId::Action::"readResource", resource == AgentId::Resource::"demo/docs://readme");

@id("greet-prompt")
permit (principal, action == AgentId::Action::"getPrompt", resource == AgentId::Prompt::"demo/greet");
`

export function policyDir(text = POLICIES): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentid-mcp-policy-'))
  writeFileSync(join(dir, 'demo.cedar'), text)
  return dir
}

export function claims(overrides: Partial<AgentClaims> = {}): AgentClaims {
  return {
    purpose: 'demo',
    controller: 'did:web:acme.example',
    model: { name: 'claude', version: '4', provider: 'anthropic' },
    toolProfile: ['echo', 'whoami'],
    policyTier: 'standard',
    dataAccessClass: 'internal',
    ...overrides,
  }
}

/** A caller as `authenticate` returns it, for the decision tests (authentication is tested end to end). */
export function caller(name: keyof typeof DIDS, overrides: Partial<AgentClaims> = {}): Caller {
  return { agent: DIDS[name], user: null, via: 'token', subject: { agent: { did: DIDS[name], claims: claims(overrides) } } }
}

/** Tool names that look like `echo` (or walk to `admin`) but are other tools. */
export const LOOKALIKES = ['Echo', 'ECHO', 'echo\u200b', '\u200becho', 'ec\u04bbo', 'ecһo', 'ech\u043e', '../echo', './echo', 'echo/../admin', 'demo/echo', 'echo ', ' echo', 'e\u0301cho', 'echo\u0000']
