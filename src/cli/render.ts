/**
 * What the CLI prints: the status view of `get` (and of each redraw of `get --watch` on a
 * terminal), the one-line-per-change watch log, the rollout list and the text report. Pure
 * functions of the API's JSON; colours only when asked.
 */
import { metricEvidence, type StatusChanges } from '../client';
import type { VersionSummary } from '../analysis/metrics';
import { isFinal, reasonsText, type Decision, type RolloutStatus, type RolloutSummary } from '../workflows/status';

// ---- colours and text ----

export interface Paint {
  bold(t: string): string;
  dim(t: string): string;
  green(t: string): string;
  red(t: string): string;
  yellow(t: string): string;
  cyan(t: string): string;
}

export function paint(enabled: boolean): Paint {
  const wrap = (code: string) => (t: string) => (enabled && t ? `\x1b[${code}m${t}\x1b[0m` : t);
  return { bold: wrap('1'), dim: wrap('2'), green: wrap('32'), red: wrap('31'), yellow: wrap('33'), cyan: wrap('36') };
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
export const stripAnsi = (t: string) => t.replace(ANSI, '');
/** Columns a string takes (every character we print is one column wide). */
export const visibleLength = (t: string) => [...stripAnsi(t)].length;

/** `ms` for people: 850ms, 2.2s, 45s, 3m20s, 1h30m. */
export function humanMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(ms)}ms`;
  if (abs < 10_000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
  if (abs < 60_000) return `${Math.round(ms / 1000)}s`;
  if (abs < 3_600_000) {
    const m = Math.floor(ms / 60_000);
    const s = Math.round((ms - m * 60_000) / 1000);
    return s ? `${m}m${s}s` : `${m}m`;
  }
  const h = Math.floor(ms / 3_600_000);
  const m = Math.round((ms - h * 3_600_000) / 60_000);
  return m ? `${h}h${m}m` : `${h}h`;
}

const pct = (x: number, digits = 1) => `${(x * 100).toFixed(digits)}%`;
const ms = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${Math.round(x)} ms`);
/** A local wall-clock time, HH:MM:SS. */
export const clock = (iso: string | number | Date) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toTimeString().slice(0, 8);
};

function bar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const cells = f * width;
  const full = Math.floor(cells);
  const half = cells - full >= 0.5 && full < width;
  return '█'.repeat(full) + (half ? '▌' : '') + '·'.repeat(width - full - (half ? 1 : 0));
}

/** Wraps `text` to `width` columns; continuation lines are indented by `indent` spaces. ANSI codes count for nothing. */
export function wrapLine(text: string, width: number, indent: number): string[] {
  if (!Number.isFinite(width) || visibleLength(text) <= width) return [text];
  const out: string[] = [];
  let line = '';
  let lineLen = 0;
  const pad = ' '.repeat(indent);
  for (const word of text.split(/(?<= )/)) {
    const len = visibleLength(word);
    if (lineLen > 0 && lineLen + len > width && indent + len <= width) {
      out.push(line.trimEnd());
      line = pad;
      lineLen = indent;
    }
    if (lineLen + len > width) {
      // A word longer than a line (a URL): cut it, from where the line stands.
      let rest = stripAnsi(word);
      while (lineLen + rest.length > width) {
        const room = width - lineLen;
        out.push(line + rest.slice(0, room));
        rest = rest.slice(room);
        line = pad;
        lineLen = indent;
      }
      line += rest;
      lineLen += rest.length;
      continue;
    }
    line += word;
    lineLen += len;
  }
  if (line.trim()) out.push(line.trimEnd());
  return out;
}

// ---- pieces of a status ----

export function phaseText(phase: string, p: Paint): string {
  if (phase === 'promoted') return p.green(phase);
  if (phase === 'rolled_back' || phase === 'failed' || phase === 'aborted') return p.red(phase);
  if (phase === 'rolling_back' || phase === 'paused' || phase === 'awaiting_approval') return p.yellow(phase);
  return p.cyan(phase);
}

