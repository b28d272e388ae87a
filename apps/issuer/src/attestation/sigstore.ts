// A Sigstore bundle with an in-toto statement (SLSA provenance), verified offline against a pinned
// trusted root with @sigstore/verify: Fulcio chain, Rekor inclusion (tlog), SCT (ctlog), signature.
import { bundleFromJSON } from '@sigstore/bundle'
import { TrustedRoot } from '@sigstore/protobuf-specs'
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify'
import { reject } from './errors.js'

export interface SigstoreIdentity { subjectAlternativeName: string; issuer: string }
export interface SigstoreConfig {
  /** The verifier built once from the pinned trusted root. */
  verifier: Verifier
  /** Signer identities accepted (certificate SAN and OIDC issuer). At least one. */
  identities: readonly SigstoreIdentity[]
}

/** Builds the configuration from a trusted root (`application/vnd.dev.sigstore.trustedroot+json`). */
export function sigstoreConfig(trustedRoot: unknown, identities: readonly SigstoreIdentity[]): SigstoreConfig {
  const material = toTrustMaterial(TrustedRoot.fromJSON(trustedRoot))
  return { verifier: new Verifier(material, { tlogThreshold: 1, ctlogThreshold: 1, tsaThreshold: 0 }), identities }
}

interface Statement { _type?: unknown; subject?: unknown; predicateType?: unknown; predicate?: unknown }

/**
 * Verifies `{ bundle, digest }`: the bundle parses (`sigstore.format`); it verifies against the pinned
 * root, signed by one of the configured identities (`sigstore.verify`); it is a DSSE in-toto statement
 * (`sigstore.statement`) whose subjects include `digest` (`sha256:<hex>` or `sha512:<hex>`, the agent's model or tool build:
 * `sigstore.digest`). Returns what is recorded in the `attestation` claim.
 */
export function verifySigstore(evidence: { bundle?: unknown; digest?: unknown }, config: SigstoreConfig): Record<string, unknown> {
  // sha256 (SLSA provenance of builds) or sha512 (what npm provenance names a package tarball by).
  const parsed = typeof evidence.digest === 'string' ? /^(?:(sha256):([0-9a-f]{64})|(sha512):([0-9a-f]{128}))$/.exec(evidence.digest) : null
  if (!parsed) reject('sigstore.digest', 'digest must be "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>", the build the agent runs')
  const alg = (parsed![1] ?? parsed![3]) as 'sha256' | 'sha512'
  const digest = parsed![2] ?? parsed![4]!
  let bundle: ReturnType<typeof bundleFromJSON>
  try {
    bundle = bundleFromJSON(evidence.bundle)
  } catch (cause) {
    return reject('sigstore.format', 'not a Sigstore bundle', cause)
  }
  let identity: { subjectAlternativeName?: string; extensions?: { issuer?: string } } | undefined
  let failure: unknown
  for (const id of config.identities) {
    try {
      identity = config.verifier.verify(toSignedEntity(bundle), { subjectAlternativeName: id.subjectAlternativeName, extensions: { issuer: id.issuer } }).identity
      break
    } catch (cause) {
      failure = cause
    }
  }
  if (!identity) reject('sigstore.verify', `the bundle does not verify against the trusted root for a trusted identity (${(failure as { code?: string })?.code ?? 'failed'})`, failure)
  const content = bundle.content
  if (content.$case !== 'dsseEnvelope' || content.dsseEnvelope.payloadType !== 'application/vnd.in-toto+json') reject('sigstore.statement', 'the bundle must hold a DSSE in-toto statement')
  let statement: Statement
  try {
    statement = JSON.parse(Buffer.from(content.dsseEnvelope.payload).toString('utf8')) as Statement
  } catch (cause) {
    return reject('sigstore.statement', 'the statement is not JSON', cause)
  }
  if (!Array.isArray(statement.subject)) reject('sigstore.statement', 'the statement has no subject')
  const subjects = (statement.subject as { name?: unknown; digest?: Record<string, unknown> }[])
    .filter((s) => typeof s?.digest?.[alg] === 'string')
    .map((s) => ({ name: typeof s.name === 'string' ? s.name.slice(0, 256) : '', [alg]: (s.digest![alg] as string).toLowerCase() }))
  const match = subjects.find((s) => s[alg] === digest)
  if (!match) reject('sigstore.digest', 'no subject of the provenance has this digest')
  const predicate = (typeof statement.predicate === 'object' && statement.predicate !== null ? statement.predicate : {}) as { buildDefinition?: { buildType?: unknown }; runDetails?: { builder?: { id?: unknown } } }
  const tlog = bundle.verificationMaterial.tlogEntries[0]
  return {
    kind: 'sigstore',
    subject: match,
    predicateType: typeof statement.predicateType === 'string' ? statement.predicateType : null,
    ...(typeof predicate.buildDefinition?.buildType === 'string' ? { buildType: predicate.buildDefinition.buildType } : {}),
    ...(typeof predicate.runDetails?.builder?.id === 'string' ? { builder: predicate.runDetails.builder.id } : {}),
    signer: identity.subjectAlternativeName ?? null,
    signerIssuer: identity.extensions?.issuer ?? null,
    ...(tlog ? { tlogIndex: String(tlog.logIndex), integratedTime: Number(tlog.integratedTime) } : {}),
  }
}
