import { DATA_ACCESS_CLASSES, generateEd25519KeyPair, type DataAccessClass } from '@agentid/core'
import { grantCovers, isAttenuation, parseCapabilities, parseCapabilityLink, parseCaveats, resourceCovers, type Capability, type Caveats, type ConstraintValue, type Grant } from '@agentid/delegation'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

const cap = (resource: string, ...actions: string[]): Capability => ({ resource, actions })
const grant = (capabilities: Capability[], caveats: Caveats = {}): Grant => ({ capabilities, caveats })
const ERP_ALL = grant([cap('mcp://erp/tools/*', '*')])

describe('parse', () => {
  it('accepts exact identifiers and /* prefix patterns', () => {
    expect(parseCapabilities([cap('mcp://erp/tools/invoices.read', 'invoke'), cap('mcp://erp/tools/*', '*')])).toHaveLength(2)
  })

  it.each([
    ['a * inside a resource', [cap('mcp://erp/*/x', 'read')]],
    ['a * without /', [cap('mcp://erp*', 'read')]],
    ['an empty action list', [cap('mcp://erp/a', ...[])]],
    ['a partial wildcard action', [cap('mcp://erp/a', 'read*')]],
    ['a repeated action', [cap('mcp://erp/a', 'read', 'read')]],
    ['an unknown member', [{ resource: 'mcp://erp/a', actions: ['read'], extra: 1 }]],
    ['no capability', []],
    ['a dot segment', [cap('mcp://erp/public/../payroll/run', 'invoke')]],
    ['a percent-encoded dot segment', [cap('mcp://erp/public/%2e%2e/payroll/*', 'invoke')]],
    ['a backslash', [cap('mcp://erp/public\\..\\payroll', 'invoke')]],
  ])('refuses %s', (_name, input) => {
    expect(() => parseCapabilities(input)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }))
  })

  it('names the field that failed (field names are built only for the error)', () => {
    const fieldOf = (input: unknown): unknown => {
      try {
        parseCapabilities(input)
      } catch (e) {
        return (e as { details: { field: string } }).details.field
      }
      return null
    }
    const ok = cap('mcp://erp/a', 'read')
    expect(fieldOf([ok, cap('mcp://erp/*/x', 'read')])).toBe('capabilities[1].resource')
    expect(fieldOf([ok, { resource: 'mcp://erp/b c', actions: ['read'] }])).toBe('capabilities[1].resource')
    expect(fieldOf([ok, cap('mcp://erp/a', 'read', 'wri te')])).toBe('capabilities[1].actions[1]')
    expect(fieldOf([ok, cap('mcp://erp/a', 'read', 'write', 'read*')])).toBe('capabilities[1].actions[2]')
    expect(fieldOf([ok, { resource: 'mcp://erp/a', actions: ['read'], extra: 1 }])).toBe('capabilities[1].extra')
    expect(fieldOf([ok, 'x'])).toBe('capabilities[1]')
    // A repeat in a short list (compared pairwise) and in a long one (a set).
    expect(fieldOf([cap('mcp://erp/a', 'a', 'b', 'a')])).toBe('capabilities[0].actions')
    const many = Array.from({ length: 40 }, (_, i) => `act${i}`)
    expect(fieldOf([cap('mcp://erp/a', ...many)])).toBeNull()
    expect(fieldOf([cap('mcp://erp/a', ...many, 'act7')])).toBe('capabilities[0].actions')
    expect(fieldOf([{ resource: 'mcp://erp/a', actions: [, 'read'] }])).toBe('capabilities[0].actions[0]') // eslint-disable-line no-sparse-arrays
  })

  it.each([
    ['an unknown caveat', { maxCost: 3 }],
    ['an empty window', { notBefore: 10, expiresAt: 10 }],
    ['an unknown data class', { maxDataClass: 'secret' }],
    ['a fractional depth', { remainingDepth: 1.5 }],
    ['an empty audience', { audience: [] }],
    ['an empty constraint list', { constraints: { region: [] } }],
    ['an object constraint', { constraints: { region: { eu: true } } }],
  ])('refuses %s', (_name, input) => {
    expect(() => parseCaveats(input, 'ERR_MALFORMED')).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED' }))
  })
})

