import { readFile, readdir, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { AGENTID_CEDAR_SCHEMA } from '../schema.js'
import type { PolicyDiagnostic } from '../types.js'
import { cedar, describe, type DetailedError, type PolicyJson } from './cedar.js'

/** One validated policy of a folder. */
export interface CompiledPolicy {
  /** `@id("...")` if present, else `"<file>#<n>"` (n counts from 0 within the file). */
  readonly id: string
  readonly file: string
  readonly text: string
  readonly json: PolicyJson
  /**
   * `@approval("required")` on a permit: the permit allows only with a verified human approval;
   * `@approvers("<group>")` names the approver group (default: the approvers of the agent's controller).
   */
  readonly approval: { readonly group: string | null } | null
}

export interface LoadedPolicySet {
  readonly policies: readonly CompiledPolicy[]
  readonly diagnostics: readonly PolicyDiagnostic[]
  /** True when no diagnostic is an error. */
  readonly ok: boolean
}

/** Bounds on what a policy folder may hold: a folder beyond them is refused, never half-read. */
export const FOLDER_LIMITS = Object.freeze({ files: 10_000, fileBytes: 4 * 1024 * 1024, policies: 100_000, depth: 32, idLength: 256 })

interface SourceFile {
  readonly file: string
  readonly text: string
}

/**
 * Reads every `*.cedar` file under `dir` (recursively, following symbolic links, skipping entries whose name
 * starts with `.`), parses and validates the policies against the agentid schema in strict mode.
 * Never throws for a bad folder: problems come back as diagnostics.
 */
export async function loadPolicyFolder(dir: string): Promise<LoadedPolicySet> {
  const diagnostics: PolicyDiagnostic[] = []
  let files: SourceFile[]
  try {
    files = await readSources(dir)
  } catch (error) {
    const message = error instanceof FolderError ? error.message : `cannot read the policy folder: ${(error as NodeJS.ErrnoException).code ?? String(error)}`
    return { policies: [], diagnostics: [{ file: error instanceof FolderError ? error.file : '', severity: 'error', message }], ok: false }
  }
  const policies: CompiledPolicy[] = []
  const located = new Map<string, { file: string; text: string; offset: number; source: string }>()
  for (const { file, text } of files) {
    const parts = cedar.policySetTextToParts(text)
    if (parts.type === 'failure') {
      for (const error of parts.errors) diagnostics.push(diagnostic(file, undefined, error, text, 0))
      continue
    }
    if (parts.policy_templates.length > 0) {
      diagnostics.push({ file, severity: 'error', message: 'policy templates are not supported: write static policies' })
      continue
    }
    let cursor = 0
    for (const [n, policyText] of parts.policies.entries()) {
      const parsed = cedar.policyToJson(policyText)
      if (parsed.type === 'failure') {
        for (const error of parsed.errors) diagnostics.push(diagnostic(file, `${file}#${n}`, error, policyText, 0))
        continue
      }
      const explicit = parsed.json.annotations?.['id']
      const id = explicit ?? `${file}#${n}`
      // Where the policy starts in its file (the parts keep the policy text verbatim), for line numbers.
      const at = text.indexOf(policyText, cursor)
      if (at >= 0) cursor = at + policyText.length
      if (explicit !== undefined && !validId(explicit)) {
        diagnostics.push({ file, policy: id, ...lineOf(text, Math.max(at, 0)), severity: 'error', message: `@id must be 1 to ${FOLDER_LIMITS.idLength} printable characters` })
        continue
      }
      const previous = located.get(id)
      if (previous) {
        diagnostics.push({ file, policy: id, ...lineOf(text, Math.max(at, 0)), severity: 'error', message: `duplicate policy id ${JSON.stringify(id)} (first in ${previous.file})` })
        continue
      }
      const approval = approvalAnnotation(parsed.json)
      if (typeof approval === 'string') {
        diagnostics.push({ file, policy: id, ...lineOf(text, Math.max(at, 0)), severity: 'error', message: approval })
        continue
      }
      located.set(id, { file, text: policyText, offset: at, source: text })
      policies.push({ id, file, text: policyText, json: parsed.json, approval })
    }
  }
  if (policies.length > FOLDER_LIMITS.policies) {
    diagnostics.push({ file: '', severity: 'error', message: `more than ${FOLDER_LIMITS.policies} policies` })
  }
  // Validate what parsed even when some file did not: one run reports every problem.
  if (policies.length > 0 && policies.length <= FOLDER_LIMITS.policies) {
    // No prototype: an id such as `__proto__` must be a key like any other, not silently dropped.
    const staticPolicies: Record<string, string> = Object.create(null) as Record<string, string>
    for (const p of policies) staticPolicies[p.id] = p.text
    const answer = cedar.validate({ schema: AGENTID_CEDAR_SCHEMA, policies: { staticPolicies }, validationSettings: { mode: 'strict' } })
    if (answer.type === 'failure') {
      for (const error of answer.errors) diagnostics.push({ file: '', severity: 'error', message: describe(error) })
    } else {
      const report = (list: readonly { policyId: string; error: DetailedError }[], severity: 'error' | 'warning') => {
        for (const { policyId, error } of list) {
          const where = located.get(policyId)
          if (!where) {
            diagnostics.push({ file: '', policy: policyId, severity, message: describe(error) })
            continue
          }
          diagnostics.push(diagnostic(where.file, policyId, error, where.text, 0, severity, where.offset >= 0 ? where : undefined))
        }
      }
      report(answer.validationErrors, 'error')
      report(answer.validationWarnings, 'warning')
      for (const error of answer.otherWarnings) diagnostics.push({ file: '', severity: 'warning', message: describe(error) })
    }
  }
  const ok = !diagnostics.some((d) => d.severity === 'error')
  return { policies: ok ? policies : [], diagnostics, ok }
}

const GROUP = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

/** The policy's approval requirement, or a message saying why its annotations are refused. */
function approvalAnnotation(json: PolicyJson): { group: string | null } | null | string {
  const annotations = json.annotations ?? {}
  const approval = annotations['approval']
  const approvers = annotations['approvers']
  if (approval === undefined) {
    return approvers === undefined ? null : '@approvers needs @approval("required") on the same policy'
  }
  if (approval !== 'required') return '@approval must be "required"'
  if (json.effect !== 'permit') return '@approval applies to permit policies only'
  if (approvers === undefined) return { group: null }
  if (typeof approvers !== 'string' || !GROUP.test(approvers)) return '@approvers must name a group: 1 to 128 letters, digits, ".", "_", ":" or "-"'
  return { group: approvers }
}

class FolderError extends Error {
  constructor(readonly file: string, message: string) {
    super(message)
  }
}

async function readSources(dir: string): Promise<SourceFile[]> {
  const info = await stat(dir)
  if (!info.isDirectory()) throw new FolderError('', 'the policy path is not a directory')
  const out: SourceFile[] = []
  const seen = new Set<string>()
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > FOLDER_LIMITS.depth) throw new FolderError(rel, `folders nested deeper than ${FOLDER_LIMITS.depth}`)
    const real = await realpath(abs)
    if (seen.has(real)) return // a symbolic link loop, or the same folder linked twice
    seen.add(real)
    const names = (await readdir(abs)).filter((n) => !n.startsWith('.')).sort()
    for (const name of names) {
      const childAbs = join(abs, name)
      const childRel = rel === '' ? name : `${rel}/${name}`
      const s = await stat(childAbs) // follows links: Kubernetes ConfigMap mounts are links
      if (s.isDirectory()) {
        await walk(childAbs, childRel, depth + 1)
      } else if (s.isFile() && name.endsWith('.cedar')) {
        if (out.length >= FOLDER_LIMITS.files) throw new FolderError(childRel, `more than ${FOLDER_LIMITS.files} policy files`)
        if (s.size > FOLDER_LIMITS.fileBytes) throw new FolderError(childRel, `file larger than ${FOLDER_LIMITS.fileBytes} bytes`)
        const bytes = await readFile(childAbs)
        const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
        out.push({ file: childRel, text })
      } else if (s.isFile() && name.toLowerCase().endsWith('.cedar')) {
        // `no-admin.CEDAR` would be skipped while a reviewer believes it is in force: refuse the folder instead.
        throw new FolderError(childRel, 'a policy file name must end in ".cedar" in lower case (this file would not be loaded)')
      }
    }
  }
  try {
    await walk(dir, '', 0)
  } catch (error) {
    if (error instanceof TypeError) throw new FolderError('', 'a policy file is not valid UTF-8')
    throw error
  }
  return out
}

function validId(id: string): boolean {
  // eslint-disable-next-line no-control-regex
  return id.length > 0 && id.length <= FOLDER_LIMITS.idLength && !/[\u0000-\u001f\u007f]/.test(id)
}

function diagnostic(
  file: string,
  policy: string | undefined,
  error: DetailedError,
  text: string,
  base: number,
  severity: 'error' | 'warning' = 'error',
  within?: { offset: number; source: string },
): PolicyDiagnostic {
  const location = error.sourceLocations?.[0]
  let position: { line?: number; column?: number } = {}
  if (location) {
    // Cedar reports UTF-8 byte offsets into the text it was given.
    const chars = Buffer.from(text, 'utf8').subarray(0, location.start).toString('utf8').length + base
    position = within ? lineOf(within.source, within.offset + chars) : lineOf(text, chars)
  }
  const label = location?.label ? `: ${location.label}` : ''
  return { file, ...(policy === undefined ? {} : { policy }), ...position, severity, message: `${describe(error)}${label}` }
}

function lineOf(text: string, index: number): { line: number; column: number } {
  let line = 1
  let start = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    line++
    start = i + 1
  }
  return { line, column: index - start + 1 }
}