export function verdictText(verdict: string, p: Paint): string {
  return verdict === 'pass' ? p.green('PASS') : verdict === 'fail' ? p.red('FAIL') : p.yellow(verdict.toUpperCase());
}

export function stepText(s: RolloutStatus): string {
  return s.step.index < s.step.total ? `step ${s.step.index + 1}/${s.step.total}` : `all ${s.step.total} steps done`;
}

export function weightsText(s: RolloutStatus): string {
  return `${s.baseline.version} ${s.weights.baseline}% / ${s.candidate.version} ${s.weights.candidate}%`;
}

function figures(name: string, v: VersionSummary | undefined): string {
  if (!v) return `${name} –`;
  return `${name} ${v.requests} req, ${pct(v.errorRate)} err, p95 ${ms(v.latencyP95Ms)}`;
}

/** The decision in one sentence: its own summary, else verdict and reasons. */
export function decisionText(d: Decision): string {
  return d.summary ?? `${d.verdict}: ${reasonsText(d.reasons)}`;
}

/** The newest decision. */
const lastDecision = (s: RolloutStatus): Decision | undefined => s.decisions.at(-1);

/** A log meter of an e-value on the way from 1 (nothing) to `rollbackAt` (rolls back). */
function evidenceMeter(eValue: number, rollbackAt: number, width = 10): string {
  if (!(eValue > 1) || !(rollbackAt > 1)) return `[${'·'.repeat(width)}]`;
  return `[${bar(Math.log(eValue) / Math.log(rollbackAt), width)}]`;
}

function fmtE(x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (x !== 0 && (Math.abs(x) < 0.001 || Math.abs(x) >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(4)));
}

/** Each metric's last evidence in brief: e-value vs rollback level, ready or not (sequential); value vs limit (threshold). */
export function evidenceLines(s: RolloutStatus, p: Paint): string[] {
  const d = lastDecision(s);
  if (!d) return [];
  const metrics = metricEvidence(d.evidence);
  if (metrics) {
    if (metrics.length === 0) return [`  ${p.dim('no metric tested yet')}`];
    const labelWidth = Math.max(...metrics.map((m) => m.label.length));
    const eWidth = Math.max(...metrics.map((m) => fmtE(m.eValue).length));
    return metrics.map((m) => {
      const label = m.label.padEnd(labelWidth);
      if (m.calibrating) return `  ${label}  ${p.dim('calibrating (the latency boundary is set from the baseline first)')}`;
      const meter = evidenceMeter(m.eValue, m.rollbackAt);
      const level = m.eValue >= m.rollbackAt ? p.red('reached') : 'below';
      const ready = m.ready ? p.green('ready ✓') : p.yellow('not ready');
      const tolerance = m.tolerance !== undefined ? `, tolerance ${m.tolerance}×` : '';
      return `  ${label}  e=${fmtE(m.eValue).padEnd(eWidth)} ${meter} ${level} rollback at ${fmtE(m.rollbackAt)} · ${ready} (${m.bound}${tolerance})`;
    });
  }
  // The threshold judge: the check's own numbers against the spec's limits.
  const t = s.spec.analysis.thresholds;
  const c = d.metrics.candidate;
  const b = d.metrics.baseline;
  const lines: string[] = [];
  const maxErr = t?.maxErrorRate ?? 0.05;
  const maxP95 = t?.maxLatencyP95Ms ?? 800;
  const mark = (ok: boolean) => (ok ? p.green('ok') : p.red('over'));
  lines.push(`  errors   ${s.candidate.version} ${pct(c.errorRate)} vs limit ${pct(maxErr)} (${s.baseline.version} ${pct(b.errorRate)}) · ${mark(c.errorRate <= maxErr)}`);
  if (c.latencyP95Ms !== null && c.latencyP95Ms !== undefined) {
    lines.push(`  latency  ${s.candidate.version} p95 ${ms(c.latencyP95Ms)} vs limit ${ms(maxP95)} (${s.baseline.version} ${ms(b.latencyP95Ms)}) · ${mark(c.latencyP95Ms <= maxP95)}`);
  }
  lines.push(`  failed checks ${d.failedChecks}/${s.spec.analysis.failureLimit}`);
  return lines;
}