describe('resourceCovers', () => {
  it('covers no identifier with a dot segment (core isPlainResourceIdentifier)', () => {
    for (const wanted of ['mcp://erp/public/../payroll/run', 'mcp://erp/public/%2e%2e/payroll/run', 'mcp://erp/public/%2E%2e/payroll/run', 'mcp://erp/public/./run', 'mcp://erp/public/..%2fpayroll']) {
      expect(resourceCovers('mcp://erp/public/*', wanted), wanted).toBe(false)
      expect(resourceCovers(wanted, wanted), wanted).toBe(false)
      expect(grantCovers(grant([cap('mcp://erp/public/*', '*')]), { resource: wanted, action: 'invoke' })).toBe('capability')
    }
    expect(resourceCovers('mcp://erp/public/*', 'mcp://erp/public/run')).toBe(true)
  })

  it('matches exact identifiers exactly and prefixes by prefix', () => {
    expect(resourceCovers('mcp://erp/tools/a', 'mcp://erp/tools/a')).toBe(true)
    expect(resourceCovers('mcp://erp/tools/a', 'mcp://erp/tools/ab')).toBe(false)
    expect(resourceCovers('mcp://erp/tools/*', 'mcp://erp/tools/a')).toBe(true)
    expect(resourceCovers('mcp://erp/tools/*', 'mcp://erp/tools/x/y')).toBe(true)
    expect(resourceCovers('mcp://erp/tools/*', 'mcp://erp/tools/')).toBe(false)
    expect(resourceCovers('mcp://erp/tools/*', 'mcp://erp/toolsmith')).toBe(false)
    expect(resourceCovers('mcp://erp/*', 'mcp://erp/tools/*')).toBe(true)
    expect(resourceCovers('mcp://erp/tools/*', 'mcp://erp/*')).toBe(false)
    expect(resourceCovers('mcp://erp/tools/a', 'mcp://erp/tools/*')).toBe(false)
  })
})

