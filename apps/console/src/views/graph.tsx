// The delegation graph around one agent, laid out by dagre (left to right: the issuer's root links,
// then each link to its delegatee) and drawn as SVG. Revoked links are red and dashed, expired ones
// grey and dashed; every node and link has a text label, and the same links are listed in a table.
import dagre from '@dagrejs/dagre'
import type { GraphLink, GraphNode } from '../api'
import { agentHref } from '../app'
import { shortDid } from './common'

const W = 210
const H = 48

function nodeText(n: GraphNode, self: string): [string, string] {
  if (n.kind === 'issuer') return ['issuer', shortDid(n.id)]
  if (n.kind === 'other') return ["another orchestrator's agent", shortDid(n.id)]
  if (n.kind === 'external') return ['not spawned here', shortDid(n.id)]
  const purpose = n.purpose ?? ''
  return [`${n.id === self ? 'this agent' : shortDid(n.id)}${n.status === 'revoked' ? ' (revoked)' : ''}`, purpose.length > 30 ? `${purpose.slice(0, 29)}…` : purpose]
}

export function DelegationGraph({ nodes, links, self }: { nodes: GraphNode[]; links: GraphLink[]; self: string }) {
  const g = new dagre.graphlib.Graph({ multigraph: true })
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 70, marginx: 12, marginy: 12 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const n of nodes) g.setNode(n.id, { width: W, height: H })
  for (const l of links) g.setEdge(l.from, l.to, { width: 60, height: 16, labelpos: 'c' }, l.id)
  dagre.layout(g)
  const size = g.graph() as { width?: number; height?: number }
  const width = Math.max(size.width ?? W, W)
  const height = Math.max(size.height ?? H, H)
  const byId = new Map(nodes.map((n) => [n.id, n]))

  return (
    <figure class="graph">
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="group" aria-label={`Delegation graph: ${nodes.length} parties, ${links.length} links`}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow" /></marker>
          <marker id="arrow-revoked" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow-revoked" /></marker>
        </defs>
        {links.map((l) => {
          const e = g.edge({ v: l.from, w: l.to, name: l.id }) as { points: { x: number; y: number }[]; x: number; y: number } | undefined
          if (!e) return null
          const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')
          return (
            <g key={l.id} class={`link link-${l.status}`} data-link={l.id}>
              <title>{`${l.status} link ${l.id} from ${l.from} to ${l.to}`}</title>
              <path d={d} marker-end={l.status === 'revoked' ? 'url(#arrow-revoked)' : 'url(#arrow)'} />
              {l.status !== 'active' && <text x={e.x} y={e.y} text-anchor="middle" class="link-label">{l.status}</text>}
            </g>
          )
        })}
        {nodes.map((n) => {
          const p = g.node(n.id) as { x: number; y: number }
          const [line1, line2] = nodeText(n, self)
          const box = (
            <>
              <rect x={p.x - W / 2} y={p.y - H / 2} width={W} height={H} rx="6" />
              <text x={p.x} y={p.y - 4} text-anchor="middle" class="n1">{line1}</text>
              <text x={p.x} y={p.y + 13} text-anchor="middle" class="n2">{line2}</text>
            </>
          )
          const cls = `node node-${n.kind}${n.id === self ? ' node-self' : ''}${n.status === 'revoked' ? ' node-revoked' : ''}`
          const label = `${line1}: ${n.id}`
          // Agents this session may open are links (Tab reaches them; Enter opens).
          return n.kind === 'agent' && n.id !== self
            ? <a key={n.id} href={agentHref(n.id)} class={cls} aria-label={label}><title>{n.id}</title>{box}</a>
            : <g key={n.id} class={cls} role="img" aria-label={label}><title>{n.id}</title>{box}</g>
        })}
      </svg>
      <figcaption class="legend">
        <span class="key key-active">active link</span> <span class="key key-revoked">revoked link</span> <span class="key key-expired">expired link</span>
        {' '}Arrows point from the delegator to the delegatee.
      </figcaption>
      <span class="sr-only">{byId.size} parties</span>
    </figure>
  )
}