export interface StatusViewOptions {
  color?: boolean;
  /** Wrap to this many columns (default: no wrapping). */
  width?: number;
  /** For "updated 3s ago" (default: now). */
  now?: number;
}

/** The `get` view: phase, target, versions, weights, steps and bake, evidence, summary, waiting, outcome. */
export function renderStatus(s: RolloutStatus, options: StatusViewOptions = {}): string[] {
  const p = paint(options.color ?? false);
  const now = options.now ?? Date.now();
  const width = options.width ?? Number.POSITIVE_INFINITY;
  const rows: Array<[string, string]> = [];
  const row = (label: string, value: string) => rows.push([label, value]);
  const analysis = s.spec.analysis;
  const judge = analysis.judge === 'threshold' ? 'threshold judge' : 'sequential judge';

  const ago = humanMs(now - new Date(s.updatedAt).getTime());
  const head = `${p.bold(s.id)}  ${p.bold(phaseText(s.phase, p))}  ${p.dim(`updated ${clock(s.updatedAt)} (${ago} ago)`)}`;
  row('target', `${s.target}: ${s.baseline.version} → ${s.candidate.version} · ${judge}, a check every ${humanMs(analysis.interval)}`);
  row('versions', `baseline ${s.baseline.version} ${p.dim(s.baseline.url ?? '')} · candidate ${s.candidate.version} ${p.dim(s.candidate.url ?? '')} · ${s.spec.routing.kind} routing, ${s.spec.metrics.kind} metrics`);
  row('weights', weightsText(s));

  // Steps: the ladder, a progress bar over it, and the current step's bake.
  const final = isFinal(s.phase);
  const weights = s.spec.steps.map((st) => st.weight);
  const failedAt = final && s.phase !== 'promoted' ? Math.min(s.step.index, s.step.total - 1) : -1;
  const ladder = weights
    .map((w, i) => {
      if (i === failedAt) return p.red(`✗${w}%`);
      if (i < s.step.index || s.phase === 'promoted') return p.green(`✓${w}%`);
      if (i === s.step.index) return p.bold(`▶${w}%`);
      return p.dim(` ${w}%`);
    })
    .join(' ');
  const bakeFraction = s.step.bakeMs > 0 ? Math.min(1, s.step.bakedMs / s.step.bakeMs) : s.step.index < s.step.total && s.decisions.some((d) => d.step === s.step.index) ? 1 : 0;
  const overall = s.phase === 'promoted' ? 1 : (Math.min(s.step.index, s.step.total) + (s.step.index < s.step.total ? bakeFraction : 0)) / Math.max(1, s.step.total);
  row('progress', `[${bar(overall, 30)}] ${stepText(s)} · ${s.candidate.version} at ${s.weights.candidate}%`);
  row('steps', ladder);
  if (!final && s.step.index < s.step.total) {
    const gate = s.spec.steps[s.step.index]?.gate === 'manual' ? ' · then a manual gate (approve)' : '';
    if (s.step.bakeMs > 0) {
      const over = s.step.bakedMs > s.step.bakeMs ? ` · ${humanMs(s.step.bakedMs - s.step.bakeMs)} past it (extended)` : '';
      row('bake', `[${bar(s.step.bakedMs / s.step.bakeMs, 20)}] ${humanMs(s.step.bakedMs)} of ${humanMs(s.step.bakeMs)} (${Math.floor(Math.min(1, s.step.bakedMs / s.step.bakeMs) * 100)}%)${over}${gate}`);
    } else {
      row('bake', `none at ${s.step.weight}%${gate}`);
    }
  }
  if (s.step.holding) row('holding', s.step.holding);

  const d = lastDecision(s);
  if (d) {
    // A rollback's reason is the outcome's, below.
    const reason = d.then?.reason && d.then.reason !== s.outcome?.reason ? ` (${d.then.reason})` : '';
    const then = d.then ? ` · then ${d.then.action}${reason}` : '';
    row('last check', `#${d.seq} at ${clock(d.at)} · step ${d.step + 1} @${d.weight}% · ${verdictText(d.verdict, p)}${then}`);
    row('traffic', `${figures(s.candidate.version, d.metrics.candidate)} | ${figures(s.baseline.version, d.metrics.baseline)}`);
    evidenceLines(s, p).forEach((line, i) => row(i === 0 ? 'evidence' : '', line.replace(/^ {2}/, '')));
    row('summary', decisionText(d));
  } else if (!final) {
    row('last check', p.dim(`none yet (the first after ${humanMs(analysis.interval)})`));
  }
  const w = s.step.waiting;
  if (w) {
    row('waiting', `${p.yellow(w.reason)}: ${w.message}`);
    if (w.estimate) {
      const secs = w.estimate.seconds !== undefined ? `, ~${humanMs(w.estimate.seconds * 1000)} at the current traffic` : '';
      row('estimate', `${w.estimate.candidateRequests} more candidate requests${secs}`);
    }
  }
  if (s.metricsOutage) {
    const o = s.metricsOutage;
    row('metrics', p.red(`unreadable since ${clock(o.since)} (${o.failedReads} failed reads: ${o.lastError}); rolls back at ${clock(o.rollbackAt)}`));
  }
  const ev = s.events.at(-1);
  if (ev) row('last action', `${ev.action} via ${ev.via}${ev.by ? ` by ${ev.by}` : ''}${ev.reason ? ` ("${ev.reason}")` : ''} at ${clock(ev.at)}: ${ev.applied ? 'applied' : 'not applied'}${ev.note ? ` — ${ev.note}` : ''}`);
  if (s.stale) row('stale', p.yellow(s.stale));
  for (const r of s.retrying ?? []) {
    row('retrying', p.yellow(`${r.activity}, attempt ${r.attempt}${r.nextAttemptAt ? ` (next at ${clock(r.nextAttemptAt)})` : ''}: ${r.lastError}`));
  }
  if (s.outcome) row('outcome', `${phaseText(s.outcome.result, p)} at ${clock(s.outcome.at)}: ${s.outcome.reason}`);
  if (s.links?.temporalUi) row('history', p.dim(s.links.temporalUi));

  const labelWidth = 12;
  const lines = [head];
  for (const [label, value] of rows) {
    const text = `${label.padEnd(labelWidth)}${value}`;
    lines.push(...wrapLine(text, width, labelWidth + (label ? 0 : 2)));
  }
  return lines;
}