describe('isAttenuation', () => {
  it('accepts the same grant and narrower ones', () => {
    expect(isAttenuation(ERP_ALL, ERP_ALL)).toEqual({ ok: true })
    expect(isAttenuation(grant([cap('mcp://erp/tools/invoices.read', 'invoke')], { maxDataClass: 'internal', audience: ['svc'] }), ERP_ALL)).toEqual({ ok: true })
  })

  it('accepts a child covered by the union of several parent capabilities', () => {
    const parent = grant([cap('mcp://erp/tools/a', 'read'), cap('mcp://erp/tools/*', 'write')])
    expect(isAttenuation(grant([cap('mcp://erp/tools/a', 'read', 'write')]), parent).ok).toBe(true)
  })

  it('names the capability and action that widen', () => {
    const parent = grant([cap('mcp://erp/tools/a', 'read')])
    const wider = cap('mcp://erp/tools/*', 'read')
    expect(isAttenuation(grant([wider]), parent)).toMatchObject({ ok: false, capability: wider, action: 'read' })
    expect(isAttenuation(grant([cap('mcp://erp/tools/a', 'read', 'write')]), parent)).toMatchObject({ ok: false, action: 'write' })
    expect(isAttenuation(grant([cap('mcp://erp/tools/a', '*')]), parent)).toMatchObject({ ok: false, action: '*' })
  })

  it.each<[string, Caveats, Caveats, string]>([
    ['an earlier notBefore', { notBefore: 5 }, { notBefore: 4 }, 'notBefore'],
    ['a later expiresAt', { expiresAt: 5 }, { expiresAt: 6 }, 'expiresAt'],
    ['a missing expiresAt', { expiresAt: 5 }, {}, 'expiresAt'],
    ['a higher data class', { maxDataClass: 'internal' }, { maxDataClass: 'confidential' }, 'maxDataClass'],
    ['a missing data class', { maxDataClass: 'internal' }, {}, 'maxDataClass'],
    ['an equal depth', { remainingDepth: 2 }, { remainingDepth: 2 }, 'remainingDepth'],
    ['a missing depth', { remainingDepth: 2 }, {}, 'remainingDepth'],
    ['any child of depth 0', { remainingDepth: 0 }, { remainingDepth: 0 }, 'remainingDepth'],
    ['another audience', { audience: ['a'] }, { audience: ['a', 'b'] }, 'audience'],
    ['a missing audience', { audience: ['a'] }, {}, 'audience'],
    ['a dropped constraint', { constraints: { region: 'eu' } }, {}, 'constraints'],
    ['a changed scalar', { constraints: { limit: 10 } }, { constraints: { limit: 11 } }, 'constraints'],
    ['a scalar of another type', { constraints: { limit: 10 } }, { constraints: { limit: '10' } }, 'constraints'],
    ['an added value', { constraints: { region: ['eu'] } }, { constraints: { region: ['eu', 'us'] } }, 'constraints'],
  ])('refuses %s', (_name, parent, child, caveat) => {
    expect(isAttenuation(grant(ERP_ALL.capabilities.slice(), child), grant(ERP_ALL.capabilities.slice(), parent))).toMatchObject({ ok: false, caveat })
  })

  it('lets a child narrow constraints: drop values, pick one, add keys', () => {
    const parent = grant(ERP_ALL.capabilities.slice(), { constraints: { region: ['eu', 'us'], limit: 10 } })
    expect(isAttenuation(grant(ERP_ALL.capabilities.slice(), { constraints: { region: ['eu'], limit: 10 } }), parent).ok).toBe(true)
    expect(isAttenuation(grant(ERP_ALL.capabilities.slice(), { constraints: { region: 'us', limit: 10, project: 'x' } }), parent).ok).toBe(true)
  })

  it('reports a malformed grant instead of throwing', () => {
    expect(isAttenuation({ capabilities: [], caveats: {} }, ERP_ALL)).toMatchObject({ ok: false })
  })
})

describe('grantCovers', () => {
  const leaf = grant([cap('mcp://erp/tools/*', 'invoke')], { maxDataClass: 'internal', audience: ['svc-a'], notBefore: 10, expiresAt: 20 })
  it('checks resource, action, data class, audience and time', () => {
    expect(grantCovers(leaf, { resource: 'mcp://erp/tools/a', action: 'invoke', audience: 'svc-a' })).toBeNull()
    expect(grantCovers(leaf, { resource: 'mcp://erp/tools/a', action: 'delete', audience: 'svc-a' })).toBe('capability')
    expect(grantCovers(leaf, { resource: 'mcp://erp/tools/a', action: 'invoke', audience: 'svc-a', dataClass: 'confidential' })).toBe('maxDataClass')
    expect(grantCovers(leaf, { resource: 'mcp://erp/tools/a', action: 'invoke' })).toBe('audience')
    expect(grantCovers(leaf, { resource: 'mcp://erp/tools/a', action: 'invoke', audience: 'svc-a', at: 20 })).toBe('time')
    expect(() => grantCovers(leaf, { resource: 'mcp://erp/tools/*', action: 'invoke' })).toThrow(TypeError)
  })
})

// ---- Reference model: enumerate what a grant allows over a small universe, check child ⊆ parent. ----

