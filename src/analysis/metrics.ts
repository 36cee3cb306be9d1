/**
 * Metric shapes shared by metric sources, the gateway and the judge. Everything is plain data
 * (JSON-safe), so it can cross the activity boundary and live in workflow state.
 */

/**
 * A latency histogram in Prometheus' classic form, but with per-bucket (not cumulative) counts:
 * `counts[i]` observations fell in (`boundsMs[i-1]`, `boundsMs[i]`]; the final extra entry,
 * `counts[boundsMs.length]`, is the +Inf bucket.
 */
export interface Histogram {
  boundsMs: number[];
  counts: number[];
}

/** What one model version served, cumulative since some start or over one interval. */
export interface VersionMetrics {
  /**
   * For cumulative readings, when counting started (the source's start): a different value in
   * a later reading means the counters were reset, even if they have since climbed past the
   * earlier reading.
   */
  countingSince?: string;
  requests: number;
  /** Failed requests: 5xx from the model, connection errors, timeouts. */
  errors: number;
  latency: Histogram;
  /** Time to first response byte (first token), for streamed responses, when measured. */
  timeToFirstByte?: Histogram;
  /** Resource use, when the source knows it: CPU seconds and peak resident memory. */
  cpuSeconds?: number;
  memoryBytes?: number;
  /**
   * GPU utilisation, when the source knows it (interval readings only): the mean over the span,
   * as a fraction 0..1 of time the version's GPUs were busy (DCGM's `DCGM_FI_DEV_GPU_UTIL` / 100).
   */
  gpuUtilization?: number;
  /**
   * KV-cache usage, when the source knows it (interval readings only): the mean over the span, as
   * a fraction 0..1 of the cache's blocks in use (vLLM's `vllm:kv_cache_usage_perc`).
   */
  kvCacheUsage?: number;
  /**
   * LLM traffic (OpenAI-compatible completions, JSON or SSE), when the source measures it. Time
   * to first token: from the request to the first chunk that carries content (for a JSON answer,
   * to its whole body). Inter-token latency: one observation per gap between content chunks.
   */
  timeToFirstToken?: Histogram;
  interTokenLatency?: Histogram;
  llm?: LlmCounts;
}

/** A per-request quantity summed over requests, with its squares (for its variance). */
export interface Moments {
  sum: number;
  sumSquares: number;
}

/** What a version's LLM answers held, summed over the requests recognised as LLM requests. */
export interface LlmCounts {
  /** Completed LLM requests (2xx, body read to its end) whose tokens are counted below. */
  requests: number;
  /** Tokens per request: from `usage` when the answer gives it, else counted from the content. */
  inputTokens: Moments;
  outputTokens: Moments;
  /** Σ input·output tokens per request: with the moments above, the variance of a priced cost. */
  inputOutputSum: number;
  /** Seconds from the first to the last content chunk, summed: output tokens/s = outputTokens.sum / this. */
  generationSeconds: number;
  /** Answers with `finish_reason: "length"` (cut off at max tokens). */
  truncated: number;
  /** Requests that asked for structured output (`response_format` json_object or json_schema)... */
  structured: number;
  /** ...and those of them whose answer content does not parse as JSON. */
  invalidStructured: number;
}

/**
 * A shadow step's mirrored pairs (same request to both versions; users see the baseline's
 * answer), cumulative like the version counters. For each paired metric, how many pairs the
 * candidate did worse and better than the baseline on (ties counted in neither): errors (one side
 * failed), latency and timeToFirstToken (more than PAIR_MARGIN× slower or faster), outputTokens
 * (more than PAIR_MARGIN× more or fewer), invalidOutput (one side's structured answer did not
 * parse), verdict (the evaluator's better/same/worse or the sign of its score).
 */
export interface ShadowSample {
  /** Mirrored requests sent to the candidate, and those dropped (queue full: the candidate was slow). */
  mirrored: number;
  dropped: number;
  /** Pairs with both answers complete. */
  pairs: number;
  worse: Partial<Record<PairedMetric, number>>;
  better: Partial<Record<PairedMetric, number>>;
  /** Pairs posted to the evaluator, and those whose evaluation failed (not counted in verdict). */
  evaluated: number;
  evaluatorErrors: number;
}

export const PAIRED_METRICS = ['errors', 'latency', 'timeToFirstToken', 'outputTokens', 'invalidOutput', 'verdict'] as const;
export type PairedMetric = (typeof PAIRED_METRICS)[number];
/** A pair is a tie unless one side is more than this factor slower (or longer) than the other. */
export const PAIR_MARGIN = 1.1;

export function emptyLlmCounts(): LlmCounts {
  return {
    requests: 0,
    inputTokens: { sum: 0, sumSquares: 0 },
    outputTokens: { sum: 0, sumSquares: 0 },
    inputOutputSum: 0,
    generationSeconds: 0,
    truncated: 0,
    structured: 0,
    invalidStructured: 0,
  };
}

