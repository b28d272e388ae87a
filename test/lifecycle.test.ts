// The whole life of agents on the real issuer process: an orchestrator key made with the real CLI,
// spawns in both key-custody modes, verification by a separate verifier over real HTTP, revocation
// with the CLI (by DID and by credential id) seen by the verifier once its TTL has passed, renewal.
import { readFileSync, existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentIdError, VerificationError, createProofOfPossession, generateEd25519KeyPair, signerFromJwk } from '@agentid/core'
import { renew, spawn, type SpawnedAgent } from '@agentid/client'
import { createVerifier, type Verifier } from '@agentid/verifier'
import { adminCli, api, claims, cleanup, cli, cliErrorCode, issuerDid, sleep, startIssuer, type IssuerProcess } from './harness.js'

let issuer: IssuerProcess
let did: string
let apiKey: string
let verifier: Verifier

/** The code a verification fails with, or 'OK'. */
async function outcome(v: Verifier, jwt: string): Promise<string> {
  try {
    await v.verifyAgentCredential(jwt)
    return 'OK'
  } catch (error) {
    if (error instanceof VerificationError) return error.code
    throw error
  }
}

/**
 * Polls the verifier until it refuses `jwt` with ERR_REVOKED; returns ms since `since`. The bound is
 * only there so that a broken issuer fails the test instead of hanging it.
 */
async function msUntilRefused(v: Verifier, jwt: string, since: number): Promise<number> {
  for (;;) {
    const code = await outcome(v, jwt)
    if (code === 'ERR_REVOKED') return performance.now() - since
    expect(code).toBe('OK')
    if (performance.now() - since > 30_000) throw new Error('the verifier never refused the revoked credential')
    await sleep(20)
  }
}

const conn = () => ({ issuerUrl: issuer.url })

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  verifier = createVerifier({ trustedIssuers: [did], statusTtlMs: 1000 })
})

afterAll(async () => {
  await cleanup()
})

