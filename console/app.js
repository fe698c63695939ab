// The AOP console: sign-in, then the pages below, each at its own address
// under /console/ so that a reload or a shared link opens it directly.
import { render } from './vendor/preact.mjs';
import { useEffect, useState } from './vendor/preact-hooks.mjs';
import { signIn, signOut, resume, onAuthChange, currentUser } from './api.js';
import { html, useLocation, match, navigate, ErrorBox } from './ui.js';
import { Workflows, Workflow } from './workflows.js';
import { Executions, Execution } from './executions.js';
import { Approvals } from './approvals.js';
import { Credentials } from './credentials.js';
import { Costs } from './costs.js';
import { Keys } from './keys.js';

const PAGES = [
  ['/console/workflows', Workflows, 'Workflows'],
  ['/console/workflows/:id', Workflow],
  ['/console/executions', Executions, 'Executions'],
  ['/console/executions/:id', Execution],
  ['/console/approvals', Approvals, 'Approvals'],
  ['/console/credentials', Credentials, 'Credentials'],
  ['/console/costs', Costs, 'Costs'],
  ['/console/keys', Keys, 'API keys'],
];

function SignIn() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await signIn(email, password);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<form class="card signin" id="signin" onSubmit=${submit}>
    <h1>AOP console</h1>
    <label>Email <input type="email" name="email" required autocomplete="username" value=${email} onInput=${(e) => setEmail(e.target.value)} /></label>
    <label>Password <input type="password" name="password" required autocomplete="current-password" value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
    <button type="submit" disabled=${busy}>Sign in</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

function NotFound() {
  return html`<section><h1>Not found</h1><p>The console has no page at this address.
    <a href="/console/workflows">Workflows</a></p></section>`;
}

function App() {
  const path = useLocation();
  const [user, setUser] = useState(currentUser());
  const [ready, setReady] = useState(false);
  useEffect(() => {
    const off = onAuthChange(setUser);
    resume().finally(() => setReady(true));
    return off;
  }, []);
  useEffect(() => {
    if (path === '/' || path === '/console' || path === '/console/') navigate('/console/workflows', true);
  }, [path]);
  if (!ready) return html`<p class="boot">Loading…</p>`;
  if (!user) return html`<main class="center"><${SignIn} /></main>`;
  let page = html`<${NotFound} />`;
  for (const [pattern, Page] of PAGES) {
    const params = match(pattern, path);
    if (params) { page = html`<${Page} key=${path} ...${params} user=${user} />`; break; }
  }
  return html`<div class="shell">
    <nav>
      <a class="brand" href="/console/workflows">AOP</a>
      ${PAGES.filter((p) => p[2]).map(([href, , label]) => html`<a href=${href} class=${path.startsWith(href) ? 'active' : ''}>${label}</a>`)}
      <span class="who" id="who">${user.email} (${user.role})</span>
      <button id="signout" onClick=${() => signOut()}>Sign out</button>
    </nav>
    <main>${page}</main>
  </div>`;
}

window.addEventListener('unhandledrejection', (e) => console.error('unhandled', e.reason && e.reason.message));
render(html`<${App} />`, document.getElementById('app'));