/** Both versions' metrics for the same span of time. */
export interface MetricsSample {
  baseline: VersionMetrics;
  candidate: VersionMetrics;
  /** A shadow step's mirrored pairs, when the source records them (the embedded gateway). */
  shadow?: ShadowSample;
}

/**
 * Bucket edges (ms), 1 ms – 60 s, log-linear: 14 round mantissas a decade, adjacent edges at most
 * 1.25× apart. Why: the sequential judge tests latency and TTFB at the edge nearest the baseline's
 * p95 (sequential/boundary.ts), and at a steep tail's p95 one edge step moves the exceedance
 * fraction a lot (lognormal σ 0.4: ~3× per 1.25× step). With these edges the boundary's fraction
 * stays within ~3–9% (target 5%) whatever the median; the former 1.5–2× steps left it anywhere in
 * 1.4–18%. Exact short decimals, since they become Prometheus `le` labels (seconds). The single
 * source of edges (gateway, benchmark).
 */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9,
  10, 12.5, 15, 17.5, 20, 25, 30, 35, 40, 50, 60, 70, 80, 90,
  100, 125, 150, 175, 200, 250, 300, 350, 400, 500, 600, 700, 800, 900,
  1000, 1250, 1500, 1750, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 7000, 8000, 9000,
  10000, 12500, 15000, 17500, 20000, 25000, 30000, 35000, 40000, 50000, 60000,
];

export function emptyHistogram(boundsMs: readonly number[] = LATENCY_BUCKETS_MS): Histogram {
  return { boundsMs: [...boundsMs], counts: new Array(boundsMs.length + 1).fill(0) };
}

export function emptyVersionMetrics(): VersionMetrics {
  return { requests: 0, errors: 0, latency: emptyHistogram() };
}

/** Adds one observation (ms) to a histogram in place. */
export function observe(histogram: Histogram, valueMs: number): void {
  let i = 0;
  while (i < histogram.boundsMs.length && valueMs > histogram.boundsMs[i]!) i++;
  histogram.counts[i] = (histogram.counts[i] ?? 0) + 1;
}

export function histogramTotal(histogram: Histogram): number {
  return histogram.counts.reduce((sum, n) => sum + n, 0);
}

/**
 * The q-quantile (0..1) of a histogram, interpolated linearly inside the bucket as Prometheus'
 * `histogram_quantile` does. Undefined when the histogram is empty. A quantile in the +Inf
 * bucket is reported as the last finite edge (the most that can be said).
 */
export function histogramQuantile(histogram: Histogram, q: number): number | undefined {
  const total = histogramTotal(histogram);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < histogram.counts.length; i++) {
    const count = histogram.counts[i]!;
    if (count > 0 && seen + count >= rank) {
      if (i >= histogram.boundsMs.length) return histogram.boundsMs[histogram.boundsMs.length - 1];
      const lower = i === 0 ? 0 : histogram.boundsMs[i - 1]!;
      const upper = histogram.boundsMs[i]!;
      return lower + ((upper - lower) * (rank - seen)) / count;
    }
    seen += count;
  }
  return histogram.boundsMs[histogram.boundsMs.length - 1];
}

/**
 * The interval between two cumulative readings. A counter that went down means the source
 * restarted in between; then the newer reading is itself the interval's figure.
 */
export function intervalBetween(previous: VersionMetrics | undefined, current: VersionMetrics): VersionMetrics {
  if (!previous || wasReset(previous, current)) return current;
  const delta = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
  const result: VersionMetrics = {
    requests: current.requests - previous.requests,
    errors: current.errors - previous.errors,
    latency: histogramDelta(previous.latency, current.latency),
  };
  for (const key of ['timeToFirstByte', 'timeToFirstToken', 'interTokenLatency'] as const) {
    const now = current[key];
    if (now) result[key] = previous[key] ? histogramDelta(previous[key], now) : now;
  }
  if (current.llm) result.llm = previous.llm ? llmDelta(previous.llm, current.llm) : current.llm;
  const cpu = delta(previous.cpuSeconds, current.cpuSeconds);
  if (cpu !== undefined) result.cpuSeconds = cpu;
  if (current.memoryBytes !== undefined) result.memoryBytes = current.memoryBytes; // a gauge, not a counter
  return result;
}

export function sampleBetween(previous: MetricsSample | undefined, current: MetricsSample): MetricsSample {
  const sample: MetricsSample = {
    baseline: intervalBetween(previous?.baseline, current.baseline),
    candidate: intervalBetween(previous?.candidate, current.candidate),
  };
  if (current.shadow) sample.shadow = shadowBetween(previous?.shadow, current.shadow);
  return sample;
}

