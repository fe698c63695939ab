// The server's API as the console uses it: signing in, tokens, JSON calls and
// the event streams. Tokens never go into a URL. The access token lives in
// memory only; the refresh token in sessionStorage, so that a reload of this
// tab stays signed in and closing the tab forgets it.

const REFRESH_KEY = 'aop.refresh';
// A bound on one event of a stream (the server's events are far smaller).
const SSE_EVENT_MAX = 1 << 20;

let access = null;
let accessExpires = 0;
let accessMargin = 60000; // refresh this long before expiry
let user = null;
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'HTTP_' + status;
    this.details = e.details || [];
  }
}

export const currentUser = () => user;
export const onAuthChange = (fn) => { listeners.add(fn); return () => listeners.delete(fn); };
const announce = () => listeners.forEach((fn) => fn(user));

function keep(tokens) {
  const ttl = (tokens.expiresIn || 900) * 1000;
  access = tokens.accessToken;
  accessExpires = Date.now() + ttl;
  accessMargin = Math.min(60000, ttl / 4);
  sessionStorage.setItem(REFRESH_KEY, tokens.refreshToken);
}

function forget() {
  access = null;
  user = null;
  sessionStorage.removeItem(REFRESH_KEY);
  announce();
}

async function post(path, body) {
  const r = await fetch(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body), credentials: 'omit',
  });
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export async function signIn(email, password) {
  const t = await post('/api/auth/login', { email, password });
  keep(t);
  user = t.user;
  announce();
  return user;
}

// One refresh at a time: a refresh token works once, and a second use would
// revoke the whole session.
function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const rt = sessionStorage.getItem(REFRESH_KEY);
      if (!rt) throw new ApiError(401, null);
      try {
        keep(await post('/api/auth/refresh', { refreshToken: rt }));
      } catch (e) {
        if (e.status === 401) forget();
        throw e;
      }
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

// A valid access token, refreshed a minute (a quarter of a short lifetime)
// before it runs out.
async function token() {
  if (!access || Date.now() > accessExpires - accessMargin) await refresh();
  return access;
}

// On start: a tab that was signed in before a reload signs in again.
export async function resume() {
  if (!sessionStorage.getItem(REFRESH_KEY)) return null;
  try {
    user = await api('/api/auth/me');
  } catch (e) {
    user = null;
  }
  announce();
  return user;
}

export async function signOut() {
  const rt = sessionStorage.getItem(REFRESH_KEY);
  try {
    if (access) {
      await fetch('/api/auth/logout', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + access, 'Content-Type': 'application/json' },
        body: JSON.stringify({ refreshToken: rt }),
      });
    }
  } finally {
    forget();
  }
}

// A JSON call with the access token; an expired token is refreshed and the
// call sent once more. Resolves to the body (null for 204), rejects ApiError.
export async function api(path, { method = 'GET', body } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: 'Bearer ' + (await token()) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method, headers, credentials: 'omit', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    if (r.status === 401 && attempt === 0) {
      accessExpires = 0;
      continue;
    }
    if (r.status === 401) forget();
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }
}

export const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
};

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// Reads one response of text/event-stream, calling onEvent(type, data, id)
// for each event; returns 'stop' when onEvent asked to stop, else 'ended'.
async function readEvents(body, onEvent, seen) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  let ev = {};
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return 'ended';
    pending += value;
    if (pending.length > SSE_EVENT_MAX) throw new Error('event too large');
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      let line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (ev.data !== undefined) {
          if (ev.id !== undefined) seen(ev.id);
          if (onEvent(ev.event || 'message', JSON.parse(ev.data), ev.id) === false) {
            reader.cancel().catch(() => {});
            return 'stop';
          }
        }
        ev = {};
        continue;
      }
      if (line[0] === ':') continue; // a ping
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (field === 'data') ev.data = ev.data === undefined ? v : ev.data + '\n' + v;
      else if (field === 'event') ev.event = v;
      else if (field === 'id') ev.id = v;
    }
  }
}

// Follows a Server-Sent Events route with fetch() (EventSource cannot send
// the Authorization header), until signal aborts or onEvent returns false.
// After a drop it reconnects, with Last-Event-ID when the stream numbers its
// events, and calls onReconnect() so the caller can catch up on what an
// unnumbered stream missed. A 404 or 403 ends it.
export async function follow(path, { signal, onEvent, onReconnect = () => {} }) {
  let last = null;
  let delay = 500;
  for (let first = true; !signal.aborted; first = false) {
    if (!first) {
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 10000);
      if (signal.aborted) return;
      onReconnect();
    }
    try {
      const headers = { Authorization: 'Bearer ' + (await token()), Accept: 'text/event-stream' };
      if (last !== null) headers['Last-Event-ID'] = last;
      const r = await fetch(path, { headers, signal, credentials: 'omit', cache: 'no-store' });
      if (r.status === 401) { accessExpires = 0; continue; }
      if (r.status === 404 || r.status === 403) return;
      if (!r.ok) continue;
      delay = 500;
      if ((await readEvents(r.body, onEvent, (id) => { last = id; })) === 'stop') return;
    } catch (e) {
      if (signal.aborted) return;
    }
  }
}
