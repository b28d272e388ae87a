// Data Integrity (eddsa-rdfc-2022) agent credentials for the `di` suite, issued with plain
// @digitalbazaar/vc as packages/verifier/test/di-fixtures.ts issues them, by the bench issuer
// (keyFromLabel('issuer'): the same key signs the status list JWT). The document loader here is
// the equivalent of the verifier's: the same pinned contexts (VC v2 from
// @digitalbazaar/credentials-context, agentid v1 from @agentid/core) and did:key documents from
// @digitalbazaar/did-method-key, offline; anything else is refused.
import { AGENTID_CONTEXT_V1, AGENTID_CONTEXT_V1_DOCUMENT } from '@agentid/core'
import { contexts } from '@digitalbazaar/credentials-context'
import { DataIntegrityProof } from '@digitalbazaar/data-integrity'
import * as DidKey from '@digitalbazaar/did-method-key'
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey'
import { cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
import * as vc from '@digitalbazaar/vc'
import { createHash } from 'node:crypto'
import { agentDids, CLAIMS, keyFromLabel, LIST_URL, localFetch, statusListJwt } from './tokens.mjs'

export const VC_V2 = 'https://www.w3.org/ns/credentials/v2'

const PINNED = new Map([
  [VC_V2, contexts.get(VC_V2)],
  [AGENTID_CONTEXT_V1, AGENTID_CONTEXT_V1_DOCUMENT],
])
const didKey = DidKey.driver()
didKey.use({ multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from })

/** Offline JSON-LD document loader: pinned contexts and did:key documents only. */
export async function documentLoader(url) {
  const pinned = PINNED.get(url)
  if (pinned !== undefined) return { contextUrl: null, documentUrl: url, document: pinned }
  if (typeof url === 'string' && url.startsWith('did:key:')) return { contextUrl: null, documentUrl: url, document: await didKey.get({ url }) }
  throw new Error(`document not pinned: ${String(url).slice(0, 200)}`)
}

/** The bench issuer (same seed as keyFromLabel(label)) as an ed25519-multikey key pair. */
export async function diIssuer(label = 'issuer') {
  const seed = createHash('sha256').update(label).digest()
  const generated = await Ed25519Multikey.generate({ seed })
  const did = `did:key:${generated.publicKeyMultibase}`
  const keyPair = await Ed25519Multikey.from({ ...(await generated.export({ publicKey: true, secretKey: true })), id: `${did}#${generated.publicKeyMultibase}`, controller: did })
  return { did, keyPair }
}

const iso = (sec) => new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')

/** The i-th DI credential: agent `sub`, a distinct id and status index, valid from now - 10 for a day. */
export function issueDi(issuer, { sub, i, now }) {
  const suite = new DataIntegrityProof({ signer: issuer.keyPair.signer(), cryptosuite, date: new Date((now - 10) * 1000) })
  const credential = {
    '@context': [VC_V2, AGENTID_CONTEXT_V1],
    id: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    type: ['VerifiableCredential', 'AgentIdentityCredential'],
    issuer: issuer.did,
    validFrom: iso(now - 10),
    validUntil: iso(now + 86_400),
    credentialSubject: { id: sub, ...CLAIMS },
    credentialStatus: {
      id: `${LIST_URL}#${i % 131_072}`,
      type: 'BitstringStatusListEntry',
      statusPurpose: 'revocation',
      statusListIndex: String(i % 131_072),
      statusListCredential: LIST_URL,
    },
  }
  return vc.issue({ credential, suite, documentLoader })
}

const verifySuite = new DataIntegrityProof({ cryptosuite })
// Plain @digitalbazaar/vc requires a checkStatus for a credential with credentialStatus: this one
// does no status work (ours checks the bit in the cached list).
const noStatus = async () => ({ verified: true })

/** Plain @digitalbazaar/vc verification with the equivalent loader. */
export function plainVerify(credential) {
  return vc.verifyCredential({ credential, suite: verifySuite, documentLoader, checkStatus: noStatus })
}

/**
 * `size` DI credentials of distinct agents from the bench issuer, and the options of a verifier that
 * verifies each cold (memo of 1, the status list served locally and cached): the cold-verify fixture
 * of di-cpu.mjs and profile-di.mjs.
 */
export async function coldDiPool(size) {
  const now = Math.floor(Date.now() / 1000)
  const issuer = keyFromLabel('issuer')
  const di = await diIssuer('issuer')
  const dids = agentDids(size)
  const pool = []
  for (let i = 0; i < size; i++) pool.push(await issueDi(di, { sub: dids[i], i: i + 1, now }))
  const options = { trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000, memoSize: 1 }
  return { pool, options }
}
