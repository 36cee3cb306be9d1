/**
 * Per target × version counters: the JSON snapshot the control plane reads
 * (`GET /admin/metrics/:target`, shaped as `VersionMetrics`) and a prom-client registry of the
 * gateway's own for `GET /metrics`. Labels are target, version and code class, never user keys.
 *
 * A version that leaves its route keeps its counters for a retention period (so that the
 * control plane's last reading still finds them), then they and its Prometheus series are
 * dropped; should it come back, it counts from zero under a new `countingSince`, which readers
 * (src/analysis/metrics.ts `intervalBetween`) take as a reset.
 */
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { LATENCY_BUCKETS_MS, emptyHistogram, emptyLlmCounts, type Histogram, type LlmCounts, type ShadowSample, type VersionMetrics } from '../analysis/metrics';
import { GATEWAY_DEFAULTS } from './defaults';
import type { LlmOutcome } from './llm';

export type CodeClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

export function codeClass(status: number): CodeClass {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  if (status >= 200) return '2xx';
  return '1xx';
}

const CODE_CLASSES: readonly CodeClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * Why the gateway refused a proxied request without involving the version: its own protection
 * (the upstream origin's queue, or its slots for bodies still arriving, are full). Counted apart
 * (`gateway_rejected_total`), never as the version's requests or errors: the judge compares
 * versions, and a full queue says nothing about a model.
 */
export const REJECT_REASONS = ['upstream_overloaded', 'uploads_overloaded'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/**
 * A client's fault that the gateway answered (or cut) itself, counted gateway-wide
 * (`gateway_client_errors_total`): malformed HTTP, oversized headers, a request not received in
 * time, a request body gone silent. A proxied request cut this way is not its version's request.
 */
export type ClientErrorReason = 'bad_request' | 'headers_too_large' | 'request_timeout' | 'body_idle_timeout';

let lastEpochMs = 0;

/**
 * A `countingSince` no earlier stats object had: strictly increasing within the process, so that
 * counters dropped and re-created within one millisecond still read as a reset.
 */
function nextEpoch(): string {
  const now = Date.now();
  lastEpochMs = now > lastEpochMs ? now : lastEpochMs + 1;
  return new Date(lastEpochMs).toISOString();
}

function codeClassIndex(status: number): number {
  if (status >= 500) return 4;
  if (status >= 400) return 3;
  if (status >= 300) return 2;
  if (status >= 200) return 1;
  return 0;
}

/**
 * The bucket edges in seconds, for the `le` labels: `ms / 1000` rounded to 12 significant digits,
 * so every label is the short decimal the edge means (`le="0.0175"`), even for an edge carrying
 * binary noise from arithmetic (0.30000000000000004 ms renders as `le="0.0003"`).
 */
export const LATENCY_BUCKETS_S: readonly number[] = LATENCY_BUCKETS_MS.map(msToSeconds);

export function msToSeconds(ms: number): number {
  return Number((ms / 1000).toPrecision(12));
}

/** Index of the bucket an observation falls in: first edge >= value; the last index is +Inf. */
function bucketIndex(bounds: readonly number[], valueMs: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (valueMs > bounds[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A histogram's per-bucket counts with its sum and count (for the Prometheus `_sum` and `_count`). */
class Observed {
  readonly histogram: Histogram = emptyHistogram();
  sumMs = 0;
  count = 0;

  observe(valueMs: number): void {
    const counts = this.histogram.counts;
    const i = bucketIndex(LATENCY_BUCKETS_MS, valueMs);
    counts[i] = counts[i]! + 1;
    this.sumMs += valueMs;
    this.count++;
  }

  copy(): Histogram {
    return { boundsMs: [...this.histogram.boundsMs], counts: [...this.histogram.counts] };
  }
}

/**
 * One target × version. The hot path only bumps plain numbers here; the Prometheus series are
 * derived from them when /metrics is scraped (prom-client's own `observe`/`inc` hash the label
 * set on every call, which cost more than the rest of the bookkeeping together).
 */
export class VersionStats {
  requests = 0;
  errors = 0;
  inFlight = 0;
  readonly latency: Histogram = emptyHistogram();
  readonly timeToFirstByte: Histogram = emptyHistogram();
  latencySumMs = 0;
  timeToFirstByteSumMs = 0;
  timeToFirstByteCount = 0;
  /** Requests by code class, indexed like CODE_CLASSES. */
  readonly byCode: number[] = [0, 0, 0, 0, 0];
  /** What the Prometheus counters have been told so far (they are advanced at scrape time). */
  readonly reportedByCode: number[] = [0, 0, 0, 0, 0];
  /** When these counters started from zero: a reader seeing it change knows they were reset. */
  readonly countingSince = nextEpoch();
  reportedErrors = 0;
  /** Requests refused by the gateway, indexed like REJECT_REASONS; not in `requests`. */
  readonly rejected: number[] = REJECT_REASONS.map(() => 0);
  readonly reportedRejected: number[] = REJECT_REASONS.map(() => 0);
  /** LLM requests (src/gateway/llm.ts): time to first token, gaps between content chunks, token counts. */
  readonly timeToFirstToken = new Observed();
  readonly interTokenLatency = new Observed();
  readonly llm: LlmCounts = emptyLlmCounts();

  constructor(
    readonly target: string,
    readonly version: string,
  ) {}

  start(): void {
    this.inFlight++;
  }

  /** A started request the gateway gave up on for the client's sake: not counted as the version's. */
  abandon(): void {
    this.inFlight--;
  }

  reject(reason: RejectReason): void {
    const i = REJECT_REASONS.indexOf(reason);
    this.rejected[i] = this.rejected[i]! + 1;
  }

  /**
   * How a proxied request ended. `status` is the status the client got (or, if the response was
   * cut short, the one it had started); `error` is a 5xx from the upstream, a connection error, a
   * timeout or a stream broken by the upstream; `timeToFirstByteMs` is negative when no body byte
   * arrived.
   */
  finish(status: number, error: boolean, latencyMs: number, timeToFirstByteMs: number): void {
    this.inFlight--;
    this.requests++;
    const counts = this.latency.counts;
    const i = bucketIndex(LATENCY_BUCKETS_MS, latencyMs);
    counts[i] = counts[i]! + 1;
    this.latencySumMs += latencyMs;
    if (timeToFirstByteMs >= 0) {
      const ttfb = this.timeToFirstByte.counts;
      const j = bucketIndex(LATENCY_BUCKETS_MS, timeToFirstByteMs);
      ttfb[j] = ttfb[j]! + 1;
      this.timeToFirstByteSumMs += timeToFirstByteMs;
      this.timeToFirstByteCount++;
    }
    if (error) this.errors++;
    const c = codeClassIndex(status);
    this.byCode[c] = this.byCode[c]! + 1;
  }

  /**
   * What an LLM request's answer held (after `finish`). Its time to first token and gaps count
   * whenever they were seen (a stream cut later still had them); its tokens and output checks
   * only when `complete` (2xx, body read to its end), as LlmCounts.requests says.
   */
  finishLlm(outcome: LlmOutcome, complete: boolean): void {
    const { answer } = outcome;
    if (answer.timeToFirstTokenMs !== undefined) this.timeToFirstToken.observe(answer.timeToFirstTokenMs);
    for (const gap of answer.interTokenGapsMs) this.interTokenLatency.observe(gap);
    if (!complete) return;
    const llm = this.llm;
    llm.requests++;
    llm.inputTokens.sum += outcome.inputTokens;
    llm.inputTokens.sumSquares += outcome.inputTokens * outcome.inputTokens;
    llm.outputTokens.sum += outcome.outputTokens;
    llm.outputTokens.sumSquares += outcome.outputTokens * outcome.outputTokens;
    llm.inputOutputSum += outcome.inputTokens * outcome.outputTokens;
    llm.generationSeconds += answer.generationMs / 1000;
    if (answer.truncated) llm.truncated++;
    if (outcome.structured) llm.structured++;
    if (outcome.invalidStructured) llm.invalidStructured++;
  }

  snapshot(): VersionMetrics {
    const llm = this.llm;
    return {
      countingSince: this.countingSince,
      requests: this.requests,
      errors: this.errors,
      latency: { boundsMs: [...this.latency.boundsMs], counts: [...this.latency.counts] },
      timeToFirstByte: { boundsMs: [...this.timeToFirstByte.boundsMs], counts: [...this.timeToFirstByte.counts] },
      timeToFirstToken: this.timeToFirstToken.copy(),
      interTokenLatency: this.interTokenLatency.copy(),
      llm: { ...llm, inputTokens: { ...llm.inputTokens }, outputTokens: { ...llm.outputTokens } },
    };
  }
}

interface MetricValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
}

/**
 * A Prometheus histogram (target, version) whose buckets are read, at scrape time, from the
 * per-bucket counts the VersionStats keep anyway — the same shape and text as a prom-client
 * Histogram, without a per-request `observe`.
 */
export class DerivedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames = ['target', 'version'];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly series: () => Iterable<{ target: string; version: string; counts: readonly number[]; sumMs: number; count: number }>,
  ) {}

  private values(splay: boolean): MetricValue[] {
    const values: MetricValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.series()) {
      if (s.count === 0) continue;
      const shared = { target: s.target, version: s.version };
      const labelled = (labels: Record<string, string | number>, value: number, metricName: string): MetricValue =>
        splay ? { labels: { ...labels, ...shared }, value, metricName } : { labels, sharedLabels: shared, value, metricName };
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
        cumulative += s.counts[i]!;
        values.push(labelled({ le: LATENCY_BUCKETS_S[i]! }, cumulative, bucketName));
      }
      values.push(labelled({ le: '+Inf' }, s.count, bucketName));
      values.push(labelled({}, s.sumMs / 1000, `${this.name}_sum`));
      values.push(labelled({}, s.count, `${this.name}_count`));
    }
    return values;
  }

  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: this.values(true), aggregator: this.aggregator };
  }

  async getForPromString(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: this.values(false), aggregator: this.aggregator };
  }

  reset(): void {
    // derived from the VersionStats; nothing of its own to reset
  }
}

