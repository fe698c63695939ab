// Approvals waiting for the caller's decision.
import { useState } from './vendor/preact-hooks.mjs';
import { api, query } from './api.js';
import { html, useLoad, ErrorBox, Pager, when } from './ui.js';

function Approval({ a, onDone }) {
  const [comment, setComment] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const decide = async (decision) => {
    setBusy(true);
    try {
      await api(`/api/executions/${a.executionId}/approvals/${encodeURIComponent(a.nodeId)}`, {
        method: 'POST', body: comment ? { decision, comment } : { decision },
      });
      onDone();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return html`<li class="approval" data-execution=${a.executionId} data-node=${a.nodeId}>
    <div><a href=${'/console/workflows/' + a.workflowId}>${a.workflowName}</a>, node <strong>${a.nodeId}</strong>${' of '}
      <a href=${'/console/executions/' + a.executionId}>execution ${a.executionId.slice(-12)}</a></div>
    ${a.message && html`<blockquote>${a.message}</blockquote>`}
    <div class="muted">waiting since ${when(a.createdAt)}, until ${when(a.expiresAt)}</div>
    <input type="text" maxlength="2000" placeholder="Comment (optional)" value=${comment}
      onInput=${(e) => setComment(e.target.value)} aria-label="comment" />
    <button class="approve" disabled=${busy} onClick=${() => decide('approve')}>Approve</button>
    <button class="reject" disabled=${busy} onClick=${() => decide('reject')}>Reject</button>
    <${ErrorBox} error=${error} />
  </li>`;
}

export function Approvals() {
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('/api/approvals' + query({ page, limit: 20 })), [page]);
  return html`<section>
    <h1>Approvals</h1>
    <button onClick=${list.reload}>Refresh</button>
    <${ErrorBox} error=${list.error} />
    ${list.data && html`<ul class="approvals" id="approvals">
      ${list.data.data.map((a) => html`<${Approval} key=${a.executionId + a.nodeId} a=${a} onDone=${list.reload} />`)}
    </ul>
    ${list.data.data.length === 0 && html`<p class="muted">Nothing waits for your decision.</p>`}
    <${Pager} pagination=${list.data.pagination} onPage=${setPage} />`}
  </section>`;
}