const EXACT = ['mcp://erp/tools/', 'mcp://erp/tools/a', 'mcp://erp/tools/b', 'mcp://erp/tools/x/c', 'mcp://crm/tools/a']
const PATTERNS = ['mcp://erp/*', 'mcp://erp/tools/*', 'mcp://erp/tools/x/*', 'mcp://crm/*']
// Every exact identifier, and for each prefix one identifier no other pattern or identifier names.
const U_RESOURCES = [...EXACT, ...PATTERNS.map((p) => `${p.slice(0, -1)}zz-fresh`)]
const ACTIONS = ['read', 'write', 'delete']
const U_ACTIONS = [...ACTIONS, 'zz-other']
const U_TIMES = [0, 1, 2, 3, 4, 5, 6]
const AUDIENCES = ['svc-a', 'svc-b', 'svc-c']
const U_AUDIENCES = [...AUDIENCES, 'svc-zz']
const KEYS = ['region', 'tier'] as const
const STRINGS = ['eu', 'us', '1']
const U_VALUES: (string | number | boolean)[] = [...STRINGS, 1, true, 'zz']

function matches(pattern: string, r: string): boolean {
  return pattern.endsWith('/*') ? r.startsWith(pattern.slice(0, -1)) && r.length > pattern.length - 1 : pattern === r
}

function modelAllows(g: Grant, r: string, a: string): boolean {
  return g.capabilities.some((c) => matches(c.resource, r) && (c.actions.includes('*') || c.actions.includes(a)))
}

function constraintAllows(value: ConstraintValue | undefined, v: string | number | boolean): boolean {
  if (value === undefined) return true
  return Array.isArray(value) ? value.includes(v as string) : value === v
}

/** True when every tuple the child allows, the parent allows (with pruning: skip what the child refuses). */
function modelSubset(child: Grant, parent: Grant): boolean {
  const cc = child.caveats
  const pc = parent.caveats
  const inWindow = (c: Caveats, t: number) => (c.notBefore ?? -Infinity) <= t && t < (c.expiresAt ?? Infinity)
  const classOk = (c: Caveats, d: DataAccessClass) => DATA_ACCESS_CLASSES.indexOf(d) <= DATA_ACCESS_CLASSES.indexOf(c.maxDataClass ?? 'restricted')
  const audOk = (c: Caveats, s: string) => c.audience === undefined || c.audience.includes(s)
  for (const r of U_RESOURCES) for (const a of U_ACTIONS) {
    if (!modelAllows(child, r, a)) continue
    const capP = modelAllows(parent, r, a)
    for (const d of DATA_ACCESS_CLASSES) {
      if (!classOk(cc, d)) continue
      for (const t of U_TIMES) {
        if (!inWindow(cc, t)) continue
        for (const s of U_AUDIENCES) {
          if (!audOk(cc, s)) continue
          for (const v0 of U_VALUES) for (const v1 of U_VALUES) {
            const vals = [v0, v1]
            const childOk = KEYS.every((k, i) => constraintAllows(cc.constraints?.[k], vals[i]!))
            if (!childOk) continue
            const parentOk = capP && classOk(pc, d) && inWindow(pc, t) && audOk(pc, s) && KEYS.every((k, i) => constraintAllows(pc.constraints?.[k], vals[i]!))
            if (!parentOk) return false
          }
        }
      }
    }
  }
  return true
}

function modelVerdict(child: Grant, parent: Grant): boolean {
  const depthOk = parent.caveats.remainingDepth === undefined ||
    (parent.caveats.remainingDepth > 0 && child.caveats.remainingDepth !== undefined && child.caveats.remainingDepth < parent.caveats.remainingDepth)
  return depthOk && modelSubset(child, parent)
}

