// The least work a cold depth-8 chain needs, in raw verifies (CPU time), for reading the chain
// suite's cold target (≤ 1.2 × depth): node bench/chain-floor.mjs
// Per link, with nothing checked but the signature: base64url-decode header, payload and signature,
// strict UTF-8 decode, JSON.parse of both, SHA-256 of each link a child names (not the leaf's), the
// signer's key taken from its did:key (new agents on every chain, as in the suite: 7 per chain) and
// the Ed25519 verify. No duplicate-member, time, linkage, attenuation, status or memo work.
// Two forms of the key step: `import`, createPublicKey from a JWK (a KeyObject) and then verify;
// `jwk`, the JWK handed to crypto.verify for that one call (what the verifier does on a key's first
// use). Beside the raw reference (one link, the same key and bytes every call, as in the suites),
// `raw distinct` verifies distinct links under their own (already imported) keys: the part of the
// floor that is the signature check itself on bytes not seen before.
// A third form, `sodium`: the raw key bytes to libsodium (the verifier's backend where sodium-native's
// addon loads: no import at all). The verifier's figures are read against the floor of its own backend.
// Beside them, in the same rounds, the verifier itself (createVerifier's defaults, verifyDelegation
// on the same pool of cold chains, every check) at depth 8, and the floor and the verifier at depth 1
// (one link signed by the cached issuer key: decode, parse, verify; nothing hashed, no key imported).
import { createPublicKey, verify, hash } from 'node:crypto'
import sodium from 'sodium-native'
import { parseDidKeySyntax } from '@agentid/core'
import { createVerifier } from '@agentid/verifier'
import { ACTION, agentidChain, RESOURCE } from './lib/chains.mjs'
import { keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'
const issuer = keyFromLabel('issuer')
const POOL = 600, d = 8
const made = []; for (let i = 0; i < POOL; i++) made.push(await agentidChain(issuer, d, `f/${i}`))
const pool = made.map((c) => c.chain.map((s) => JSON.parse(JSON.stringify(s))))
const POOL1 = 2400
const made1 = []; for (let i = 0; i < POOL1; i++) made1.push(await agentidChain(issuer, 1, `f1/${i}`))
const pool1 = made1.map((c) => c.chain.map((s) => JSON.parse(JSON.stringify(s))))
const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, Math.floor(Date.now() / 1000))), statusTtlMs: 3_600_000 })
const request = (c) => ({ invoker: c.invoker, resource: RESOURCE, action: ACTION })
// verifyDelegation answers synchronously-resolved promises: awaited one by one, as the suites do.
const cpuAsync = async (f, n) => { const c = process.cpuUsage(); for (let i = 0; i < n; i++) await f(i); const u = process.cpuUsage(c); return (u.user + u.system) / n }
for (let i = 0; i < 2 * POOL; i++) await verifier.verifyDelegation(pool[i % POOL], request(made[i % POOL]))
let next1 = 0
for (; next1 < POOL1; next1++) await verifier.verifyDelegation(pool1[next1], request(made1[next1]))
const td = new TextDecoder('utf-8', { fatal: true })
const issuerRaw = Buffer.from(issuer.publicJwk.x, 'base64url')
const jwkOf = (iss) => ({ kty: 'OKP', crv: 'Ed25519', x: Buffer.from(parseDidKeySyntax(iss).publicKey).toString('base64url') })
function floor(chain, mode) {
  for (let i = 0; i < chain.length; i++) {
    const t = chain[i]; const a = t.indexOf('.'), b = t.indexOf('.', a + 1)
    JSON.parse(td.decode(Buffer.from(t.slice(0, a), 'base64url')))
    const payload = JSON.parse(td.decode(Buffer.from(t.slice(a + 1, b), 'base64url')))
    const sig = Buffer.from(t.slice(b + 1), 'base64url')
    if (i < chain.length - 1) hash('sha256', t, 'base64url')
    if (mode === 'sodium') {
      const raw = i === 0 ? issuerRaw : parseDidKeySyntax(payload.iss).publicKey
      if (!sodium.crypto_sign_verify_detached(sig, Buffer.from(t.slice(0, b), 'latin1'), raw)) throw new Error('bad')
      continue
    }
    const key = i === 0 ? issuer.publicKey : mode === 'import' ? createPublicKey({ key: jwkOf(payload.iss), format: 'jwk' }) : { key: jwkOf(payload.iss), format: 'jwk' }
    if (!verify(null, Buffer.from(t.slice(0, b), 'latin1'), key, sig)) throw new Error('bad')
  }
}
// Distinct links with their keys imported beforehand: the signature checks alone.
const links = pool.slice(0, 100).flatMap((c) => c.slice(1)).map((t) => {
  const b = t.lastIndexOf('.')
  const iss = JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()).iss
  return { data: Buffer.from(t.slice(0, b), 'latin1'), sig: Buffer.from(t.slice(b + 1), 'base64url'), key: createPublicKey({ key: jwkOf(iss), format: 'jwk' }) }
})
const link = pool[0][0], dot = link.lastIndexOf('.'), si = Buffer.from(link.slice(0, dot)), sg = Buffer.from(link.slice(dot + 1), 'base64url')
const cpu = (f, n) => { const c = process.cpuUsage(); for (let i = 0; i < n; i++) f(i); const u = process.cpuUsage(c); return (u.user + u.system) / n }
for (let r = 0; r < 5; r++) {
  const raw = cpu(() => verify(null, si, issuer.publicKey, sg), 3000)
  const distinct = cpu((i) => { const l = links[i % links.length]; verify(null, l.data, l.key, l.sig) }, 700)
  const imported = cpu((i) => floor(pool[i % POOL], 'import'), 300)
  const jwk = cpu((i) => floor(pool[(i + 300) % POOL], 'jwk'), 300)
  const sod = cpu((i) => floor(pool[(i + 450) % POOL], 'sodium'), 300)
  const ours = await cpuAsync((i) => verifier.verifyDelegation(pool[(i + 150) % POOL], request(made[(i + 150) % POOL])), 300)
  const floor1 = cpu((i) => floor(pool1[(r * 2000 + i) % POOL1], 'jwk'), 2000)
  // A running index: each depth-1 chain comes back after POOL1 − 1 others (more than the memo holds).
  const ours1 = await cpuAsync(() => { const k = next1++ % POOL1; return verifier.verifyDelegation(pool1[k], request(made1[k])) }, 2000)
  console.log(`raw ${raw.toFixed(1)} µs, raw distinct ${distinct.toFixed(1)} µs (${(distinct / raw).toFixed(3)}); floor depth 8: import ${imported.toFixed(0)} µs = ${(imported / raw).toFixed(2)} raw, jwk ${jwk.toFixed(0)} µs = ${(jwk / raw).toFixed(2)} raw, 8 distinct + 0 = ${((8 * distinct) / raw).toFixed(2)} raw; sodium ${sod.toFixed(0)} µs = ${(sod / raw).toFixed(2)} raw; verifyDelegation depth 8 ${ours.toFixed(0)} µs = ${(ours / raw).toFixed(2)} raw (${(ours / jwk).toFixed(2)} × jwk floor, ${(ours / sod).toFixed(2)} × sodium floor); depth 1: floor ${(floor1 / raw).toFixed(2)} raw, verifyDelegation ${(ours1 / raw).toFixed(2)} raw (${(ours1 / floor1).toFixed(2)} × floor)`)
}
