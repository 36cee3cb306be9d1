/**
 * `model-canary report <id> --html FILE`: one self-contained HTML page that opens offline —
 * weights over time, each check's error rate and p95 per version, each metric's evidence
 * (e-value, log scale) against its rollback level, and the decisions table with summaries.
 *
 * The charts are drawn by uPlot (npm `uplot`, MIT): its minified browser build and stylesheet are
 * read from node_modules at run time and inlined, with the rollout's data as JSON, so the page
 * needs nothing but itself. Once every chart has drawn, `<body data-rendered="true">`; a script
 * error sets `data-errors` (the test opens the page in headless Chromium and reads both).
 */
import { readFileSync } from 'node:fs';
import { GATE_METRICS } from '../analysis/gate-metrics';
import { metricEvidence, METRICS } from '../client';
import type { RolloutStatus } from '../workflows/status';
import { decisionText, humanMs } from './render';

interface UplotAssets {
  js: string;
  css: string;
  version: string;
}

let assets: UplotAssets | undefined;

/** uPlot's browser build (IIFE, defines `uPlot`) and CSS, as installed. */
export function uplotAssets(): UplotAssets {
  if (assets) return assets;
  const pkgPath = require.resolve('uplot/package.json');
  const dir = pkgPath.slice(0, -'package.json'.length);
  const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
  assets = {
    js: readFileSync(`${dir}dist/uPlot.iife.min.js`, 'utf8'),
    css: readFileSync(`${dir}dist/uPlot.min.css`, 'utf8'),
    version,
  };
  return assets;
}

