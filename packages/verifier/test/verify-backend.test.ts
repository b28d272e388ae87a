// Which Ed25519 backend these tests run on: libsodium in the `unit` project, node:crypto in
// `unit-node-crypto` (vitest.config.ts), which runs the verify, DPoP, delegation and lineage tests again.
import { ed25519Backend } from '@agentid/core'
import { expect, it } from 'vitest'

it('runs on the backend its project selects', () => {
  expect(ed25519Backend()).toBe(process.env.AGENTID_ED25519 === 'node:crypto' ? 'node:crypto' : 'libsodium')
})