/**
 * A Prometheus counter (target, version) read, at scrape time, from a plain number the
 * VersionStats keep: like DerivedHistogram, nothing per request, and its series go with the stats.
 */
export class DerivedCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly labelNames = ['target', 'version'];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly all: () => Iterable<VersionStats>,
    private readonly value: (stats: VersionStats) => number,
  ) {}

  private values(): MetricValue[] {
    return [...this.all()].map((s) => ({ labels: { target: s.target, version: s.version }, value: this.value(s), metricName: this.name }));
  }

  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }

  reset(): void {
    // derived from the VersionStats; nothing of its own to reset
  }
}

export interface GatewayMetricsOptions {
  /** How long the stats of a version that left its route are kept (ms); default 60 s. */
  retentionMs?: number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly targets = new Map<string, Map<string, VersionStats>>();
  /** Stats of versions in no route, with when they left it. */
  private readonly orphaned = new Map<VersionStats, number>();
  private readonly retentionMs: number;
  private readonly shadows = new Map<string, ShadowSample>();

  private *allStats(): Generator<VersionStats> {
    for (const versions of this.targets.values()) yield* versions.values();
  }

  readonly promRequests = countsByClass(this.registry, () => this.allStats(), {
    name: 'gateway_requests_total',
    help: 'Proxied requests, by target, version and status code class',
    label: 'code',
    classes: CODE_CLASSES,
    counts: (stats) => [stats.byCode, stats.reportedByCode],
  });
  readonly promErrors: Counter<'target' | 'version'> = (() => {
    const all = () => this.allStats();
    return new Counter({
      name: 'gateway_request_errors_total',
      help: 'Failed proxied requests (upstream 5xx, connection errors, timeouts), by target and version',
      labelNames: ['target', 'version'] as const,
      registers: [this.registry],
      collect() {
        for (const stats of all()) {
          const delta = stats.errors - stats.reportedErrors;
          if (delta > 0) {
            this.inc({ target: stats.target, version: stats.version }, delta);
            stats.reportedErrors = stats.errors;
          }
        }
      },
    });
  })();
  readonly promLatency = new DerivedHistogram(
    'gateway_request_duration_seconds',
    'Time from request received to response complete, by target and version',
    () => [...this.allStats()].map((s) => ({ target: s.target, version: s.version, counts: s.latency.counts, sumMs: s.latencySumMs, count: s.requests })),
  );
  readonly promTtfb = new DerivedHistogram(
    'gateway_time_to_first_byte_seconds',
    'Time from request received to the first response body byte from the upstream, by target and version',
    () =>
      [...this.allStats()].map((s) => ({
        target: s.target,
        version: s.version,
        counts: s.timeToFirstByte.counts,
        sumMs: s.timeToFirstByteSumMs,
        count: s.timeToFirstByteCount,
      })),
  );
  readonly promTtft = new DerivedHistogram(
    'gateway_time_to_first_token_seconds',
    'LLM requests: time from request received to the first chunk carrying content (a JSON answer: to its whole body), by target and version',
    () => this.observedSeries((s) => s.timeToFirstToken),
  );
  readonly promInterToken = new DerivedHistogram(
    'gateway_inter_token_latency_seconds',
    'LLM streams: time between successive chunks carrying content, one observation per gap, by target and version',
    () => this.observedSeries((s) => s.interTokenLatency),
  );
  /** LlmCounts as counters (same names as its fields, in Prometheus style). */
  readonly promLlm: DerivedCounter[] = (
    <Array<[name: string, help: string, value: (llm: LlmCounts) => number]>>[
      ['gateway_llm_requests_total', 'Completed LLM requests (2xx, whole body) whose tokens are counted', (l) => l.requests],
      ['gateway_llm_input_tokens_total', 'LLM input tokens: usage.prompt_tokens, else approximated as words of the prompt', (l) => l.inputTokens.sum],
      ['gateway_llm_output_tokens_total', 'LLM output tokens: usage.completion_tokens, else approximated as words of the answer', (l) => l.outputTokens.sum],
      ['gateway_llm_generation_seconds_total', 'LLM streams: seconds from the first to the last content chunk, summed', (l) => l.generationSeconds],
      ['gateway_llm_truncated_total', 'LLM answers cut off at max tokens (finish_reason "length")', (l) => l.truncated],
      ['gateway_llm_structured_total', 'LLM requests asking for structured output (response_format json_object or json_schema)', (l) => l.structured],
      ['gateway_llm_invalid_structured_total', 'LLM requests asking for structured output whose answer is not valid JSON', (l) => l.invalidStructured],
    ]
  ).map(([name, help, value]) => new DerivedCounter(name, `${help}, by target and version`, () => this.allStats(), (s) => value(s.llm)));
  readonly promRejected = countsByClass(this.registry, () => this.allStats(), {
    name: 'gateway_rejected_total',
    help: 'Proxied requests the gateway refused to protect an upstream (503 upstream_overloaded), by target, version and reason; not counted as the version\'s requests or errors',
    label: 'reason',
    classes: REJECT_REASONS,
    counts: (stats) => [stats.rejected, stats.reportedRejected],
  });
  readonly promClientErrors = new Counter<'reason'>({
    name: 'gateway_client_errors_total',
    help: 'Requests answered or cut by the gateway for the client\'s fault (malformed, headers too large, too slow), by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** Read from the plain counters at scrape time. */
  readonly promInFlight: Gauge<'target' | 'version'> = (() => {
    const targets = this.targets;
    return new Gauge({
      name: 'gateway_in_flight_requests',
      help: 'Requests being proxied now, by target and version',
      labelNames: ['target', 'version'] as const,
      registers: [this.registry],
      collect() {
        for (const [target, versions] of targets) for (const [version, stats] of versions) this.set({ target, version }, stats.inFlight);
      },
    });
  })();

  constructor(options: GatewayMetricsOptions = {}) {
    this.retentionMs = options.retentionMs ?? GATEWAY_DEFAULTS.metricsRetentionMs;
    // Same registration order (and so the same /metrics text order) as before: the histograms after the counters.
    const inFlight = this.promInFlight;
    this.registry.removeSingleMetric('gateway_in_flight_requests');
    this.registry.registerMetric(this.promLatency as unknown as Metric);
    this.registry.registerMetric(this.promTtfb as unknown as Metric);
    this.registry.registerMetric(inFlight);
    for (const metric of [this.promTtft, this.promInterToken, ...this.promLlm]) this.registry.registerMetric(metric as unknown as Metric);
  }

  private observedSeries(of: (stats: VersionStats) => Observed) {
    return [...this.allStats()].map((s) => {
      const o = of(s);
      return { target: s.target, version: s.version, counts: o.histogram.counts, sumMs: o.sumMs, count: o.count };
    });
  }

  /** A target's mirrored pairs (cumulative, kept for the gateway's life: a handful of numbers per target), created on first use. */
  shadow(target: string): ShadowSample {
    let shadow = this.shadows.get(target);
    if (!shadow) {
      shadow = { mirrored: 0, dropped: 0, pairs: 0, worse: {}, better: {}, evaluated: 0, evaluatorErrors: 0 };
      this.shadows.set(target, shadow);
    }
    return shadow;
  }

  /** The stats of a target × version, created (with zeros) on first use. */
  stats(target: string, version: string): VersionStats {
    let versions = this.targets.get(target);
    if (!versions) {
      versions = new Map();
      this.targets.set(target, versions);
    }
    let stats = versions.get(version);
    if (stats) {
      this.orphaned.delete(stats); // back in a route
    } else {
      stats = new VersionStats(target, version);
      versions.set(version, stats);
      // Make the series visible at zero before the first request.
      this.promRequests.labels({ target, version, code: '2xx' }).inc(0);
      this.promErrors.labels({ target, version }).inc(0);
    }
    return stats;
  }

  hasTarget(target: string): boolean {
    return this.targets.has(target);
  }

  /** How many target × version stats are kept (for tests and bounds). */
  get size(): number {
    let n = 0;
    for (const versions of this.targets.values()) n += versions.size;
    return n;
  }

  clientError(reason: ClientErrorReason): void {
    this.promClientErrors.inc({ reason });
  }

  /** The version left its route: its stats are dropped once `retentionMs` have passed (see sweep). */
  release(stats: VersionStats, now = Date.now()): void {
    if (this.targets.get(stats.target)?.get(stats.version) === stats && !this.orphaned.has(stats)) this.orphaned.set(stats, now);
  }

  /**
   * Drops the stats and series of versions out of every route for `retentionMs` (and with no
   * request in flight). Called on route changes, scrapes and snapshots, so no timer is needed:
   * stats only accumulate through route changes, which sweep.
   */
  sweep(now = Date.now()): void {
    for (const [stats, since] of this.orphaned) {
      if (now - since < this.retentionMs || stats.inFlight > 0) continue;
      this.orphaned.delete(stats);
      this.drop(stats);
    }
  }

  /** The Prometheus text of `GET /metrics`. */
  scrape(): Promise<string> {
    this.sweep();
    return this.registry.metrics();
  }

  private drop(stats: VersionStats): void {
    const { target, version } = stats;
    const versions = this.targets.get(target);
    if (versions?.get(version) !== stats) return;
    versions.delete(version);
    if (versions.size === 0) this.targets.delete(target);
    const labels = { target, version };
    this.promErrors.remove(labels);
    this.promInFlight.remove(labels);
    for (const code of CODE_CLASSES) this.promRequests.remove({ ...labels, code });
    for (const reason of REJECT_REASONS) this.promRejected.remove({ ...labels, reason });
  }

  /**
   * `{target, versions: {name: VersionMetrics}, shadow?}`, cumulative since each version's
   * `countingSince`; `shadow` once the target has had a mirror.
   */
  snapshot(target: string): { target: string; versions: Record<string, VersionMetrics>; shadow?: ShadowSample } | undefined {
    this.sweep();
    const versions = this.targets.get(target);
    if (!versions) return undefined;
    const out: Record<string, VersionMetrics> = {};
    for (const [name, stats] of versions) out[name] = stats.snapshot();
    const shadow = this.shadows.get(target);
    return shadow ? { target, versions: out, shadow: structuredClone(shadow) } : { target, versions: out };
  }
}

/**
 * A Prometheus counter per target × version × class (status code class, rejection reason) whose
 * values live in each VersionStats' plain arrays, off the hot path: at scrape time what grew since
 * the last scrape (`current` − `reported`) is folded in.
 */
function countsByClass<L extends string>(
  registry: Registry,
  all: () => Iterable<VersionStats>,
  spec: { name: string; help: string; label: L; classes: readonly string[]; counts: (stats: VersionStats) => [current: number[], reported: number[]] },
): Counter<'target' | 'version' | L> {
  return new Counter({
    name: spec.name,
    help: spec.help,
    labelNames: ['target', 'version', spec.label] as const,
    registers: [registry],
    collect() {
      for (const stats of all()) {
        const [current, reported] = spec.counts(stats);
        for (let i = 0; i < spec.classes.length; i++) {
          const delta = current[i]! - reported[i]!;
          if (delta > 0) {
            this.inc({ target: stats.target, version: stats.version, [spec.label]: spec.classes[i]! } as Record<'target' | 'version' | L, string>, delta);
            reported[i] = current[i]!;
          }
        }
      }
    },
  });
}
