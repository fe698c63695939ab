// Costs: charts by day, model and workflow from the analytics routes, which
// are admin-only; anyone else is told so.
import { api } from './api.js';
import { html, useLoad, ErrorBox, usd } from './ui.js';
import { BarChart } from './charts.js';

export function Costs({ user }) {
  return user.role === 'admin' ? html`<${AdminCosts} />` : html`<${NotAdmin} />`;
}

function NotAdmin() {
  {
    return html`<section><h1>Costs</h1>
      <p class="notice" id="costs-admin-only">Cost analytics cover every user's executions, so only an
      admin can see them. Your own workflows show their runs and cost on the
      <a href="/console/workflows">workflows</a> page.</p></section>`;
  }
}

function AdminCosts() {
  const s = useLoad(() => api('/api/executions/analytics/summary'), []);
  const d = s.data;
  return html`<section>
    <h1>Costs</h1>
    <${ErrorBox} error=${s.error} />
    ${d && html`<p class="facts-line">${d.totalExecutions} executions · ${usd(d.costUsd)} ·
        ${d.usage.totalTokens} tokens · success rate ${(d.successRate * 100).toFixed(1)}%</p>
      <div class="charts">
        <${BarChart} title="Cost by day (USD)" unit="$" labels=${d.byDay.map((x) => x.date.slice(5))} values=${d.byDay.map((x) => x.costUsd)} />
        <${BarChart} title="Executions by day" labels=${d.byDay.map((x) => x.date.slice(5))} values=${d.byDay.map((x) => x.executions)} />
        <${BarChart} title="Cost by model (USD)" unit="$" labels=${d.byModel.map((x) => x.model)} values=${d.byModel.map((x) => x.costUsd)} />
        <${BarChart} title="Cost by workflow (USD)" unit="$" labels=${d.topWorkflows.map((x) => x.name)} values=${d.topWorkflows.map((x) => x.costUsd)} />
      </div>`}
  </section>`;
}
