// Veramo's JWT credential provider without the decode of its own output (internal to the engine).
import type { IAgentContext, IDIDManager, IKeyManager, VerifiableCredential } from '@veramo/core'
import { CredentialProviderJWT } from '@veramo/credential-jwt'
import { createVerifiableCredentialJwt } from 'did-jwt-vc'

type Args = Parameters<CredentialProviderJWT['createVerifiableCredential']>[0]
type Context = IAgentContext<Pick<IDIDManager, 'didManagerGet'> & Pick<IKeyManager, 'keyManagerSign'>>

/**
 * `@veramo/credential-jwt`'s provider, issuing as it does — did-jwt-vc's `createVerifiableCredentialJwt`,
 * signed through the agent's `keyManagerSign` with the issuer identifier's key named by `keyRef` — but
 * returning the compact JWT as `{ ...credential, proof: { type: 'JwtProof2020', jwt } }` instead of
 * decoding it back into a W3C credential (`normalizeCredential`: base64url through multiformats, JSON,
 * claim mapping), which the engine never reads (it takes `proof.jwt`): about 100 µs of the event loop
 * per spawn, a tenth of it. The engine always passes a complete credential, its issuer and `keyRef`.
 */
export class JwtOnlyCredentialProvider extends CredentialProviderJWT {
  override async createVerifiableCredential(args: Args, context: Context): Promise<VerifiableCredential> {
    const { proofFormat: _format, keyRef, removeOriginalFields, save: _save, now: _now, credential, ...otherOptions } = args
    const issuer = typeof credential.issuer === 'string' ? credential.issuer : credential.issuer?.id
    if (typeof issuer !== 'string') throw new Error('invalid_argument: credential.issuer must not be empty')
    const identifier = await context.agent.didManagerGet({ did: issuer })
    const key = identifier.keys.find((k) => k.kid === keyRef)
    if (!key || key.type !== 'Ed25519') throw new Error('invalid_argument: keyRef must name the issuer\'s Ed25519 key')
    const signer = this.wrapSigner(context, key, 'EdDSA')
    const jwt = await createVerifiableCredentialJwt(credential as never, { did: identifier.did, signer, alg: 'EdDSA' }, { ...(removeOriginalFields === undefined ? {} : { removeOriginalFields }), ...otherOptions })
    return { ...credential, proof: { type: 'JwtProof2020', jwt } } as VerifiableCredential
  }
}
