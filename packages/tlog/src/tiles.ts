import { malformed } from './util.js'

/** Hashes per full tile and entries per full bundle. */
export const TILE_WIDTH = 256
/** Tree levels covered by one tile level. */
export const TILE_HEIGHT = 8
/** Largest entry an entry bundle can carry (uint16 length prefix). */
export const MAX_ENTRY_BYTES = 0xffff

const U64_MAX = (1n << 64n) - 1n

/**
 * Encodes a tile index as zero-padded 3-digit groups, every group but the last prefixed with 'x'
 * (C2SP tlog-tiles): 1234067 -> `x001/x234/067`.
 * @example
 * encodeTileIndex(1234067) // 'x001/x234/067'
 */
export function encodeTileIndex(index: number | bigint): string {
  const n = BigInt(index)
  if (n < 0n || n > U64_MAX) throw new RangeError('tile index must be a uint64')
  const groups: string[] = []
  let rest = n
  do {
    groups.unshift((rest % 1000n).toString().padStart(3, '0'))
    rest /= 1000n
  } while (rest > 0n)
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/')
}

function suffix(width: number): string {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) throw new RangeError('width must be 1..256')
  return width === TILE_WIDTH ? '' : `.p/${width}`
}

/**
 * Path of a Merkle tile: `tile/<L>/<N>[.p/<W>]` (W only for a partial tile, 1..255).
 * @example
 * tilePath(0, 1234067) // 'tile/0/x001/x234/067'
 * tilePath(0, 0, 15)   // 'tile/0/000.p/15'
 */
export function tilePath(level: number, index: number | bigint, width: number = TILE_WIDTH): string {
  if (!Number.isInteger(level) || level < 0 || level > 63) throw new RangeError('level must be 0..63')
  return `tile/${level}/${encodeTileIndex(index)}${suffix(width)}`
}

/**
 * Path of an entry bundle: `tile/entries/<N>[.p/<W>]`.
 * @example
 * entriesPath(0, 8) // 'tile/entries/000.p/8'
 */
export function entriesPath(index: number | bigint, width: number = TILE_WIDTH): string {
  return `tile/entries/${encodeTileIndex(index)}${suffix(width)}`
}

/** A parsed tile or entry-bundle path. `width` is 256 for a full tile. */
export interface TileRef {
  kind: 'tile' | 'entries'
  /** Tile level (0..63); undefined for entry bundles. */
  level?: number
  index: bigint
  width: number
  partial: boolean
}

const GROUP_X = /^x[0-9]{3}$/
const GROUP = /^[0-9]{3}$/

/**
 * Parses `<N>[.p/<W>]` as it appears after `tile/<L>/` or `tile/entries/`. Only the canonical
 * encoding is accepted (no `x000/001`, no leading zeros in W, W 1..255, N a uint64).
 * Throws ERR_MALFORMED ('malformed tile path').
 * @example
 * parseTileIndexPath('x001/x234/067.p/89') // { index: 1234067n, width: 89, partial: true }
 */
export function parseTileIndexPath(indexPath: string): { index: bigint; width: number; partial: boolean } {
  const bad = () => malformed('malformed tile path', 'malformed tile path')
  if (typeof indexPath !== 'string' || indexPath.length > 64) bad()
  let body = indexPath
  let width = TILE_WIDTH
  let partial = false
  const p = indexPath.indexOf('.p/')
  if (p >= 0) {
    body = indexPath.slice(0, p)
    const w = indexPath.slice(p + 3)
    if (!/^[1-9][0-9]{0,2}$/.test(w) || Number(w) > 255) bad()
    width = Number(w)
    partial = true
  }
  const groups = body.split('/')
  if (groups.length === 0 || groups.length > 7) bad()
  let n = 0n
  groups.forEach((g, i) => {
    const last = i === groups.length - 1
    if (last ? !GROUP.test(g) : !GROUP_X.test(g)) bad()
    n = n * 1000n + BigInt(last ? g : g.slice(1))
  })
  if (n > U64_MAX) bad()
  if (encodeTileIndex(n) !== body) bad() // non-canonical, e.g. x000/001
  return { index: n, width, partial }
}

/**
 * Parses a level string of a tile path: a decimal 0..63 without leading zeros.
 * @example
 * parseTileLevel('0') // 0
 */
export function parseTileLevel(level: string): number {
  if (typeof level !== 'string' || !/^(?:0|[1-9][0-9]?)$/.test(level) || Number(level) > 63) malformed('malformed tile level', 'malformed tile path')
  return Number(level)
}

