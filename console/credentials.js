// Credentials: create, rotate (send new secret data) and delete. A secret
// goes from a password field to the server and is then forgotten: the page
// only ever shows what the server answers (never the data, at most its hint).
import { useState } from './vendor/preact-hooks.mjs';
import { api, query } from './api.js';
import { html, useLoad, ErrorBox, Pager, when } from './ui.js';

// The data keys of each type (docs/api.md, "Credentials"); secret ones are
// typed into password fields.
const TYPES = {
  openai: [['apiKey', true]],
  anthropic: [['apiKey', true]],
  http_bearer: [['token', true]],
  http_header: [['name', false], ['value', true]],
  http_basic: [['username', false], ['password', true]],
};

function DataFields({ type, data, set }) {
  return TYPES[type].map(([k, secret]) => html`<label key=${k}>${k}
    <input type=${secret ? 'password' : 'text'} name=${k} autocomplete="off" maxlength="8192"
      value=${data[k] || ''} onInput=${(e) => set({ ...data, [k]: e.target.value })} /></label>`);
}

function Create({ onDone }) {
  const blank = { name: '', type: 'openai', baseUrl: '', allowedHosts: '', description: '' };
  const [f, setF] = useState(blank);
  const [data, setData] = useState({});
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const body = { name: f.name, type: f.type, data, description: f.description };
    if (f.type.startsWith('http_')) body.allowedHosts = f.allowedHosts.split(/[\s,]+/).filter(Boolean);
    else if (f.baseUrl) body.baseUrl = f.baseUrl;
    try {
      await api('/api/credentials', { method: 'POST', body });
      setF(blank);
      setData({});
      setError(null);
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  const field = (k) => (e) => setF({ ...f, [k]: e.target.value });
  return html`<form class="card" id="new-credential" onSubmit=${submit}>
    <h2>New credential</h2>
    <label>Name <input name="name" required maxlength="200" value=${f.name} onInput=${field('name')} /></label>
    <label>Type <select name="type" value=${f.type} onChange=${(e) => { setF({ ...f, type: e.target.value }); setData({}); }}>
      ${Object.keys(TYPES).map((t) => html`<option value=${t}>${t}</option>`)}</select></label>
    <${DataFields} type=${f.type} data=${data} set=${setData} />
    ${f.type.startsWith('http_')
      ? html`<label>Allowed hosts <input name="allowedHosts" placeholder="api.example.com, *.example.org" value=${f.allowedHosts} onInput=${field('allowedHosts')} /></label>`
      : html`<label>Base URL <input name="baseUrl" placeholder="(the provider's)" value=${f.baseUrl} onInput=${field('baseUrl')} /></label>`}
    <label>Description <input name="description" maxlength="5000" value=${f.description} onInput=${field('description')} /></label>
    <button type="submit">Create</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

function Row({ c, onDone }) {
  const [rotating, setRotating] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [data, setData] = useState({});
  const [error, setError] = useState(null);
  const call = async (opts) => {
    try {
      await api('/api/credentials/' + c.id, opts);
      setData({});
      setRotating(false);
      setConfirm(false);
      setError(null);
      onDone();
    } catch (e) {
      setError(e);
    }
  };
  return html`<tr data-id=${c.id}>
    <td>${c.name}</td><td>${c.type}</td><td><code>${c.hint}</code></td>
    <td>${(c.allowedHosts || []).join(', ') || c.baseUrl || ''}</td><td>${when(c.lastUsedAt)}</td>
    <td>
      ${rotating
        ? html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); call({ method: 'PATCH', body: { data } }); }}>
            <${DataFields} type=${c.type} data=${data} set=${setData} />
            <button type="submit">Save</button> <button type="button" onClick=${() => { setRotating(false); setData({}); }}>Cancel</button></form>`
        : html`<button onClick=${() => setRotating(true)}>Rotate</button>`}
      ${confirm
        ? html`<button class="danger" onClick=${() => call({ method: 'DELETE' })}>Really delete</button>`
        : html`<button onClick=${() => setConfirm(true)}>Delete</button>`}
      <${ErrorBox} error=${error} />
    </td></tr>`;
}

export function Credentials() {
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('/api/credentials' + query({ page, limit: 20, sort: 'name' })), [page]);
  return html`<section>
    <h1>Credentials</h1>
    <${ErrorBox} error=${list.error} />
    ${list.data && html`<table class="list" id="credentials">
      <thead><tr><th>Name</th><th>Type</th><th>Hint</th><th>Hosts</th><th>Last used</th><th></th></tr></thead>
      <tbody>${list.data.data.map((c) => html`<${Row} key=${c.id} c=${c} onDone=${list.reload} />`)}</tbody>
    </table>
    ${list.data.data.length === 0 && html`<p class="muted">No credentials yet.</p>`}
    <${Pager} pagination=${list.data.pagination} onPage=${setPage} />`}
    <${Create} onDone=${list.reload} />
  </section>`;
}
