/**
 * The benchmark's scenarios: A/A across the nuisance grid, A/B error and latency regressions; and
 * (group 'llm', ours only) each LLM gate metric tested beside errors and latency, A/A and regressed.
 */
import type { AnalysisSpec } from '../../src/spec/schema';
import type { GateMetricName } from '../../src/analysis/gate-metrics';
import { ANALYSIS, LADDER_HORIZON, type Schedule } from './rollout';
import { NOMINAL_P95_MS, type LlmWorld, type Nuisance, type World } from './simulator';

export interface Scenario {
  id: string;
  group: 'A/A' | 'errors' | 'latency' | 'llm';
  /** Short description of the cell. */
  label: string;
  world: World;
  schedule: Schedule;
  horizon: number;
  reps: number;
  analysis: AnalysisSpec;
}

const FIXED_HORIZON = 120; // one hour of 30 s checks
const RPS = 100;
/** LLM cells' token prices (per million tokens), both versions unless a cell changes the candidate's. */
const PRICE = { inputPer1M: 1, outputPer1M: 2 };

const spread = {
  low: { podErrorSpread: 0.05, podLatencySpread: 0.02 },
  mid: { podErrorSpread: 0.1, podLatencySpread: 0.03 },
  high: { podErrorSpread: 0.15, podLatencySpread: 0.05 },
};

const DEFAULT_NUISANCE: Nuisance = { candidatePods: 3, ...spread.mid, shock: 0.15, missing: 0.02 };
/** No pod-to-pod spread: the candidate's pods are the baseline's, in distribution. */
const IDENTICAL: Nuisance = { candidatePods: 3, podErrorSpread: 0, podLatencySpread: 0, shock: 0.15, missing: 0.02 };
export const LOW_TRAFFIC_RPS = [20, 50];

/** Fixed-threshold judges get thresholds an operator would set: 2× the usual error rate, 1.25× the usual p95. */
function analysisFor(baseErrorRate: number): AnalysisSpec {
  return { ...ANALYSIS, thresholds: { maxErrorRate: 2 * baseErrorRate, maxLatencyP95Ms: Math.round(1.25 * NOMINAL_P95_MS) } };
}

const scheduleLabel = (s: Schedule) => (s.kind === 'fixed' ? `w=${s.weight}%` : 'ladder');

