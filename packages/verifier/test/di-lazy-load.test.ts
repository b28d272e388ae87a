// A service that only verifies JWTs must never load the JSON-LD stack (jsonld, rdf-canonize,
// @digitalbazaar/*): it is large, slow to import, and not needed. Checked on the built dist in a
// child process, two independent ways:
//  1. a module.register() resolve hook (the supported hooks API, no --experimental-loader) that
//     appends every resolved URL to a file, so each ESM import and each CJS package entered from
//     ESM is recorded;
//  2. the CommonJS cache (jsonld is CommonJS: once imported, its files sit in require.cache).
// A positive control in the same child then verifies a Data Integrity credential, which must
// load the stack: it proves both probes see it.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const dist = (pkg: string): string => fileURLToPath(new URL(`../../${pkg}/dist/index.js`, import.meta.url))
const JSONLD = /jsonld|rdf-canonize|@digitalbazaar/
// Also loaded only when needed: the ASN.1 stack (first X.509-SVID), did-resolver + key-did-resolver and
// their curve arithmetic (a DID other than an Ed25519 did:key, or no injected resolver needed at all).
const OTHER_LAZY = /@peculiar|asn1js|did-resolver|@noble/
// And the code of presentations, delegation chains (with @agentid/delegation) and lineages: loaded by the
// first verifyPresentation, verifyDelegation or verifyLineage (bench verify-only: the verifier's own memory).
const JWT_UNUSED = /\/verifier\/dist\/(presentation|delegation|lineage)\.js$|\/delegation\/dist\//

