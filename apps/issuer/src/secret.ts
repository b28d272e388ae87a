import { closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { AgentIdError, base64urlDecode, base64urlEncode } from '@agentid/core'

/** Name of the environment variable that carries the master secret (base64url of 32 bytes). */
export const SECRET_ENV = 'AGENTID_SECRET'
/** File name of the generated master secret inside the data directory. */
export const SECRET_FILE = 'secret.key'

/** The 32-byte master secret that encrypts the issuer's private keys at rest, and where it came from. */
export interface MasterSecret {
  readonly key: Uint8Array
  /** `env`: from AGENTID_SECRET; `file`: read from `<dataDir>/secret.key`; `generated`: that file was just created. */
  readonly source: 'env' | 'file' | 'generated'
  /** The secret file's path (absent when the secret came from the environment). */
  readonly path?: string
}

export interface LoadMasterSecretOptions {
  /** The issuer's data directory; created (mode 0700) if missing. */
  dataDir: string
  /** Environment to read AGENTID_SECRET from (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>
  /**
   * The secret must already exist (the database holds keys sealed with it): a missing
   * `secret.key` is refused (`secret_file_missing`) and nothing is written. Default false.
   */
  mustExist?: boolean
}

/**
 * Loads the master secret. From `AGENTID_SECRET` when set: it must be unpadded base64url of exactly
 * 32 bytes. Otherwise from `<dataDir>/secret.key`, generated on first start with mode 0600 (written
 * to a temporary file, fsynced, then linked into place atomically); an existing file that group or others may access (any of mode 0077)
 * or that another user than this process's or root owns is refused, as are symlinks and anything but 32 bytes of base64url. With `mustExist` (an issuer whose
 * database already holds sealed keys) a missing file is refused and no new secret is written: a new
 * one could not open those keys. Failures throw `ERR_INVALID_INPUT` with `details.reason` one of
 * `secret_env_invalid`, `secret_file_permissions`, `secret_file_invalid`, `secret_file_missing`.
 *
 * Keep the secret apart from the database backups: whoever holds both holds the issuer key.
 * @example
 * const { key, source } = loadMasterSecret({ dataDir: '/var/lib/agentid' })
 */
export function loadMasterSecret(options: LoadMasterSecretOptions): MasterSecret {
  const env = options.env ?? process.env
  const fromEnv = env[SECRET_ENV]
  if (fromEnv !== undefined) return { key: parseSecret(fromEnv, 'secret_env_invalid', SECRET_ENV), source: 'env' }

  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) throw new TypeError('loadMasterSecret: dataDir is required')
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
  const path = join(options.dataDir, SECRET_FILE)

  try {
    return { key: readSecretFile(path), source: 'file', path }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (options.mustExist === true) {
    failWith({ reason: 'secret_file_missing' }, `${path} is missing, and the database already holds issuer keys sealed with it: restore that file from its backup (mode 0600), or set ${SECRET_ENV} to its content`)
  }
  // First start: write a temporary file, then link it into place. link() is atomic and fails if the
  // name exists, so a crash never leaves a half-written secret.key and two racing processes agree.
  const key = randomBytes(32)
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  try {
    writeSync(fd, `${base64urlEncode(key)}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return { key: readSecretFile(path), source: 'file', path }
  } finally {
    unlinkSync(tmp)
  }
  fsyncDir(options.dataDir)
  return { key: new Uint8Array(key), source: 'generated', path }
}

function readSecretFile(path: string): Uint8Array {
  const text = readSecretFileText(path, { invalid: 'secret_file_invalid', permissions: 'secret_file_permissions' })
  return parseSecret(text, 'secret_file_invalid', path)
}

/** The `details` of the errors readSecretFileText throws: its reasons, and the variable that named the file. */
export interface SecretFileReasons {
  /** details.reason of a symlink, a non-regular file or one over 1 KiB. */
  invalid: string
  /** details.reason of a file group or others may access, or owned by a user other than this process's or root. */
  permissions: string
  /** details.field, when an environment variable named the file (its name then begins each message). */
  field?: string
}

/**
 * Reads a secret file under the checks every secret file of the issuer passes: opened without
 * following a symbolic link (O_NOFOLLOW), a regular file of at most 1 KiB, no access for group or
 * others (mode 0600 or 0400), owned by this process's user or root (whoever owns it can rewrite the
 * secret). Returns its text without one trailing newline; the text never appears in an error.
 * Failing checks throw `ERR_INVALID_INPUT` with the given reasons; a file that cannot be opened (ENOENT,
 * EACCES) throws the system error, for the caller to say what the missing file means.
 * @example
 * const text = readSecretFileText('/run/secrets/hook', { invalid: 'x_file_invalid', permissions: 'x_file_permissions' })
 */
export function readSecretFileText(path: string, reasons: SecretFileReasons): string {
  const details = (reason: string) => ({ reason, ...(reasons.field === undefined ? {} : { field: reasons.field }) })
  const fail = (reason: string, message: string, cause?: unknown): never => failWith(details(reason), reasons.field === undefined ? message : `${reasons.field}: ${message}`, cause)
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ELOOP') fail(reasons.invalid, `${path} is a symbolic link`, cause)
    throw cause
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) fail(reasons.invalid, `${path} is not a regular file`)
    if ((stat.mode & 0o077) !== 0) {
      fail(reasons.permissions, `${path} is accessible by group or others (mode ${(stat.mode & 0o777).toString(8)}); run chmod 600 on it`)
    }
    const uid = process.geteuid?.()
    if (uid !== undefined && stat.uid !== uid && stat.uid !== 0) {
      fail(reasons.permissions, `${path} is owned by user ${stat.uid}, not by this process's user (${uid}) or root; run chown on it`)
    }
    if (stat.size > 1024) fail(reasons.invalid, `${path} is over 1 KiB: not a secret`)
    return readFileSync(fd, 'utf8').replace(/\r?\n$/, '')
  } finally {
    closeSync(fd)
  }
}

function parseSecret(text: string, reason: string, where: string): Uint8Array {
  let bytes: Buffer | undefined
  try {
    bytes = base64urlDecode(text)
  } catch {
    bytes = undefined
  }
  if (bytes === undefined || bytes.length !== 32) failWith({ reason }, `${where} must be unpadded base64url of exactly 32 bytes`)
  return new Uint8Array(bytes)
}

function failWith(details: { reason: string; field?: string }, message: string, cause?: unknown): never {
  throw new AgentIdError('ERR_INVALID_INPUT', message, { cause, details })
}

function fsyncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Not every platform lets a directory be fsynced; the file itself is durable.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
