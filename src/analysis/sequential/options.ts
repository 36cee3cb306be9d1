/**
 * Options of the sequential judge, with defaults. Plain data; no zod here so that workflow code
 * can import the judge without the schema (the zod fragment lives in ./schema.ts).
 */
import { GATE_METRICS, GATE_METRIC_NAMES, type GateMetricName } from '../gate-metrics';
import { DEFAULT_ALTERNATIVES } from './ratio-test';

/** The gate metrics tested on histograms (a boundary and a scale tolerance): latency, TTFB, TTFT, inter-token latency. */
export type ExceedanceMetricName = { [K in GateMetricName]: (typeof GATE_METRICS)[K]['test'] extends 'exceedance' ? K : never }[GateMetricName];
export const EXCEEDANCE_METRIC_NAMES = GATE_METRIC_NAMES.filter((n): n is ExceedanceMetricName => GATE_METRICS[n].test === 'exceedance');

export interface SequentialJudgeOptions {
  /** False-rollback probability for the whole rollout (all metrics, all checks). */
  alpha: number;
  /**
   * How `alpha` is split across the tested metrics (weights; defaults from the gate-metric table,
   * src/analysis/gate-metrics.ts). TTFB gets the least: it is part of the total latency, whose
   * test also sees most TTFB regressions. The set of metrics is fixed at the first comparison:
   * when time-to-first-byte is absent then, its share goes to latency and it is not tested later.
   * With `analysis.metrics` the listed metrics' weights are scaled to sum to 1; without, the
   * defaults' are used as they are (scaled down only if they sum to more than 1).
   */
  alphaSplit: Record<GateMetricName, number>;
  /**
   * A shadow step's paired tests (same requests to both versions, sign tests on which did worse):
   * the share of `alpha` they get, split evenly; fixed at the first shadow check, and only taken
   * from rollouts that have one.
   */
  shadowAlphaShare: number;
  /**
   * Paired tests: tolerated odds that a pair goes worse rather than better for the candidate
   * (1 = as often worse as better; ties count in neither).
   */
  pairedTolerance: number;
  /** Mean metrics (tokens, cost): baseline requests pooled before the dispersion unit is fixed. */
  meanMinBaseline: number;
  /**
   * Mean metrics: candidate requests pooled into one tested interval. A heavy-tailed quantity's
   * sum over a few requests is one long answer, not a mean: in the bench, one 5,900-token answer
   * among 26 requests at 1% weight was worth 34 dispersion units and rolled back a candidate at
   * its tolerance (bench/results/judge-llm.json).
   */
  meanMinCandidate: number;
  /**
   * When the spec gives SLO guardrails (`analysis.thresholds`), the share of `alpha` their tests
   * get (split evenly between the given SLOs, slo.ts); the comparison with the baseline keeps
   * the rest (its `alphaSplit` shares are scaled by 1 − this). Fixed at the first check. Unused
   * when no threshold is given: the comparison then keeps the whole α.
   */
  sloAlphaShare: number;
  /** Tolerated rate ratio candidate/baseline r₀ per metric (error rate; exceedance rate at the boundary). */
  tolerances: Record<GateMetricName, number>;
  /**
   * Latency and TTFB tolerance in time units: a candidate up to this factor slower (uniformly)
   * is not a regression. Turned into an exceedance ratio at the boundary from the baseline's own
   * tail (boundary.ts); r₀ is the larger of that and `tolerances`. 1 = exceedance ratio only.
   */
  scaleTolerance: Record<ExceedanceMetricName, number>;
  /** Alternatives r > r₀ mixed with equal weights in the regression e-process. */
  alternatives: number[];
  /** Latency boundary: the baseline quantile it approximates, on a bucket edge (0.95 = p95). */
  latencyQuantile: number;
  /** Baseline latency observations summed before the boundary is fixed. */
  boundaryMinBaseline: number;
  /** Hard fast path: candidate error rate at or above this over ≥ catastrophicMinRequests fails at once... */
  catastrophicErrorRate: number;
  catastrophicMinRequests: number;
  /** ...provided it is also at least this many times the baseline's (a shared outage is not the candidate's). */
  catastrophicMinRatio: number;
  /** Sample-ratio-mismatch test level (observed candidate share vs configured weight). */
  srmAlpha: number;
  /** Consecutive inconclusive checks before the judge fails the rollout; 0 = unlimited. */
  maxConsecutiveInconclusive: number;
  /**
   * readyToAdvance: per-metric level of the "ratio < r₀" confidence bound. It gates going
   * faster and beyond 25%, not the rollback test (whose α is unchanged and which keeps running
   * after the gate): a candidate exactly at tolerance passes the gate with probability ≤ this.
   */
  readyAlpha: number;
  /** readyToAdvance needs at least this many candidate requests in the whole rollout. */
  readyMinRequests: number;
  /**
   * Errors only: also ready when the candidate's error rate is bounded (anytime-valid, at
   * readyAlpha: rate-bound.ts) at or below the baseline's observed rate plus this absolute slack
   * (0.002 = 0.2 percentage points). Rare or absent errors cannot bound a ratio — a model that
   * never fails gives the ratio test no events — but they bound a rate. Either criterion makes
   * errors ready, so a candidate beyond both tolerances passes with probability ≤ 2·readyAlpha.
   * 0 disables.
   */
  readyErrorRateSlack: number;
  /** Resource use (when both versions report it): candidate/baseline ratios above these breach. */
  resource: {
    maxCpuPerRequestRatio: number;
    maxMemoryRatio: number;
    /** Absolute cap on the candidate's memory, bytes; 0 = none. */
    maxMemoryBytes: number;
    /** Consecutive breaching checks before failing (noise in one scrape is not a regression). */
    breachesToFail: number;
  };
}