const arbCapability = fc.record({
  resource: fc.constantFrom(...EXACT, ...PATTERNS),
  actions: fc.subarray([...ACTIONS, '*'], { minLength: 1 }),
})
const arbConstraint: fc.Arbitrary<ConstraintValue> = fc.oneof(
  fc.constantFrom<ConstraintValue>(...STRINGS, 1, true),
  fc.subarray(STRINGS, { minLength: 1 }),
)
const arbCaveats: fc.Arbitrary<Caveats> = fc
  .record(
    {
      notBefore: fc.integer({ min: 1, max: 5 }),
      expiresAt: fc.integer({ min: 1, max: 5 }),
      maxDataClass: fc.constantFrom(...DATA_ACCESS_CLASSES),
      remainingDepth: fc.integer({ min: 0, max: 3 }),
      audience: fc.subarray(AUDIENCES, { minLength: 1 }),
      constraints: fc.record({ region: arbConstraint, tier: arbConstraint }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  )
  .map((c) => (c.notBefore !== undefined && c.expiresAt !== undefined && c.notBefore >= c.expiresAt ? { ...c, expiresAt: undefined } : c))
  .map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as Caveats)
const arbGrant: fc.Arbitrary<Grant> = fc.record({ capabilities: fc.array(arbCapability, { minLength: 1, maxLength: 3 }), caveats: arbCaveats })

/** A child derived from the parent by random narrowing steps, so that many pairs are attenuations. */
const arbNarrowed: fc.Arbitrary<[Grant, Grant]> = arbGrant.chain((parent) =>
  fc.tuple(fc.constant(parent), fc.record({
    capabilities: fc.subarray(parent.capabilities.slice(), { minLength: 1 }).chain((caps) =>
      fc.tuple(...caps.map((c) => fc.subarray(c.actions.slice(), { minLength: 1 }).map((actions) => ({ resource: c.resource, actions }))))),
    caveats: fc.tuple(arbCaveats, fc.boolean()).map(([extra, keep]) => {
      const d = parent.caveats.remainingDepth
      const base = keep ? { ...parent.caveats, ...(d === undefined ? {} : { remainingDepth: Math.max(d - 1, 0) }) } : {}
      const merged = { ...base, ...extra }
      return merged.notBefore !== undefined && merged.expiresAt !== undefined && merged.notBefore >= merged.expiresAt ? base : merged
    }),
  })),
)

describe('isAttenuation against the reference model', () => {
  it('agrees on random parent/child pairs', () => {
    fc.assert(fc.property(arbGrant, arbGrant, (child, parent) => {
      expect(isAttenuation(child, parent).ok).toBe(modelVerdict(child, parent))
    }), { numRuns: 400 })
  })

  it('agrees on capabilities alone (no caveats on either side)', () => {
    const caps = fc.array(arbCapability, { minLength: 1, maxLength: 3 })
    fc.assert(fc.property(caps, caps, (c, p) => {
      expect(isAttenuation(grant(c), grant(p)).ok).toBe(modelVerdict(grant(c), grant(p)))
    }), { numRuns: 1000 })
  })

  it('agrees on caveats alone (same capabilities on both sides)', () => {
    fc.assert(fc.property(arbCaveats, arbCaveats, (c, p) => {
      expect(isAttenuation(grant(ERP_ALL.capabilities.slice(), c), grant(ERP_ALL.capabilities.slice(), p)).ok)
        .toBe(modelVerdict(grant(ERP_ALL.capabilities.slice(), c), grant(ERP_ALL.capabilities.slice(), p)))
    }), { numRuns: 1000 })
  })

  it('agrees on children derived by narrowing their parent (mostly attenuations)', () => {
    let accepted = 0
    fc.assert(fc.property(arbNarrowed, ([parent, child]) => {
      const verdict = isAttenuation(child, parent).ok
      if (verdict) accepted++
      expect(verdict).toBe(modelVerdict(child, parent))
    }), { numRuns: 400 })
    expect(accepted).toBeGreaterThan(20)
  })
})

// A link read by parseCapabilityLink keeps its capabilities and caveats deep-frozen, and isAttenuation
// compares such links without parsing them again: its verdict (reason and all) must be the one it
// gives for plain copies of the same grants, which it parses.
describe('isAttenuation on links read by parseCapabilityLink', () => {
  const [issuerKey, childKey, parentKey] = [generateEd25519KeyPair(), generateEd25519KeyPair(), generateEd25519KeyPair()]
  const linkOf = (g: Grant, sub: string) => {
    const nbf = g.caveats.notBefore ?? 0
    const exp = g.caveats.expiresAt ?? 10
    return parseCapabilityLink({
      iss: issuerKey.did, sub, nbf, exp,
      vc: { type: ['VerifiableCredential', 'AgentCapabilityCredential'], credentialSubject: { id: sub, capabilities: g.capabilities, caveats: g.caveats } },
    })
  }
  const plain = (l: ReturnType<typeof linkOf>): Grant => structuredClone({ capabilities: l.capabilities, caveats: l.caveats })

  it('gives the verdict it gives for plain copies, on random and on narrowed pairs', () => {
    const same = (child: Grant, parent: Grant) => {
      const c = linkOf(child, childKey.did)
      const p = linkOf(parent, parentKey.did)
      expect(Object.isFrozen(c.capabilities) && Object.isFrozen(c.caveats)).toBe(true)
      const copies = [plain(c), plain(p)] as const
      expect(Object.isFrozen(copies[0].capabilities)).toBe(false)
      expect(isAttenuation(c, p)).toEqual(isAttenuation(copies[0], copies[1]))
      expect(isAttenuation(c, copies[1])).toEqual(isAttenuation(copies[0], p))
    }
    fc.assert(fc.property(arbGrant, arbGrant, same), { numRuns: 400 })
    fc.assert(fc.property(arbNarrowed, ([parent, child]) => same(child, parent)), { numRuns: 400 })
  })

  it('leaves no visible mark on a link\'s caveats (plain prototype, the same members, the same JSON)', () => {
    const link = linkOf({ capabilities: [cap('mcp://erp/tools/*', '*')], caveats: { remainingDepth: 2 } }, childKey.did)
    expect(Object.getPrototypeOf(link.caveats)).toBe(Object.prototype)
    expect(Reflect.ownKeys(link.caveats)).toEqual(['remainingDepth', 'notBefore', 'expiresAt'])
    expect(JSON.parse(JSON.stringify(link.caveats))).toEqual({ remainingDepth: 2, notBefore: 0, expiresAt: 10 })
  })

  it('parses a grant that only looks like a parsed one (frozen, not read by parseCapabilityLink), or a parsed one with other capabilities or copied caveats', () => {
    const wide = Object.freeze([Object.freeze({ resource: 'mcp://*/x', actions: Object.freeze(['read']) })])
    const child = linkOf({ capabilities: [cap('mcp://erp/tools/a', 'read')], caveats: {} }, childKey.did)
    const parentLink = linkOf({ capabilities: [cap('mcp://erp/tools/*', '*')], caveats: { remainingDepth: 1 } }, parentKey.did)
    // The child's stamped caveats with a capability list that was not parsed with them: parsed, refused.
    expect(isAttenuation({ capabilities: wide, caveats: child.caveats }, parentLink)).toMatchObject({ ok: false, reason: expect.stringContaining('malformed grant') })
    // A spread copy of stamped caveats, changed: parsed (remainingDepth 99 is refused), not taken as parsed.
    expect(isAttenuation({ capabilities: child.capabilities, caveats: Object.freeze({ ...child.caveats, remainingDepth: 99 }) }, parentLink)).toMatchObject({ ok: false, reason: expect.stringContaining('malformed grant') })
  })

  it('parses a grant that only looks like a parsed one (frozen, not read by parseCapabilityLink)', () => {
    const forged = Object.freeze([Object.freeze({ resource: 'mcp://erp/*/x', actions: Object.freeze(['read']) })])
    const parent = linkOf(ERP_ALL, parentKey.did)
    expect(isAttenuation({ capabilities: forged, caveats: Object.freeze({}) }, parent)).toMatchObject({ ok: false, reason: expect.stringContaining('malformed grant') })
  })
})
