// Public API of @agentid/tlog. Everything else is internal.
export { HASH_SIZE, hashLeaf, hashChildren, emptyRoot, treeHash, inclusionProof, consistencyProof, rootFromInclusionProof, verifyInclusion, verifyConsistency } from './merkle.js'
export type { HashSource } from './merkle.js'
export { MerkleTree } from './tree.js'
export {
  SIG_TYPE_ED25519,
  SIG_TYPE_COSIGNATURE_V1,
  MAX_NOTE_SIGNATURES,
  MAX_NOTE_BYTES,
  isValidKeyName,
  keyId,
  parseVerifierKey,
  formatVerifierKey,
  noteVerifier,
  parseSignerKey,
  formatSignerKey,
  generateNoteKey,
  verifierKeyOf,
  noteSigner,
  parseNote,
  openNote,
  signNote,
  signatureLine,
} from './note.js'
export type { NoteVerifier, NoteSigner, VerifierKey, SignerKey, NoteSignature, VerifiedSignature, OpenedNote } from './note.js'
export { parseCheckpoint, formatCheckpoint, signCheckpoint, openCheckpoint, checkWitnessPolicy } from './checkpoint.js'
export type { Checkpoint, OpenCheckpointOptions, VerifiedCheckpoint } from './checkpoint.js'
export { cosignatureMessage, createCosigner, cosignatureVerifier } from './cosignature.js'
export type { Cosigner } from './cosignature.js'
export { TLOG_PROOF_HEADER, MAX_PROOF_HASHES, formatTlogProof, parseTlogProof, verifyTlogProof } from './proof.js'
export type { TlogProof, VerifyTlogProofOptions } from './proof.js'
export {
  TILE_WIDTH,
  TILE_HEIGHT,
  MAX_ENTRY_BYTES,
  encodeTileIndex,
  tilePath,
  entriesPath,
  parseTileIndexPath,
  parseTileLevel,
  parseTilePath,
  tilesForTreeSize,
  tileWidth,
  bundleForLeaf,
  encodeEntryBundle,
  decodeEntryBundle,
} from './tiles.js'
export type { TileRef, LevelTiles } from './tiles.js'
export { MAX_CONSISTENCY_LINES, formatAddCheckpointRequest, parseAddCheckpointRequest, addCheckpoint } from './witness.js'
export type { AddCheckpointRequest, WitnessRecord, WitnessStore, WitnessedLog, WitnessOptions, WitnessResponse } from './witness.js'
