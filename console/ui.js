// What every page shares: htm bound to Preact, the router, small components
// and formatting.
import { h } from './vendor/preact.mjs';
import { useEffect, useState, useCallback } from './vendor/preact-hooks.mjs';
import htm from './vendor/htm.mjs';

export const html = htm.bind(h);

// ---- routing: addresses under /console/, History API, links intercepted

const listeners = new Set();
export const currentPath = () => location.pathname;

export function navigate(to, replace = false) {
  if (to === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', to);
  listeners.forEach((fn) => fn());
}

window.addEventListener('popstate', () => listeners.forEach((fn) => fn()));
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[href^="/console/"]');
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});

export function useLocation() {
  const [, set] = useState(0);
  useEffect(() => {
    const fn = () => set((n) => n + 1);
    listeners.add(fn);
    return () => listeners.delete(fn);
  }, []);
  return location.pathname;
}

// Matches "/console/executions/:id" against a path: the params, or null.
export function match(pattern, path) {
  const p = pattern.split('/');
  const u = path.replace(/\/+$/, '').split('/');
  if (p.length !== u.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i][0] === ':') params[p[i].slice(1)] = decodeURIComponent(u[i]);
    else if (p[i] !== u[i]) return null;
  }
  return params;
}

// ---- data

// Runs load() now and whenever deps change; {data, error, loading, reload}.
export function useLoad(load, deps) {
  const [state, set] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    set((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && set({ data, error: null, loading: false }),
      (error) => live && set({ data: null, error, loading: false }),
    );
    return () => { live = false; };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

// ---- components

export const ErrorBox = ({ error }) => error && html`
  <div class="error" role="alert">
    <strong>${error.code || 'Error'}</strong>: ${error.message}
    ${error.details && error.details.length > 0 && html`
      <ul>${error.details.map((d) => html`<li>${d.field}: ${d.message}</li>`)}</ul>`}
  </div>`;

export const Status = ({ status }) => html`<span class=${'status s-' + status}>${status}</span>`;

export function Pager({ pagination, onPage }) {
  if (!pagination || pagination.totalPages <= 1) return null;
  const { page, totalPages, total } = pagination;
  return html`<div class="pager">
    <button disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Previous</button>
    <span>page ${page} of ${totalPages} (${total})</span>
    <button disabled=${page >= totalPages} onClick=${() => onPage(page + 1)}>Next</button>
  </div>`;
}

export const Json = ({ value }) => html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;

// ---- formatting

export const when = (t) => (t ? new Date(t).toLocaleString() : '—');
export const ms = (n) => (n === null || n === undefined ? '—' : n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(n < 10000 ? 2 : 1)} s`);
export const usd = (n) => (n ? '$' + Number(n).toFixed(n < 0.01 ? 6 : 4) : '$0');
export const ENDED = ['succeeded', 'failed', 'cancelled', 'timed_out'];
