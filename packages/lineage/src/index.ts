// Public API of @agentid/lineage.
export {
  HOP_TYP,
  RECEIPT_TYP,
  LINEAGE_HEADER,
  CREDENTIALS_HEADER,
  MCP_LINEAGE_META,
  MCP_CREDENTIALS_META,
  APPROVAL_HEADER,
  APPROVAL_META_KEY,
  LINEAGE_SEPARATOR,
  MAX_ENTRY_LIFETIME_SEC,
  DEFAULT_ENTRY_TTL_SEC,
  DEFAULT_LINEAGE_LIMITS,
  sha256,
  entryHash,
  credentialHash,
  delegationHash,
  splitLineage,
  joinLineage,
  decodeEntry,
  decodeLineage,
  parseHopClaims,
  parseReceiptClaims,
  initialCustody,
  custodyStep,
  CustodyCursor,
  lineageError,
} from './format.js'
export type { LineageLimits, EntryClaims, HopClaims, ReceiptClaims, DecodedEntry, CustodyEntry, CustodyState } from './format.js'
export { argsDigest, httpCommand, httpArgs, mcpTarget, mcpCommand, MAX_ARGS_DEPTH } from './args.js'
export type { HttpBody } from './args.js'
export { appendHop, createReceipt } from './append.js'
export type { AppendHopOptions, ReceiptOptions, EntrySignerOptions } from './append.js'
