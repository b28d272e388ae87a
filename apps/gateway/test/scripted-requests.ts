import type { Socket } from 'node:net'

/**
 * A scripted upstream's reading of what the gateway sends on `socket`: each whole request (head, then a
 * Content-Length body, read as Latin-1) handed to `onRequest` as it completes, however it is cut into packets.
 */
export function onWholeRequests(socket: Socket, onRequest: (request: string) => void): void {
  let pending = ''
  socket.on('error', () => undefined)
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1')
    for (;;) {
      const end = pending.indexOf('\r\n\r\n')
      if (end === -1) return
      const length = Number(/content-length: (\d+)/.exec(pending.slice(0, end))?.[1] ?? 0)
      if (pending.length < end + 4 + length) return
      const request = pending.slice(0, end + 4 + length)
      pending = pending.slice(end + 4 + length)
      onRequest(request)
    }
  })
}
