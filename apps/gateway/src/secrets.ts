// Where upstream credentials come from: secret stores behind one small interface, read at connect time.
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentIdError } from '@agentid/core'
import type { SecretRef } from './config.js'

/**
 * A source of secrets. A reference `"<scheme>:<name>"` in the config is read from the store whose
 * `scheme` matches. Add a backend (Vault, a cloud secret manager) by implementing this interface.
 * @example
 * const vault: SecretStore = { scheme: 'vault', get: async (name) => (await vaultClient.read(name)).data.value }
 */
export interface SecretStore {
  /** The prefix that selects this store in a reference (`env`, `file`, ...). */
  readonly scheme: string
  /**
   * The secret's current value. Throws `AgentIdError` `ERR_UNAVAILABLE` (`details.reason`
   * `'secret-unavailable'`) when it does not exist or cannot be read. Never puts the value in an error.
   */
  get(name: string): Promise<string>
}

/** Shortest secret accepted: shorter values cannot be redacted from output without mangling it. */
export const MIN_SECRET_LENGTH = 8

const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

function unavailable(ref: string, why: string, cause?: unknown): AgentIdError {
  return new AgentIdError('ERR_UNAVAILABLE', `secret "${ref}" ${why}`, { ...(cause === undefined ? {} : { cause }), details: { reason: 'secret-unavailable', secret: ref } })
}

/**
 * Secrets from environment variables: `env:NAME` is `env.NAME` (a variable that is unset or empty is unavailable).
 * @example
 * const store = envSecretStore(process.env)
 */
export function envSecretStore(env: NodeJS.ProcessEnv = process.env): SecretStore {
  return {
    scheme: 'env',
    async get(name) {
      const value = env[name]
      if (value === undefined || value === '') throw unavailable(`env:${name}`, 'is not set in the environment')
      return value
    },
  }
}

/**
 * Secrets from the file system, read on every `get` (so a rotated secret is picked up at the next connect):
 * - `path` is a directory: `file:name` is the content of `path/name`, one trailing newline removed;
 * - `path` is a file: a JSON object `{ "name": "value" }`.
 * Either way the file must be a regular file that neither group nor others may read or write
 * (mode 0600 or 0400); otherwise the secret is refused as unavailable.
 * @example
 * const store = fileSecretStore('/run/secrets/agentid-gateway')
 */
export function fileSecretStore(path: string): SecretStore {
  const checkedRead = async (file: string, ref: string): Promise<string> => {
    let info
    try {
      info = await stat(file)
    } catch (cause) {
      throw unavailable(ref, `cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, cause)
    }
    if (!info.isFile()) throw unavailable(ref, 'is not a regular file')
    if ((info.mode & 0o077) !== 0) throw unavailable(ref, `is in a file that group or others may access (mode ${(info.mode & 0o777).toString(8)}; use 0600)`)
    try {
      return await readFile(file, 'utf8')
    } catch (cause) {
      throw unavailable(ref, `cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, cause)
    }
  }
  return {
    scheme: 'file',
    async get(name) {
      const ref = `file:${name}`
      if (!FILE_NAME.test(name)) throw unavailable(ref, 'is not a valid file secret name')
      let isDir: boolean
      try {
        isDir = (await stat(path)).isDirectory()
      } catch (cause) {
        throw unavailable(ref, `cannot be read: the secret store ${path} is missing`, cause)
      }
      if (isDir) {
        const value = (await checkedRead(join(path, name), ref)).replace(/\r?\n$/, '')
        if (value === '') throw unavailable(ref, 'is empty')
        return value
      }
      const text = await checkedRead(path, ref)
      let all: unknown
      try {
        all = JSON.parse(text)
      } catch (cause) {
        throw unavailable(ref, 'cannot be read: the secret file is not JSON', cause)
      }
      const value = typeof all === 'object' && all !== null && !Array.isArray(all) && Object.hasOwn(all, name) ? (all as Record<string, unknown>)[name] : undefined
      if (typeof value !== 'string' || value === '') throw unavailable(ref, 'is not in the secret file (or not a non-empty string)')
      return value
    },
  }
}

/** Resolves secret references against a set of stores. */
export interface SecretResolver {
  /**
   * The value to send for `ref`: the secret, inside its template when there is one. Throws
   * `ERR_UNAVAILABLE` (no such store, missing secret) or `ERR_INVALID_INPUT` (shorter than {@link MIN_SECRET_LENGTH}).
   * `onSecret` receives the raw secret before it is used (the gateway registers it for redaction).
   */
  resolve(ref: SecretRef, onSecret?: (secret: string) => void): Promise<string>
}

/**
 * One resolver over several stores, selected by scheme.
 * @example
 * const secrets = createSecretResolver([envSecretStore(), fileSecretStore('/run/secrets/gw')])
 * await secrets.resolve({ secret: 'env:GITHUB_TOKEN', template: 'Bearer {secret}' })
 */
export function createSecretResolver(stores: readonly SecretStore[]): SecretResolver {
  const byScheme = new Map(stores.map((s) => [s.scheme, s]))
  return {
    async resolve(ref, onSecret) {
      const colon = ref.secret.indexOf(':')
      const scheme = colon > 0 ? ref.secret.slice(0, colon) : ''
      const store = byScheme.get(scheme)
      if (!store) throw unavailable(ref.secret, `names no configured secret store ("${scheme}")`)
      const secret = await store.get(ref.secret.slice(colon + 1))
      if (secret.length < MIN_SECRET_LENGTH) {
        throw new AgentIdError('ERR_INVALID_INPUT', `secret "${ref.secret}" is shorter than ${MIN_SECRET_LENGTH} characters`, { details: { reason: 'secret-too-short', secret: ref.secret } })
      }
      onSecret?.(secret)
      return ref.template === undefined ? secret : ref.template.replace('{secret}', () => secret)
    },
  }
}
