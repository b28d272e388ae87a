// Shared fixtures of the issuer's in-process HTTP tests (http-*.test.ts): a real IssuerService on a
// temporary SQLite file, its Fastify app driven with app.inject(), named keys and error assertions.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { expect } from 'vitest'
import {
  base64urlEncode,
  createProofOfPossession,
  generateEd25519KeyPair,
  signerFromJwk,
  type AgentClaims,
  type Ed25519KeyPair,
  type ProofPurpose,
  type Signer,
} from '@agentid/core'
import { createVerifier, type FetchLike, type Verifier } from '@agentid/verifier'
import { IssuerService, type IssuerServiceOptions } from '../src/domain/service.js'
import { buildServer } from '../src/http/server.js'

export const BASE_URL = 'http://issuer.test'

/** Named agent keys: alice and bob are honest agents, mallory is the attacker. */
export interface NamedKey extends Ed25519KeyPair { signer: Signer }
export function namedKey(): NamedKey {
  const pair = generateEd25519KeyPair()
  return { ...pair, signer: signerFromJwk(pair.privateJwk) }
}

export const claims: AgentClaims = {
  purpose: 'invoice triage',
  controller: 'did:web:acme.example',
  model: { provider: 'acme-ai', name: 'reasoner', version: '2026-10' },
  toolProfile: ['mcp://erp/tools/invoices.read'],
  policyTier: 'standard',
  dataAccessClass: 'internal',
}

export interface Orchestrator { id: string; name: string; apiKey: string }

export interface Harness {
  dir: string
  dbFile: string
  service: IssuerService
  app: FastifyInstance
  issuerDid: string
  adminKey: string
  /** Two orchestrators: `orch` (acme) and `other` (globex). */
  orch: Orchestrator
  other: Orchestrator
  /** Mutable clock (ms) read by the service. */
  clock: { now: number }
  close(): Promise<void>
}

/** A real issuer on a fresh temporary database, with an admin key and two orchestrators. */
export async function harness(options: Partial<IssuerServiceOptions> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'agentid-http-'))
  const clock = { now: Date.now() }
  const service = await IssuerService.open({ dataDir: dir, baseUrl: BASE_URL, clock: () => clock.now, ...options })
  const app = buildServer(service, { logger: false })
  await app.ready()
  const adminKey = (await service.ensureAdminKey()).generated!
  const orch = await service.addOrchestrator({ kind: 'admin' }, 'acme')
  const other = await service.addOrchestrator({ kind: 'admin' }, 'globex')
  return {
    dir,
    dbFile: join(dir, 'issuer.db'),
    service,
    app,
    issuerDid: service.issuer.did,
    adminKey,
    orch: { id: orch.id, name: orch.name, apiKey: orch.apiKey },
    other: { id: other.id, name: other.name, apiKey: other.apiKey },
    clock,
    async close() {
      await app.close()
      await service.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

/** A proof of possession for `h`'s issuer, signed by `key`. */
export function proof(
  h: Harness,
  key: NamedKey,
  o: { purpose?: ProofPurpose; nonce?: string; audience?: string; clock?: () => number; ttlSec?: number } = {},
): Promise<string> {
  return createProofOfPossession({
    signer: key.signer,
    audience: o.audience ?? h.issuerDid,
    purpose: o.purpose ?? 'spawn',
    clock: o.clock ?? (() => h.clock.now),
    ...(o.nonce === undefined ? {} : { nonce: o.nonce }),
    ...(o.ttlSec === undefined ? {} : { ttlSec: o.ttlSec }),
  })
}

/** Signs arbitrary header and payload with `key` (the signature is real; the contents are not checked). */
export async function signRaw(key: NamedKey, header: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  const input = `${base64urlEncode(Buffer.from(JSON.stringify(header)))}.${base64urlEncode(Buffer.from(JSON.stringify(payload)))}`
  const sig = await key.signer.sign(Buffer.from(input))
  return `${input}.${base64urlEncode(sig)}`
}

export interface SpawnResult {
  did: string; credential: string; credentialId: string; expiresAt: string; keyCustody: 'agent' | 'issuer'
  status: { statusListCredential: string; statusListIndex: number }
  privateJwk?: { kty: string; crv: string; x: string; d: string }
}

/** Spawns an agent-held agent for `key` through the API and returns the body (asserts 201). */
export async function spawnAgent(h: Harness, key: NamedKey, o: { apiKey?: string; claims?: Partial<AgentClaims>; lifetimeSec?: number } = {}): Promise<SpawnResult> {
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/agents',
    headers: bearer(o.apiKey ?? h.orch.apiKey),
    payload: { ...claims, ...o.claims, did: key.did, proof: await proof(h, key), ...(o.lifetimeSec === undefined ? {} : { lifetimeSec: o.lifetimeSec }) },
  })
  expect(res.statusCode, res.body).toBe(201)
  return res.json() as SpawnResult
}