// ---- the watch log (not a terminal): one line per change ----

/** The lines one change adds to the log: new checks (their summaries), weights, waiting, phase. */
export function changeLines(s: RolloutStatus, changes: StatusChanges, options: { color?: boolean; now?: number } = {}): string[] {
  const p = paint(options.color ?? false);
  const t = clock(options.now ?? Date.now());
  if (changes.first) {
    const lines = [`${t} ${s.id} ${phaseText(s.phase, p)} · ${stepText(s)} · ${weightsText(s)}`];
    if (s.step.waiting) lines.push(`${t} waiting ${s.step.waiting.reason}: ${s.step.waiting.message}`);
    return lines;
  }
  const lines: string[] = [];
  for (const d of changes.decisions) lines.push(`${t} check ${d.seq} · ${verdictText(d.verdict, p)} · ${decisionText(d)}`);
  if (changes.weights) lines.push(`${t} weights ${weightsText(s)} · ${stepText(s)}`);
  if (changes.waiting) {
    lines.push(s.step.waiting ? `${t} waiting ${s.step.waiting.reason}: ${s.step.waiting.message}` : `${t} no longer waiting`);
  }
  if (changes.stale && s.stale) lines.push(`${t} status is stale: ${s.stale}`);
  if (changes.retrying) for (const r of s.retrying ?? []) lines.push(`${t} retrying ${r.activity} (attempt ${r.attempt}): ${r.lastError}`);
  if (changes.phase) lines.push(`${t} phase ${phaseText(s.phase, p)}${s.outcome ? `: ${s.outcome.reason}` : ''}`);
  return lines;
}

