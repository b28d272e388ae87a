import { describe, expect, it } from 'vitest'
import {
  AgentIdError,
  decodeJwt,
  isAgentIdError,
  parseAgentClaims,
  StatusList,
  StatusListError,
  VERIFICATION_ERROR_CODES,
  VerificationError,
  type AgentIdErrorCode,
} from '@agentid/core'
import { thrown } from './helpers.js'

describe('AgentIdError', () => {
  it('carries code, details and cause, and is an Error', () => {
    const cause = new Error('disk full')
    const error = new AgentIdError('ERR_INTERNAL', 'storage failed', { cause, details: { table: 'agents' } })
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(AgentIdError)
    expect(error).not.toBeInstanceOf(VerificationError)
    expect(error.code).toBe('ERR_INTERNAL')
    expect(error.details).toEqual({ table: 'agents' })
    expect(error.cause).toBe(cause)
    expect(error.name).toBe('AgentIdError')
    expect(typeof error.stack).toBe('string')
  })

  it('defaults details to a fresh empty object and sets no cause', () => {
    const a = new AgentIdError('ERR_NOT_FOUND', 'no such agent')
    const b = new AgentIdError('ERR_NOT_FOUND', 'no such agent')
    expect(a.details).toEqual({})
    expect(a.details).not.toBe(b.details)
    expect('cause' in a).toBe(false)
  })

  it('keeps a falsy cause that is not undefined', () => {
    expect(new AgentIdError('ERR_INTERNAL', 'x', { cause: 0 }).cause).toBe(0)
    expect(new AgentIdError('ERR_INTERNAL', 'x', { cause: null }).cause).toBeNull()
  })
})

describe('VerificationError', () => {
  it('is an AgentIdError and an Error, with its own name', () => {
    const cause = new TypeError('bad')
    const error = new VerificationError('ERR_EXPIRED', 'expired', { cause, details: { exp: 1 } })
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(AgentIdError)
    expect(error).toBeInstanceOf(VerificationError)
    expect(error.name).toBe('VerificationError')
    expect(error.code).toBe('ERR_EXPIRED')
    expect(error.details).toEqual({ exp: 1 })
    expect(error.cause).toBe(cause)
  })

  it('constructs with every verification code; the list is frozen, unique and ERR_-prefixed', () => {
    expect(Object.isFrozen(VERIFICATION_ERROR_CODES)).toBe(true)
    expect(new Set(VERIFICATION_ERROR_CODES).size).toBe(VERIFICATION_ERROR_CODES.length)
    expect(VERIFICATION_ERROR_CODES).toContain('ERR_MALFORMED')
    expect(VERIFICATION_ERROR_CODES).toContain('ERR_SIGNATURE_INVALID')
    expect(VERIFICATION_ERROR_CODES).toContain('ERR_REVOKED')
    expect(VERIFICATION_ERROR_CODES).not.toContain('ERR_INVALID_INPUT')
    for (const code of VERIFICATION_ERROR_CODES) {
      expect(code).toMatch(/^ERR_[A-Z_]+$/)
      expect(new VerificationError(code, 'x').code).toBe(code)
    }
  })

  it('a switch on code narrows (compile-time) and routes (run-time)', () => {
    const route = (error: AgentIdError): string => {
      const code: AgentIdErrorCode = error.code
      switch (code) {
        case 'ERR_REVOKED':
          return 'deny'
        case 'ERR_STATUS_UNAVAILABLE':
          return 'retry'
        default:
          return 'other'
      }
    }
    expect(route(new VerificationError('ERR_REVOKED', 'x'))).toBe('deny')
    expect(route(new VerificationError('ERR_STATUS_UNAVAILABLE', 'x'))).toBe('retry')
  })
})

describe('StatusListError', () => {
  it('is an AgentIdError with code ERR_MALFORMED and the spec name in two places', () => {
    const cause = new Error('zlib')
    const error = new StatusListError('RANGE_ERROR', 'past the end', cause)
    expect(error).toBeInstanceOf(AgentIdError)
    expect(error).not.toBeInstanceOf(VerificationError)
    expect(error.name).toBe('StatusListError')
    expect(error.code).toBe('ERR_MALFORMED')
    expect(error.statusListError).toBe('RANGE_ERROR')
    expect(error.details).toEqual({ statusListError: 'RANGE_ERROR' })
    expect(error.cause).toBe(cause)
  })

  it('decode failures keep the zlib error as cause', () => {
    const error = thrown(() => StatusList.decode('uAAAAAAAAAAAAAAAAAAAAAAAAAAAA'))
    expect(error).toBeInstanceOf(StatusListError)
    expect(error.cause).toBeInstanceOf(Error)
  })
})

describe('isAgentIdError', () => {
  it('is true only for real AgentIdError instances', () => {
    expect(isAgentIdError(new AgentIdError('ERR_CONFLICT', 'x'))).toBe(true)
    expect(isAgentIdError(new VerificationError('ERR_REPLAY', 'x'))).toBe(true)
    expect(isAgentIdError(new StatusListError('RANGE_ERROR', 'x'))).toBe(true)
    expect(isAgentIdError(new Error('ERR_MALFORMED'))).toBe(false)
    expect(isAgentIdError(Object.assign(new Error('x'), { code: 'ERR_MALFORMED', details: {} }))).toBe(false)
    expect(isAgentIdError({ name: 'AgentIdError', code: 'ERR_MALFORMED', details: {} })).toBe(false)
    expect(isAgentIdError(null)).toBe(false)
    expect(isAgentIdError(undefined)).toBe(false)
    expect(isAgentIdError('ERR_MALFORMED')).toBe(false)
  })

  it('the library throws them: a verification failure and an input error', () => {
    const verification = thrown(() => decodeJwt('not a token'))
    expect(isAgentIdError(verification)).toBe(true)
    expect(verification).toBeInstanceOf(VerificationError)
    const input = thrown(() => parseAgentClaims(null))
    expect(isAgentIdError(input)).toBe(true)
    expect(input).not.toBeInstanceOf(VerificationError)
    expect(input.code).toBe('ERR_INVALID_INPUT')
  })
})
