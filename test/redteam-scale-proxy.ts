// A TCP proxy for fault tests: forwards to a real server (PostgreSQL, Redis) until told to cut every
// connection, to blackhole (accept and hold connections, forward nothing either way), or to pass again.
import { createServer, connect, type Socket } from 'node:net'

export interface FaultProxy {
  /** The port it listens on (127.0.0.1). */
  port: number
  /** Forward again (held data flows on the connections that survived). */
  pass(): void
  /** Forward nothing, either way, on old and new connections; new ones are accepted and held. */
  blackhole(): void
  /** Reset every open connection (both sides); new ones still forward unless blackholed. */
  cut(): void
  /**
   * Strand every open connection: it stays open and silent for good (as when a firewall or NAT
   * forgets a flow without a reset), while new connections forward.
   */
  strand(): void
  /** Connections open now. */
  readonly open: number
  close(): Promise<void>
}

/** A proxy on a free port to `host:port`. */
export async function faultProxy(port: number, host = '127.0.0.1'): Promise<FaultProxy> {
  let holding = false
  const pairs = new Set<{ a: Socket; b: Socket }>()
  const stranded = new Set<{ a: Socket; b: Socket }>()
  const server = createServer((a) => {
    const b = connect(port, host)
    const pair = { a, b }
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      a.destroy()
      b.destroy()
    }
    a.on('error', end).on('close', end)
    b.on('error', end).on('close', end)
    a.on('data', (d) => { if (!b.write(d)) a.pause() })
    b.on('data', (d) => { if (!a.write(d)) b.pause() })
    a.on('drain', () => { if (!holding) b.resume() })
    b.on('drain', () => { if (!holding) a.resume() })
    if (holding) {
      a.pause()
      b.pause()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return {
    port: address.port,
    pass() {
      holding = false
      for (const { a, b } of pairs) {
        a.resume()
        b.resume()
      }
    },
    blackhole() {
      holding = true
      for (const { a, b } of pairs) {
        a.pause()
        b.pause()
      }
    },
    cut() {
      for (const { a, b } of [...pairs]) {
        a.resetAndDestroy()
        b.resetAndDestroy()
      }
      pairs.clear()
    },
    strand() {
      for (const pair of [...pairs]) {
        pair.a.pause()
        pair.b.pause()
        pair.a.removeAllListeners('drain')
        pair.b.removeAllListeners('drain')
        pairs.delete(pair)
        stranded.add(pair)
      }
    },
    get open() {
      return pairs.size
    },
    close: () => new Promise<void>((resolve) => {
      for (const { a, b } of [...pairs, ...stranded]) {
        a.destroy()
        b.destroy()
      }
      server.close(() => resolve())
    }),
  }
}

/** A fault proxy in front of the server a URL names (redis://, postgres://), and that URL through it. */
export async function proxiedUrl(serverUrl: string, defaultPort: number): Promise<{ proxy: FaultProxy; url: string }> {
  const target = new URL(serverUrl)
  const proxy = await faultProxy(Number(target.port || defaultPort), target.hostname)
  const url = new URL(serverUrl)
  url.hostname = '127.0.0.1'
  url.port = String(proxy.port)
  return { proxy, url: url.toString() }
}
