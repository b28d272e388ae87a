// What the browser suites share: Debian's Chromium (installed with apt-get when missing) and the rule
// for a missing requirement: skip saying why, or fail under AGENTID_REQUIRE_SERVICES=1 (CI).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, it } from 'vitest'

export const CHROMIUM = '/usr/bin/chromium'
/** How the suites launch it (playwright-core, never a browser download). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']

/** Chromium, installed with apt-get when missing; null when it can be had, else why not. */
export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM)) return null
  try {
    execFileSync('sh', ['-c', 'apt-get update && apt-get install -y chromium'], { stdio: 'ignore', timeout: 600_000 })
  } catch (error) {
    return `${CHROMIUM} is missing and apt-get could not install chromium (${(error as Error).message.split('\n')[0]})`
  }
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing after apt-get install chromium`
}

/**
 * `describe` when nothing is `missing`; otherwise `describe.skip`, after saying why, or, under
 * AGENTID_REQUIRE_SERVICES=1, a suite `name` with one test that fails with the reason.
 */
export function suiteUnless(missing: string | null, name: string): typeof describe | typeof describe.skip {
  if (missing === null) return describe
  if (process.env.AGENTID_REQUIRE_SERVICES === '1') {
    describe(name, () => {
      it('needs what it tests with (AGENTID_REQUIRE_SERVICES=1)', () => {
        throw new Error(missing)
      })
    })
  } else {
    console.warn(`skipping ${name}: ${missing}`)
  }
  return describe.skip
}
