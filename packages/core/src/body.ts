import { AgentIdError } from './errors.js'

/**
 * The parts of a fetch `Response` that {@link readBodyCapped} reads: a WHATWG `Response` (global fetch,
 * undici), or a test double that only has `text()`.
 */
export interface BodyLike {
  body?: ReadableStream<Uint8Array> | null
  headers?: { get(name: string): string | null } | undefined
  text?: () => Promise<string>
}

function tooLarge(maxBytes: number, declared?: number): never {
  throw new AgentIdError('ERR_PAYLOAD_TOO_LARGE', `response body is larger than ${maxBytes} bytes`, { details: { maxBytes, ...(declared === undefined ? {} : { declared }) } })
}

/**
 * Reads a response body, streaming, and refuses it past `maxBytes`: a `Content-Length` above the cap
 * is refused before any byte is read, and a body that grows past it is cancelled at the chunk that
 * crosses it (which aborts the fetch: undici closes the connection), so at most `maxBytes` plus one
 * chunk is ever held, whatever the peer sends (100 MB, or an endless stream). `signal` aborting
 * cancels the read too (a timeout: a peer that stops sending cannot hold the reader).
 * Throws AgentIdError `ERR_PAYLOAD_TOO_LARGE` (details `{ maxBytes }`) past the cap, or the signal's reason.
 * A response without a stream (a test double) is read with `text()` and then held to the same cap.
 * A cancel is started, never awaited: cancelling one branch of a teed stream (a `Request` or
 * `Response` clone) settles only once the other branch is cancelled too, so awaiting it could hang.
 * Every fetch of the verifier, the issuer and the gateway reads its answer through here.
 * @example
 * const bytes = await readBodyCapped(await fetch(url, { signal }), 1024 * 1024, signal)
 */
export async function readBodyCapped(response: BodyLike, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new TypeError('readBodyCapped: maxBytes must be a non-negative integer')
  const stream = response.body
  const declaredText = response.headers?.get('content-length')
  const declared = declaredText == null || !/^[0-9]{1,16}$/.test(declaredText) ? undefined : Number(declaredText)
  if (declared !== undefined && declared > maxBytes) {
    void stream?.cancel().catch(() => undefined)
    tooLarge(maxBytes, declared)
  }
  if (stream == null) {
    if (typeof response.text !== 'function') return Buffer.alloc(0)
    const bytes = Buffer.from(await response.text(), 'utf8')
    if (bytes.length > maxBytes) tooLarge(maxBytes)
    return bytes
  }
  if (signal?.aborted) {
    // Cancelled, not left unread: an unread body keeps its connection open (and the peer's writes pending).
    void stream.cancel(signal.reason).catch(() => undefined)
    signal.throwIfAborted()
  }
  const reader = stream.getReader()
  const onAbort = () => void reader.cancel(signal?.reason).catch(() => undefined)
  signal?.addEventListener('abort', onAbort, { once: true })
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      signal?.throwIfAborted()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) {
        void reader.cancel().catch(() => undefined)
        tooLarge(maxBytes)
      }
      chunks.push(value)
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    reader.releaseLock()
  }
  return Buffer.concat(chunks, size)
}
