/**
 * Largest NumericDate accepted anywhere: 9999-12-31T23:59:59Z. RFC 7519 §2 allows any JSON number of
 * seconds (fractions included, which we accept); values past year 9999 have no RFC 3339 form and,
 * past 8.64e12, no JavaScript Date (an `exp` of 2^53 turned into an Invalid Date): refused.
 */
export const MAX_NUMERIC_DATE = 253_402_300_799

/**
 * True when `value` is a NumericDate we accept: a finite number of seconds from 0 to
 * {@link MAX_NUMERIC_DATE}. Non-integers are accepted, as RFC 7519 §2 allows them.
 * @example
 * isNumericDate(1_800_000_000) // true
 * isNumericDate(2 ** 53) // false
 */
export function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_NUMERIC_DATE
}
