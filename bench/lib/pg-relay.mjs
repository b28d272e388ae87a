// A TCP relay between issuers and PostgreSQL that counts round trips on the wire: one per frontend
// Sync ('S') or simple Query ('Q') message, each charged to the statement it carries (the text of a
// simple query, or of the first statement bound since the last Sync: Parse names it, Bind refers to
// it). `counter.roundTrips` is the total, `counter.byStatement` the count per statement text.
import { createServer, connect } from 'node:net'

const label = (sql) => sql.replace(/\s+/g, ' ').trim().slice(0, 90)
const cstring = (buf, at) => {
  const end = buf.indexOf(0, at)
  return [buf.toString('utf8', at, end), end + 1]
}

/**
 * @param {URL} target - the PostgreSQL server
 * @returns {Promise<{ counter: { roundTrips: number, byStatement: Map<string, number> }, port: number, close: () => Promise<void> }>}
 */
export async function countingRelay(target) {
  const counter = { roundTrips: 0, byStatement: new Map() }
  const charge = (text) => {
    counter.roundTrips++
    const k = label(text ?? '(no statement)')
    counter.byStatement.set(k, (counter.byStatement.get(k) ?? 0) + 1)
  }
  const sockets = new Set()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname)
    // As the driver's own socket: without, Nagle holds a small message back until the previous one
    // is acknowledged (40 ms with delayed ACKs), a wait PostgreSQL's clients never see.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    sockets.add(client)
    const named = new Map() // prepared statement name -> text, per connection
    let pending // the statement of the round trip being built (first Parse/Bind since the last Sync)
    let started = false
    let buf = Buffer.alloc(0)
    client.on('data', (chunk) => {
      upstream.write(chunk)
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
      for (;;) {
        if (!started) { // the startup (or SSL request) message has no type byte
          if (buf.length < 4) break
          const len = buf.readInt32BE(0)
          if (buf.length < len) break
          const code = len >= 8 ? buf.readInt32BE(4) : 0
          buf = buf.subarray(len)
          if (code !== 80877103) started = true // SSLRequest: the real startup follows
          continue
        }
        if (buf.length < 5) break
        const len = buf.readInt32BE(1)
        if (buf.length < 1 + len) break
        const type = String.fromCharCode(buf[0])
        const body = buf.subarray(5, 1 + len)
        if (type === 'P') {
          const [name, at] = cstring(body, 0)
          const [text] = cstring(body, at)
          if (name) named.set(name, text)
          pending ??= text
        } else if (type === 'B') {
          const [, at] = cstring(body, 0)
          const [name] = cstring(body, at)
          pending ??= name ? named.get(name) : undefined
        } else if (type === 'S') {
          charge(pending)
          pending = undefined
        } else if (type === 'Q') {
          charge(cstring(body, 0)[0])
        }
        buf = buf.subarray(1 + len)
      }
    })
    upstream.on('data', (d) => client.write(d))
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client) }
    client.on('error', end); upstream.on('error', end); client.on('close', end); upstream.on('close', end)
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    counter,
    port: server.address().port,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r) }),
  }
}

/** The statements of `after` minus `before` (byStatement maps), per `n` operations, largest first. */
export function perOperation(before, after, n) {
  return [...after].map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / n]).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])
}
