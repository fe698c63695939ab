// The signed-in user's API keys: list, create (the key is shown once) and delete.
import { useState } from './vendor/preact-hooks.mjs';
import { api, query } from './api.js';
import { html, useLoad, ErrorBox, Pager, when } from './ui.js';

export function Keys() {
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('/api/auth/api-keys' + query({ page, limit: 20 })), [page]);
  const [name, setName] = useState('');
  const [write, setWrite] = useState(true);
  const [made, setMade] = useState(null);
  const [error, setError] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    try {
      const k = await api('/api/auth/api-keys', { method: 'POST', body: { name, scopes: write ? ['read', 'write'] : ['read'] } });
      setMade(k);
      setName('');
      setError(null);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (id) => {
    try { await api('/api/auth/api-keys/' + id, { method: 'DELETE' }); list.reload(); } catch (err) { setError(err); }
  };
  return html`<section>
    <h1>API keys</h1>
    <${ErrorBox} error=${error || list.error} />
    ${made && html`<div class="notice" id="new-key">Key <strong>${made.name}</strong>, shown this once:
      <code>${made.key}</code> <button onClick=${() => setMade(null)}>I have copied it</button></div>`}
    ${list.data && html`<table class="list" id="keys">
      <thead><tr><th>Name</th><th>Prefix</th><th>Scopes</th><th>Created</th><th>Last used</th><th>Expires</th><th></th></tr></thead>
      <tbody>${list.data.data.map((k) => html`<tr key=${k.id}>
        <td>${k.name}</td><td><code>${k.prefix}</code></td><td>${k.scopes.join(', ')}</td><td>${when(k.createdAt)}</td>
        <td>${when(k.lastUsedAt)}</td><td>${when(k.expiresAt)}</td>
        <td><button onClick=${() => remove(k.id)}>Delete</button></td></tr>`)}</tbody>
    </table>
    ${list.data.data.length === 0 && html`<p class="muted">No API keys.</p>`}
    <${Pager} pagination=${list.data.pagination} onPage=${setPage} />`}
    <form class="card" onSubmit=${create}>
      <h2>New key</h2>
      <label>Name <input required maxlength="100" value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <label><input type="checkbox" checked=${write} onChange=${(e) => setWrite(e.target.checked)} /> may write</label>
      <button type="submit">Create</button>
    </form>
  </section>`;
}