export function scenarios(quick: boolean): Scenario[] {
  const out: Scenario[] = [];
  const aaReps = quick ? 100 : 600;
  const abReps = quick ? 40 : 200;
  const world = (baseErrorRate: number, nuisance: Nuisance, errorFactor = 1, latencyFactor = 1, onset = Number.MAX_SAFE_INTEGER): World => ({
    rps: RPS,
    baseErrorRate,
    nuisance,
    errorFactor,
    latencyFactor,
    onset,
  });
  const add = (group: Scenario['group'], label: string, w: World, schedule: Schedule, reps: number) =>
    out.push({
      id: `${group} ${label} ${scheduleLabel(schedule)}`,
      group,
      label,
      world: w,
      schedule,
      horizon: schedule.kind === 'fixed' ? FIXED_HORIZON : LADDER_HORIZON,
      reps,
      analysis: analysisFor(w.baseErrorRate),
    });

  // A/A across the nuisance grid, on the full ladder (false rollbacks, time to promote).
  for (const pods of [1, 3, 8]) {
    for (const sp of ['low', 'high'] as const) {
      for (const shock of [0, 0.15]) {
        for (const missing of [0, 0.05]) {
          const n: Nuisance = { candidatePods: pods, ...spread[sp], shock, missing };
          add('A/A', `pods=${pods} spread=${sp} shock=${shock} miss=${missing}`, world(0.01, n), { kind: 'ladder' }, aaReps);
        }
      }
    }
  }
  add('A/A', 'base=0.1% pods=3 spread=mid shock=0.15 miss=0.02', world(0.001, DEFAULT_NUISANCE), { kind: 'ladder' }, aaReps);
  // Identical candidates at low traffic (a few tens of requests per second): how soon readiness comes.
  for (const rps of LOW_TRAFFIC_RPS) {
    add('A/A', `identical rps=${rps} pods=3 shock=0.15 miss=0.02`, { ...world(0.01, IDENTICAL), rps }, { kind: 'ladder' }, aaReps);
  }
  for (const weight of [5, 50]) {
    add('A/A', 'pods=3 spread=mid shock=0.15 miss=0.02', world(0.01, DEFAULT_NUISANCE), { kind: 'fixed', weight }, aaReps);
    // The 0.1% stratum's fixed weights too: baselines are calibrated per base error rate (run.ts).
    add('A/A', 'base=0.1% pods=3 spread=mid shock=0.15 miss=0.02', world(0.001, DEFAULT_NUISANCE), { kind: 'fixed', weight }, aaReps);
  }

  const schedules: Schedule[] = [{ kind: 'fixed', weight: 1 }, { kind: 'fixed', weight: 5 }, { kind: 'fixed', weight: 25 }, { kind: 'fixed', weight: 50 }, { kind: 'ladder' }];
  for (const base of [0.001, 0.01]) {
    for (const factor of [1.5, 2, 5]) {
      for (const s of schedules) add('errors', `errors x${factor} base=${base * 100}% onset=0`, world(base, DEFAULT_NUISANCE, factor, 1, 0), s, abReps);
    }
  }
  add('errors', 'errors x2 base=1% onset=40', world(0.01, DEFAULT_NUISANCE, 2, 1, 40), { kind: 'fixed', weight: 5 }, abReps);
  add('errors', 'errors x2 base=1% onset=30', world(0.01, DEFAULT_NUISANCE, 2, 1, 30), { kind: 'ladder' }, abReps);
  for (const factor of [1.1, 1.25, 1.5]) {
    for (const s of schedules) add('latency', `p95 x${factor} onset=0`, world(0.01, DEFAULT_NUISANCE, 1, factor, 0), s, abReps);
  }
  add('latency', 'p95 x1.25 onset=40', world(0.01, DEFAULT_NUISANCE, 1, 1.25, 40), { kind: 'fixed', weight: 5 }, abReps);
  add('latency', 'p95 x1.25 onset=30', world(0.01, DEFAULT_NUISANCE, 1, 1.25, 30), { kind: 'ladder' }, abReps);

  // LLM gate metrics, one at a time beside errors and latency (analysis.metrics lists exactly
  // these three), on the ladder at the default nuisance: A/A, and a regression of the metric
  // from the start. Ours only (the baselines know errors and latency alone).
  const llmAaReps = quick ? 100 : 300;
  const llmAbReps = quick ? 40 : 100;
  const llmCell = (label: string, metric: GateMetricName, llm: LlmWorld, reps: number) => {
    const w: World = { ...world(0.01, DEFAULT_NUISANCE, 1, 1, 0), llm: { pricing: { baseline: PRICE, candidate: PRICE }, ...llm } };
    out.push({
      id: `llm ${label} ladder`,
      group: 'llm',
      label,
      world: w,
      schedule: { kind: 'ladder' },
      horizon: LADDER_HORIZON,
      reps,
      analysis: { ...analysisFor(0.01), metrics: { errors: {}, latency: {}, [metric]: {} } },
    });
  };
  const regressions: Array<[GateMetricName, number[], (f: number) => LlmWorld]> = [
    ['ttft', [2], (f) => ({ ttftFactor: f })],
    ['interTokenLatency', [2], (f) => ({ itlFactor: f })],
    ['outputTokens', [2], (f) => ({ outputTokensFactor: f })],
    // 2× cost: both prices doubled, the same tokens (below: 2× output tokens at the same prices).
    ['cost', [2], (f) => ({ pricing: { baseline: PRICE, candidate: { inputPer1M: f * PRICE.inputPer1M, outputPer1M: f * PRICE.outputPer1M } } })],
    ['truncation', [2, 3], (f) => ({ truncationFactor: f })],
    ['invalidOutput', [2, 3], (f) => ({ invalidFactor: f })],
  ];
  for (const [metric, factors, regress] of regressions) {
    llmCell(`A/A ${metric}`, metric, {}, llmAaReps);
    for (const f of factors) llmCell(`${f}x ${metric}`, metric, regress(f), llmAbReps);
  }
  // Cost per request ×1.57 ((300·1 + 2·200·2)/(300·1 + 200·2)): twice the output tokens, the same prices.
  llmCell('2x outputTokens, cost', 'cost', { outputTokensFactor: 2 }, llmAbReps);
  // At the tolerance (H0's edge, the hardest case for validity): the metric may not roll back in
  // more than α × its share of rollouts, and its e-value may reach 10 / 100 in at most 10% / 1%
  // (Ville). The mean tests' quasi-Poisson scaling is an approximation: this is where it shows.
  const tolReps = quick ? 60 : 200;
  llmCell('tol=1.25x outputTokens', 'outputTokens', { outputTokensFactor: 1.25 }, tolReps);
  llmCell('tol=1.25x cost', 'cost', { pricing: { baseline: PRICE, candidate: { inputPer1M: 1.25 * PRICE.inputPer1M, outputPer1M: 1.25 * PRICE.outputPer1M } } }, tolReps);
  llmCell('tol=1.2x truncation', 'truncation', { truncationFactor: 1.2 }, tolReps);
  return out;
}
