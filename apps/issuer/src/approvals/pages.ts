// The approval pages the issuer serves: self-contained HTML, our own scripts and the bundled
// @simplewebauthn/browser, all from this origin (nothing from a CDN), under a strict Content-Security-Policy.
// Every value shown comes from the API as data and is written with textContent, never as HTML: the agent's
// arguments are rendered as JSON values (strings quoted, control and bidi characters escaped), never as text
// that could read like an instruction from the issuer.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/** The Content-Security-Policy of every approval page and asset. */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** Headers of every page and asset (with the CSP). */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': PAGE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-store',
})

function page(title: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/approvals/assets/style.css">
<script src="/approvals/assets/webauthn.js" defer></script>
<script src="/approvals/assets/${script}" defer></script>
</head>
<body>
<main>
<h1>${title}</h1>
<p class="who">agentid issuer</p>
<div id="content"><p>Loading…</p></div>
<p id="result" role="status" aria-live="polite"></p>
</main>
</body>
</html>
`
}

export const ENROL_HTML = page('Enrol as an approver', 'enrol.js')
export const APPROVE_HTML = page('Approve a call', 'approve.js')

export const STYLE_CSS = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #111; }
main { max-width: 760px; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
.who { color: #555; margin: 0 0 1.2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th { text-align: left; vertical-align: top; width: 11rem; color: #444; font-weight: 600; padding: .3rem .6rem .3rem 0; }
td { padding: .3rem 0; word-break: break-all; }
code, .value { font-family: ui-monospace, monospace; font-size: 13px; white-space: pre-wrap; }
.args { border: 1px solid #ccd; border-radius: 6px; padding: .5rem .8rem; background: #fafbff; }
.args th { font-family: ui-monospace, monospace; font-weight: 500; }
.note { color: #555; font-size: 13px; }
button { font-size: 1rem; padding: .6rem 1.4rem; border-radius: 6px; border: 0; cursor: pointer; margin-right: .8rem; }
#approve, #enrol { background: #0a7d32; color: #fff; }
#deny { background: #b3261e; color: #fff; }
button:disabled { opacity: .5; cursor: default; }
#result { font-weight: 600; }
.status-approved { color: #0a7d32; } .status-denied, .error { color: #b3261e; }
`

// Shared helpers of both scripts: JSON calls to this origin, and rendering data as text only.
const COMMON_JS = String.raw`
'use strict'
const $ = (id) => document.getElementById(id)
async function api(method, path, body) {
  const res = await fetch(path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined, credentials: 'omit', cache: 'no-store' })
  const data = await res.json().catch(() => ({}))
  if (!res.ok) throw Object.assign(new Error((data.error && data.error.message) || ('HTTP ' + res.status)), { code: data.error && data.error.code })
  return data
}
// A JSON value as one line of text: strings quoted, and every control, format (bidi, zero-width) or
// non-ASCII space character escaped, so what is shown is exactly what is signed.
function show(value) {
  const json = JSON.stringify(value)
  return json === undefined ? 'undefined' : json.replace(/[\u0000-\u001f\u007f-\u00a0\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb]/g,
    (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}
function el(tag, text, cls) {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = text
  if (cls) e.className = cls
  return e
}
function row(table, label, value, cls) {
  const tr = el('tr')
  tr.append(el('th', label))
  const td = el('td')
  if (value instanceof Node) td.append(value); else td.append(el('span', value, cls || 'value'))
  tr.append(td)
  table.append(tr)
}
function fail(error) {
  const r = $('result')
  r.className = 'error'
  r.textContent = (error && error.code ? error.code + ': ' : '') + (error && error.message ? error.message : String(error))
}
`

export const ENROL_JS = COMMON_JS + String.raw`
async function main() {
  const token = location.hash.slice(1)
  const content = $('content')
  let info
  try {
    info = await api('POST', '/v1/enrolments/info', { token })
  } catch (e) { content.textContent = ''; return fail(e) }
  content.textContent = ''
  const t = el('table')
  row(t, 'Approver', show(info.name))
  row(t, 'May approve for controllers', show(info.approves.controllers))
  row(t, 'May approve for groups', show(info.approves.groups))
  row(t, 'Passkey for', show(info.rpId))
  row(t, 'Link valid until', info.expiresAt)
  content.append(t)
  content.append(el('p', 'Create a passkey on this device. Your authenticator will ask you to verify yourself (PIN or biometrics).', 'note'))
  const b = el('button', 'Create passkey')
  b.id = 'enrol'
  content.append(b)
  b.addEventListener('click', async () => {
    b.disabled = true
    try {
      const optionsJSON = await api('POST', '/v1/enrolments/options', { token })
      const response = await SimpleWebAuthnBrowser.startRegistration({ optionsJSON })
      const done = await api('POST', '/v1/enrolments/verify', { token, response })
      const r = $('result')
      r.className = 'status-approved'
      r.textContent = 'Enrolled: approver ' + done.approverId + ', credential ' + done.credentialId
      history.replaceState(null, '', location.pathname)
    } catch (e) { b.disabled = false; fail(e) }
  })
}
main()
`

export const APPROVE_JS = COMMON_JS + String.raw`
function argsTable(args) {
  const box = el('div', undefined, 'args')
  if (args === null || typeof args !== 'object' || Array.isArray(args)) { box.append(el('code', show(args))); return box }
  const keys = Object.keys(args).sort()
  if (keys.length === 0) { box.append(el('code', '{}')); return box }
  const t = el('table')
  for (const k of keys) row(t, show(k), show(args[k]))
  box.append(t)
  return box
}
async function main() {
  const id = location.pathname.split('/').pop()
  const content = $('content')
  let a
  try {
    a = await api('GET', '/v1/approvals/' + encodeURIComponent(id))
  } catch (e) { content.textContent = ''; return fail(e) }
  const c = a.call
  content.textContent = ''
  content.append(el('p', 'An agent asks to make the call below. Approve only if you expect exactly this call, with exactly these arguments.', 'note'))
  const t = el('table')
  row(t, 'Status', a.status, 'value status-' + a.status)
  row(t, 'Command', show(c.command))
  row(t, 'Target', show(c.target))
  row(t, 'Arguments', argsTable(c.arguments))
  row(t, 'Arguments digest', c.argumentsDigest)
  row(t, 'Agent', show(c.agent))
  row(t, 'Controller', show(c.controller))
  row(t, 'Acting for user', c.user ? show(c.user.id) + (c.user.issuer ? ' at ' + show(c.user.issuer) : '') : 'nobody (the agent acts for itself)')
  row(t, 'Approver group', c.group === null ? 'the controller\'s approvers' : show(c.group))
  row(t, 'Transaction', show(c.transactionId))
  row(t, 'Request', show(c.id))
  row(t, 'Requested', new Date(c.createdAt * 1000).toISOString())
  row(t, 'Expires', new Date(c.expiresAt * 1000).toISOString())
  content.append(t)
  if (a.status !== 'pending') return
  const approve = el('button', 'Approve with passkey'); approve.id = 'approve'
  const deny = el('button', 'Deny with passkey'); deny.id = 'deny'
  content.append(approve, deny)
  const decide = async (decision) => {
    approve.disabled = deny.disabled = true
    try {
      const options = await api('POST', '/v1/approvals/' + encodeURIComponent(id) + '/options', {})
      const response = await SimpleWebAuthnBrowser.startAuthentication({ optionsJSON: options[decision] })
      const done = await api('POST', '/v1/approvals/' + encodeURIComponent(id) + '/decision', { decision, response })
      const r = $('result')
      r.className = 'status-' + done.status
      r.textContent = (done.status === 'approved' ? 'Approved' : 'Denied') + ' by ' + done.approver.name
    } catch (e) { approve.disabled = deny.disabled = false; fail(e) }
  }
  approve.addEventListener('click', () => decide('approve'))
  deny.addEventListener('click', () => decide('deny'))
}
main()
`

let webauthnBundle: string | undefined

/** The UMD bundle of @simplewebauthn/browser (global `SimpleWebAuthnBrowser`), read once from its package. */
export function webauthnBrowserBundle(): string {
  if (webauthnBundle === undefined) {
    const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser')
    webauthnBundle = readFileSync(join(dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8')
  }
  return webauthnBundle
}