const esc = (t: unknown) =>
  String(t ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Text for inside a <script>: nothing in it may close the element. */
const scriptSafe = (t: string) => t.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');

/** The chart data, per check (x = unix seconds), as the page's script reads it. */
export interface ReportData {
  title: string;
  judge: string;
  candidate: string;
  baseline: string;
  weights: { t: number[]; candidate: number[]; baseline: number[] };
  checks: {
    t: number[];
    errorRate: { candidate: Array<number | null>; baseline: Array<number | null> };
    p95: { candidate: Array<number | null>; baseline: Array<number | null> };
  };
  limits?: { errorRatePct: number; p95Ms: number };
  evidence: Array<{ metric: string; label: string; t: number[]; eValue: Array<number | null>; rollbackAt: Array<number | null> }>;
}

const seconds = (iso: string) => new Date(iso).getTime() / 1000;

export function reportData(s: RolloutStatus): ReportData {
  const decisions = [...s.decisions].sort((a, b) => a.seq - b.seq);
  // Weights: 0% candidate at the start, each check's weight, then where the rollout stands now.
  const wt: number[] = [seconds(s.startedAt)];
  const wc: number[] = [0];
  for (const d of decisions) {
    wt.push(seconds(d.at));
    wc.push(d.weight);
  }
  const end = s.outcome?.at ?? s.updatedAt;
  if (seconds(end) >= wt.at(-1)!) {
    wt.push(seconds(end));
    wc.push(s.weights.candidate);
  }
  const t = decisions.map((d) => seconds(d.at));
  const num = (x: number | undefined | null) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const evidence = METRICS.map((metric) => {
    const rows = decisions.map((d) => (metricEvidence(d.evidence) ?? []).find((m) => m.metric === metric && !m.calibrating));
    return {
      metric,
      label: GATE_METRICS[metric].short,
      t,
      // A log scale shows positive values only; e-values are positive.
      eValue: rows.map((m) => (m && m.eValue > 0 ? m.eValue : null)),
      rollbackAt: rows.map((m) => num(m?.rollbackAt)),
    };
  }).filter((e) => e.eValue.some((v) => v !== null));
  const threshold = s.spec.analysis.judge === 'threshold';
  return {
    title: s.id,
    judge: s.spec.analysis.judge,
    candidate: s.candidate.version,
    baseline: s.baseline.version,
    weights: { t: wt, candidate: wc, baseline: wc.map((w) => Math.round((100 - w) * 100) / 100) },
    checks: {
      t,
      errorRate: {
        candidate: decisions.map((d) => num(d.metrics.candidate.errorRate * 100)),
        baseline: decisions.map((d) => num(d.metrics.baseline.errorRate * 100)),
      },
      p95: {
        candidate: decisions.map((d) => num(d.metrics.candidate.latencyP95Ms)),
        baseline: decisions.map((d) => num(d.metrics.baseline.latencyP95Ms)),
      },
    },
    ...(threshold
      ? { limits: { errorRatePct: (s.spec.analysis.thresholds?.maxErrorRate ?? 0.05) * 100, p95Ms: s.spec.analysis.thresholds?.maxLatencyP95Ms ?? 800 } }
      : {}),
    evidence,
  };
}

/** The page's own script: one uPlot chart per panel, from the embedded data. */
const PAGE_SCRIPT = String.raw`
(function () {
  var errors = [];
  function fail(message) {
    errors.push(message);
    document.body.setAttribute('data-errors', errors.join(' | '));
  }
  window.addEventListener('error', function (e) { fail(String(e.message)); });
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var CAND = '#d9480f', BASE = '#1c7ed6', LIMIT = '#c92a2a';
  var pending = 0, charts = 0;
  function drawn(u) {
    if (u.root.getAttribute('data-drawn')) return;
    u.root.setAttribute('data-drawn', 'true');
    pending -= 1;
    if (pending === 0) document.body.setAttribute('data-rendered', 'true');
  }
  function chart(id, title, yLabel, x, series, opts) {
    var el = document.getElementById(id);
    if (!el) return;
    if (x.length === 0) { el.textContent = title + ': no checks yet'; return; }
    pending += 1; charts += 1;
    var width = Math.max(320, Math.min(1100, el.clientWidth || 560));
    var options = {
      title: title,
      width: width,
      height: 240,
      scales: Object.assign({ x: { time: true } }, (opts && opts.scales) || {}),
      axes: [{}, { label: yLabel, size: 60 }],
      series: [{ label: 'time' }].concat(series.map(function (s) {
        var o = { label: s.label, stroke: s.color, width: s.width || 2, spanGaps: true, points: { show: x.length < 60 } };
        if (s.dash) o.dash = s.dash;
        if (s.stepped) o.paths = uPlot.paths.stepped({ align: 1 });
        if (s.fill) o.fill = s.fill;
        return o;
      })),
      hooks: { draw: [drawn] },
    };
    new uPlot(options, [x].concat(series.map(function (s) { return s.values; })), el);
  }
  try {
    var w = data.weights, c = data.checks;
    chart('chart-weights', 'Traffic weights over time', '% of traffic', w.t, [
      { label: data.candidate + ' (candidate)', color: CAND, values: w.candidate, stepped: true, fill: 'rgba(217,72,15,0.12)' },
      { label: data.baseline + ' (baseline)', color: BASE, values: w.baseline, stepped: true },
    ], { scales: { y: { range: [0, 100] } } });
    var errSeries = [
      { label: data.candidate, color: CAND, values: c.errorRate.candidate },
      { label: data.baseline, color: BASE, values: c.errorRate.baseline },
    ];
    var p95Series = [
      { label: data.candidate, color: CAND, values: c.p95.candidate },
      { label: data.baseline, color: BASE, values: c.p95.baseline },
    ];
    if (data.limits) {
      errSeries.push({ label: 'limit', color: LIMIT, dash: [6, 4], width: 1, values: c.t.map(function () { return data.limits.errorRatePct; }) });
      p95Series.push({ label: 'limit', color: LIMIT, dash: [6, 4], width: 1, values: c.t.map(function () { return data.limits.p95Ms; }) });
    }
    chart('chart-errors', 'Error rate per check', '% errors', c.t, errSeries, { scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.15)]; } } } });
    chart('chart-p95', 'Latency p95 per check', 'ms', c.t, p95Series, { scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.15)]; } } } });
    data.evidence.forEach(function (e) {
      chart('chart-evidence-' + e.metric, e.label + ': evidence (e-value) against its rollback level', 'e-value (log)', e.t, [
        { label: 'e-value', color: CAND, values: e.eValue },
        { label: 'rolls back at', color: LIMIT, dash: [6, 4], width: 1, values: e.rollbackAt },
      ], { scales: { y: { distr: 3, log: 10 } } });
    });
    document.body.setAttribute('data-charts', String(charts));
    if (pending === 0) document.body.setAttribute('data-rendered', 'true');
  } catch (err) {
    fail(err && err.stack ? err.stack : String(err));
  }
})();
`;

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 24px; color: #212529; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.phase { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 13px; vertical-align: middle; }
.phase.promoted { background: #2b8a3e; } .phase.rolled_back, .phase.aborted, .phase.failed { background: #c92a2a; }
.phase.progressing, .phase.paused, .phase.awaiting_approval, .phase.rolling_back { background: #e67700; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.facts dt { color: #868e96; } dl.facts dd { margin: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.chart { min-height: 280px; border: 1px solid #e9ecef; border-radius: 6px; padding: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e9ecef; vertical-align: top; }
th { background: #f8f9fa; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pass { color: #2b8a3e; font-weight: 600; } .fail { color: #c92a2a; font-weight: 600; } .inconclusive { color: #e67700; font-weight: 600; }
.muted { color: #868e96; }
footer { margin-top: 28px; color: #868e96; font-size: 12px; }
`;

export function renderHtmlReport(s: RolloutStatus, options: { generatedAt?: Date } = {}): string {
  const { js, css, version } = uplotAssets();
  const data = reportData(s);
  const generatedAt = (options.generatedAt ?? new Date()).toISOString();
  const decisions = [...s.decisions].sort((a, b) => a.seq - b.seq);
  const steps = s.spec.steps.map((st) => `${st.weight}%${st.bake ? ` (${humanMs(st.bake)})` : ''}${st.gate === 'manual' ? ' [manual gate]' : ''}`).join(' → ');
  const judge = s.spec.analysis.judge === 'threshold' ? 'threshold judge' : 'sequential judge';
  const lastEvidence = metricEvidence(decisions.at(-1)?.evidence);
  const evidenceCharts = data.evidence.map((e) => `<div class="chart" id="chart-evidence-${esc(e.metric)}"></div>`).join('\n');
  const evidenceNote = data.evidence.length === 0
    ? `<p class="muted">${s.spec.analysis.judge === 'threshold' ? 'The threshold judge keeps no e-values: its error-rate and p95 limits are drawn on the charts above.' : 'No metric had been tested yet.'}</p>`
    : '';
  const page = s.decisionPage;
  const earlier = page.earlier.count > 0 ? `<p class="muted">${page.earlier.count} older decisions are only counted in the status (pass ${page.earlier.verdicts.pass}, fail ${page.earlier.verdicts.fail}, inconclusive ${page.earlier.verdicts.inconclusive}); the Temporal history keeps them in full.</p>` : '';
  const rows = decisions
    .map(
      (d) => `<tr><td class="num">${d.seq}</td><td class="num">${esc(d.at.replace('T', ' ').slice(0, 19))}</td><td class="num">${d.step + 1}/${s.step.total}</td><td class="num">${d.weight}%</td>` +
        `<td class="${esc(d.verdict)}">${esc(d.verdict)}</td><td>${esc(d.then?.action ?? '')}</td><td>${esc(decisionText(d))}</td></tr>`,
    )
    .join('\n');
  const facts: Array<[string, string]> = [
    ['target', esc(s.target)],
    ['baseline', `${esc(s.baseline.version)} <span class="muted">${esc(s.baseline.url)}</span>`],
    ['candidate', `${esc(s.candidate.version)} <span class="muted">${esc(s.candidate.url)}</span>`],
    ['steps', esc(steps)],
    ['analysis', esc(`${judge}, a check every ${humanMs(s.spec.analysis.interval)}, ≥${s.spec.analysis.minRequests} candidate requests per check`)],
    ['weights now', esc(`${s.baseline.version} ${s.weights.baseline}% / ${s.candidate.version} ${s.weights.candidate}%`)],
    ['started', esc(s.startedAt)],
    ['ended', esc(s.outcome ? s.outcome.at : 'still running')],
  ];
  if (s.outcome) facts.push(['outcome', esc(s.outcome.reason)]);
  if (s.step.waiting) facts.push(['waiting', esc(`${s.step.waiting.reason}: ${s.step.waiting.message}`)]);
  if (lastEvidence?.length) {
    facts.push(['last evidence', esc(lastEvidence.map((m) => (m.calibrating ? `${m.label} calibrating` : `${m.label} e=${m.eValue} (rolls back at ${m.rollbackAt}), ${m.bound}${m.ready ? ', ready' : ', not ready'}`)).join(' · '))]);
  }
  if (s.links?.temporalUi) facts.push(['history', `<a href="${esc(s.links.temporalUi)}">${esc(s.links.temporalUi)}</a>`]);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${s.id}: ${s.phase}`)} — model-canary report</title>
<style>${css}</style>
<style>${STYLE}</style>
</head>
<body>
<h1>${esc(s.id)} <span class="phase ${esc(s.phase)}">${esc(s.phase)}</span></h1>
<div class="muted">${esc(s.baseline.version)} → ${esc(s.candidate.version)} · ${esc(judge)} · ${decisions.length} checks</div>
<dl class="facts">
${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('\n')}
</dl>
<h2>Traffic and metrics</h2>
<div class="charts">
<div class="chart" id="chart-weights"></div>
<div class="chart" id="chart-errors"></div>
<div class="chart" id="chart-p95"></div>
</div>
<h2>Evidence against the rollback level</h2>
<p class="muted">The sequential judge rolls back when a metric's e-value reaches its level (1/α for that metric); below 1 the data speak for the candidate.</p>
<div class="charts">
${evidenceCharts}
</div>
${evidenceNote}
<h2>Decisions</h2>
${earlier}
<table>
<thead><tr><th>seq</th><th>time (UTC)</th><th>step</th><th>weight</th><th>verdict</th><th>action</th><th>summary</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="7" class="muted">no checks yet</td></tr>'}
</tbody>
</table>
<footer>Generated ${esc(generatedAt)} by the model-canary CLI from ${esc(s.id)} · charts by uPlot ${esc(version)} (MIT), inlined: this page needs no network.</footer>
<script id="report-data" type="application/json">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>
<script>${scriptSafe(js)}</script>
<script>${scriptSafe(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
