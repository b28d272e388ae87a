import { isPlainResourceIdentifier } from '@agentid/core'
import { describe, expect, it } from 'vitest'

describe('isPlainResourceIdentifier', () => {
  it('accepts identifiers that name what they say', () => {
    for (const id of ['mcp://erp/tools/invoices.read', 'mcp://erp/tools/*', 'mcp://erp/a..b/c', 'mcp://erp/.hidden', 'mcp://erp/x?q=../y', 'docs://readme#../z', 'https://erp.example/', 'urn:x:...']) {
      expect(isPlainResourceIdentifier(id), id).toBe(true)
    }
  })

  it('refuses dot segments, plain or percent-encoded, encoded slashes, backslashes and control characters', () => {
    for (const id of [
      'mcp://erp/public/../payroll/run', 'mcp://erp/public/%2e%2e/payroll/run', 'mcp://erp/public/%2E%2E/payroll/run',
      'mcp://erp/public/.%2e/payroll/run', 'mcp://erp/public/%2e./payroll/run', 'mcp://erp/./x', 'mcp://erp/%2e/x',
      'mcp://erp/public/..', 'mcp://erp/public/.', 'mcp://erp/public/..%2fpayroll', 'mcp://erp/public/..%2Fpayroll',
      'mcp://erp/public/..%5cpayroll', 'mcp://erp/public\\..\\payroll', 'mcp://erp/a\u0000b', 'mcp://erp/a\tb', 'mcp://erp/a\u007f',
      '../x', '..',
    ]) {
      expect(isPlainResourceIdentifier(id), JSON.stringify(id)).toBe(false)
    }
    expect(isPlainResourceIdentifier(42 as unknown as string)).toBe(false)
  })
})
