// Workflows: the list with search, and one workflow with its graph and versions.
import { useState, useEffect } from './vendor/preact-hooks.mjs';
import { api, query } from './api.js';
import { html, useLoad, ErrorBox, Pager, navigate, when, usd, ms } from './ui.js';
import { Graph } from './graph.js';

export function Workflows() {
  const [search, setSearch] = useState('');
  const [typed, setTyped] = useState('');
  const [page, setPage] = useState(1);
  // Searches once typing pauses, not on every key.
  useEffect(() => {
    const t = setTimeout(() => { setSearch(typed.trim()); setPage(1); }, 250);
    return () => clearTimeout(t);
  }, [typed]);
  const list = useLoad(() => api('/api/workflows' + query({ search, page, limit: 20 })), [search, page]);
  return html`<section>
    <h1>Workflows</h1>
    <input type="search" class="search" placeholder="Search name or description" maxlength="200"
      value=${typed} onInput=${(e) => setTyped(e.target.value)} aria-label="search workflows" />
    <${ErrorBox} error=${list.error} />
    ${list.data && html`<table class="list" id="workflows">
      <thead><tr><th>Name</th><th>Status</th><th>Version</th><th>Runs</th><th>Avg</th><th>Cost</th><th>Updated</th></tr></thead>
      <tbody>${list.data.data.map((w) => html`<tr key=${w.id} data-id=${w.id}>
        <td><a href=${'/console/workflows/' + w.id}>${w.name}</a></td><td>${w.status}</td><td>${w.version}</td>
        <td>${w.analytics.executionCount}</td><td>${ms(w.analytics.avgDurationMs)}</td>
        <td>${usd(w.analytics.totalCostUsd)}</td><td>${when(w.updatedAt)}</td></tr>`)}</tbody>
    </table>
    ${list.data.data.length === 0 && html`<p class="muted">No workflows${search ? ' match' : ' yet'}.</p>`}
    <${Pager} pagination=${list.data.pagination} onPage=${setPage} />`}
  </section>`;
}

export function Workflow({ id }) {
  const [version, setVersion] = useState(null);
  const [err, setErr] = useState(null);
  const wf = useLoad(() => api(version ? `/api/workflows/${id}/versions/${version}` : `/api/workflows/${id}`), [id, version]);
  const versions = useLoad(() => api(`/api/workflows/${id}/versions` + query({ limit: 50 })), [id]);
  const run = async () => {
    setErr(null);
    try {
      const r = await api(`/api/workflows/${id}/execute`, { method: 'POST', body: { input: {} } });
      navigate('/console/executions/' + r.executionId);
    } catch (e) {
      setErr(e);
    }
  };
  const w = wf.data;
  return html`<section>
    <${ErrorBox} error=${wf.error || err} />
    ${w && html`<header class="title">
        <h1>${w.name}</h1>
        <span class="muted">v${w.version} · ${w.status}${w.tags.length ? ' · ' + w.tags.join(', ') : ''}</span>
        <button onClick=${run} id="run">Run now</button>
        <a href=${'/console/executions?workflowId=' + id}>Executions</a>
      </header>
      ${w.description && html`<p>${w.description}</p>`}
      <div class="graph-box"><${Graph} definition=${w.definition} /></div>`}
    <h2>Versions</h2>
    <${ErrorBox} error=${versions.error} />
    ${versions.data && html`<table class="list" id="versions">
      <thead><tr><th>Version</th><th>Name</th><th>Made</th><th></th></tr></thead>
      <tbody>${versions.data.data.map((v) => html`<tr key=${v.version}>
        <td>${v.version}</td><td>${v.name}</td><td>${when(v.createdAt)}</td>
        <td>${w && w.version === v.version ? html`<strong>shown</strong>`
          : html`<button onClick=${() => setVersion(v.version)}>Show</button>`}</td></tr>`)}</tbody>
    </table>`}
  </section>`;
}
