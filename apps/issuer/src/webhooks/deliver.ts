// One delivery attempt: a POST of the signed body, bounded in time and in what is read back. The
// receiver is not trusted to behave: redirects are refused (not followed), a slow one is cut at the
// timeout, and at most RESPONSE_PEEK_BYTES of any answer are read (for the attempt's record), the rest
// discarded with the connection.
import type { WebhookHeaders } from './sign.js'

/** Bytes of a failed answer's body kept in the attempt's record. */
export const RESPONSE_PEEK_BYTES = 512

/** What one attempt came to. */
export interface DeliveryResult {
  /** A 2xx answer. */
  ok: boolean
  /** The HTTP status, or null when no answer came. */
  status: number | null
  /** Why it failed (null when ok): printable ASCII, at most 300 characters. */
  error: string | null
  /** A `Retry-After` (seconds) of a 429 or 503, in ms, at most 1 h. */
  retryAfterMs?: number
  /** The attempt was cut by `stop`, not by the receiver. */
  aborted?: boolean
}

export interface DeliverOptions {
  url: string
  headers: WebhookHeaders
  body: string
  timeoutMs: number
  fetch: typeof globalThis.fetch
  /** Aborts the attempt (the sender stopping). */
  stop?: AbortSignal
}

const printable = (s: string, max: number) => s.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, max)

function failureOf(error: unknown, o: DeliverOptions, timedOut: boolean): DeliveryResult {
  if (o.stop?.aborted) return { ok: false, status: null, error: 'aborted: the issuer stopped', aborted: true }
  if (timedOut) return { ok: false, status: null, error: `timeout: no answer within ${o.timeoutMs} ms` }
  // undici: TypeError('fetch failed') with the socket's error (ECONNREFUSED, UND_ERR_SOCKET, …) as cause.
  const e = error as { message?: unknown; cause?: { code?: unknown; message?: unknown } }
  const cause = e?.cause
  const what = typeof cause?.code === 'string' ? `${cause.code}${typeof cause.message === 'string' ? `: ${cause.message}` : ''}` : String(e?.message ?? error)
  return { ok: false, status: null, error: printable(`network: ${what}`, 300) }
}

// At most `max` bytes of a body, then the stream is cancelled (undici closes the connection).
async function peek(body: ReadableStream<Uint8Array> | null, max: number): Promise<string> {
  if (!body) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < max) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value.subarray(0, max - size))
      size += Math.min(value.length, max - size)
    }
  } catch {
    // A body cut short (timeout, reset) still leaves what was read.
  } finally {
    await reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks).toString('latin1')
}

function retryAfter(status: number, header: string | null): number | undefined {
  if ((status !== 429 && status !== 503) || header === null || !/^[0-9]{1,7}$/.test(header.trim())) return undefined
  return Math.min(Number(header.trim()) * 1000, 3_600_000)
}

/**
 * POSTs one attempt and reports how it went; never throws.
 * @example
 * const r = await deliverOnce({ url, headers: sign(id, now, body), body, timeoutMs: 15_000, fetch })
 */
export async function deliverOnce(o: DeliverOptions): Promise<DeliveryResult> {
  const timeout = AbortSignal.timeout(o.timeoutMs)
  const signal = o.stop ? AbortSignal.any([timeout, o.stop]) : timeout
  let res: Response
  try {
    res = await o.fetch(o.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'agentid-issuer-webhooks', ...o.headers },
      body: o.body,
      // 'manual': a 3xx comes back as the answer it is, and is a failed attempt (the URL is the operator's
      // to fix); following it would send the signed event wherever the receiver points.
      redirect: 'manual',
      signal,
    })
  } catch (error) {
    return failureOf(error, o, timeout.aborted)
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel().catch(() => {})
    return { ok: true, status: res.status, error: null }
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => {})
    return { ok: false, status: res.status, error: `redirect refused: HTTP ${res.status}` }
  }
  const text = printable(await peek(res.body, RESPONSE_PEEK_BYTES), 200)
  const after = retryAfter(res.status, res.headers.get('retry-after'))
  return { ok: false, status: res.status, error: `HTTP ${res.status}${text ? `: ${text}` : ''}`, ...(after === undefined ? {} : { retryAfterMs: after }) }
}