export const DEFAULT_SEQUENTIAL_OPTIONS: SequentialJudgeOptions = {
  alpha: 0.01,
  alphaSplit: fromTable((m) => m.alphaWeight),
  sloAlphaShare: 0.2,
  shadowAlphaShare: 0.2,
  pairedTolerance: 1.25,
  meanMinBaseline: 100,
  meanMinCandidate: 200,
  tolerances: fromTable((m) => m.tolerance),
  scaleTolerance: Object.fromEntries(EXCEEDANCE_METRIC_NAMES.map((n) => [n, GATE_METRICS[n].scaleTolerance])) as Record<ExceedanceMetricName, number>,
  alternatives: [...DEFAULT_ALTERNATIVES],
  latencyQuantile: 0.95,
  boundaryMinBaseline: 400,
  catastrophicErrorRate: 0.2,
  catastrophicMinRequests: 50,
  catastrophicMinRatio: 2,
  srmAlpha: 1e-6,
  maxConsecutiveInconclusive: 10,
  readyAlpha: 0.1,
  readyMinRequests: 1000,
  readyErrorRateSlack: 0.002,
  resource: { maxCpuPerRequestRatio: 1.5, maxMemoryRatio: 1.5, maxMemoryBytes: 0, breachesToFail: 3 },
};

export type SequentialJudgeOptionsInput = Partial<
  Omit<SequentialJudgeOptions, 'alphaSplit' | 'tolerances' | 'scaleTolerance' | 'resource'> & {
    alphaSplit: Partial<SequentialJudgeOptions['alphaSplit']>;
    tolerances: Partial<SequentialJudgeOptions['tolerances']>;
    scaleTolerance: Partial<SequentialJudgeOptions['scaleTolerance']>;
    resource: Partial<SequentialJudgeOptions['resource']>;
  }
>;

export function resolveOptions(input: SequentialJudgeOptionsInput = {}): SequentialJudgeOptions {
  const d = DEFAULT_SEQUENTIAL_OPTIONS;
  const options: SequentialJudgeOptions = {
    ...d,
    ...stripUndefined(input),
    alphaSplit: { ...d.alphaSplit, ...stripUndefined(input.alphaSplit ?? {}) },
    tolerances: { ...d.tolerances, ...stripUndefined(input.tolerances ?? {}) },
    scaleTolerance: { ...d.scaleTolerance, ...stripUndefined(input.scaleTolerance ?? {}) },
    resource: { ...d.resource, ...stripUndefined(input.resource ?? {}) },
    alternatives: [...(input.alternatives ?? d.alternatives)],
  };
  const problems: string[] = [];
  if (!(options.alpha > 0 && options.alpha < 1)) problems.push('alpha must be in (0, 1)');
  const split = options.alphaSplit;
  if (Object.values(split).some((x) => !(x >= 0)) || split.errors + split.latency + split.ttfb > 1 + 1e-9) {
    problems.push('alphaSplit shares must be ≥ 0, and those of errors, latency and ttfb sum to at most 1');
  }
  if (!(options.shadowAlphaShare > 0 && options.sloAlphaShare + options.shadowAlphaShare < 1)) {
    problems.push('shadowAlphaShare must be above 0, and with sloAlphaShare below 1 (the comparison with the live baseline keeps the rest)');
  }
  if (!(options.pairedTolerance >= 1)) problems.push('pairedTolerance must be ≥ 1');
  if (!(options.sloAlphaShare > 0 && options.sloAlphaShare < 1)) {
    problems.push('sloAlphaShare must be above 0 and below 1 (the share of alpha the SLO guardrails of analysis.thresholds get; the comparison with the baseline keeps the rest)');
  }
  for (const [k, v] of Object.entries(options.tolerances)) if (!(v >= 1)) problems.push(`tolerances.${k} must be ≥ 1`);
  for (const [k, v] of Object.entries(options.scaleTolerance)) if (!(v >= 1)) problems.push(`scaleTolerance.${k} must be ≥ 1`);
  if (!(options.readyAlpha > 0 && options.readyAlpha < 1)) problems.push('readyAlpha must be in (0, 1)');
  if (!(options.srmAlpha > 0 && options.srmAlpha < 1)) problems.push('srmAlpha must be in (0, 1)');
  if (!(options.latencyQuantile > 0 && options.latencyQuantile < 1)) problems.push('latencyQuantile must be in (0, 1)');
  if (problems.length > 0) throw new RangeError(`invalid sequential judge options: ${problems.join('; ')}`);
  return options;
}

function fromTable(value: (row: (typeof GATE_METRICS)[GateMetricName]) => number): Record<GateMetricName, number> {
  return Object.fromEntries(GATE_METRIC_NAMES.map((n) => [n, value(GATE_METRICS[n])])) as Record<GateMetricName, number>;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
