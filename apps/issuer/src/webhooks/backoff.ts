// The retry schedule: exponential backoff with jitter, bounded per step and in total.

/** The longest wait between two attempts, ms (1 h). */
export const MAX_RETRY_DELAY_MS = 3_600_000

/**
 * The wait before the next attempt after `failures` failed ones (1, 2, …): `baseMs · 2^(failures-1)`,
 * at most 1 h, then "equal jitter" (between half of it and all of it), so receivers that failed together
 * are not all retried in the same instant.
 * @example
 * retryDelayMs(1, 5000) // 2,500 to 5,000
 */
export function retryDelayMs(failures: number, baseMs: number, random: () => number = Math.random): number {
  if (!Number.isSafeInteger(failures) || failures < 1) throw new TypeError('retryDelayMs: failures must be a positive integer')
  const step = Math.min(baseMs * 2 ** Math.min(failures - 1, 40), MAX_RETRY_DELAY_MS)
  return Math.round(step / 2 + (Math.min(Math.max(random(), 0), 1) * step) / 2)
}
