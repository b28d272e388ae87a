// The least work a cold depth-8 chain needs, in raw verifies (CPU time), for reading the chain
// suite's cold target (≤ 1.2 × depth): node bench/chain-floor.mjs
// Per link, with nothing checked but the signature: base64url-decode header, payload and signature,
// strict UTF-8 decode, JSON.parse of both, SHA-256 of the link (its child names it), the signer's
// key imported from its did:key (new agents on every chain, as in the suite: 7 imports per chain)
// and the Ed25519 verify. No duplicate-member, time, linkage, attenuation, status or memo work.
import { createPublicKey, verify, hash } from 'node:crypto'
import { parseDidKeySyntax } from '@agentid/core'
import { agentidChain } from './lib/chains.mjs'
import { keyFromLabel } from './lib/tokens.mjs'
const issuer = keyFromLabel('issuer')
const POOL = 600, d = 8
const pool = []; for (let i = 0; i < POOL; i++) pool.push((await agentidChain(issuer, d, `f/${i}`)).chain.map((s) => JSON.parse(JSON.stringify(s))))
const td = new TextDecoder('utf-8', { fatal: true })
function floor(chain) {
  for (let i = 0; i < chain.length; i++) {
    const t = chain[i]; const a = t.indexOf('.'), b = t.indexOf('.', a + 1)
    const header = JSON.parse(td.decode(Buffer.from(t.slice(0, a), 'base64url')))
    const payload = JSON.parse(td.decode(Buffer.from(t.slice(a + 1, b), 'base64url')))
    const sig = Buffer.from(t.slice(b + 1), 'base64url')
    hash('sha256', t, 'base64url')
    const key = i === 0 ? issuer.publicKey : createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(parseDidKeySyntax(payload.iss).publicKey).toString('base64url') }, format: 'jwk' })
    if (!verify(null, Buffer.from(t.slice(0, b), 'latin1'), key, sig)) throw new Error('bad')
  }
}
const link = pool[0][0], dot = link.lastIndexOf('.'), si = Buffer.from(link.slice(0, dot)), sg = Buffer.from(link.slice(dot + 1), 'base64url')
const cpu = (f, n) => { const c = process.cpuUsage(); for (let i = 0; i < n; i++) f(i); const u = process.cpuUsage(c); return (u.user + u.system) / n }
for (let r = 0; r < 5; r++) {
  const raw = cpu(() => verify(null, si, issuer.publicKey, sg), 3000)
  const fl = cpu((i) => floor(pool[i % POOL]), 600)
  console.log(`raw ${raw.toFixed(1)} µs, floor depth 8 ${fl.toFixed(0)} µs = ${(fl / raw).toFixed(2)} raw verifies`)
}
