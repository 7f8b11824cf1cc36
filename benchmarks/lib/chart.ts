/**
 * The report's chart: one panel per scenario, a horizontal bar per variant
 * (median req/s), its own scale per panel (scenarios differ by orders of
 * magnitude). Plain SVG written here: no browser, no dependency.
 */
import type { Row } from './report.js';

const COLORS = { ours: '#2563eb', peer: '#f59e0b', baseline: '#9ca3af' } as const;

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderChart(rows: Row[], title: string): string {
  const width = 960;
  const labelWidth = 270;
  const barMax = width - labelWidth - 190;
  const barHeight = 16;
  const gap = 5;
  const panelPad = 34;
  const parts: string[] = [];
  let y = 48;
  for (const scenarioId of [...new Set(rows.map((r) => r.scenario.id))]) {
    const panel = rows.filter((r) => r.scenario.id === scenarioId);
    const top = Math.max(1, ...panel.map((r) => r.rps ?? 0));
    parts.push(`<text x="16" y="${y}" class="h">${escape(panel[0]!.scenario.title)}</text>`);
    y += 12;
    for (const row of panel) {
      const w = row.rps ? Math.max(1, (row.rps / top) * barMax) : 0;
      const cy = y + barHeight / 2 + 4;
      parts.push(
        `<text x="${labelWidth - 8}" y="${cy}" class="l${row.variant.group === 'ours' ? ' b' : ''}" text-anchor="end">${escape(row.variant.label)}</text>`,
      );
      if (row.error || row.rps === undefined) {
        parts.push(`<text x="${labelWidth + 4}" y="${cy}" class="n">not measured</text>`);
      } else {
        parts.push(
          `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" rx="2" fill="${COLORS[row.variant.group]}"/>`,
        );
        let text = `${Math.round(row.rps).toLocaleString('en-US')} req/s`;
        if (row.vsBare !== undefined) text += ` · ${row.vsBare.toFixed(2)}× bare`;
        parts.push(`<text x="${labelWidth + w + 6}" y="${cy}" class="v">${escape(text)}</text>`);
        if (row.lost !== undefined && row.lost > 0) {
          parts.push(`<text x="${width - 12}" y="${cy}" class="lost" text-anchor="end">lost ${row.lost.toLocaleString('en-US')}</text>`);
        } else if (row.lost === 0) {
          parts.push(`<text x="${width - 12}" y="${cy}" class="ok" text-anchor="end">0 lost</text>`);
        }
      }
      y += barHeight + gap;
    }
    y += panelPad - gap;
  }
  const legend = (Object.keys(COLORS) as (keyof typeof COLORS)[])
    .map(
      (k, i) =>
        `<rect x="${width - 300 + i * 95}" y="14" width="12" height="12" fill="${COLORS[k]}"/><text x="${width - 284 + i * 95}" y="25" class="l">${k === 'ours' ? 'ours' : k === 'peer' ? 'peers' : 'baselines'}</text>`,
    )
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<style>.h{font-size:14px;font-weight:600;fill:#111}.l{font-size:12px;fill:#333}.b{font-weight:600}.v{font-size:11px;fill:#444}.n{font-size:11px;fill:#999;font-style:italic}.lost{font-size:11px;fill:#dc2626;font-weight:600}.ok{font-size:11px;fill:#16a34a}.t{font-size:16px;font-weight:700;fill:#111}</style>',
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="16" y="26" class="t">${escape(title)}</text>`,
    legend,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