describe('lifecycle', () => {
  it('makes an orchestrator key with the real CLI', async () => {
    const added = await adminCli(issuer, ['orchestrators', 'add', 'alpha', '--json'])
    expect(added.code, added.stderr).toBe(0)
    const out = added.json()
    expect(out.name).toBe('alpha')
    expect(out.apiKey).toMatch(/^aid_orch_[A-Za-z0-9_-]{43}$/)
    apiKey = out.apiKey
    // The key works on the orchestrator routes.
    expect((await api(issuer, 'GET', '/v1/agents', { key: apiKey })).status).toBe(200)

    const listed = await adminCli(issuer, ['orchestrators', 'list', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.json().orchestrators.map((o: { name: string }) => o.name)).toContain('alpha')

    // Refusals: exit 1 and `agentid: ERR_X: …` on stderr; usage errors exit 2.
    const dup = await adminCli(issuer, ['orchestrators', 'add', 'alpha', '--json'])
    expect(dup.code).toBe(1)
    expect(cliErrorCode(dup)).toBe('ERR_CONFLICT')
    const wrongKey = await cli(['orchestrators', 'list', '--issuer', issuer.url], { AGENTID_ADMIN_KEY: `aid_admin_${'A'.repeat(43)}` })
    expect(wrongKey.code).toBe(1)
    expect(cliErrorCode(wrongKey)).toBe('ERR_UNAUTHENTICATED')
    const bad = await adminCli(issuer, ['orchestrators', 'add', '../etc'])
    expect(bad.code).toBe(1)
    expect(cliErrorCode(bad)).toBe('ERR_INVALID_INPUT')
    expect((await adminCli(issuer, ['no-such-command'])).code).toBe(2)
    expect((await adminCli(issuer, ['orchestrators', 'add'])).code).toBe(2)
  })

  let agentHeld: SpawnedAgent
  let issuerHeld: SpawnedAgent

  it('spawns agents in both key-custody modes and a separate verifier verifies them over HTTP', async () => {
    agentHeld = await spawn({ ...conn(), apiKey, claims: claims('agent-held') })
    issuerHeld = await spawn({ ...conn(), apiKey, claims: claims('issuer-held', { dataAccessClass: 'confidential' }), keyCustody: 'issuer' })
    expect(agentHeld.keyCustody).toBe('agent')
    expect(issuerHeld.keyCustody).toBe('issuer')
    // Each private key belongs to its DID.
    expect(signerFromJwk(agentHeld.privateJwk).did).toBe(agentHeld.did)
    expect(signerFromJwk(issuerHeld.privateJwk).did).toBe(issuerHeld.did)

    for (const [agent, purpose] of [[agentHeld, 'e2e-agent-held'], [issuerHeld, 'e2e-issuer-held']] as const) {
      const verified = await verifier.verifyAgentCredential(agent.credential)
      expect(verified.did).toBe(agent.did)
      expect(verified.issuer).toBe(did)
      expect(verified.credentialId).toBe(agent.credentialId)
      expect(verified.claims.purpose).toBe(purpose)
      expect(verified.status.statusListCredential).toBe(`${issuer.url}/v1/status-lists/1`)
      const view = await api(issuer, 'GET', `/v1/agents/${agent.did}`, { key: apiKey })
      expect(view.status).toBe(200)
      expect(view.body).toMatchObject({ did: agent.did, keyCustody: agent.keyCustody, status: 'active' })
      expect(view.body.credentials.map((c: { id: string }) => c.id)).toEqual([agent.credentialId])
    }
    expect((await verifier.verifyAgentCredential(issuerHeld.credential)).claims.dataAccessClass).toBe('confidential')

    // A verifier that trusts another issuer refuses them.
    const stranger = createVerifier({ trustedIssuers: [generateEd25519KeyPair().did] })
    expect(await outcome(stranger, agentHeld.credential)).toBe('ERR_UNTRUSTED_ISSUER')

    // The issuer-generated private key was returned once and never stored.
    const secret = issuerHeld.privateJwk.d
    for (const file of [issuer.dbFile, `${issuer.dbFile}-wal`]) {
      if (existsSync(file)) expect(readFileSync(file).includes(Buffer.from(secret))).toBe(false)
    }
    const view = await api(issuer, 'GET', `/v1/agents/${issuerHeld.did}`, { key: issuer.adminKey })
    expect(view.text).not.toContain(secret)

    // The CLI sees them too, and verifies their credentials.
    const shown = await adminCli(issuer, ['agents', 'show', agentHeld.did, '--json'])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.json()).toMatchObject({ did: agentHeld.did, status: 'active', keyCustody: 'agent' })
    const list = await adminCli(issuer, ['agents', 'list', '--json'])
    expect(list.code, list.stderr).toBe(0)
    expect(list.json().agents.map((a: { did: string }) => a.did).sort()).toEqual([agentHeld.did, issuerHeld.did].sort())
    const verified = await adminCli(issuer, ['verify', issuerHeld.credential, '--json'])
    expect(verified.code, verified.stderr).toBe(0)
    expect(verified.json().did).toBe(issuerHeld.did)
  })

  it('renews with renew() in both custody modes: a fresh credential for the same DID', async () => {
    for (const agent of [agentHeld, issuerHeld]) {
      const renewed = await renew({ ...conn(), privateJwk: agent.privateJwk })
      expect(renewed.did).toBe(agent.did)
      expect(renewed.credentialId).not.toBe(agent.credentialId)
      expect(renewed.status.statusListIndex).not.toBe(agent.status.statusListIndex)
      const v = await verifier.verifyAgentCredential(renewed.credential)
      expect(v.did).toBe(agent.did)
      expect(v.claims).toEqual((await verifier.verifyAgentCredential(agent.credential)).claims)
      const view = await api(issuer, 'GET', `/v1/agents/${agent.did}`, { key: apiKey })
      expect(view.body.credentials.map((c: { id: string }) => c.id)).toEqual([agent.credentialId, renewed.credentialId])
    }
    // Renewal needs the agent's key: another key's proof is refused.
    const mallory = generateEd25519KeyPair()
    const r = await api(issuer, 'POST', `/v1/agents/${agentHeld.did}/renew`, {
      json: { proof: await createProofOfPossession({ signer: signerFromJwk(mallory.privateJwk), audience: did, purpose: 'renew' }) },
    })
    expect(r.status).toBe(401)
    expect(r.body.error.code).toBe('ERR_KEY_MISMATCH')
  })

  it('revokes an agent by DID with the CLI: the verifier refuses its credentials with ERR_REVOKED once its TTL has passed', async () => {
    const victim = await spawn({ ...conn(), apiKey, claims: claims('revoke-by-did') })
    const renewed = await renew({ ...conn(), privateJwk: victim.privateJwk })
    expect(await outcome(verifier, victim.credential)).toBe('OK') // caches the status list
    expect(await outcome(verifier, renewed.credential)).toBe('OK')

    const cliStarted = performance.now()
    const revoked = await adminCli(issuer, ['revoke', victim.did, '--reason', 'key leaked in a log', '--json'])
    const cliReturned = performance.now()
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.json().revokedCredentials.sort()).toEqual([victim.credentialId, renewed.credentialId].sort())

    const delay = await msUntilRefused(verifier, victim.credential, cliReturned)
    console.log(`revocation by DID (CLI \`revoke <did>\`): verifier (statusTtlMs 1000) refused ${Math.round(delay)} ms after the CLI returned (${Math.round(delay + cliReturned - cliStarted)} ms after it was started)`)
    expect(await outcome(verifier, renewed.credential)).toBe('ERR_REVOKED')
    // Other agents' credentials still verify.
    expect(await outcome(verifier, agentHeld.credential)).toBe('OK')

    const view = await api(issuer, 'GET', `/v1/agents/${victim.did}`, { key: apiKey })
    expect(view.body.status).toBe('revoked')
    expect(view.body.credentials.map((c: { status: string }) => c.status)).toEqual(['revoked', 'revoked'])
    const status = await adminCli(issuer, ['status', victim.did, '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(status.json().status).toBe('revoked')
    const cliVerify = await adminCli(issuer, ['verify', victim.credential])
    expect(cliVerify.code).toBe(1)
    expect(cliErrorCode(cliVerify)).toBe('ERR_REVOKED')

    // Revoking again changes nothing and is not an error.
    const again = await adminCli(issuer, ['revoke', victim.did, '--reason', 'again', '--json'])
    expect(again.code, again.stderr).toBe(0)
    expect(again.json().alreadyRevoked).toBe(true)

    // A revoked agent cannot renew: 403 ERR_REVOKED, through the client and on the wire.
    const refusal = await renew({ ...conn(), privateJwk: victim.privateJwk }).then(() => undefined, (e: unknown) => e)
    expect(refusal).toBeInstanceOf(AgentIdError)
    expect((refusal as AgentIdError).code).toBe('ERR_REVOKED')
    expect((refusal as AgentIdError).details.status).toBe(403)
  })

  it('revokes one credential by its urn:uuid with the CLI: that credential is refused, the agent\'s others still verify', async () => {
    const agent = await spawn({ ...conn(), apiKey, claims: claims('revoke-one'), keyCustody: 'issuer' })
    const renewed = await renew({ ...conn(), privateJwk: agent.privateJwk })
    expect(await outcome(verifier, agent.credential)).toBe('OK')

    const cliStarted = performance.now()
    const revoked = await adminCli(issuer, ['revoke', agent.credentialId, '--reason', 'superseded', '--json'])
    const cliReturned = performance.now()
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.json()).toMatchObject({ id: agent.credentialId, agent: agent.did })

    const delay = await msUntilRefused(verifier, agent.credential, cliReturned)
    console.log(`revocation by credential id (CLI \`revoke <urn:uuid>\`): verifier (statusTtlMs 1000) refused ${Math.round(delay)} ms after the CLI returned (${Math.round(delay + cliReturned - cliStarted)} ms after it was started)`)
    expect(await outcome(verifier, renewed.credential)).toBe('OK')

    const status = await adminCli(issuer, ['status', agent.did, '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(status.json().status).toBe('active')
    expect(Object.fromEntries(status.json().credentials.map((c: { id: string; status: string }) => [c.id, c.status]))).toEqual({
      [agent.credentialId]: 'revoked',
      [renewed.credentialId]: 'active',
    })
    // The agent is still active, so it may renew.
    const again = await renew({ ...conn(), privateJwk: agent.privateJwk })
    expect(await outcome(verifier, again.credential)).toBe('OK')

    // Unknown ids and DIDs: exit 1 with the code; a missing --reason is a usage error.
    const unknown = await adminCli(issuer, ['revoke', 'urn:uuid:00000000-0000-4000-8000-000000000000', '--reason', 'x'])
    expect(unknown.code).toBe(1)
    expect(cliErrorCode(unknown)).toBe('ERR_NOT_FOUND')
    const ghost = await adminCli(issuer, ['revoke', generateEd25519KeyPair().did, '--reason', 'x'])
    expect(ghost.code).toBe(1)
    expect(cliErrorCode(ghost)).toBe('ERR_NOT_FOUND')
    expect((await adminCli(issuer, ['revoke', agent.did])).code).toBe(2)
    expect((await api(issuer, 'GET', `/v1/agents/${agent.did}`, { key: apiKey })).body.status).toBe('active')
  })

  it('the CLI reads the same state directly from the database file (--db) while the issuer runs', async () => {
    const status = await cli(['status', agentHeld.did, '--db', issuer.dbFile, '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(status.json()).toMatchObject({ did: agentHeld.did, status: 'active' })
    const orchestrators = await cli(['orchestrators', 'list', '--db', issuer.dbFile, '--json'])
    expect(orchestrators.code, orchestrators.stderr).toBe(0)
    expect(orchestrators.json().orchestrators.map((o: { name: string }) => o.name)).toEqual(['alpha'])
  })
})
