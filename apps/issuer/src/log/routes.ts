import type { FastifyInstance, FastifyReply } from 'fastify'
import { AgentIdError } from '@agentid/core'
import { TILE_WIDTH, parseTilePath } from '@agentid/tlog'
import type { IssuerLog } from './log.js'

const IMMUTABLE = 'public, max-age=31536000, immutable'

function tileIndex(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new AgentIdError('ERR_NOT_FOUND', 'no such tile')
  return Number(n)
}

/**
 * The issuer log over HTTP: C2SP tlog-tiles (`/log/checkpoint`, `/log/tile/<L>/<N>[.p/<W>]`,
 * `/log/tile/entries/<N>[.p/<W>]`), the log's vkey (`/log/key`), and tlog-proofs
 * (`/v1/log/proof?credential=<id>` or `?index=<n>`).
 */
export function logRoutes(log: IssuerLog) {
  return async (app: FastifyInstance) => {
    app.get('/log/checkpoint', async (_request, reply) =>
      reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(await log.checkpoint()))
    app.get('/log/key', async (_request, reply) => reply.type('text/plain; charset=utf-8').send(`${log.vkey}\n`))
    app.get<{ Params: { '*': string } }>('/log/tile/*', async (request, reply: FastifyReply) => {
      let ref
      try {
        ref = parseTilePath(`tile/${request.params['*']}`)
      } catch (cause) {
        throw new AgentIdError('ERR_NOT_FOUND', 'not a tile path', { cause })
      }
      const index = tileIndex(ref.index)
      const body = ref.kind === 'entries' ? await log.entries(index, ref.width) : log.tile(ref.level!, index, ref.width)
      if (!body) throw new AgentIdError('ERR_NOT_FOUND', 'no such tile at the latest checkpoint')
      return reply
        .type('application/octet-stream')
        .header('cache-control', ref.width === TILE_WIDTH ? IMMUTABLE : 'public, max-age=60')
        .send(Buffer.from(body.buffer, body.byteOffset, body.byteLength))
    })
    app.get<{ Querystring: Record<string, unknown> }>('/v1/log/proof', async (request, reply) => {
      const q = request.query
      const keys = Object.keys(q)
      if (keys.length !== 1 || (keys[0] !== 'credential' && keys[0] !== 'index')) {
        throw new AgentIdError('ERR_INVALID_INPUT', 'give exactly one of credential or index', { details: { field: 'query' } })
      }
      let index: number | undefined
      if (keys[0] === 'index') {
        const text = q.index
        if (typeof text !== 'string' || !/^(?:0|[1-9][0-9]{0,15})$/.test(text) || !Number.isSafeInteger(Number(text))) {
          throw new AgentIdError('ERR_INVALID_INPUT', 'index must be a non-negative decimal integer', { details: { field: 'index' } })
        }
        index = Number(text)
      } else {
        const id = q.credential
        if (typeof id !== 'string' || id.length === 0 || id.length > 256) throw new AgentIdError('ERR_INVALID_INPUT', 'credential must be a credential id', { details: { field: 'credential' } })
        index = await log.indexOfCredential(id)
        if (index === undefined) throw new AgentIdError('ERR_NOT_FOUND', 'no log entry issued this credential')
      }
      const proof = await log.proof(index)
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(proof)
    })
  }
}
