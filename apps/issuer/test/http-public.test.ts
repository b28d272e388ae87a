// Unauthenticated routes: liveness, the OpenAPI document, the issuer's identity, its did:web document.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { decodeJwt, publicKeyFromJwk, verifyCompactJws, VerificationError } from '@agentid/core'
import type { DidResolver } from '@agentid/verifier'
import { bearer, expectError, harness, namedKey, spawnAgent, verifierFor, type Harness } from './http-fixtures.js'
import { buildServer } from '../src/http/server.js'
import { IssuerLog } from '../src/log/log.js'

/** Every `METHOD /path` the app serves (HEAD left out: Fastify adds it to each GET), from printRoutes. */
function servedRoutes(app: FastifyInstance): Set<string> {
  const out = new Set<string>()
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const at = line.search(/[├└]── /)
    if (at < 0) continue
    const depth = at / 4
    const m = /^(\S+)(?: \(([^)]*)\))?$/.exec(line.slice(at + 4).trim())
    if (!m) throw new Error(`unexpected printRoutes line: ${line}`)
    stack.length = depth
    stack.push(m[1]!)
    const path = stack.join('')
    for (const method of (m[2] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) if (method !== 'HEAD') out.add(`${method} ${path}`)
  }
  return out
}

describe('public routes (did:key issuer)', () => {
  let h: Harness
  beforeAll(async () => { h = await harness() })
  afterAll(async () => { await h.close() })

  it('GET /healthz answers 200 without a key', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/healthz' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'ok' })
  })

  it('GET /v1/issuer names the issuer DID and its key id', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/issuer' })
    expect(res.statusCode).toBe(200)
    const body = res.json() as { did: string; keyId: string }
    expect(body.did).toBe(h.service.issuer.did)
    expect(body.did).toMatch(/^did:key:z6Mk/)
    expect(body.keyId.startsWith(`${body.did}#`)).toBe(true)
  })

  it('GET /.well-known/did.json is 404 ERR_NOT_FOUND for a did:key issuer', async () => {
    expectError(await h.app.inject({ method: 'GET', url: '/.well-known/did.json' }), 404, 'ERR_NOT_FOUND')
  })

  it('an unknown route or method is 404 in the error shape', async () => {
    expectError(await h.app.inject({ method: 'GET', url: '/v2/agents' }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'PUT', url: '/v1/agents' }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'DELETE', url: `/v1/agents/${namedKey().did}` }), 404, 'ERR_NOT_FOUND')
  })

  describe('GET /openapi.json', () => {
    let doc: Record<string, any>
    beforeAll(async () => {
      const res = await h.app.inject({ method: 'GET', url: '/openapi.json' })
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      doc = res.json()
    })

    it('is an OpenAPI 3.1 document', () => {
      expect(doc.openapi).toMatch(/^3\.1\.\d+$/)
      expect(typeof doc.info?.title).toBe('string')
      expect(typeof doc.info?.version).toBe('string')
      expect(doc.info.description).toContain(h.issuerDid)
      expect(Object.keys(doc.paths).length).toBeGreaterThan(0)
    })

    it('describes exactly the routes the server has', async () => {
      const documented = new Set<string>()
      for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
        for (const [method, op] of Object.entries(item)) {
          // A parameter marked x-wildcard is the rest of the path (Fastify's `*`, e.g. the log's tiles).
          const wildcard = new Set(((op as { parameters?: { name: string; 'x-wildcard'?: boolean }[] }).parameters ?? []).filter((p) => p['x-wildcard']).map((p) => p.name))
          documented.add(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, (_, name: string) => (wildcard.has(name) ? '*' : `:${name}`))}`)
        }
      }
      // The issuer serves its log (run.ts always opens it); the harness app has none, so build one that does.
      const log = await IssuerLog.open({ db: h.service.store.db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', onError: () => {} })
      const app = buildServer(h.service, { logger: false, log })
      await app.ready()
      const served = servedRoutes(app)
      // printRoutes drops the prefix of a wildcard route ('GET *'): match those to the documented
      // wildcard routes by count here; hasRoute below proves each documented one is served.
      const bare = [...served].filter((r) => r.endsWith(' *'))
      const wildcards = [...documented].filter((r) => r.endsWith('/*'))
      expect(bare.map((r) => r.split(' ')[0]).sort()).toEqual(wildcards.map((r) => r.split(' ')[0]).sort())
      for (const r of bare) served.delete(r)
      for (const r of wildcards) served.add(r)
      // The console's own routes (session cookie + CSRF, not the public API) are documented in the
      // issuer README's console table instead: each must be there.
      const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
      const consoleTable = readme.slice(readme.indexOf('## Operator console'))
      for (const route of [...served].filter((r) => r.split(' ')[1]!.startsWith('/console'))) {
        served.delete(route)
        const [method, path] = route.split(' ') as [string, string]
        const row = consoleTable.split('\n').find((line) => line.startsWith('| ') && line.includes(path.replace(/\/?\*$/, '')) && line.includes(method))
        expect(row, `${route} in apps/issuer/README.md's console table`).toBeDefined()
      }
      expect(served.size).toBeGreaterThanOrEqual(14)
      expect([...documented].sort()).toEqual([...served].sort())
      for (const route of documented) {
        const [method, url] = route.split(' ') as [string, string]
        expect(app.hasRoute({ method: method as 'GET', url }), route).toBe(true)
      }
      await app.close()
    })

    it('every operation is well-formed: path parameters declared, responses present, $refs resolve, keys required where the server requires them', () => {
      const unauthenticated = new Set(['GET /healthz', 'GET /readyz', 'GET /contexts/agentid/v1', 'GET /openapi.json', 'GET /v1/issuer', 'GET /.well-known/did.json', 'GET /v1/status-lists/{id}', 'GET /v1/events', 'POST /v1/agents/{did}/renew', 'POST /v1/delegations/status', 'GET /v1/spiffe/bundle', 'POST /v1/agents/{did}/svids/x509', 'POST /v1/agents/{did}/svids/jwt', 'GET /.well-known/oauth-authorization-server', 'GET /v1/jwks', 'POST /v1/token',
        'GET /log/checkpoint', 'GET /log/key', 'GET /log/tile/{path}', 'GET /v1/log/proof',
        'GET /approvals/enrol', 'GET /approvals/{id}', 'GET /approvals/assets/webauthn.js', 'GET /approvals/assets/enrol.js', 'GET /approvals/assets/approve.js', 'GET /approvals/assets/style.css',
        'POST /v1/enrolments/info', 'POST /v1/enrolments/options', 'POST /v1/enrolments/verify', 'GET /v1/approvals/{id}', 'POST /v1/approvals/{id}/options', 'POST /v1/approvals/{id}/decision'])
      const refs: string[] = []
      const collect = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(collect)
        else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (k === '$ref' ? refs.push(x as string) : collect(x))
      }
      collect(doc)
      for (const ref of refs) {
        expect(ref.startsWith('#/')).toBe(true)
        let node: any = doc
        for (const part of ref.slice(2).split('/')) node = node?.[part]
        expect(node, ref).toBeTypeOf('object')
      }
      for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
        expect(path.startsWith('/')).toBe(true)
        const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
        for (const [method, op] of Object.entries(item)) {
          expect(['get', 'post', 'put', 'delete', 'patch']).toContain(method)
          expect(typeof op.summary).toBe('string')
          expect(Object.keys(op.responses ?? {}).length).toBeGreaterThan(0)
          for (const status of Object.keys(op.responses)) expect(status).toMatch(/^[1-5][0-9][0-9]$/)
          const declared = (op.parameters ?? []).filter((p: any) => p.in === 'path')
          expect(declared.map((p: any) => p.name).sort()).toEqual([...names].sort())
          for (const p of declared) expect(p.required).toBe(true)
          const key = `${method.toUpperCase()} ${path}`
          if (unauthenticated.has(key)) expect(op.security, key).toBeUndefined()
          else {
            expect(op.security, key).toEqual([{ bearer: [] }])
            expect(Object.keys(op.responses), key).toContain('401')
          }
        }
      }
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
    })
  })
})

