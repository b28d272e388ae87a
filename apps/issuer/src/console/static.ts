// Serves the built console (apps/console: index.html and hashed assets) at /console/ with
// @fastify/static, under a strict Content-Security-Policy: scripts, styles and data only from this
// origin, no inline script, no eval, no string-to-HTML sinks (Trusted Types), no framing.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'

/** The Content-Security-Policy of the console's pages. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ')

/** Headers of every console page and asset. */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
})

const NOT_BUILT = `The agentid operator console is not built into this issuer.
Build it with \`pnpm build\` (package @agentid/console, apps/console), or point AGENTID_CONSOLE_DIR at a
built console folder, then restart the issuer. The issuer's API works without it.
`

/** The built console's folder: `dir` when given, else @agentid/console's dist/ when it holds index.html. */
export function consoleDir(dir?: string | null): string | null {
  if (dir === null) return null
  if (dir !== undefined) return existsSync(join(dir, 'index.html')) ? dir : null
  try {
    const pkg = createRequire(import.meta.url).resolve('@agentid/console/package.json')
    const dist = join(dirname(pkg), 'dist')
    return existsSync(join(dist, 'index.html')) ? dist : null
  } catch {
    return null
  }
}

/** Registers /console and /console/* (the app, or a 404 notice when it is not built). */
export async function registerConsoleApp(app: FastifyInstance, dir?: string | null): Promise<void> {
  const root = consoleDir(dir)
  app.get('/console', async (_request, reply) => reply.code(302).header('location', '/console/').headers(CONSOLE_HEADERS).send())
  if (root === null) {
    const notice = async (_request: unknown, reply: import('fastify').FastifyReply) =>
      reply.code(404).headers(CONSOLE_HEADERS).type('text/plain; charset=utf-8').send(NOT_BUILT)
    app.get('/console/', notice)
    app.get('/console/*', notice)
    return
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/console/',
    index: ['index.html'],
    decorateReply: false,
    wildcard: true,
    // 'ignore': a dotfile is not found (404); 'deny' answered a 403 error the issuer's error handler took for an internal one (500).
    dotfiles: 'ignore',
    cacheControl: false,
    setHeaders: (res, path) => {
      for (const [k, v] of Object.entries(CONSOLE_HEADERS)) res.setHeader(k, v)
      // Hashed asset names never change content; the page itself is revalidated.
      res.setHeader('cache-control', path.includes(`${join(root, 'assets')}`) ? 'public, max-age=31536000, immutable' : 'no-cache')
    },
  })
}
