import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// Package names resolve to their TypeScript sources, so unit tests never wait on a build.
// End-to-end tests (test/) start the built issuer and CLI binaries as real processes.
const src = (p: string) => fileURLToPath(new URL(`./${p}/src/index.ts`, import.meta.url))
const alias = {
  '@agentid/core': src('packages/core'),
  '@agentid/tlog': src('packages/tlog'),
  '@agentid/delegation': src('packages/delegation'),
  '@agentid/lineage': src('packages/lineage'),
  '@agentid/verifier': src('packages/verifier'),
  '@agentid/replay-redis': src('packages/replay-redis'),
  '@agentid/client': src('packages/client'),
  '@agentid/issuer': src('apps/issuer'),
  '@agentid/policy': src('packages/policy'),
  '@agentid/mcp': src('packages/mcp'),
  '@agentid/gateway': src('apps/gateway'),
}

// AGENTID_STRICT_TX: the issuer's SQLite storage throws where a transaction's fn calls the storage
// itself (which would wait for that transaction) instead of its tx; e2e children inherit it.
process.env.AGENTID_STRICT_TX = '1'

export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias },
        test: { name: 'unit', include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'], testTimeout: 20_000 },
      },
      {
        // The verifier's signature checks again on node:crypto, the backend without sodium-native's addon
        // (core's ed25519Backend): the same tests must give the same answers on both.
        resolve: { alias },
        test: {
          name: 'unit-node-crypto',
          include: ['packages/core/test/pop-*.test.ts', 'apps/issuer/test/{veramo-stores,engine,kms.redteam}.test.ts', 'packages/verifier/test/{verify-*,dpop-*,rfc9449-vectors,memo-admission}.test.ts', 'packages/lineage/test/**/*.test.ts', 'packages/delegation/test/**/*.test.ts'],
          env: { AGENTID_ED25519: 'node:crypto' },
          testTimeout: 20_000,
        },
      },
      {
        resolve: { alias },
        test: { name: 'e2e', include: ['test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false },
      },
    ],
  },
})
