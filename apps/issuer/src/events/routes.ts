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
 * The client an event stream counts against: the peer's address, an IPv4-mapped IPv6 address as its
 * IPv4 one, and an IPv6 address by its /64 (the unit one host or subscriber is given, so a client
 * cannot take a fresh address per stream). The route is public: no principal to count by.
 */
export function clientKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown'
  const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  if (v4) return v4[1]!
  if (!address.includes(':')) return address
  // Expand `::` and an embedded IPv4 tail to eight groups, then keep the first four.
  let text = address.split('%')[0]!.toLowerCase()
  const tail = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined]
  const left = head === '' ? [] : head.split(':')
  const right = rest === undefined || rest === '' ? [] : rest.split(':')
  const groups = rest === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`
}

/**
 * `GET /v1/events`: the issuer's revocations as signed Security Event Tokens (RFC 8417, OpenID CAEP)
 * on a server-sent-events stream, resumable with `Last-Event-ID` (see {@link EventStream}). Public,
 * like the status lists it complements: at most `maxConnectionsPerClient` (16) streams per client
 * address ({@link clientKey}; 429 ERR_RATE_LIMITED past it), `maxConnections` (1,024) in all (503).
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
      // A slot is taken before the stream opens and given back when its response closes, however it ends.
      const slot = stream.reserve(clientKey(request.socket.remoteAddress))
      if (slot === 'total') {
        void reply.header('retry-after', '5')
        throw new AgentIdError('ERR_UNAVAILABLE', 'too many open event streams; retry later')
      }
      if (slot === 'client') {
        void reply.header('retry-after', '5')
        throw new AgentIdError('ERR_RATE_LIMITED', `too many open event streams from this client (at most ${stream.maxConnectionsPerClient}); close one or retry later`)
      }
      reply.raw.once('close', slot)
      reply.hijack()
      await stream.attach(reply.raw, after)
    })
  }
}
