/**
 * The adapters through which a rollout touches the world. One interface per kind of adapter
 * (traffic router, metric source, notifier); each implementation is one file, registered by its
 * `kind` (./routers, ./metric-sources; ./registry.ts). Activities (./index.ts) wrap them for the
 * workflow.
 */
import type { MetricsSample } from '../analysis/metrics';

export interface ModelVersion {
  version: string;
  /** Where the version serves, for routers that send traffic to URLs (the embedded gateway, NGINX). */
  url?: string;
}

export interface RouteVersion {
  version: string;
  /** Percent of the target's traffic (the versions' weights sum to 100). */
  weight: number;
  /** Where the router sends it, as the router names it (an upstream URL, a Service), for reading. */
  url?: string;
}

/** A target's traffic split. */
export interface TrafficRoute {
  target: string;
  versions: RouteVersion[];
  /**
   * Router-private details that restoring exactly this route needs (the embedded gateway's
   * hashing salt), as the router's readRoute gave them: opaque to the workflow.
   */
  routerState?: Record<string, string>;
  /**
   * Only requests whose `header` has one of `values` are split by the weights; every other
   * request goes to `others` (the baseline). Absent: every request is split.
   */
  match?: RouteMatch;
  /** A shadow step: copies of `percent`% of the requests served by `from` go to `to`, whose answers nobody sees. */
  mirror?: RouteMirror;
}

export interface RouteMatch {
  /** Header name, lower case. */
  header: string;
  values: string[];
  /** The version that requests without a matching header get. */
  others: string;
}

export interface RouteMirror {
  from: string;
  to: string;
  /** Percent of `from`'s requests copied (0 < percent ≤ 100). */
  percent: number;
  /** Where a sample of the pairs is posted to be judged: `{prompt, baseline, candidate}` → `{verdict}` or `{score}`. */
  evaluator?: { url: string; sample: number };
}

/** Who asks for a change: routers that hash users keep a rollout's hashing fixed by it. */
export interface RouteChange {
  rolloutId: string;
}

/** Splits a target's traffic between versions (embedded gateway, NGINX, a Gateway API HTTPRoute). */
export interface TrafficRouter {
  /** Applies the split and verifies that it took effect; throws when it did not. */
  setWeights(route: TrafficRoute, change: RouteChange): Promise<void>;
  /** The split the target serves now, as the router has it; undefined when it has none. */
  readRoute(target: string): Promise<TrafficRoute | undefined>;
}

/** The span a reading is for: from the previous successful reading (or the rollout's start) to now. */
export interface MetricWindow {
  startMs: number;
  endMs: number;
}

export interface MetricQuery {
  target: string;
  baseline: ModelVersion;
  candidate: ModelVersion;
  window: MetricWindow;
}

/**
 * What a metric source answers: `cumulative` counters (since the source started; the workflow
 * turns two readings into an interval, so a source keeps no per-rollout state), or the figures of
 * exactly the query's `window` (`interval`; a query language computes them, e.g. PromQL's
 * `increase`, which also handles counter resets).
 */
export type MetricReading = { kind: 'cumulative'; sample: MetricsSample } | { kind: 'interval'; sample: MetricsSample };

/** Reads per-version figures: requests, errors, latency and TTFB histograms, resource use. */
export interface MetricSource {
  read(query: MetricQuery): Promise<MetricReading>;
}

/** A phase change, a decision, or a hold at a step (waiting for evidence), as sent to notifiers. */
export interface RolloutEvent {
  kind: 'phase' | 'decision' | 'hold';
  rolloutId: string;
  target: string;
  phase: string;
  at: string;
  message: string;
  data?: unknown;
}

/** Tells people or systems what a rollout did (webhook, Slack...). */
export interface Notifier {
  notify(destination: string, event: RolloutEvent): Promise<void>;
}
