import type { FastifyInstance } from 'fastify'
import { AgentIdError } from '@agentid/core'
import type { IssuerService } from '../domain/service.js'
import { EventStream, type EventStreamOptions } from './stream.js'

export type EventRouteOptions = Omit<EventStreamOptions, 'storage' | 'bus' | 'sign'>

/** A Last-Event-ID: a sequence number (at most 15 digits); empty means none (as EventSource sends). */
function lastEventId(value: string | string[] | undefined): number | undefined {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,14})$/.test(value)) {
    throw new AgentIdError('ERR_INVALID_INPUT', 'Last-Event-ID must be an event id of this stream (a sequence number)', { details: { field: 'Last-Event-ID' } })
  }
  return Number(value)
}

/**
 * `GET /v1/events`: the issuer's revocations as signed Security Event Tokens (RFC 8417, OpenID CAEP)
 * on a server-sent-events stream, resumable with `Last-Event-ID` (see {@link EventStream}). Public,
 * like the status lists it complements.
 * @example
 * void app.register(eventRoutes(service))
 */
export function eventRoutes(service: IssuerService, options: EventRouteOptions = {}) {
  return async (app: FastifyInstance): Promise<void> => {
    const stream = new EventStream({
      ...options,
      storage: service.storage,
      bus: service.events.bus,
      sign: (header, claims) => service.engine.signJwt(header, claims),
    })
    // Open streams never end by themselves: end them first, or closing the server would wait on them.
    app.addHook('preClose', (done) => {
      stream.close()
      done()
    })
    app.addHook('onClose', async () => stream.close())

    app.get('/v1/events', async (request, reply) => {
      const after = lastEventId(request.headers['last-event-id'])
      if (stream.size >= stream.maxConnections) {
        void reply.header('retry-after', '5')
        throw new AgentIdError('ERR_UNAVAILABLE', 'too many open event streams; retry later')
      }
      reply.hijack()
      await stream.attach(reply.raw, after)
    })
  }
}
