/**
 * The adapters through which a rollout touches the world. One interface per kind; each
 * implementation is one file. Activities (./index.ts) wrap them for the workflow.
 */
import type { MetricsSample } from '../analysis/metrics';

export interface ModelVersion {
  version: string;
  url: string;
}

/** A target's traffic split: each version with its weight (percent; they sum to 100). */
export interface TrafficRoute {
  target: string;
  versions: Array<ModelVersion & { weight: number }>;
  /** Fixed per rollout, so sticky users only ever move from baseline to candidate. */
  salt?: string;
}

/** Splits a target's traffic between versions (embedded gateway, NGINX, Envoy, SageMaker...). */
export interface TrafficRouter {
  setWeights(route: TrafficRoute): Promise<void>;
  /** The route the target serves now, as the router has it (salt included); undefined when it has none. */
  readRoute(target: string): Promise<TrafficRoute | undefined>;
}

export interface MetricQuery {
  target: string;
  baseline: ModelVersion;
  candidate: ModelVersion;
}

/**
 * Reads per-version counters. Returns cumulative figures (since the source started); the
 * workflow turns two readings into an interval, so the source keeps no per-rollout state.
 */
export interface MetricSource {
  read(query: MetricQuery): Promise<MetricsSample>;
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
