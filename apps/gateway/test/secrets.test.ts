import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createSecretResolver, envSecretStore, fileSecretStore } from '@agentid/gateway'

const dir = mkdtempSync(join(tmpdir(), 'gw-secrets-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function secretFile(path: string, content: string, mode: number): string {
  writeFileSync(path, content)
  chmodSync(path, mode)
  return path
}

describe('secret stores', () => {
  it('env: reads the variable; unset or empty is ERR_UNAVAILABLE naming the reference', async () => {
    const store = envSecretStore({ TOKEN: 'tok-123456789', EMPTY: '' })
    expect(await store.get('TOKEN')).toBe('tok-123456789')
    await expect(store.get('MISSING')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', details: { reason: 'secret-unavailable', secret: 'env:MISSING' } })
    await expect(store.get('EMPTY')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
  })

  it('file (directory): one file per secret, trailing newline removed, 0600 required', async () => {
    const d = join(dir, 'secrets.d')
    mkdirSync(d)
    secretFile(join(d, 'github'), 'ghp_abcdefgh\n', 0o600)
    secretFile(join(d, 'loose'), 'loose-secret-1', 0o644)
    const store = fileSecretStore(d)
    expect(await store.get('github')).toBe('ghp_abcdefgh')
    await expect(store.get('loose')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', details: { secret: 'file:loose' } })
    await expect(store.get('absent')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
    await expect(store.get('../secrets.d/github')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
    const err = await store.get('loose').catch((e: Error) => e)
    expect(String((err as Error).message)).not.toContain('loose-secret-1')
  })

  it('file (JSON): a 0600 JSON object; group/other-readable files are refused', async () => {
    const f = secretFile(join(dir, 'secrets.json'), JSON.stringify({ github: 'ghp_fromjson1', n: 5 }), 0o600)
    const store = fileSecretStore(f)
    expect(await store.get('github')).toBe('ghp_fromjson1')
    await expect(store.get('n')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
    await expect(store.get('toString')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
    chmodSync(f, 0o640)
    await expect(store.get('github')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
    const bad = secretFile(join(dir, 'bad.json'), '{not json', 0o600)
    await expect(fileSecretStore(bad).get('x')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
    await expect(fileSecretStore(join(dir, 'nowhere')).get('x')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
  })

  it('resolver: picks the store by scheme, applies the template, reports the raw secret, refuses short ones', async () => {
    const seen: string[] = []
    const r = createSecretResolver([envSecretStore({ A: 'secret-aaaa', SHORT: 'abc' })])
    expect(await r.resolve({ secret: 'env:A', template: 'Bearer {secret}' }, (s) => seen.push(s))).toBe('Bearer secret-aaaa')
    expect(await r.resolve({ secret: 'env:A' })).toBe('secret-aaaa')
    expect(seen).toEqual(['secret-aaaa'])
    await expect(r.resolve({ secret: 'file:x' })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' })
    // Another backend is one object: its scheme selects it.
    const vault = { scheme: 'vault', get: async (name: string) => `from-vault:${name}` }
    expect(await createSecretResolver([envSecretStore({}), vault]).resolve({ secret: 'vault:kv/gh' })).toBe('from-vault:kv/gh')
    await expect(r.resolve({ secret: 'env:SHORT' })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', details: { reason: 'secret-too-short' } })
    // A "$&" in the secret is not a replacement pattern.
    const dollar = createSecretResolver([envSecretStore({ D: 'pa$&word-1' })])
    expect(await dollar.resolve({ secret: 'env:D', template: 'Bearer {secret}' })).toBe('Bearer pa$&word-1')
  })
})
