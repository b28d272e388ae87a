// The one rule for text a person reads: claims, capability identifiers, reasons, user names.

// C0, DEL, C1; the Arabic letter mark, left-to-right and right-to-left marks (U+061C, U+200E,
// U+200F); the line and paragraph separators (U+2028, U+2029: line breaks to many consumers); the
// bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Whether `value` can stand in a claim, a log line or a console as what it looks like: well-formed
 * UTF-16 (no unpaired surrogate, which no UTF-8 signer can carry), no control character (a NUL
 * truncates it for some consumers, a newline forges a log line), and no bidirectional formatting
 * character: overrides and isolates reorder what is displayed (`"pay \u202eexe.txt"` shows as
 * `pay txt.exe`), and the invisible direction marks make two strings that display the same compare
 * different. Text in right-to-left scripts needs none of them (the Unicode bidirectional algorithm
 * orders it by its letters). Every human-readable string the issuer signs, and every verifier reads,
 * passes this one check.
 * @example
 * isPrintableText('invoice triage') // true
 * isPrintableText('pay \u202eexe.txt') // false
 */
export function isPrintableText(value: string): boolean {
  return typeof value === 'string' && !UNPRINTABLE.test(value) && !LONE_SURROGATE.test(value)
}
