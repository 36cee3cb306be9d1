/**
 * A decision in plain words, the line a person reads first: what was seen and what happens
 * next, e.g. "v3 at 10%: 8.7% errors vs 0.0% on v2 — worse than the 1.2× tolerance allows:
 * rolling back". The judge's reasons and evidence follow it in the decision. Pure.
 */
import { GATE_METRIC_NAMES, GATE_METRICS } from '../analysis/gate-metrics';
import type { VersionSummary } from '../analysis/metrics';
import type { MetricReport, SloReport } from '../analysis/sequential';
import { formatDuration } from '../spec/duration';
import type { Decision } from './status';

interface Versions {
  baseline: string;
  candidate: string;
}

/**
 * One line for `decision`; `next` is where the rollout goes when the step ends: the next weight
 * (100: promotion), or an operator's approval first (a manual gate).
 */
export function decisionSummary(versions: Versions, decision: Omit<Decision, 'seq' | 'summary'>, next: { weight: number; approval: boolean }): string {
  const head = `${versions.candidate} at ${decision.weight}%`;
  const seen = figures(versions, decision.metrics.baseline, decision.metrics.candidate);
  const action = decision.then?.action;
  if (action === 'rollback') return `${head}: ${failure(versions, decision) ?? firstReason(decision)}: rolling back`;
  if (action === 'end') {
    const why = decision.verdict === 'pass' && isReady(decision) ? 'bounded within tolerance' : 'no regression seen';
    const then = next.approval ? 'waiting for approval' : next.weight >= 100 ? 'promoting to 100%' : `next step ${next.weight}%`;
    return `${head}: ${seen} — ${why}: ${then}`;
  }
  if (decision.waiting) return `${head}: ${seen} — ${waitingWords(decision.waiting)}`;
  return `${head}: ${seen} — no regression seen so far: baking`;
}

function figures(versions: Versions, baseline: VersionSummary, candidate: VersionSummary): string {
  if (candidate.requests === 0) return 'no candidate traffic measured';
  const errors = `${pct(candidate.errorRate)} errors vs ${pct(baseline.errorRate)} on ${versions.baseline}`;
  const p95 = candidate.latencyP95Ms !== undefined && baseline.latencyP95Ms !== undefined ? `, p95 ${ms(candidate.latencyP95Ms)} vs ${ms(baseline.latencyP95Ms)}` : '';
  return `${errors}${p95} (${candidate.requests} requests)`;
}

/** The sequential judge's failing metric (its e-value past the rollback level), in words. */
function failure(versions: Versions, decision: Omit<Decision, 'seq' | 'summary'>): string | undefined {
  const evidence = decision.evidence as Record<string, unknown> | undefined;
  if (!evidence) return undefined;
  const slo = evidence.slo as SloReport | null | undefined;
  if (slo?.errorRate?.breached) {
    const r = slo.errorRate;
    return `${pct(r.observedRate ?? 0)} errors (${r.events}/${r.requests}) — credibly above the SLO maxErrorRate ${pct(r.limit)}`;
  }
  if (slo?.latencyP95?.breached) {
    const r = slo.latencyP95;
    return `${pct(r.observedRate ?? 0)} of requests slower than ${ms(r.boundaryMs ?? r.limit)} — p95 credibly above the SLO maxLatencyP95Ms ${ms(r.limit)}`;
  }
  for (const name of GATE_METRIC_NAMES) {
    const report = evidence[name] as MetricReport | undefined;
    if (!report?.tested || !(report.eValue >= report.rollbackAt)) continue;
    const row = GATE_METRICS[name];
    if (row.test === 'mean') {
      return `${row.label} ${report.candidateMean ?? '?'} vs ${report.baselineMean ?? '?'} on ${versions.baseline} — more than the ${report.r0}× tolerance allows`;
    }
    const rate = (side: { events: number; requests: number }) => pct(side.requests > 0 ? side.events / side.requests : 0);
    const boundary = row.test === 'rate' || report.boundaryMs == null ? '' : ` (> ${ms(report.boundaryMs)})`;
    // Errors and latency are named by their events; every other metric by its name first.
    const subject = name === 'errors' || name === 'latency' ? '' : `${row.label}: `;
    const worse = row.test === 'exceedance' ? 'slower than' : 'worse than';
    return `${subject}${rate(report.candidate)} ${row.events}${boundary} vs ${rate(report.baseline)} on ${versions.baseline} — ${worse} the ${report.r0}× tolerance allows`;
  }
  const shadow = evidence.shadow as { metrics?: Record<string, { label: string; worse: number; better: number; pairs: number; r0: number; failed: boolean }> } | null | undefined;
  for (const m of Object.values(shadow?.metrics ?? {})) {
    if (m.failed) return `${m.label}: worse in ${m.worse} and better in ${m.better} of ${m.pairs} mirrored pairs — more often worse than the ${m.r0}× tolerance allows`;
  }
  return undefined;
}

function isReady(decision: Omit<Decision, 'seq' | 'summary'>): boolean {
  const evidence = decision.evidence as Record<string, MetricReport | undefined> | undefined;
  if (!evidence) return false;
  const tested = GATE_METRIC_NAMES.map((m) => evidence[m]).filter((r) => r?.tested);
  return tested.length > 0 && tested.every((r) => r!.ready);
}

const WAITING_WORDS: Record<string, string> = {
  thin_traffic: 'too little traffic to judge',
  needs_evidence: 'not yet enough evidence to go on',
  inconclusive: 'inconclusive',
  srm: 'the traffic split is off (sample-ratio mismatch)',
  metrics_missing: 'metrics missing',
  failed_check: 'a check failed',
};

function waitingWords(waiting: NonNullable<Decision['waiting']>): string {
  const words = WAITING_WORDS[waiting.reason] ?? waiting.reason;
  const estimate = waiting.estimate;
  if (!estimate) return `${words}: holding`;
  const time = estimate.seconds === undefined ? '' : `, about ${formatDuration(Math.max(1, estimate.seconds) * 1000)}`;
  return `${words}: holding for about ${estimate.candidateRequests} more candidate requests${time}`;
}

function firstReason(decision: Omit<Decision, 'seq' | 'summary'>): string {
  const reason = decision.reasons[0] ?? decision.verdict;
  return reason.replace(/[.\s]+$/, '');
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number) => `${Math.round(x)} ms`;
