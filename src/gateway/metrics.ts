/**
 * Per target × version counters: the JSON snapshot the control plane reads
 * (`GET /admin/metrics/:target`, shaped as `VersionMetrics`) and a prom-client registry of the
 * gateway's own for `GET /metrics`. Labels are target, version and code class, never user keys.
 */
import { Counter, Gauge, Histogram as PromHistogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS_MS, emptyHistogram, type Histogram, type VersionMetrics } from '../analysis/metrics';

export type CodeClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

export function codeClass(status: number): CodeClass {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  if (status >= 200) return '2xx';
  return '1xx';
}

/** How a proxied request ended, from the gateway's side. */
export interface Outcome {
  /** The status the client got (or, if the response was cut short, the one it had started). */
  status: number;
  /** 5xx from the upstream, a connection error, a timeout, or a stream broken by the upstream. */
  error: boolean;
  latencyMs: number;
  /** Time to the first response body byte, when one arrived. */
  timeToFirstByteMs?: number;
}

const LATENCY_BUCKETS_S = LATENCY_BUCKETS_MS.map((ms) => ms / 1000);

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

function record(histogram: Histogram, valueMs: number): void {
  const i = bucketIndex(histogram.boundsMs, valueMs);
  histogram.counts[i] = (histogram.counts[i] ?? 0) + 1;
}

/** One target × version: its JSON counters and its prom-client children, resolved once. */
export class VersionStats {
  requests = 0;
  errors = 0;
  inFlight = 0;
  readonly latency: Histogram = emptyHistogram();
  readonly timeToFirstByte: Histogram = emptyHistogram();
  private readonly byCode = new Map<CodeClass, Counter.Internal>();

  private readonly promLatency: PromHistogram.Internal<'target' | 'version'>;
  private readonly promTtfb: PromHistogram.Internal<'target' | 'version'>;
  private readonly promErrors: Counter.Internal;
  private readonly promRequests: Counter<'target' | 'version' | 'code'>;

  constructor(metrics: GatewayMetrics, readonly target: string, readonly version: string) {
    const labels = { target, version };
    this.promLatency = metrics.promLatency.labels(labels);
    this.promTtfb = metrics.promTtfb.labels(labels);
    this.promErrors = metrics.promErrors.labels(labels);
    this.promRequests = metrics.promRequests;
  }

  start(): void {
    this.inFlight++;
  }

  finish(outcome: Outcome): void {
    this.inFlight--;
    this.requests++;
    record(this.latency, outcome.latencyMs);
    this.promLatency.observe(outcome.latencyMs / 1000);
    if (outcome.timeToFirstByteMs !== undefined) {
      record(this.timeToFirstByte, outcome.timeToFirstByteMs);
      this.promTtfb.observe(outcome.timeToFirstByteMs / 1000);
    }
    if (outcome.error) {
      this.errors++;
      this.promErrors.inc();
    }
    const code = codeClass(outcome.status);
    let counter = this.byCode.get(code);
    if (!counter) {
      counter = this.promRequests.labels({ target: this.target, version: this.version, code });
      this.byCode.set(code, counter);
    }
    counter.inc();
  }

  snapshot(): VersionMetrics {
    return {
      requests: this.requests,
      errors: this.errors,
      latency: { boundsMs: [...this.latency.boundsMs], counts: [...this.latency.counts] },
      timeToFirstByte: { boundsMs: [...this.timeToFirstByte.boundsMs], counts: [...this.timeToFirstByte.counts] },
    };
  }
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly promRequests = new Counter({
    name: 'gateway_requests_total',
    help: 'Proxied requests, by target, version and status code class',
    labelNames: ['target', 'version', 'code'] as const,
    registers: [this.registry],
  });
  readonly promErrors = new Counter({
    name: 'gateway_request_errors_total',
    help: 'Failed proxied requests (upstream 5xx, connection errors, timeouts), by target and version',
    labelNames: ['target', 'version'] as const,
    registers: [this.registry],
  });
  readonly promLatency = new PromHistogram({
    name: 'gateway_request_duration_seconds',
    help: 'Time from request received to response complete, by target and version',
    labelNames: ['target', 'version'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  readonly promTtfb = new PromHistogram({
    name: 'gateway_time_to_first_byte_seconds',
    help: 'Time from request received to the first response body byte from the upstream, by target and version',
    labelNames: ['target', 'version'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  private readonly targets = new Map<string, Map<string, VersionStats>>();
  /** Read from the plain counters at scrape time, so the hot path does not touch prom-client twice more. */
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

  /** The stats of a target × version, created (with zeros) on first use. */
  stats(target: string, version: string): VersionStats {
    let versions = this.targets.get(target);
    if (!versions) {
      versions = new Map();
      this.targets.set(target, versions);
    }
    let stats = versions.get(version);
    if (!stats) {
      stats = new VersionStats(this, target, version);
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

  /** `{target, versions: {name: VersionMetrics}}`, cumulative since the gateway started. */
  snapshot(target: string): { target: string; versions: Record<string, VersionMetrics> } | undefined {
    const versions = this.targets.get(target);
    if (!versions) return undefined;
    const out: Record<string, VersionMetrics> = {};
    for (const [name, stats] of versions) out[name] = stats.snapshot();
    return { target, versions: out };
  }
}
