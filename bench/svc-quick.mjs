import { IssuerService } from '@agentid/issuer'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
const svc = await IssuerService.open({ dataDir: '/tmp/svcq-' + Date.now(), baseUrl: 'http://x.test' })
const orch = svc.addOrchestrator({ kind: 'admin' }, 'o')
const actor = { kind: 'orchestrator', id: orch.id, name: 'o' }
const claims = { purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://a/b'], policyTier: 'standard', dataAccessClass: 'internal' }
const N = 6000
const bodies = []
for (let i = 0; i < N; i++) { const k = generateEd25519KeyPair(); bodies.push({ did: k.did, proof: await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: svc.issuer.did, purpose: 'spawn', ttlSec: 300 }), ...claims }) }
let next = 0
const c0 = process.cpuUsage()
const t0 = performance.now()
await Promise.all(Array.from({ length: 32 }, async () => { while (next < N) await svc.spawn(actor, bodies[next++]) }))
const c = process.cpuUsage(c0)
console.log('service.spawn/s', Math.round(N / (performance.now() - t0) * 1000), 'cpu us/spawn user', Math.round(c.user / N), 'sys', Math.round(c.system / N))
console.log('flushes', globalThis.__flushes, 'jobs/flush', (globalThis.__jobs/globalThis.__flushes).toFixed(1), 'ms/flush', (globalThis.__flushMs/globalThis.__flushes).toFixed(2))
await svc.close()
