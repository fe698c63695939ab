// A node timeline (Gantt): one bar per node from its start to its end, or to
// now while it runs.
import { html } from './ui.js';

const ROW = 26;
const LABEL = 160;
const WIDTH = 1100;
const RIGHT = 160; // room for the label after the last bar

export function Gantt({ nodes, now }) {
  const started = nodes.filter((n) => n.startedAt);
  if (!started.length) return html`<p class="muted">No node has started yet.</p>`;
  const t0 = Math.min(...started.map((n) => Date.parse(n.startedAt)));
  const end = (n) => (n.finishedAt ? Date.parse(n.finishedAt) : now);
  const t1 = Math.max(t0 + 1, ...started.map(end));
  const scale = (WIDTH - LABEL - RIGHT) / (t1 - t0);
  return html`<svg class="gantt" role="img" aria-label="node timeline"
      width=${WIDTH} height=${nodes.length * ROW + 8} viewBox=${`0 0 ${WIDTH} ${nodes.length * ROW + 8}`}>
    ${nodes.map((n, i) => {
      const y = i * ROW + 4;
      const x = n.startedAt ? LABEL + (Date.parse(n.startedAt) - t0) * scale : LABEL;
      const w = n.startedAt ? Math.max(2, (end(n) - Date.parse(n.startedAt)) * scale) : 0;
      const dur = n.durationMs !== null && n.durationMs !== undefined ? n.durationMs
        : n.startedAt ? end(n) - Date.parse(n.startedAt) : null;
      const label = n.status + (dur !== null ? ` ${dur} ms` : '');
      return html`<g class=${'bar s-' + n.status} data-node=${n.nodeId} data-status=${n.status} key=${n.nodeId}>
        <text x="4" y=${y + 16}>${n.nodeId.slice(0, 22)}</text>
        ${w > 0 && html`<rect x=${x} y=${y + 3} width=${w} height=${ROW - 8} rx="3" />`}
        <text x=${x + w + 6} y=${y + 16} class="bar-label">${label}</text>
      </g>`;
    })}
  </svg>`;
}
