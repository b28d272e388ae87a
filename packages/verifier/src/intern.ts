// Shared copies of the short strings that many credentials repeat (internal; used by verifier.ts).
//
// JSON.parse gives every credential its own copy of each string it holds: the issuer's DID, the
// status list URL, the controller, the model, the tool profile. A memoized VerifiedAgent keeps them
// all, so a stream of new agents promoted about 1.2 KB per memo entry, and V8 grew its young
// generation to the maximum under that survival rate (bench verify-only). Values equal to one seen
// before are replaced by that earlier copy: the same text, one object. Bounded both in entries and
// in string length; when full it is emptied (the values it held stay valid where they are used).

/** Longest string shared: identifiers and names, not free text of unbounded length. */
const MAX_INTERNED_CHARS = 256

export class StringInterner {
  private readonly map = new Map<string, string>()
  constructor(private readonly max: number) {}

  /** `value`, or an earlier string equal to it. */
  intern<T extends string>(value: T): T {
    if (value.length > MAX_INTERNED_CHARS) return value
    const known = this.map.get(value)
    if (known !== undefined) return known as T
    if (this.map.size >= this.max) this.map.clear()
    this.map.set(value, value)
    return value
  }
}
