// A plain Veramo 7 agent as its documentation sets one up (in-memory stores, did:key, JWT credentials),
// the same as in packages/verifier/test/veramo-interop.test.ts.
import { createAgent } from '@veramo/core'
import { CredentialProviderJWT } from '@veramo/credential-jwt'
import { CredentialPlugin } from '@veramo/credential-w3c'
import { DIDManager, MemoryDIDStore } from '@veramo/did-manager'
import { KeyDIDProvider } from '@veramo/did-provider-key'
import { DIDResolverPlugin } from '@veramo/did-resolver'
import { KeyManager, MemoryKeyStore, MemoryPrivateKeyStore } from '@veramo/key-manager'
import { KeyManagementSystem } from '@veramo/kms-local'
import { getResolver } from 'key-did-resolver'

export function veramoAgent() {
  return createAgent({
    plugins: [
      new KeyManager({ store: new MemoryKeyStore(), kms: { local: new KeyManagementSystem(new MemoryPrivateKeyStore()) } }),
      new DIDManager({ store: new MemoryDIDStore(), defaultProvider: 'did:key', providers: { 'did:key': new KeyDIDProvider({ defaultKms: 'local' }) } }),
      new DIDResolverPlugin({ ...getResolver() }),
      new CredentialPlugin([new CredentialProviderJWT()]),
    ],
  })
}

/** Veramo's verifyCredential on a compact JWT; throws unless it says verified. */
export async function veramoVerify(agent, jwt) {
  const result = await agent.verifyCredential({ credential: jwt })
  if (!result.verified) throw new Error(`Veramo refused the credential: ${result.error?.message}`)
  return result
}
