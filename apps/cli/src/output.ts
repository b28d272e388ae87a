// Human-readable tables and key/value blocks, and exact JSON for scripts. No dependency.

// C0/C1 controls, DEL, and bidi/zero-width format characters: anything that could move the
// cursor, recolour the terminal or reorder what the operator reads.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g

/** Makes a string safe to print on a terminal: unsafe characters become `\uXXXX`. */
export function clean(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** `value` as JSON, two-space indented, with a final newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`
}

/** A table with a header row; columns padded to their widest cell; `-` for empty cells. */
export function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>): string {
  const cells = rows.map((row) => headers.map((_, i) => cell(row[i])))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)))
  const line = (r: readonly string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(headers), ...cells.map(line)].join('\n') + '\n'
}

/** Aligned `key  value` lines. */
export function fields(pairs: ReadonlyArray<readonly [string, string | number | null | undefined]>): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`).join('\n') + '\n'
}

function cell(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return '-'
  return clean(String(value))
}
