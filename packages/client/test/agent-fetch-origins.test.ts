// With origins, the agent's token goes to the resource it is for, not to whatever URL the agent is handed
// (a prompt injection's "fetch https://attacker.example/..."): the token names the agent, its claims, and
// after an exchange the user it acts for; its DPoP binding keeps it unusable there, not unread.
import { AgentIdError, generateEd25519KeyPair } from '@agentid/core'
import { createAgentFetch, type FetchFunction } from '@agentid/client'
import { describe, expect, it } from 'vitest'

const ISSUER = 'https://issuer.example'
const RESOURCE = 'https://erp.example/mcp'
const T = 1_800_000_000

function network() {
  const seen: { url: string; authorization: string | null }[] = []
  const fetch: FetchFunction = async (input, init) => {
    seen.push({ url: String(input), authorization: new Headers(init?.headers).get('authorization') })
    if (String(input) === `${ISSUER}/v1/token`) {
      return new Response(JSON.stringify({ access_token: 'tok-1', token_type: 'DPoP', expires_in: 120 }), { status: 200, headers: { 'content-type': 'application/json' } })
    }
    return new Response('ok')
  }
  return { fetch, seen }
}
const codeOf = (p: Promise<unknown>) => p.then(() => 'sent', (e: unknown) => (e instanceof AgentIdError ? e.code : String(e)))

describe('createAgentFetch: where the token may go', () => {
  const { privateJwk } = generateEd25519KeyPair()

  it('with origins, only there; nothing is sent elsewhere', async () => {
    const net = network()
    const agentFetch = createAgentFetch({ issuerUrl: ISSUER, privateJwk, resource: RESOURCE, origins: ['https://erp.example'], fetch: net.fetch, clock: () => T * 1000 })
    for (const url of ['https://attacker.example/steal', 'http://erp.example/mcp', 'https://erp.example:8443/mcp', 'https://erp.example.attacker.example/']) {
      expect(await codeOf(agentFetch(url)), url).toBe('ERR_FORBIDDEN')
    }
    expect(net.seen).toEqual([])
    expect((await agentFetch('https://erp.example/other/path')).status).toBe(200)
    expect(net.seen.at(-1)).toEqual({ url: 'https://erp.example/other/path', authorization: 'DPoP tok-1' })
  })

  it('without origins, any origin (unchanged default)', async () => {
    const net = network()
    const agentFetch = createAgentFetch({ issuerUrl: ISSUER, privateJwk, resource: RESOURCE, fetch: net.fetch, clock: () => T * 1000 })
    expect((await agentFetch('https://api.erp.example/x')).status).toBe(200)
  })

  it('origins holds for a token source too; a bad origins list is a TypeError', async () => {
    const net = network()
    const wide = createAgentFetch({ issuerUrl: ISSUER, privateJwk, resource: RESOURCE, origins: ['https://api.erp.example'], fetch: net.fetch, clock: () => T * 1000 })
    expect((await wide('https://api.erp.example/x')).status).toBe(200)
    expect(await codeOf(wide('https://erp.example/mcp'))).toBe('ERR_FORBIDDEN')
    const sourced = createAgentFetch({ privateJwk, token: async () => ({ accessToken: 'tok-2', expiresIn: 60 }), origins: ['https://erp.example'], fetch: net.fetch, clock: () => T * 1000 })
    expect(await codeOf(sourced('https://attacker.example/'))).toBe('ERR_FORBIDDEN')
    expect((await sourced('https://erp.example/mcp')).status).toBe(200)
    expect(() => createAgentFetch({ privateJwk, token: async () => ({ accessToken: 't', expiresIn: 60 }), origins: ['not a url'] })).toThrow(TypeError)
  })
})
