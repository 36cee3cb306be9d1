/**
 * The gate metrics: one row per metric the judge can hold a candidate to. The sequential judge,
 * the spec's `analysis.metrics`, the decision's evidence, the summary sentence and the CLI all
 * iterate over this table; adding a metric is one row here plus where its data is measured
 * (VersionMetrics, src/analysis/metrics.ts).
 *
 * How each kind is tested (src/analysis/sequential/judge.ts):
 *  - `rate`: events per request, candidate vs baseline, the anytime-valid rate-ratio test
 *    (ratio-test.ts), like errors;
 *  - `exceedance`: a histogram's share of requests above a boundary fixed from the baseline's own
 *    p95, the same ratio test on those counts, like latency;
 *  - `mean`: a per-request quantity's mean, candidate vs baseline: the ratio test on the sums in
 *    units of the baseline's dispersion (variance/mean, fixed from its early requests), a
 *    quasi-Poisson scaling that makes sums of many requests behave like counts.
 * Every metric here is worse when higher.
 *
 * Pure data and functions (no I/O, no zod): workflow code imports it.
 */
import type { Histogram, Moments, PairedMetric, VersionMetrics } from './metrics';

/** Per-version token prices (the spec's `versions.*.pricing`), in currency units per million tokens. */
export interface Pricing {
  inputPer1M: number;
  outputPer1M: number;
}

/** A mean metric's data for one version and interval: how many requests, Σ value, Σ value². */
export interface MeanData extends Moments {
  count: number;
}

interface RowBase {
  /** Plain words for reasons and summaries: "time to first token". */
  label: string;
  /** Short label for tables (CLI, report). */
  short: string;
  /** Rate and exceedance metrics: what one counted event is, in the summary line ("slow first tokens"). */
  events?: string;
  unit: 'ratio' | 'ms' | 'tokens' | 'cost';
  /** Default tolerated ratio candidate/baseline (`analysis.metrics.<name>.tolerance`). */
  tolerance: number;
  /** Weight of α it gets among the tested metrics (split in proportion). */
  alphaWeight: number;
  /** Tested when the spec gives no `analysis.metrics` (and the data exists). */
  byDefault: boolean;
  /** The shadow step's paired counter that compares it on the same requests, if any. */
  paired?: PairedMetric;
}

export interface RateRow extends RowBase {
  test: 'rate';
  /** Events and trials of one version's interval; undefined when not measured. */
  read: (v: VersionMetrics) => { events: number; trials: number } | undefined;
}
export interface ExceedanceRow extends RowBase {
  test: 'exceedance';
  read: (v: VersionMetrics) => Histogram | undefined;
  /** Tolerated uniform slow-down, turned into an exceedance ratio at the boundary (boundary.ts). */
  scaleTolerance: number;
}
export interface MeanRow extends RowBase {
  test: 'mean';
  read: (v: VersionMetrics, pricing: Pricing | undefined) => MeanData | undefined;
}
export type GateMetric = RateRow | ExceedanceRow | MeanRow;

const llmRate = (events: (l: NonNullable<VersionMetrics['llm']>) => number, trials: (l: NonNullable<VersionMetrics['llm']>) => number) => (v: VersionMetrics) =>
  v.llm ? { events: events(v.llm), trials: trials(v.llm) } : undefined;

export const GATE_METRICS = {
  errors: {
    label: 'error rate', short: 'errors', events: 'errors', unit: 'ratio', test: 'rate', tolerance: 1.2, alphaWeight: 0.6, byDefault: true, paired: 'errors',
    read: (v) => ({ events: v.errors, trials: v.requests }),
  },
  latency: {
    label: 'latency', short: 'latency', events: 'slow requests', unit: 'ms', test: 'exceedance', tolerance: 1.25, scaleTolerance: 1.1, alphaWeight: 0.3, byDefault: true, paired: 'latency',
    read: (v) => v.latency,
  },
  ttfb: {
    label: 'time to first byte', short: 'TTFB', events: 'slow first bytes', unit: 'ms', test: 'exceedance', tolerance: 1.25, scaleTolerance: 1.1, alphaWeight: 0.1, byDefault: true,
    read: (v) => v.timeToFirstByte,
  },
  ttft: {
    label: 'time to first token', short: 'TTFT', events: 'slow first tokens', unit: 'ms', test: 'exceedance', tolerance: 1.25, scaleTolerance: 1.1, alphaWeight: 0.1, byDefault: false, paired: 'timeToFirstToken',
    read: (v) => v.timeToFirstToken,
  },
  interTokenLatency: {
    label: 'inter-token latency', short: 'ITL', events: 'slow gaps between tokens', unit: 'ms', test: 'exceedance', tolerance: 1.25, scaleTolerance: 1.1, alphaWeight: 0.1, byDefault: false,
    read: (v) => v.interTokenLatency,
  },
  outputTokens: {
    label: 'output tokens per request', short: 'out tokens', unit: 'tokens', test: 'mean', tolerance: 1.25, alphaWeight: 0.1, byDefault: false, paired: 'outputTokens',
    read: (v) => (v.llm ? { count: v.llm.requests, ...v.llm.outputTokens } : undefined),
  },
  cost: {
    label: 'cost per request', short: 'cost', unit: 'cost', test: 'mean', tolerance: 1.25, alphaWeight: 0.1, byDefault: false,
    read: (v, pricing) => (v.llm && pricing ? costMoments(v.llm, pricing) : undefined),
  },
  truncation: {
    label: 'truncated answers (finish_reason "length")', short: 'truncated', events: 'truncated answers', unit: 'ratio', test: 'rate', tolerance: 1.2, alphaWeight: 0.1, byDefault: false,
    read: llmRate((l) => l.truncated, (l) => l.requests),
  },
  invalidOutput: {
    label: 'invalid structured output (answers to response_format requests that are not JSON)', short: 'invalid JSON', events: 'invalid JSON answers', unit: 'ratio', test: 'rate', tolerance: 1.2, alphaWeight: 0.1, byDefault: false, paired: 'invalidOutput',
    read: llmRate((l) => l.invalidStructured, (l) => l.structured),
  },
} as const satisfies Record<string, GateMetric>;

export type GateMetricName = keyof typeof GATE_METRICS;
export const GATE_METRIC_NAMES = Object.keys(GATE_METRICS) as GateMetricName[];
export const DEFAULT_GATE_METRICS = GATE_METRIC_NAMES.filter((name) => GATE_METRICS[name].byDefault);

/**
 * The shadow step's paired comparisons (same requests to both versions): sign tests on how many
 * pairs the candidate did worse or better. `verdict` is the evaluator's (analysis.evaluator).
 */
export const PAIRED_LABELS: Record<PairedMetric, string> = {
  errors: 'errors on the same requests',
  latency: 'latency on the same requests',
  timeToFirstToken: 'time to first token on the same requests',
  outputTokens: 'output tokens on the same requests',
  invalidOutput: 'invalid structured output on the same requests',
  verdict: "the evaluator's verdicts on the same requests",
};

/** Cost per request from the token moments: c = (a·in + b·out)/10⁶, so Σc² needs Σin², Σout², Σin·out. */
export function costMoments(llm: NonNullable<VersionMetrics['llm']>, pricing: Pricing): MeanData {
  const a = pricing.inputPer1M / 1e6;
  const b = pricing.outputPer1M / 1e6;
  return {
    count: llm.requests,
    sum: a * llm.inputTokens.sum + b * llm.outputTokens.sum,
    sumSquares: a * a * llm.inputTokens.sumSquares + b * b * llm.outputTokens.sumSquares + 2 * a * b * llm.inputOutputSum,
  };
}
