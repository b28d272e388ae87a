import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import { describe, expect, it } from 'vitest'
import { AGENTID_CEDAR_SCHEMA, type AuthorizationSubject, type PolicyResource } from '@agentid/policy'
import { ACTION_RESOURCE, principalEntities, requestContext, RequestError, resourceEntity } from '../src/internal/request.js'
import { DIDS, subject } from './fixtures.js'

// The engine calls Cedar with validateRequest off: what it builds must conform to the schema on its own.
const subjects: AuthorizationSubject[] = [
  subject('alice'),
  subject('bob', { toolProfile: 'support-desk', model: { name: 'm', version: '1' }, dataAccessClass: 'restricted' }),
  subject('mallory', { toolProfile: [] }, {
    user: { id: 'alice@corp', issuer: 'https://idp.corp' },
    delegation: { root: DIDS.alice, depth: 2 },
    authorizationDetails: [{ type: 'payment', actions: ['refund', 'read'], locations: ['https://a', 'https://b'], datatypes: ['x'] }, { type: 'other', actions: ['x'], locations: [] }],
    requestedDataClass: 'confidential',
    time: 1_800_000_000.7,
  }),
  subject('alice', {}, { user: { id: 'bob' }, delegation: null, authorizationDetails: [] }),
]
const resources: PolicyResource[] = [
  { type: 'Tool', server: 'gh', name: 'a/b' },
  { type: 'McpServer', id: 'gh' },
  { type: 'Resource', server: 'gh', uri: 'file:///x' },
  { type: 'Prompt', server: 'gh', name: 'p' },
  { type: 'Workflow', id: 'w/1' },
]

describe('request building', () => {
  it('builds entities and contexts that the schema accepts, for every action', () => {
    for (const s of subjects) {
      for (const resource of resources) {
        const { entity, parent } = resourceEntity(resource)
        const entities = [...principalEntities(s), entity, ...(parent ? [parent] : [])]
        const parsed = cedar.checkParseEntities({ entities: entities as never, schema: AGENTID_CEDAR_SCHEMA })
        expect(parsed, JSON.stringify(entities)).toEqual({ type: 'success' })
        const action = Object.entries(ACTION_RESOURCE).find(([, t]) => t === resource.type)![0]
        const context = requestContext(s, 1_700_000_000)
        expect(cedar.checkParseContext({ context: context as never, schema: AGENTID_CEDAR_SCHEMA, action: { type: 'AgentId::Action', id: action } })).toEqual({ type: 'success' })
      }
    }
  })

  it('flattens authorization details into grants, and takes the time from the subject or the clock', () => {
    const c = requestContext(subjects[2]!, 1_700_000_000)
    expect(c.authorizationGrants).toEqual([
      { type: 'payment', action: 'refund', location: 'https://a' },
      { type: 'payment', action: 'refund', location: 'https://b' },
      { type: 'payment', action: 'read', location: 'https://a' },
      { type: 'payment', action: 'read', location: 'https://b' },
      { type: 'other', action: 'x', location: '' },
    ])
    expect(c).toMatchObject({ delegationDepth: 2, delegationRoot: DIDS.alice, requestedDataClass: 'confidential', requestedDataLevel: 2, time: 1_800_000_000 })
    expect(requestContext(subjects[0]!, 1_700_000_000)).toEqual({ delegationDepth: 0, authorizationDetails: [], authorizationGrants: [], time: 1_700_000_000 })
  })

  it('names tools, resources and prompts "<server>/<name>" under their server, and refuses a server id with "/"', () => {
    expect(resourceEntity({ type: 'Tool', server: 'gh', name: 'a/b' })).toEqual({
      entity: { uid: { type: 'AgentId::Tool', id: 'gh/a/b' }, attrs: { name: 'a/b', server: 'gh', qualifiedName: 'gh/a/b' }, parents: [{ type: 'AgentId::McpServer', id: 'gh' }] },
      parent: { uid: { type: 'AgentId::McpServer', id: 'gh' }, attrs: {}, parents: [] },
    })
    expect(() => resourceEntity({ type: 'Tool', server: 'g/h', name: 'b' })).toThrow(RequestError)
    expect(() => resourceEntity({ type: 'McpServer', id: 'g/h' })).toThrow(RequestError)
  })

  it('gives the agent its claims, its data level, and the user as an entity reference', () => {
    const [agent, user] = principalEntities(subjects[2]!)
    expect(agent).toMatchObject({ uid: { type: 'AgentId::Agent', id: DIDS.mallory }, attrs: { dataAccessLevel: 1, toolProfile: [], user: { __entity: { type: 'AgentId::User', id: 'alice@corp' } } } })
    expect(user).toEqual({ uid: { type: 'AgentId::User', id: 'alice@corp' }, attrs: { issuer: 'https://idp.corp' }, parents: [] })
    expect(principalEntities(subjects[1]!)[0]!.attrs).toMatchObject({ toolProfile: [], toolProfileName: 'support-desk', dataAccessLevel: 3 })
  })

  it('bounds grants: a cross product beyond 1,024 is malformed', () => {
    const many = Array.from({ length: 40 }, (_, i) => `a${i}`)
    expect(() => requestContext({ ...subjects[0]!, authorizationDetails: [{ type: 't', actions: many, locations: many }] }, 0)).toThrow(RequestError)
  })
})

describe('attestation attributes', () => {
  it('come only from the issuer-written attestation.verified list', async () => {
    const { attestationAttributes } = await import('../src/internal/request.js')
    expect(attestationAttributes(undefined)).toEqual({ attested: false, attestationKinds: [], attestedDigests: [], attestedPcr0: [] })
    expect(attestationAttributes({ kind: 'nitro', note: 'free-form' })).toEqual({ attested: false, attestationKinds: [], attestedDigests: [], attestedPcr0: [] })
    expect(attestationAttributes({ verified: 'yes' }).attested).toBe(false)
    expect(attestationAttributes({ verified: [{ kind: 'tpm' }, 7, null] }).attested).toBe(false)
    expect(attestationAttributes({
      verified: [
        { kind: 'sigstore', subject: { name: 'a.txt', sha256: 'ab' } },
        { kind: 'sigstore', subject: { name: 'pkg:npm/x@1', sha512: 'cd' } },
        { kind: 'nitro', pcrs: { 0: '00', 1: '11' } },
        { kind: 'eat', attester: 'tee-1' },
      ],
    })).toEqual({ attested: true, attestationKinds: ['eat', 'nitro', 'sigstore'], attestedDigests: ['sha256:ab', 'sha512:cd'], attestedPcr0: ['00'] })
  })
})
