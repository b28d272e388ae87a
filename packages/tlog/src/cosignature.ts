import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { privateKeyFromSeed, publicKeyFromRaw, rawPublicKey } from '@agentid/core'
import { SIG_TYPE_COSIGNATURE_V1, cosignatureVerifierFromKey, formatVerifierKey, isValidKeyName, keyId, signatureLine, type NoteVerifier, type SignerKey } from './note.js'
import { utf8 } from './util.js'

/**
 * The message a tlog-cosignature/v1 signs: `cosignature/v1\ntime <ts>\n` then the checkpoint body.
 * @example
 * cosignatureMessage('example.com/log\n1\n...=\n', 1679315147)
 */
export function cosignatureMessage(checkpointText: string, timestamp: number): Uint8Array {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new TypeError('timestamp must be a non-negative integer')
  return utf8.encode(`cosignature/v1\ntime ${timestamp}\n${checkpointText}`)
}

/** A witness key that produces timestamped cosignatures. */
export interface Cosigner {
  readonly name: string
  readonly keyId: number
  /** The witness's vkey (type 0x04). */
  readonly vkey: string
  /** A signature line `- <name> base64(keyID || u64 timestamp || sig)\n` over the checkpoint body. */
  cosign(checkpointText: string, timestamp: number): string
}

/**
 * A cosigner from a signer key of type 0x04 (`PRIVATE+KEY+name+id+base64(0x04||seed)`) or from
 * (name, Ed25519 private key).
 * @example
 * const line = createCosigner(parseSignerKey(skey)).cosign(checkpointText, Math.floor(Date.now() / 1000))
 */
export function createCosigner(key: SignerKey | { name: string; privateKey: KeyObject }): Cosigner {
  if ('type' in key && key.type !== SIG_TYPE_COSIGNATURE_V1) throw new TypeError('not a cosignature (0x04) key')
  if (!isValidKeyName(key.name)) throw new TypeError('invalid key name')
  const privateKey = 'seed' in key ? privateKeyFromSeed(key.seed) : key.privateKey
  const pub = rawPublicKey(createPublicKey(privateKey))
  const id = keyId(key.name, SIG_TYPE_COSIGNATURE_V1, pub)
  return {
    name: key.name,
    keyId: id,
    vkey: formatVerifierKey(key.name, SIG_TYPE_COSIGNATURE_V1, pub),
    cosign(checkpointText, timestamp) {
      const sig = cryptoSign(null, cosignatureMessage(checkpointText, timestamp), privateKey)
      const ts = Buffer.alloc(8)
      ts.writeBigUInt64BE(BigInt(timestamp), 0)
      return signatureLine(key.name, id, Buffer.concat([ts, sig]))
    },
  }
}

/**
 * A verifier of tlog-cosignature/v1 signatures for (name, raw Ed25519 public key). Its
 * `timestamp()` reads the time a cosignature carries.
 * @example
 * openCheckpoint(note, { log, witnesses: [cosignatureVerifier('witness.example/w1', pub)], quorum: 1 })
 */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  if (!isValidKeyName(name)) throw new TypeError('invalid key name')
  return cosignatureVerifierFromKey(name, publicKeyFromRaw(publicKey), keyId(name, SIG_TYPE_COSIGNATURE_V1, publicKey), Uint8Array.from(publicKey))
}
