// Whether other processes competed for the CPU while a suite timed: the CPU time every process used
// (/proc/stat) minus the suite's own processes' (all their threads), per second of wall time. The
// 1-minute load average cannot say this: it counts the suite's own threads, and for a minute after it
// the suite that ran before (run.mjs runs them back to back, so every suite after `chain` read busy).
import { readFileSync } from 'node:fs'

/** Most CPU the others may take, in cores on average, before a run is flagged noisy. */
export const OTHERS_MAX_CORES = 0.25

/** Seconds of CPU all processes have used since boot; undefined where /proc/stat is missing. */
export function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: all but idle and iowait, in USER_HZ (100 per second).
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / 100
  } catch {
    return undefined
  }
}

/**
 * Starts a window; its `stop(ownSeconds)` returns the cores other processes used on average during
 * it (the machine's CPU less `ownSeconds`, the CPU of the processes being measured), or undefined
 * where /proc/stat is missing.
 */
export function othersMeter() {
  const busy0 = machineBusySeconds()
  const wall0 = performance.now()
  return {
    stop(ownSeconds) {
      const busy1 = machineBusySeconds()
      const wall = (performance.now() - wall0) / 1000
      if (busy0 === undefined || busy1 === undefined || !Number.isFinite(ownSeconds)) return undefined
      return Math.max(0, busy1 - busy0 - ownSeconds) / wall
    },
  }
}