describe('GET /.well-known/did.json for a did:web issuer', () => {
  let h: Harness
  beforeAll(async () => { h = await harness({ didWebDomain: 'issuer.test' }) })
  afterAll(async () => { await h.close() })

  const resolver = (): DidResolver => ({
    resolve: async (did: string) => {
      if (did !== 'did:web:issuer.test') return { didResolutionMetadata: { error: 'notFound' }, didDocument: null, didDocumentMetadata: {} }
      const res = await h.app.inject({ method: 'GET', url: '/.well-known/did.json' })
      return { didResolutionMetadata: {}, didDocument: res.json(), didDocumentMetadata: {} }
    },
  }) as DidResolver

  it('serves the DID document whose key verifies a credential the service issued', async () => {
    expect(h.issuerDid).toBe('did:web:issuer.test')
    const res = await h.app.inject({ method: 'GET', url: '/.well-known/did.json' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/did\+json/)
    const doc = res.json() as { id: string; verificationMethod: { id: string; controller: string; publicKeyJwk: Record<string, unknown> }[]; assertionMethod: string[] }
    expect(doc.id).toBe('did:web:issuer.test')
    expect(JSON.stringify(doc)).not.toMatch(/"d"\s*:/)

    const alice = namedKey()
    const spawned = await spawnAgent(h, alice)
    const { header } = decodeJwt(spawned.credential)
    const method = doc.verificationMethod.find((m) => m.id === header.kid)
    expect(method, 'the credential kid names a key of the document').toBeDefined()
    expect(doc.assertionMethod).toContain(header.kid)
    expect(method!.controller).toBe(doc.id)
    expect(() => verifyCompactJws(spawned.credential, publicKeyFromJwk(method!.publicKeyJwk))).not.toThrow()
    // A key that is not the issuer's does not verify it.
    expect(() => verifyCompactJws(spawned.credential, publicKeyFromJwk({ kty: 'OKP', crv: 'Ed25519', x: alice.publicJwk.x }))).toThrow(VerificationError)

    // The verifier, resolving did:web through this route, accepts it; after revocation it refuses it.
    const verifier = verifierFor(h, { resolver: resolver() })
    const agent = await verifier.verifyAgentCredential(spawned.credential)
    expect(agent.did).toBe(alice.did)
    expect(agent.issuer).toBe('did:web:issuer.test')
    const revoke = await h.app.inject({ method: 'POST', url: `/v1/credentials/${spawned.credentialId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expect(revoke.statusCode).toBe(200)
    await expect(verifierFor(h, { resolver: resolver() }).verifyAgentCredential(spawned.credential)).rejects.toMatchObject({ code: 'ERR_REVOKED' })
  })
})
