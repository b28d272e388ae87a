import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadMasterSecret, SECRET_ENV, SECRET_FILE } from '../src/secret.js'
import { startIssuer } from '../src/run.js'
import { configFromEnv } from '../src/config.js'
import { expectAgentIdError, tempDir } from './engine-helpers.js'

describe('loadMasterSecret', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({ dir, cleanup } = tempDir()))
  afterEach(() => cleanup())

  it('generates secret.key with mode 0600 on first start and reads the same key afterwards', () => {
    const first = loadMasterSecret({ dataDir: dir, env: {} })
    expect(first.source).toBe('generated')
    expect(first.key).toHaveLength(32)
    const path = join(dir, SECRET_FILE)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readFileSync(path, 'utf8').trim()).toBe(Buffer.from(first.key).toString('base64url'))

    const second = loadMasterSecret({ dataDir: dir, env: {} })
    expect(second.source).toBe('file')
    expect(Buffer.from(second.key).equals(Buffer.from(first.key))).toBe(true)
  })

  it('creates a missing data directory', () => {
    const nested = join(dir, 'a', 'b')
    expect(loadMasterSecret({ dataDir: nested, env: {} }).source).toBe('generated')
    expect(statSync(nested).mode & 0o077).toBe(0)
  })

  it('takes AGENTID_SECRET (base64url of 32 bytes) over the file and writes nothing', () => {
    const key = randomBytes(32)
    const secret = loadMasterSecret({ dataDir: dir, env: { [SECRET_ENV]: key.toString('base64url') } })
    expect(secret.source).toBe('env')
    expect(Buffer.from(secret.key).equals(key)).toBe(true)
    expect(() => statSync(join(dir, SECRET_FILE))).toThrow()
  })

  it.each([
    ['empty', ''],
    ['16 bytes', randomBytes(16).toString('base64url')],
    ['33 bytes', randomBytes(33).toString('base64url')],
    ['padded base64', `${randomBytes(32).toString('base64')}`],
    ['hex', randomBytes(32).toString('hex')],
    ['trailing newline', `${randomBytes(32).toString('base64url')}\n`],
  ])('refuses AGENTID_SECRET that is %s', async (_name, value) => {
    await expectAgentIdError(() => loadMasterSecret({ dataDir: dir, env: { [SECRET_ENV]: value } }), 'ERR_INVALID_INPUT', 'secret_env_invalid')
  })

  it.each([0o644, 0o640, 0o604, 0o660, 0o606])('refuses an existing secret.key with mode %s', async (mode) => {
    loadMasterSecret({ dataDir: dir, env: {} })
    chmodSync(join(dir, SECRET_FILE), mode)
    await expectAgentIdError(() => loadMasterSecret({ dataDir: dir, env: {} }), 'ERR_INVALID_INPUT', 'secret_file_permissions')
  })

  it('accepts a read-only 0400 file', () => {
    const { key } = loadMasterSecret({ dataDir: dir, env: {} })
    chmodSync(join(dir, SECRET_FILE), 0o400)
    expect(Buffer.from(loadMasterSecret({ dataDir: dir, env: {} }).key).equals(Buffer.from(key))).toBe(true)
  })

  it.skipIf(process.geteuid?.() !== 0)('refuses a secret.key another user owns (run as root), accepts root\'s', async () => {
    const { key } = loadMasterSecret({ dataDir: dir, env: {} })
    chownSync(join(dir, SECRET_FILE), 4321, 4321)
    await expectAgentIdError(() => loadMasterSecret({ dataDir: dir, env: {} }), 'ERR_INVALID_INPUT', 'secret_file_permissions')
    chownSync(join(dir, SECRET_FILE), 0, 0)
    expect(Buffer.from(loadMasterSecret({ dataDir: dir, env: {} }).key).equals(Buffer.from(key))).toBe(true)
  })

  it('refuses a secret.key that is not 32 bytes of base64url', async () => {
    writeFileSync(join(dir, SECRET_FILE), 'not a secret\n', { mode: 0o600 })
    await expectAgentIdError(() => loadMasterSecret({ dataDir: dir, env: {} }), 'ERR_INVALID_INPUT', 'secret_file_invalid')
  })

  it('refuses a symlinked secret.key', async () => {
    const elsewhere = join(dir, 'elsewhere.key')
    writeFileSync(elsewhere, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 })
    symlinkSync(elsewhere, join(dir, SECRET_FILE))
    await expectAgentIdError(() => loadMasterSecret({ dataDir: dir, env: {} }), 'ERR_INVALID_INPUT', 'secret_file_invalid')
  })
})

describe('an issuer whose database holds keys and whose secret.key is missing', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({ dir, cleanup } = tempDir()))
  afterEach(() => cleanup())

  it('loadMasterSecret with mustExist refuses a missing file and writes nothing', async () => {
    const err = await expectAgentIdError(() => loadMasterSecret({ dataDir: dir, env: {}, mustExist: true }), 'ERR_INVALID_INPUT', 'secret_file_missing')
    expect(err.message).toContain(join(dir, SECRET_FILE))
    expect(readdirSync(dir)).toEqual([])
  })

  it('refuses to start, names the missing file, and leaves no new secret behind (real start path)', async () => {
    const config = configFromEnv({}, { dataDir: dir, port: 0, logLevel: 'silent' })
    const first = await startIssuer(config)
    await first.stop()
    const path = join(dir, SECRET_FILE)
    expect(existsSync(path)).toBe(true)
    rmSync(path)

    const err = await expectAgentIdError(() => startIssuer(config), 'ERR_INVALID_INPUT', 'secret_file_missing')
    expect(err.message).toContain(path)
    expect(existsSync(path)).toBe(false)
    expect(readdirSync(dir).filter((f) => f.includes('secret'))).toEqual([])
  })

  it('a fresh data directory still generates its secret on first start', async () => {
    const issuer = await startIssuer(configFromEnv({}, { dataDir: dir, port: 0, logLevel: 'silent' }))
    await issuer.stop()
    expect(existsSync(join(dir, SECRET_FILE))).toBe(true)
  })
})
