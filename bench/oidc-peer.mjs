// The token suite's peer, in a process of its own: oidc-provider (panva; OpenID Certified) issuing
// client_credentials tokens with private_key_jwt (EdDSA) client authentication and DPoP (server nonces
// required), JWT access tokens (EdDSA) for the resource (RFC 8707), on its default in-memory adapter.
// Started by token.mjs with fork(): it receives { clients: [{ clientId, jwk }], resource } over IPC,
// answers { url } once it listens, and stops on 'stop' or when its parent goes away.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'

// oidc-provider warns on stderr when not on Node 22+: the suite runs where the project runs.
const { default: Provider } = await import('oidc-provider')

const { clients, resource } = await new Promise((resolve) => process.once('message', resolve))
const server = createServer()
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const url = `http://127.0.0.1:${server.address().port}`
const signing = { ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'bench-ed25519', alg: 'EdDSA', use: 'sig' }

const provider = new Provider(url, {
  clients: clients.map(({ clientId, jwk }) => ({
    client_id: clientId,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'EdDSA',
    id_token_signed_response_alg: 'EdDSA', // its only key is Ed25519 (no ID token is issued here)
    jwks: { keys: [{ ...jwk, alg: 'EdDSA', use: 'sig' }] },
    scope: 'read',
  })),
  jwks: { keys: [signing] },
  scopes: ['read'],
  enabledJWA: { clientAuthSigningAlgValues: ['EdDSA'], dPoPSigningAlgValues: ['EdDSA', 'ES256'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'read', audience: resource, accessTokenTTL: 120, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'EdDSA' } } }),
    },
  },
})
server.on('request', provider.callback())
process.send({ url })
process.on('message', (m) => {
  if (m === 'stop') server.close(() => process.exit(0))
})
process.on('disconnect', () => process.exit(0))
