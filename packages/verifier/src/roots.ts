// The trustedRoots option, validated when the verifier is created (internal; used by verifier.ts):
// apart from delegation.ts, which is loaded at the first delegation chain only.

/** Validates the trustedRoots option into prefix to DIDs; a `/*` suffix on a prefix is dropped. */
export function parseTrustedRoots(input: unknown): Map<string, ReadonlySet<string>> {
  const out = new Map<string, ReadonlySet<string>>()
  if (input === undefined) return out
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new TypeError('createVerifier: trustedRoots must map resource prefixes to lists of DIDs')
  for (const [prefix, dids] of Object.entries(input)) {
    if (prefix.length === 0 || !Array.isArray(dids) || !dids.every((d) => typeof d === 'string' && d.startsWith('did:'))) {
      throw new TypeError('createVerifier: trustedRoots must map non-empty resource prefixes to lists of DIDs')
    }
    out.set(prefix.endsWith('/*') ? prefix.slice(0, -1) : prefix, new Set(dids as string[]))
  }
  return out
}