/** Row counts of every table a request can write (and of revoked and removed rows). */
export function counts(h: Harness) {
  const db = h.service.store.db
  const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n
  return {
    agents: n('SELECT count(*) AS n FROM agents'),
    credentials: n('SELECT count(*) AS n FROM credentials'),
    proof_nonces: n('SELECT count(*) AS n FROM proof_nonces'),
    challenges_used: n('SELECT count(*) AS n FROM challenges WHERE used = 1'),
    audit_events: n('SELECT count(*) AS n FROM audit_events'),
    status_bits_used: n('SELECT coalesce(sum(next_index), 0) AS n FROM status_lists'),
    status_list_versions: n('SELECT coalesce(sum(version), 0) AS n FROM status_lists'),
    revoked_agents: n("SELECT count(*) AS n FROM agents WHERE status = 'revoked'"),
    revoked_credentials: n('SELECT count(*) AS n FROM credentials WHERE revoked_at IS NOT NULL'),
    orchestrators: n('SELECT count(*) AS n FROM orchestrators'),
    removed_orchestrators: n('SELECT count(*) AS n FROM orchestrators WHERE removed_at IS NOT NULL'),
  }
}

function hasKey(value: unknown, key: string): boolean {
  if (Array.isArray(value)) return value.some((v) => hasKey(v, key))
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([k, v]) => k === key || hasKey(v, key))
  return false
}

/**
 * Asserts an error response: the status, the `{ error: { code, message } }` JSON shape, the code,
 * no stack trace anywhere, never a 500. Returns the error object (for `details`).
 */
export function expectError(res: LightMyRequestResponse, status: number, code: string): { code: string; message: string; details?: Record<string, unknown> } {
  expect(res.statusCode, `${res.statusCode} ${res.body}`).toBe(status)
  expect(res.statusCode).not.toBe(500)
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/)
  const body = JSON.parse(res.body) as Record<string, unknown>
  expect(Object.keys(body)).toEqual(['error'])
  const error = body.error as { code: string; message: string; details?: Record<string, unknown> }
  expect(typeof error.message).toBe('string')
  expect(error.message.length).toBeGreaterThan(0)
  expect(error.code).toBe(code)
  for (const k of Object.keys(error)) expect(['code', 'message', 'details']).toContain(k)
  expect(hasKey(body, 'stack')).toBe(false)
  expect(hasKey(body, 'cause')).toBe(false)
  expect(res.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/)
  return error
}

/** Like expectError for 400 ERR_INVALID_INPUT, also checking `details.field`. */
export function expectInvalid(res: LightMyRequestResponse, field: string): void {
  const error = expectError(res, 400, 'ERR_INVALID_INPUT')
  expect(error.details?.field).toBe(field)
}

/** A fetch that answers status-list URLs of `h` from app.inject (no network); everything else fails. */
export function injectFetch(h: Harness, log: string[] = []): FetchLike {
  return async (url: string) => {
    log.push(url)
    if (!url.startsWith(`${BASE_URL}/`)) throw new Error(`no network in tests: ${url}`)
    const res = await h.app.inject({ method: 'GET', url: url.slice(BASE_URL.length) })
    return { ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, text: async () => res.body }
  }
}

/** A verifier trusting `h`'s issuer, fetching status lists in-process, never caching them. */
export function verifierFor(h: Harness, extra: Partial<Parameters<typeof createVerifier>[0]> = {}): Verifier {
  return createVerifier({ trustedIssuers: [h.issuerDid], fetch: injectFetch(h), clock: () => h.clock.now, statusTtlMs: 0, statusGraceMs: 0, memoSize: 1, ...extra })
}