/**
 * Parses a whole path `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` (leading '/' allowed).
 * @example
 * parseTilePath('tile/entries/000.p/8') // { kind: 'entries', index: 0n, width: 8, partial: true }
 */
export function parseTilePath(path: string): TileRef {
  const p = path.startsWith('/') ? path.slice(1) : path
  if (!p.startsWith('tile/')) malformed('malformed tile path', 'malformed tile path')
  const rest = p.slice(5)
  const slash = rest.indexOf('/')
  if (slash < 0) malformed('malformed tile path', 'malformed tile path')
  const head = rest.slice(0, slash)
  const parsed = parseTileIndexPath(rest.slice(slash + 1))
  if (head === 'entries') return { kind: 'entries', ...parsed }
  return { kind: 'tile', level: parseTileLevel(head), ...parsed }
}

/** Full and partial tiles of one level for a tree size. */
export interface LevelTiles {
  level: number
  fullTiles: number
  /** Width of the rightmost partial tile, 0 when there is none. */
  partialWidth: number
}

/**
 * The tiles a tree of `size` leaves has at each level: level l has floor(size/256^(l+1)) full tiles and a
 * partial tile of width floor(size/256^l) mod 256 (none when 0). Levels stop where no node exists.
 * @example
 * tilesForTreeSize(70000) // [{level:0, fullTiles:273, partialWidth:112}, {level:1, fullTiles:1, partialWidth:17}, {level:2, fullTiles:0, partialWidth:1}]
 */
export function tilesForTreeSize(size: number): LevelTiles[] {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a non-negative integer')
  const out: LevelTiles[] = []
  for (let level = 0; ; level++) {
    const nodes = Math.floor(size / TILE_WIDTH ** level)
    if (nodes === 0) break
    out.push({ level, fullTiles: Math.floor(nodes / TILE_WIDTH), partialWidth: nodes % TILE_WIDTH })
  }
  return out
}

/**
 * Width of tile `index` at `level` in a tree of `size` leaves: 256 for a full tile, 1..255 for the
 * partial one, 0 when the tile does not exist at that size.
 * @example
 * tileWidth(0, 0, 15) // 15
 */
export function tileWidth(level: number, index: number, size: number): number {
  const nodes = Math.floor(size / TILE_WIDTH ** level)
  const first = index * TILE_WIDTH
  if (first >= nodes) return 0
  return Math.min(TILE_WIDTH, nodes - first)
}

/**
 * The entry bundle and level-0 tile that hold leaf `leafIndex` in a tree of `size` leaves.
 * @example
 * bundleForLeaf(69999, 70000) // { entryBundle: 'tile/entries/273.p/112', indexWithinBundle: 111, level0Tile: 'tile/0/273.p/112' }
 */
export function bundleForLeaf(leafIndex: number, size: number): { bundleIndex: number; width: number; indexWithinBundle: number; entryBundle: string; level0Tile: string } {
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0 || leafIndex >= size) throw new RangeError('leaf index must be below the tree size')
  const bundleIndex = Math.floor(leafIndex / TILE_WIDTH)
  const width = tileWidth(0, bundleIndex, size)
  return { bundleIndex, width, indexWithinBundle: leafIndex % TILE_WIDTH, entryBundle: entriesPath(bundleIndex, width), level0Tile: tilePath(0, bundleIndex, width) }
}

/**
 * Encodes entries as an entry bundle: each a big-endian uint16 length then the bytes.
 * @example
 * encodeEntryBundle([utf8('one'), utf8('two')])
 */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  let total = 0
  for (const e of entries) {
    if (e.length > MAX_ENTRY_BYTES) throw new RangeError('an entry is at most 65535 bytes')
    total += 2 + e.length
  }
  const out = Buffer.alloc(total)
  let off = 0
  for (const e of entries) {
    out.writeUInt16BE(e.length, off)
    out.set(e, off + 2)
    off += 2 + e.length
  }
  return out
}

/**
 * Decodes an entry bundle; throws ERR_MALFORMED on a truncated bundle or more than 256 entries.
 * @example
 * decodeEntryBundle(bytes).length
 */
export function decodeEntryBundle(bundle: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  let off = 0
  while (off < bundle.length) {
    if (off + 2 > bundle.length) malformed('entry bundle is truncated', 'malformed entry bundle')
    const len = ((bundle[off] as number) << 8) | (bundle[off + 1] as number)
    if (off + 2 + len > bundle.length) malformed('entry bundle is truncated', 'malformed entry bundle')
    out.push(bundle.subarray(off + 2, off + 2 + len))
    off += 2 + len
    if (out.length > TILE_WIDTH) malformed('entry bundle holds more than 256 entries', 'malformed entry bundle')
  }
  return out
}
