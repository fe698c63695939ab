// Bar charts with uPlot: one series over labelled categories (days, models,
// workflows).
import { useEffect, useRef } from './vendor/preact-hooks.mjs';
import uPlot from './vendor/uplot.mjs';
import { html } from './ui.js';

export function BarChart({ title, labels, values, unit = '', width = 520, height = 220 }) {
  const box = useRef(null);
  useEffect(() => {
    if (!labels.length) return undefined;
    const xs = labels.map((_, i) => i);
    const opts = {
      title, width, height,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-0.6, labels.length - 0.4] }, y: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.1 : 1] } },
      axes: [
        { values: (u, splits) => splits.map((i) => (Number.isInteger(i) && labels[i] !== undefined ? String(labels[i]).slice(0, 14) : '')), splits: () => xs },
        { values: (u, splits) => splits.map((v) => unit + (+v.toPrecision(3))), size: 60 },
      ],
      series: [{}, { label: title, fill: 'rgba(47,93,138,0.6)', stroke: '#2f5d8a', paths: uPlot.paths.bars({ size: [0.6, 60] }), points: { show: false } }],
    };
    const plot = new uPlot(opts, [xs, values], box.current);
    return () => plot.destroy();
  }, [title, labels.join('\u0000'), values.join(','), width, height]);
  // The figures as text too, for screen readers and for copying.
  return html`<figure class="chart" data-chart=${title}>
    ${labels.length ? html`<div ref=${box} />` : html`<figcaption>${title}: nothing yet</figcaption>`}
    ${labels.length > 0 && html`<details><summary>Data</summary><table class="chart-data">
      ${labels.map((l, i) => html`<tr key=${i}><td>${l}</td><td>${unit}${values[i]}</td></tr>`)}</table></details>`}
  </figure>`;
}
