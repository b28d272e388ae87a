// Who may call: the admin key (set or generated at start) and bearer-key authentication.
import { AgentIdError } from '@agentid/core'
import { hashApiKey, isApiKeyShape, newApiKey, sameHash } from './api-keys.js'
import type { ServiceDeps } from './deps.js'
import type { Principal } from './principal.js'

type Deps = Pick<ServiceDeps, 'storage' | 'now'>

/**
 * Sets the admin key. With `key` (from AGENTID_ADMIN_KEY) its hash replaces the stored one;
 * without, a key is generated only if none exists, and returned once for the operator to keep.
 */
export async function ensureAdminKey(d: Deps, key?: string): Promise<{ generated: string | null }> {
  if (key !== undefined) {
    if (!isApiKeyShape(key, 'admin')) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_ADMIN_KEY must be a key made by `agentid admin-key` (aid_admin_…)')
    const hash = hashApiKey(key)
    // A replaced admin key is audited like a generated one; the same key at each start writes nothing.
    // The admin's console sessions end with it, in the same transaction: were they only refused while
    // the key differs, putting the old key back would revive those the prune had not yet removed.
    await d.storage.transaction(async (tx) => {
      if ((await tx.settings.get('admin_key_hash')) === hash) return
      await tx.settings.put('admin_key_hash', hash)
      await tx.consoleSessionRows.deletePrincipal('admin')
      await tx.audit.append(d.now(), 'issuer', 'admin_key.replaced', null)
    })
    return { generated: null }
  }
  const generated = newApiKey('admin')
  // Several instances starting together: the first one's key is kept, the others generate none.
  const made = await d.storage.transaction(async (tx) => {
    if (await tx.settings.get('admin_key_hash')) return false
    await tx.settings.put('admin_key_hash', hashApiKey(generated))
    await tx.audit.append(d.now(), 'issuer', 'admin_key.generated', null)
    return true
  })
  return { generated: made ? generated : null }
}

/** Authenticates a bearer key as the admin or an orchestrator; throws ERR_UNAUTHENTICATED. */
export async function authenticate(d: Pick<ServiceDeps, 'storage'>, bearer: string | undefined): Promise<Principal> {
  if (bearer !== undefined && isApiKeyShape(bearer, 'admin')) {
    const stored = await d.storage.settings.get('admin_key_hash')
    if (stored && sameHash(stored, hashApiKey(bearer))) return { kind: 'admin' }
  } else if (bearer !== undefined && isApiKeyShape(bearer, 'orch')) {
    const row = await d.storage.orchestrators.byKeyHash(hashApiKey(bearer))
    if (row) return { kind: 'orchestrator', id: row.id, name: row.name }
  }
  throw new AgentIdError('ERR_UNAUTHENTICATED', 'a valid API key is required (Authorization: Bearer …)')
}