// ---- list and report ----

function table(header: string[], rows: string[][], p: Paint): string[] {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleLength(c))))
      .join('  ')
      .trimEnd();
  return [p.bold(line(header)), ...rows.map(line)];
}

export function renderList(rollouts: RolloutSummary[], options: { color?: boolean } = {}): string[] {
  const p = paint(options.color ?? false);
  if (rollouts.length === 0) return ['no rollouts'];
  return table(
    ['ID', 'TARGET', 'PHASE', 'WEIGHT', 'STARTED', 'CLOSED'],
    rollouts.map((r) => [
      r.id,
      r.target,
      phaseText(r.phase, p),
      r.canaryWeight === undefined ? '–' : `${r.canaryWeight}%`,
      r.startedAt ? r.startedAt.replace('T', ' ').slice(0, 19) : '–',
      r.closedAt ? r.closedAt.replace('T', ' ').slice(0, 19) : '',
    ]),
    p,
  );
}

/** The text report: what the rollout is and how it ended, then every kept decision (seq, time, weight, verdict, action, summary). */
export function renderReport(s: RolloutStatus, options: { color?: boolean } = {}): string[] {
  const p = paint(options.color ?? false);
  const judge = s.spec.analysis.judge === 'threshold' ? 'threshold judge' : 'sequential judge';
  const end = s.outcome ? new Date(s.outcome.at).getTime() : Date.now();
  const lasted = humanMs(end - new Date(s.startedAt).getTime());
  const steps = s.spec.steps.map((st) => `${st.weight}%${st.bake ? ` (${humanMs(st.bake)})` : ''}${st.gate === 'manual' ? ' [manual gate]' : ''}`).join(' → ');
  const lines = [
    `${p.bold(`rollout ${s.id}`)}: ${phaseText(s.phase, p)}${s.outcome ? ` — ${s.outcome.reason}` : ''}`,
    `target     ${s.target}: ${s.baseline.version} (${s.baseline.url}) → ${s.candidate.version} (${s.candidate.url})`,
    `steps      ${steps}; ${judge}, a check every ${humanMs(s.spec.analysis.interval)}, ≥${s.spec.analysis.minRequests} requests`,
    `time       started ${s.startedAt}${s.startedBy ? ` by ${s.startedBy}` : ''}${s.outcome ? `, ended ${s.outcome.at}` : ', still running'} (${lasted})`,
    `weights    ${weightsText(s)} · ${stepText(s)}`,
  ];
  if (s.links?.temporalUi) lines.push(`history    ${s.links.temporalUi}`);
  const page = s.decisionPage;
  const earlier = page.earlier.count > 0
    ? `; ${page.earlier.count} older ones are only counted (pass ${page.earlier.verdicts.pass}, fail ${page.earlier.verdicts.fail}, inconclusive ${page.earlier.verdicts.inconclusive})`
    : '';
  lines.push('', `decisions: ${page.total} in all, ${s.decisions.length} below${earlier}`);
  if (s.decisions.length > 0) {
    lines.push(
      ...table(
        ['SEQ', 'TIME', 'STEP', 'WEIGHT', 'VERDICT', 'ACTION', 'SUMMARY'],
        s.decisions.map((d) => [String(d.seq), clock(d.at), `${d.step + 1}/${s.step.total}`, `${d.weight}%`, verdictText(d.verdict, p), d.then?.action ?? '–', decisionText(d)]),
        p,
      ),
    );
  }
  if (s.events.length > 0) {
    lines.push('', 'operator actions:');
    for (const e of s.events) lines.push(`  ${clock(e.at)} ${e.action} via ${e.via}${e.by ? ` by ${e.by}` : ''}${e.reason ? ` ("${e.reason}")` : ''}: ${e.applied ? 'applied' : 'not applied'} — ${e.note}`);
  }
  return lines;
}
