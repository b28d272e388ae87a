// The other spellings of a hop's command that the service which ran it may have resolved it to. A hop
// names the call as its caller signed it, while the server acts on what its router or resolver makes of
// it: an HTTP path with an escaped unreserved character decoded (`/v1/ch%61rges` runs the `/v1/charges`
// route in Fastify and Hono), an MCP resource URI as `new URL()` resolves it (scheme case, default port,
// dot segments, whitespace: what the SDK's McpServer reads, and what the MCP guard decides a call on as
// well). `context.lineage.commands` holds both, so that `commands.contains(…)` written for one spelling
// also sees a past hop that used another.

// An escape (either case) of an unreserved character: A-Z a-z 0-9 - . _ ~ (RFC 3986 §2.3).
const UNRESERVED_ESCAPE = /%(2[DEde]|3[0-9]|4[1-9A-Fa-f]|5[0-9AFaf]|6[1-9A-Fa-f]|7[0-9AEae])/g

/** The command's other forms (`METHOD /path`, `resources/read <uri>`), none when it has no other. */
export function commandAliases(command: string): string[] {
  const space = command.indexOf(' ')
  if (space <= 0) return []
  const verb = command.slice(0, space)
  const http = /^[A-Z]+$/.test(verb)
  if (!http && verb !== 'resources/read') return [] // tool and prompt names are matched as sent
  const name = command.slice(space + 1)
  const forms = new Set<string>()
  const decoded = name.replace(UNRESERVED_ESCAPE, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
  forms.add(decoded)
  if (!http) {
    for (const uri of [name, decoded]) {
      try {
        forms.add(new URL(uri).href)
      } catch {
        // Not a URL: only the string as sent (the SDK server cannot read it either).
      }
    }
  }
  forms.delete(name)
  return [...forms].map((form) => `${verb} ${form}`)
}
