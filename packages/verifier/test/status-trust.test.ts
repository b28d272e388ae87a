// StatusListTrust remembers its answers (a link seen again costs a lookup, not URL parsing): the
// remembered answers must never outlive the directories they came from.
import { describe, expect, it } from 'vitest'
import { StatusListTrust } from '../src/status.js'

describe('StatusListTrust: remembered answers', () => {
  it('allows a URL under a learned directory, again and again, and nothing else', () => {
    const trust = new StatusListTrust()
    const url = 'https://issuer.example/v1/status-lists/1'
    expect(trust.allows(url)).toBe(false)
    trust.learn(url)
    trust.learn(url)
    for (let i = 0; i < 3; i++) expect(trust.allows(url)).toBe(true)
    expect(trust.allows('https://issuer.example/v1/status-lists/2')).toBe(true)
    expect(trust.allows('https://issuer.example/v2/status-lists/1')).toBe(false)
    expect(trust.allows('https://169.254.169.254/v1/status-lists/1')).toBe(false)
    expect(trust.allows('http://issuer.example/v1/status-lists/1')).toBe(false)
  })

  it('forgets an allowed URL once its directory is evicted by 256 newer ones', () => {
    const trust = new StatusListTrust()
    const first = 'https://issuer.example/d0/list'
    trust.learn(first)
    expect(trust.allows(first)).toBe(true)
    for (let i = 1; i <= 256; i++) trust.learn(`https://issuer.example/d${i}/list`)
    expect(trust.allows(first)).toBe(false)
    // learning it again (the same URL as the last remembered learn is not short-cut once evicted)
    trust.learn(first)
    expect(trust.allows(first)).toBe(true)
  })

  it('explicit prefixes and exact URLs', () => {
    const trust = new StatusListTrust(['https://lists.example/', 'https://one.example/list'])
    expect(trust.allows('https://lists.example/a/b')).toBe(true)
    expect(trust.allows('https://one.example/list')).toBe(true)
    expect(trust.allows('https://one.example/list2')).toBe(false)
    expect(trust.allows('https://one.example/list2')).toBe(false)
  })
})