/** Counters that only grow, diffed field by field; a counter that went down means a restart (the newer reading is the interval). */
function llmDelta(previous: LlmCounts, current: LlmCounts): LlmCounts {
  const moments = (a: Moments, b: Moments): Moments => ({ sum: b.sum - a.sum, sumSquares: b.sumSquares - a.sumSquares });
  const delta: LlmCounts = {
    requests: current.requests - previous.requests,
    inputTokens: moments(previous.inputTokens, current.inputTokens),
    outputTokens: moments(previous.outputTokens, current.outputTokens),
    inputOutputSum: current.inputOutputSum - previous.inputOutputSum,
    generationSeconds: current.generationSeconds - previous.generationSeconds,
    truncated: current.truncated - previous.truncated,
    structured: current.structured - previous.structured,
    invalidStructured: current.invalidStructured - previous.invalidStructured,
  };
  const negative = [delta.requests, delta.inputTokens.sum, delta.outputTokens.sum, delta.truncated, delta.structured, delta.invalidStructured].some((n) => n < 0);
  return negative ? current : delta;
}

function shadowBetween(previous: ShadowSample | undefined, current: ShadowSample): ShadowSample {
  if (!previous || current.pairs < previous.pairs || current.mirrored < previous.mirrored) return current;
  const counts = (a: ShadowSample['worse'], b: ShadowSample['worse']) => Object.fromEntries(PAIRED_METRICS.filter((m) => b[m] !== undefined).map((m) => [m, Math.max(0, b[m]! - (a[m] ?? 0))]));
  return {
    mirrored: current.mirrored - previous.mirrored,
    dropped: Math.max(0, current.dropped - previous.dropped),
    pairs: current.pairs - previous.pairs,
    worse: counts(previous.worse, current.worse),
    better: counts(previous.better, current.better),
    evaluated: Math.max(0, current.evaluated - previous.evaluated),
    evaluatorErrors: Math.max(0, current.evaluatorErrors - previous.evaluatorErrors),
  };
}

function wasReset(previous: VersionMetrics, current: VersionMetrics): boolean {
  if (previous.countingSince !== undefined && current.countingSince !== undefined && previous.countingSince !== current.countingSince) return true;
  if (current.requests < previous.requests || current.errors < previous.errors) return true;
  if (!sameBounds(previous.latency, current.latency)) return true;
  return current.latency.counts.some((n, i) => n < (previous.latency.counts[i] ?? 0));
}

function sameBounds(a: Histogram, b: Histogram): boolean {
  return a.boundsMs.length === b.boundsMs.length && a.boundsMs.every((edge, i) => edge === b.boundsMs[i]);
}

function histogramDelta(previous: Histogram, current: Histogram): Histogram {
  if (!sameBounds(previous, current)) return current;
  return { boundsMs: [...current.boundsMs], counts: current.counts.map((n, i) => Math.max(0, n - (previous.counts[i] ?? 0))) };
}

/** The figures a person reads in a decision: counts, error rate, latency quantiles. */
export interface VersionSummary {
  requests: number;
  errors: number;
  errorRate: number;
  latencyP50Ms?: number;
  latencyP95Ms?: number;
  latencyP99Ms?: number;
  timeToFirstByteP95Ms?: number;
  timeToFirstTokenP95Ms?: number;
  interTokenLatencyP95Ms?: number;
  /** LLM answers: mean output tokens per request, and the share cut off at max tokens. */
  outputTokensMean?: number;
  truncatedRate?: number;
  invalidOutputRate?: number;
}

export function summarize(metrics: VersionMetrics): VersionSummary {
  const summary: VersionSummary = {
    requests: metrics.requests,
    errors: metrics.errors,
    errorRate: metrics.requests > 0 ? metrics.errors / metrics.requests : 0,
  };
  const p50 = histogramQuantile(metrics.latency, 0.5);
  const p95 = histogramQuantile(metrics.latency, 0.95);
  const p99 = histogramQuantile(metrics.latency, 0.99);
  if (p50 !== undefined) summary.latencyP50Ms = round(p50);
  if (p95 !== undefined) summary.latencyP95Ms = round(p95);
  if (p99 !== undefined) summary.latencyP99Ms = round(p99);
  const ttfb = metrics.timeToFirstByte && histogramQuantile(metrics.timeToFirstByte, 0.95);
  if (ttfb !== undefined) summary.timeToFirstByteP95Ms = round(ttfb);
  const ttft = metrics.timeToFirstToken && histogramQuantile(metrics.timeToFirstToken, 0.95);
  if (ttft !== undefined) summary.timeToFirstTokenP95Ms = round(ttft);
  const itl = metrics.interTokenLatency && histogramQuantile(metrics.interTokenLatency, 0.95);
  if (itl !== undefined) summary.interTokenLatencyP95Ms = round(itl);
  const llm = metrics.llm;
  if (llm && llm.requests > 0) {
    summary.outputTokensMean = round(llm.outputTokens.sum / llm.requests);
    summary.truncatedRate = round(llm.truncated / llm.requests);
    if (llm.structured > 0) summary.invalidOutputRate = round(llm.invalidStructured / llm.structured);
  }
  return summary;
}

const round = (x: number) => Math.round(x * 100) / 100;