const work = mkdtempSync(join(tmpdir(), 'agentid-lazy-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const hooks = `
import { appendFileSync } from 'node:fs'
let log
export async function initialize(data) { log = data.log }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  appendFileSync(log, result.url + '\\n')
  return result
}
`

const child = (log: string): string => `
import { register, createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
register(${JSON.stringify(pathToFileURL(join(work, 'hooks.mjs')).href)}, { data: { log: ${JSON.stringify(log)} } })
const core = await import(${JSON.stringify(pathToFileURL(dist('core')).href)})
const { createVerifier } = await import(${JSON.stringify(pathToFileURL(dist('verifier')).href)})
const require = createRequire(import.meta.url)
const loaded = () => ({
  resolved: readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n').filter(Boolean),
  cjs: Object.keys(require.cache),
})

const issuer = core.signerFromJwk(core.generateEd25519KeyPair().privateJwk)
const agent = core.generateEd25519KeyPair()
const url = 'https://issuer.example/v1/status-lists/1'
const now = 1_800_000_000
const list = await core.signJwt({ typ: 'JWT' }, { iss: issuer.did, jti: url, nbf: now - 60, vc: {
  '@context': [core.VC_CONTEXT_V1], type: ['VerifiableCredential', 'BitstringStatusListCredential'],
  credentialSubject: { type: 'BitstringStatusList', statusPurpose: 'revocation', encodedList: core.StatusList.create().encode() } } }, issuer)
const jwt = await core.signJwt({ typ: 'JWT' }, { iss: issuer.did, sub: agent.did, nbf: now - 10, exp: now + 3600, jti: 'urn:uuid:1', vc: {
  '@context': [core.VC_CONTEXT_V1, core.AGENTID_CONTEXT_V1], type: ['VerifiableCredential', 'AgentIdentityCredential'],
  credentialSubject: { id: agent.did, purpose: 'p', controller: 'c', model: { name: 'm', version: '1' }, toolProfile: 'default', policyTier: 'standard', dataAccessClass: 'public' },
  credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '1', statusListCredential: url } } }, issuer)
const verifier = createVerifier({ trustedIssuers: [issuer.did], clock: () => now * 1000,
  fetch: async () => ({ ok: true, status: 200, text: async () => list }) })
const verified = await verifier.verifyAgentCredential(jwt)
const afterJwt = loaded()
let diError
try { await verifier.verifyAgentCredential({ '@context': [] }) } catch (e) { diError = e.code }
const afterDi = loaded()
const errors = []
for (const call of [() => verifier.verifyPresentation('x', { audience: 'https://api.example' }), () => verifier.verifyDelegation([], { resource: 'mcp://erp/x', action: 'invoke', invoker: agent.did }),
  () => verifier.verifyLineage('x', { audience: 'https://api.example', command: 'GET /', args: '' })]) {
  try { await call() } catch (e) { errors.push(e.code ?? e.name) }
}
process.stdout.write(JSON.stringify({ did: verified.did === agent.did, afterJwt, afterDi, diError, afterOthers: loaded(), errors }))
`

describe('lazy JSON-LD', () => {
  it('verifying a JWT loads no JSON-LD module (nor the presentation, delegation and lineage code); the first Data Integrity credential does', () => {
    for (const pkg of ['core', 'verifier']) expect(existsSync(dist(pkg)), `${pkg} is not built: run \`npx tsc -b\` first`).toBe(true)
    const log = join(work, 'resolved.log')
    writeFileSync(log, '')
    writeFileSync(join(work, 'hooks.mjs'), hooks)
    const script = join(work, 'child.mjs')
    writeFileSync(script, child(log))
    const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 })
    expect(run.status, run.stderr).toBe(0)
    const out = JSON.parse(run.stdout) as {
      did: boolean
      afterJwt: { resolved: string[]; cjs: string[] }
      afterDi: { resolved: string[]; cjs: string[] }
      diError: string
      afterOthers: { resolved: string[] }
      errors: string[]
    }
    expect(out.did).toBe(true)
    // The probes work: our own dist was seen.
    expect(out.afterJwt.resolved.some((u) => u.includes('/verifier/dist/verifier.js'))).toBe(true)
    expect(out.afterJwt.resolved.filter((u) => JSONLD.test(u))).toEqual([])
    expect(out.afterJwt.cjs.filter((p) => JSONLD.test(p))).toEqual([])
    expect(out.afterJwt.resolved.some((u) => u.includes('/di/verify-di.js'))).toBe(false)
    expect(out.afterJwt.resolved.filter((u) => OTHER_LAZY.test(u))).toEqual([])
    expect(out.afterJwt.cjs.filter((p) => OTHER_LAZY.test(p))).toEqual([])
    // Positive control: a DI credential pulls the stack in (and is refused: an empty @context).
    expect(out.diError).toBe('ERR_MALFORMED')
    expect(out.afterDi.resolved.some((u) => u.includes('/di/verify-di.js'))).toBe(true)
    expect(out.afterDi.resolved.some((u) => u.includes('@digitalbazaar'))).toBe(true)
    expect(out.afterDi.cjs.some((p) => p.includes('jsonld'))).toBe(true)
    // Presentations, delegation chains and lineages: loaded by their first call only (each refused here).
    expect(out.afterDi.resolved.filter((u) => JWT_UNUSED.test(u))).toEqual([])
    expect(out.errors).toHaveLength(3)
    for (const file of ['/verifier/dist/presentation.js', '/verifier/dist/delegation.js', '/verifier/dist/lineage.js', '/delegation/dist/index.js']) {
      expect(out.afterOthers.resolved.some((u) => u.endsWith(file)), file).toBe(true)
    }
  })
})

describe('one-byte sources', () => {
  // V8 holds a module's source text for the life of the process, two bytes per character when any
  // character is above U+00FF (a '—' or '≈' in a comment): write such characters as escapes in strings
  // and as ASCII in comments, in every module a verifier loads.
  it('every module of ours that a JWT verification loads is Latin-1 text', () => {
    const log = join(work, 'latin1.log')
    writeFileSync(log, '')
    writeFileSync(join(work, 'hooks.mjs'), hooks)
    const script = join(work, 'latin1.mjs')
    writeFileSync(script, child(log))
    const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 })
    expect(run.status, run.stderr).toBe(0)
    const { afterJwt } = JSON.parse(run.stdout) as { afterJwt: { resolved: string[] } }
    const ours = afterJwt.resolved.filter((u) => u.startsWith('file:') && /\/packages\/[a-z-]+\/dist\//.test(u) && !u.includes('/node_modules/'))
    expect(ours.length).toBeGreaterThan(20)
    const wide = ours.filter((u) => /[^\u0000-\u00ff]/.test(readFileSync(fileURLToPath(u), 'utf8')))
    expect(wide, 'modules holding a character above U+00FF').toEqual([])
  })
})
