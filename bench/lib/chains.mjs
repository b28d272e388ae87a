// Delegation chains for the `chain` suite, made three ways with the same shape: an authority (the
// bench issuer) grants a capability on an MCP tool to a first agent, who re-delegates it down to the
// depth wanted. agentid: AgentCapabilityCredential JWTs signed with node:crypto through
// @agentid/delegation's delegate(), each link with a revocation status entry on the bench list.
// Biscuit: the authority block plus attenuation blocks. ucanto: UCAN delegations, each carrying its
// parent as proof, archived to CAR bytes.
import { sign } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { delegate } from '@agentid/delegation'
import { keyFromLabel, LIST_URL, localFetch, statusListJwt } from './tokens.mjs'

export const RESOURCE = 'mcp://erp/tools/invoices.read'
export const ACTION = 'invoke'

const signerOf = (key) => ({ did: key.did, keyId: key.keyId, alg: 'EdDSA', sign: (data) => sign(null, data, key.privateKey) })

let statusIndex = 1
/** An agentid chain of `depth` links from `issuer` (a keyFromLabel key); its agents' keys are fresh. */
export async function agentidChain(issuer, depth, label) {
  let chain = []
  let signer = signerOf(issuer)
  let last
  for (let i = 0; i < depth; i++) {
    const agent = keyFromLabel(`${label}/${i}`)
    chain = await delegate({
      signer,
      to: agent.did,
      parent: chain,
      capabilities: i === 0 ? [{ resource: 'mcp://erp/tools/*', actions: ['*'] }] : [{ resource: RESOURCE, actions: [ACTION] }],
      caveats: i === 0 ? { remainingDepth: 9, maxDataClass: 'confidential' } : {},
      expiresIn: 86_400,
      statusEntry: { id: `${LIST_URL}#${statusIndex}`, type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(statusIndex++ % 131_072), statusListCredential: LIST_URL },
    })
    signer = signerOf(agent)
    last = agent
  }
  return { chain, invoker: last.did }
}

const LIMITS = { max_facts: 1000, max_iterations: 100, max_time_micro: 1_000_000 }
const future = (sec) => new Date((Math.floor(Date.now() / 1000) + sec) * 1000).toISOString().replace(/\.\d+Z$/, 'Z')

/** A Biscuit of `depth` blocks (authority + depth − 1 attenuation blocks), base64. */
export function biscuitToken(B, root, depth) {
  const builder = B.Biscuit.builder()
  builder.addCode(`right("mcp://erp/tools/*", "*"); check if time($t), $t <= ${future(86_400)};`)
  let token = builder.build(root.getPrivateKey())
  for (let i = 1; i < depth; i++) {
    const block = B.Biscuit.block_builder()
    block.addCode(`check if resource("${RESOURCE}"), operation("${ACTION}"); check if time($t), $t <= ${future(86_400 - i)};`)
    token = token.appendBlock(block)
  }
  return token.toBase64()
}

/** Parse (every block's signature), then authorize one request with a fresh authorizer. */
export function biscuitVerify(B, rootPublic, token) {
  const biscuit = B.Biscuit.fromBase64(token, rootPublic)
  const builder = new B.AuthorizerBuilder()
  builder.addCode(`resource("${RESOURCE}"); operation("${ACTION}"); time(${new Date().toISOString().replace(/\.\d+Z$/, 'Z')});
    allow if right($r, $op), "mcp://erp/tools/*" == $r, "*" == $op, resource("${RESOURCE}");`)
  const authorizer = builder.buildAuthenticated(biscuit)
  try {
    // The default run limit (1 ms) times out on a shared machine; the datalog work is tiny.
    return authorizer.authorizeWithLimits(LIMITS)
  } finally {
    authorizer.free()
    biscuit.free()
  }
}

/** ucanto: a chain of `depth` delegations from `service`, archived (the leaf and all its proofs). */
export async function ucantoChain(U, service, depth) {
  let proof
  let agent
  let issuer = service
  for (let i = 0; i < depth; i++) {
    agent = await U.ed25519.generate()
    proof = await U.delegate({ issuer, audience: agent, capabilities: [{ with: RESOURCE, can: 'tool/invoke' }], expiration: Math.floor(Date.now() / 1000) + 86_400, proofs: proof ? [proof] : [] })
    issuer = agent
  }
  return { bytes: (await U.Delegation.archive(proof)).ok, invoker: agent.did() }
}

export async function loadUcanto() {
  const { delegate, Delegation } = await import('@ucanto/core')
  const { ed25519, Verifier } = await import('@ucanto/principal')
  const { capability, claim, Schema } = await import('@ucanto/validator')
  const invoke = capability({ can: 'tool/invoke', with: Schema.URI.match({ protocol: 'mcp:' }) })
  return { delegate, Delegation, ed25519, Verifier, claim, invoke }
}

/** Extract the CAR bytes, then claim the capability through the whole chain (every signature). */
export async function ucantoVerify(U, config, { bytes, invoker }) {
  const leaf = await U.Delegation.extract(bytes)
  if (leaf.error) throw leaf.error
  const result = await U.claim(U.invoke, [leaf.ok], config)
  if (result.error) throw result.error
  if (leaf.ok.audience.did() !== invoker) throw new Error('ucanto: the leaf is not for the invoker')
  return result.ok
}

/**
 * Cold verifyDelegation calls of one build (its `createVerifier`), for the single-build tools
 * (chain-cold-count.mjs, chain-cold-gc.mjs): a pool of `depth`-link chains with new agents on every
 * link, 2,400 links in all (more than the default memo and DID cache hold), read from the file
 * POOL_FILE names when it exists, else signed (and written there when it is set: the same input for
 * every build compared). Returns a function verifying the pool's next chain, in turn.
 */
export async function coldChainCaller(createVerifier, depth, tag) {
  const issuer = keyFromLabel('issuer')
  const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, Math.floor(Date.now() / 1000))), statusTtlMs: 3_600_000 })
  const file = process.env.POOL_FILE
  let pool = []
  if (file && existsSync(file)) pool = JSON.parse(readFileSync(file, 'utf8'))
  else {
    for (let i = 0; i < Math.ceil(2400 / depth); i++) pool.push(await agentidChain(issuer, depth, `${tag}/${depth}/${i}`))
    if (file) writeFileSync(file, JSON.stringify(pool))
  }
  if (pool[0].chain.length !== depth) throw new Error(`${file} holds chains of ${pool[0].chain.length} links, not ${depth}`)
  let next = 0
  return () => {
    const c = pool[next++ % pool.length]
    return verifier.verifyDelegation(c.chain, { invoker: c.invoker, resource: RESOURCE, action: ACTION })
  }
}
