// Executions: a list that follows GET /api/events, and one execution that
// follows its own stream with a node timeline.
import { useState, useEffect, useRef } from './vendor/preact-hooks.mjs';
import { api, query, follow } from './api.js';
import { html, useLoad, ErrorBox, Pager, Status, Json, when, ms, usd, ENDED } from './ui.js';
import { Gantt } from './gantt.js';
import { Graph } from './graph.js';

const STATUSES = ['', 'queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'timed_out'];

export function Executions() {
  const workflowId = new URLSearchParams(location.search).get('workflowId') || '';
  const [status, setStatus] = useState('');
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('/api/executions' + query({ workflowId, status, page, limit: 25 })), [workflowId, status, page]);
  // Names for the workflow column (the newest 100 the user may read; others show their id).
  const names = useLoad(() => api('/api/workflows' + query({ limit: 100, sort: '-updatedAt' }))
    .then((r) => Object.fromEntries(r.data.map((w) => [w.id, w.name]))), []);
  const [live, setLive] = useState({}); // id -> status from the stream, newer than the list
  const reload = useRef(list.reload);
  reload.current = list.reload;
  const known = useRef(new Set());
  known.current = new Set(list.data ? list.data.data.map((e) => e.id) : []);

  useEffect(() => {
    const ctl = new AbortController();
    let again = null;
    // An execution the list does not show yet: read the list again, at most
    // every half second however many arrive.
    const soon = () => { if (!again) again = setTimeout(() => { again = null; reload.current(); }, 500); };
    follow('/api/events' + query({ workflowId }), {
      signal: ctl.signal,
      onEvent: (type, d) => {
        if (!known.current.has(d.executionId)) soon();
        else setLive((m) => ({ ...m, [d.executionId]: d.status }));
      },
      onReconnect: soon, // this stream does not replay what it missed
    });
    return () => { ctl.abort(); clearTimeout(again); };
  }, [workflowId]);
  useEffect(() => setLive({}), [list.data]);

  return html`<section>
    <h1>Executions</h1>
    <label>Status <select value=${status} onChange=${(e) => { setStatus(e.target.value); setPage(1); }}>
      ${STATUSES.map((s) => html`<option value=${s}>${s || 'any'}</option>`)}</select></label>
    ${workflowId && html` <span class="muted">of one workflow · <a href="/console/executions">all</a></span>`}
    <${ErrorBox} error=${list.error} />
    ${list.data && html`<table class="list" id="executions">
      <thead><tr><th>Execution</th><th>Workflow</th><th>Status</th><th>Trigger</th><th>Created</th><th>Duration</th><th>Cost</th></tr></thead>
      <tbody>${list.data.data.map((e) => html`<tr key=${e.id} data-id=${e.id}>
        <td><a href=${'/console/executions/' + e.id}>${e.id.slice(-12)}</a></td>
        <td><a href=${'/console/workflows/' + e.workflowId}>${(names.data && names.data[e.workflowId]) || e.workflowId.slice(-12)}</a> v${e.workflowVersion}</td>
        <td><${Status} status=${live[e.id] || e.status} /></td><td>${e.trigger}</td>
        <td>${when(e.createdAt)}</td><td>${ms(e.durationMs)}</td><td>${usd(e.costUsd)}</td></tr>`)}</tbody>
    </table>
    ${list.data.data.length === 0 && html`<p class="muted">No executions.</p>`}
    <${Pager} pagination=${list.data.pagination} onPage=${setPage} />`}
  </section>`;
}

// What an event says about the nodes, folded into the execution's copy.
function apply(exec, type, d) {
  const nodes = exec.nodes.slice();
  const i = d.nodeId ? nodes.findIndex((n) => n.nodeId === d.nodeId) : -1;
  const node = i >= 0 ? { ...nodes[i] } : d.nodeId ? { nodeId: d.nodeId, type: d.type, status: 'pending' } : null;
  switch (type) {
    case 'execution.started': return { ...exec, status: 'running', startedAt: exec.startedAt || d.ts };
    case 'execution.finished': return { ...exec, status: d.status, durationMs: d.durationMs, finishedAt: d.ts };
    case 'node.started':
      Object.assign(node, { status: 'running', attempts: d.attempt, startedAt: node.startedAt || d.ts, finishedAt: null, durationMs: null });
      break;
    case 'node.waiting':
      node.status = 'waiting';
      if (i >= 0) nodes[i] = node; else nodes.push(node);
      return { ...exec, status: 'waiting', nodes };
    case 'node.retrying': node.error = d.error; break;
    case 'node.finished':
      Object.assign(node, { status: d.status, error: d.error, durationMs: d.durationMs, finishedAt: d.durationMs === null ? null : d.ts });
      break;
    default: return exec;
  }
  if (i >= 0) nodes[i] = node; else nodes.push(node);
  const moving = exec.status === 'queued' || exec.status === 'waiting';
  return { ...exec, status: moving ? 'running' : exec.status, nodes };
}

