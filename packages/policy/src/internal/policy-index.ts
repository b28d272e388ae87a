import { cedar, entityOf, NS } from './cedar.js'
import type { CompiledPolicy } from './load.js'
import { Lru } from './lru.js'

const ANY = '*'

/** The bucket keys of one policy along one scope dimension: `*` when unconstrained there. */
function principalKeys(p: CompiledPolicy): string[] {
  const scope = p.json.principal
  // An Agent has no parents, so `principal in Agent::"x"` means `principal == Agent::"x"`.
  if ((scope.op === '==' || scope.op === 'in') && 'entity' in scope) {
    const e = entityOf(scope.entity)
    if (scope.op === '==' || e.type === `${NS}::Agent`) return [entityKey(e.type, e.id)]
  }
  return [ANY]
}

function actionKeys(p: CompiledPolicy): string[] {
  const scope = p.json.action
  // The schema has no action groups: `action in [a, b]` means `action == a || action == b`.
  if (scope.op === '==' && 'entity' in scope) return [entityOf(scope.entity).id]
  if (scope.op === 'in') {
    const list = 'entities' in scope ? scope.entities : [scope.entity]
    return [...new Set(list.map((e) => entityOf(e).id))]
  }
  return [ANY]
}

function resourceKeys(p: CompiledPolicy): string[] {
  const scope = p.json.resource
  // `resource == E`, `resource in E` and `resource is T in E` all need E to be the resource or an ancestor of it.
  if ((scope.op === '==' || scope.op === 'in') && 'entity' in scope) {
    const e = entityOf(scope.entity)
    return [entityKey(e.type, e.id)]
  }
  if (scope.op === 'is' && scope.in && 'entity' in scope.in) {
    const e = entityOf(scope.in.entity)
    return [entityKey(e.type, e.id)]
  }
  return [ANY]
}

/** An unambiguous key for an entity (ids may hold any character). */
export function entityKey(type: string, id: string): string {
  return JSON.stringify([type, id])
}

function bucketKey(p: string, a: string, r: string): string {
  return `${p}\n${a}\n${r}` // p and r are '*' or JSON (no raw newline inside); a is '*' or an action name
}

/**
 * A slice holding more than this share of the set is the whole set instead. Internal; the differential test
 * sets it above 1 to check slicing on every request.
 */
export const SLICE_TUNING = { wholeSetAbove: 0.5 }

/** The policies that can apply to one request, preparsed into Cedar under `id`. */
export interface Slice {
  readonly id: string
  readonly size: number
}

/**
 * Policies bucketed by the principal, action and resource their scope names. A request gathers the buckets of
 * (`*` or its principal) × (`*` or its action) × (`*`, its resource or the resource's server): every policy whose
 * scope can match the request is in one of them, so Cedar decides the same on the slice as on the whole set.
 * Slices are preparsed on first use and cached (LRU), bounded both in number and in the policies they hold
 * together (a preparsed policy costs a few KB of wasm memory); evicted slice ids are reused, since Cedar keeps
 * preparsed sets until overwritten. A slice that would hold most of the set is the whole set instead,
 * preparsed once and never evicted: a large shared bucket does not make every slice a copy of it.
 */
export class PolicyIndex {
  readonly #buckets = new Map<string, { n: number; policies: CompiledPolicy[] }>()
  readonly #slices: Lru<string, Slice>
  readonly #free: string[] = []
  readonly #all: readonly CompiledPolicy[]
  #whole: Slice | null = null
  #cachedPolicies = 0
  #next = 0

  constructor(
    policies: readonly CompiledPolicy[],
    readonly prefix: string,
    readonly sliceCapacity: number,
    /** Most policies all cached slices may hold together. */
    readonly policyBudget: number = 50_000,
  ) {
    this.#all = policies
    for (const p of policies) {
      for (const pk of principalKeys(p)) {
        for (const ak of actionKeys(p)) {
          for (const rk of resourceKeys(p)) {
            const key = bucketKey(pk, ak, rk)
            let bucket = this.#buckets.get(key)
            if (!bucket) {
              bucket = { n: this.#buckets.size, policies: [] }
              this.#buckets.set(key, bucket)
            }
            bucket.policies.push(p)
          }
        }
      }
    }
    this.#slices = new Lru(Math.max(1, sliceCapacity))
  }

  /** The buckets a request gathers, in a fixed order. */
  #gather(principal: string, action: string, resources: readonly string[]): { n: number; policies: CompiledPolicy[] }[] {
    const found: { n: number; policies: CompiledPolicy[] }[] = []
    for (const pk of [ANY, principal]) {
      for (const ak of [ANY, action]) {
        for (const rk of [ANY, ...resources]) {
          const bucket = this.#buckets.get(bucketKey(pk, ak, rk))
          if (bucket) found.push(bucket)
        }
      }
    }
    return found
  }

  #preparse(id: string, policies: Iterable<CompiledPolicy>): void {
    // No prototype: an id such as `__proto__` must be a key like any other, not silently dropped.
    const staticPolicies: Record<string, string> = Object.create(null) as Record<string, string>
    for (const p of policies) staticPolicies[p.id] = p.text
    const answer = cedar.preparsePolicySet(id, { staticPolicies })
    if (answer.type === 'failure') throw new Error(`preparsePolicySet failed: ${answer.errors.map((e) => e.message).join('; ')}`)
  }

  /**
   * The preparsed slice for a request, or null when no policy can apply (the answer is then deny).
   * `resources` are the keys of the resource and of its ancestors.
   */
  slice(principal: string, action: string, resources: readonly string[]): Slice | null {
    const buckets = this.#gather(principal, action, resources)
    if (buckets.length === 0) return null
    const signature = buckets.map((b) => b.n).join(',')
    const cached = this.#slices.get(signature)
    if (cached) return cached
    let size = 0
    for (const b of buckets) size += b.policies.length
    if (size > this.#all.length * SLICE_TUNING.wholeSetAbove || size > this.policyBudget) {
      if (!this.#whole) {
        const id = `${this.prefix}-all`
        this.#preparse(id, this.#all)
        this.#whole = { id, size: this.#all.length }
      }
      return this.#whole
    }
    // Evict first (the oldest slices), so that the evicted ids are reused and the bounds always hold.
    while (this.#slices.size > 0 && (this.#slices.size >= this.#slices.capacity || this.#cachedPolicies + size > this.policyBudget)) {
      const [, evicted] = this.#slices.shift()!
      this.#free.push(evicted.id)
      this.#cachedPolicies -= evicted.size
    }
    const id = this.#free.pop() ?? `${this.prefix}-${this.#next++}`
    try {
      this.#preparse(id, buckets.flatMap((b) => b.policies))
    } catch (error) {
      this.#free.push(id)
      throw error
    }
    const slice = { id, size }
    this.#slices.set(signature, slice)
    this.#cachedPolicies += size
    return slice
  }

  /** How many policies the cached slices hold together (the whole set not counted). */
  get cachedPolicies(): number {
    return this.#cachedPolicies
  }

  /** How many preparsed slices are cached. */
  get cachedSlices(): number {
    return this.#slices.size
  }
}
