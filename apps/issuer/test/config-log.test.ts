// AGENTID_LOG_SEQUENCER: on by default; off only when said exactly (it exists to measure the log's cost).
import { describe, expect, it } from 'vitest'
import { AgentIdError } from '@agentid/core'
import { configFromEnv } from '../src/config.js'

describe('AGENTID_LOG_SEQUENCER', () => {
  it('is on unless set to off', () => {
    expect(configFromEnv({}).logSequencer).toBe(true)
    expect(configFromEnv({ AGENTID_LOG_SEQUENCER: 'on' }).logSequencer).toBe(true)
    expect(configFromEnv({ AGENTID_LOG_SEQUENCER: 'off' }).logSequencer).toBe(false)
  })

  it('refuses anything else', () => {
    for (const value of ['OFF', 'false', '0', 'no', ' off', 'off\n']) {
      let error: unknown
      try {
        configFromEnv({ AGENTID_LOG_SEQUENCER: value })
      } catch (e) {
        error = e
      }
      expect(error, JSON.stringify(value)).toBeInstanceOf(AgentIdError)
      expect((error as AgentIdError).code).toBe('ERR_INVALID_INPUT')
    }
  })
})