export function Execution({ id }) {
  const [exec, setExec] = useState(null);
  const [error, setError] = useState(null);
  const [def, setDef] = useState(null);
  const [now, setNow] = useState(Date.now());
  const [busy, setBusy] = useState(null);

  useEffect(() => {
    const ctl = new AbortController();
    let again = null;
    let ended = false;
    const read = () => api('/api/executions/' + id).then((e) => { if (!ctl.signal.aborted) setExec(e); return e; });
    // Outputs are not in the events: read the execution again after a node
    // ends, at most every 300 ms.
    const soon = () => { if (!again) again = setTimeout(() => { again = null; read().catch(() => {}); }, 300); };
    read().then((e) => {
      api(`/api/workflows/${e.workflowId}/versions/${e.workflowVersion}`).then((w) => setDef(w.definition), () => {});
      if (ENDED.includes(e.status)) return;
      follow(`/api/executions/${id}/events`, {
        signal: ctl.signal,
        onEvent: (type, d) => {
          setExec((x) => (x ? apply(x, type, d) : x));
          if (type === 'node.finished' || type === 'node.waiting') soon();
          if (type === 'execution.finished') { ended = true; soon(); return false; }
          return true;
        },
      });
    }, setError);
    const tick = setInterval(() => !ended && setNow(Date.now()), 250);
    return () => { ctl.abort(); clearTimeout(again); clearInterval(tick); };
  }, [id]);

  const act = async (what, body) => {
    setBusy(what);
    try { setExec(await api(`/api/executions/${id}/${what}`, { method: 'POST', body })); setError(null); } catch (e) { setError(e); }
    setBusy(null);
  };

  if (!exec) return html`<section><${ErrorBox} error=${error} />${!error && html`<p>Loading…</p>`}</section>`;
  const byNode = Object.fromEntries((def ? def.nodes : []).map((n) => [n.id, n]));
  const statuses = Object.fromEntries(exec.nodes.map((n) => [n.nodeId, n.status]));
  return html`<section>
    <header class="title">
      <h1>Execution <code>${id.slice(-12)}</code></h1>
      <span id="exec-status"><${Status} status=${exec.status} /></span>
      ${!ENDED.includes(exec.status) && html`<button disabled=${busy} onClick=${() => act('cancel', {})}>Cancel</button>`}
    </header>
    <${ErrorBox} error=${error} />
    <dl class="facts">
      <dt>Workflow</dt><dd><a href=${'/console/workflows/' + exec.workflowId}>${exec.workflowId}</a> v${exec.workflowVersion}</dd>
      <dt>Trigger</dt><dd>${exec.trigger}</dd>
      <dt>Started</dt><dd>${when(exec.startedAt)}</dd><dt>Duration</dt><dd>${ms(exec.durationMs)}</dd>
      <dt>Tokens</dt><dd>${exec.usage ? exec.usage.totalTokens : 0}</dd><dt>Cost</dt><dd>${usd(exec.costUsd)}</dd>
    </dl>
    ${exec.error && html`<div class="error">${exec.error.code}: ${exec.error.message}${exec.error.nodeId ? ' (node ' + exec.error.nodeId + ')' : ''}</div>`}
    <h2>Timeline</h2>
    <div class="gantt-box" id="timeline"><${Gantt} nodes=${exec.nodes} now=${now} /></div>
    ${def && html`<h2>Graph</h2><div class="graph-box"><${Graph} definition=${def} statuses=${statuses} /></div>`}
    <h2>Input</h2><${Json} value=${exec.input} />
    ${exec.output && html`<h2>Output</h2><${Json} value=${exec.output} />`}
    <h2>Nodes</h2>
    ${exec.nodes.map((n) => html`<details class="node-detail" key=${n.nodeId} data-node=${n.nodeId}>
      <summary><strong>${n.nodeId}</strong> ${n.type} <${Status} status=${n.status} /> ${ms(n.durationMs)}
        ${n.attempts > 1 ? ` · ${n.attempts} attempts` : ''}${n.model ? ' · ' + n.model : ''}</summary>
      ${byNode[n.nodeId] && html`<h3>Config</h3><${Json} value=${byNode[n.nodeId].config} />`}
      ${n.error && html`<h3>Error</h3><div class="error">${n.error.code}: ${n.error.message}</div>`}
      ${n.output !== null && n.output !== undefined && html`<h3>Output</h3><${Json} value=${n.output} />`}
      ${n.status === 'waiting' && html`<p>Waiting for a decision: <a href="/console/approvals">approvals</a></p>`}
    </details>`)}
  </section>`;
}
