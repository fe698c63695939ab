// A workflow's definition drawn as a graph: dagre lays it out, SVG draws it.
import { useMemo } from './vendor/preact-hooks.mjs';
import dagre from './vendor/dagre.mjs';
import { html } from './ui.js';

const NODE_W = 150;
const NODE_H = 46;

function layout(definition) {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of definition.nodes || []) g.setNode(n.id, { width: NODE_W, height: NODE_H, node: n });
  for (const e of definition.edges || []) {
    if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to, { when: e.when });
  }
  dagre.layout(g);
  return g;
}

const path = (pts) => pts.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');

// statuses: an optional {nodeId: status} that colours the nodes.
export function Graph({ definition, statuses = {} }) {
  const g = useMemo(() => layout(definition || {}), [definition]);
  const size = g.graph();
  if (!g.nodeCount()) return html`<p class="muted">This workflow has no nodes.</p>`;
  return html`<svg class="graph" role="img" aria-label="workflow graph"
      viewBox=${`0 0 ${size.width} ${size.height}`} width=${size.width} height=${size.height}>
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
      <path d="M0,0 L10,5 L0,10 z" class="arrowhead" /></marker></defs>
    ${g.edges().map((e) => {
      const ed = g.edge(e);
      const mid = ed.points[Math.floor(ed.points.length / 2)];
      return html`<g class="edge" key=${e.v + '>' + e.w}>
        <path d=${path(ed.points)} marker-end="url(#arrow)" />
        ${ed.when !== undefined && html`<text x=${mid.x} y=${mid.y - 4} class="edge-label">${String(ed.when)}</text>`}
      </g>`;
    })}
    ${g.nodes().map((id) => {
      const n = g.node(id);
      const st = statuses[id];
      return html`<g class=${'node' + (st ? ' s-' + st : '')} data-node=${id} key=${id}
          transform=${`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`}>
        <rect width=${NODE_W} height=${NODE_H} rx="6" />
        <text x="10" y="19" class="node-name">${(n.node.name || id).slice(0, 20)}</text>
        <text x="10" y="36" class="node-type">${n.node.type}${st ? ' · ' + st : ''}</text>
      </g>`;
    })}
  </svg>`;
}
