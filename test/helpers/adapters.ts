/**
 * Test doubles for what lies outside the control plane in workflow tests: a router that
 * records every route it is given, and a metric source whose per-version traffic is scripted.
 */
import { emptyVersionMetrics, observe, type MetricsSample, type VersionMetrics } from '../../src/analysis/metrics';
import type { ActivityDeps } from '../../src/activities';
import type { MetricReading, MetricSource, Notifier, RolloutEvent, TrafficRoute, TrafficRouter } from '../../src/activities/types';

/** One router, metric source and notifier for every rollout, whatever its spec's kinds. */
export interface TestAdapters {
  router: TrafficRouter;
  metrics: MetricSource;
  notifier: Notifier;
}

export function fixedAdapters({ router, metrics, notifier }: TestAdapters): ActivityDeps {
  return { routerFor: () => router, metricsFor: () => metrics, notifier };
}

export class RecordingRouter implements TrafficRouter {
  readonly routes: TrafficRoute[] = [];
  /**
   * What each target serves now, as readRoute reports it: set a target's route to give it a live
   * route before a rollout (none: no route); every applied route replaces its target's.
   */
  readonly live = new Map<string, TrafficRoute>();
  /** When set, a call whose route satisfies it throws (retryable) instead of applying. */
  failWhen?: (route: TrafficRoute) => boolean;
  /** When set, readRoute throws (retryable): a router that cannot be read. */
  failReads?: boolean;
  /** When set, readRoute waits for it first: a slow read, to act while it is in flight. */
  beforeRead?: () => Promise<void>;

  async setWeights(route: TrafficRoute): Promise<void> {
    if (this.failWhen?.(route)) throw new Error(`router unavailable for ${describeRoute(route)}`);
    this.routes.push(route);
    this.live.set(route.target, structuredClone(route));
  }

  async readRoute(target: string): Promise<TrafficRoute | undefined> {
    await this.beforeRead?.();
    if (this.failReads) throw new Error(`router unavailable: cannot read the route of ${target}`);
    const route = this.live.get(target);
    return route && structuredClone(route);
  }

  /** Each applied route as `baseline/candidate` weights, e.g. `90/10`; a baseline-only route is `100`. */
  splits(): string[] {
    return this.routes.map(describeRoute);
  }
}

export function describeRoute(route: TrafficRoute): string {
  return route.versions.map((v) => v.weight).join('/');
}

/** What one version serves in every interval between two reads. */
export interface TrafficProfile {
  requests: number;
  errorRate: number;
  latencyMs: number;
  /** Spread latencies evenly over latencyMs × (1 ± spread) instead of all at latencyMs. */
  latencySpread?: number;
}

export const healthy: TrafficProfile = { requests: 200, errorRate: 0.001, latencyMs: 120 };

/**
 * Cumulative counters that grow by the scripted profile at every read. `candidate` may be a
 * function of the read number, to make a version go bad mid-rollout.
 */
export class ScriptedMetrics implements MetricSource {
  reads = 0;
  failing = false;
  /** When set, every read first fails this many attempts in a row (activity retries), then succeeds: a slow source. */
  failuresPerRead = 0;
  private failedAttempts = 0;
  private readonly totals = { baseline: emptyVersionMetrics(), candidate: emptyVersionMetrics() };

  constructor(
    public candidate: TrafficProfile | ((read: number) => TrafficProfile) = healthy,
    public baseline: TrafficProfile = healthy,
  ) {}

  /**
   * When set, `totalRequests` per interval are split between the versions by the weights last
   * given to this router (as a real gateway would), instead of each profile's own `requests`.
   */
  splitBy?: { router: RecordingRouter; totalRequests: number };

  async read(): Promise<MetricReading> {
    return { kind: 'cumulative', sample: await this.readCumulative() };
  }

  async readCumulative(): Promise<MetricsSample> {
    if (this.failing) throw new Error('metrics backend unavailable');
    if (this.failedAttempts < this.failuresPerRead) {
      this.failedAttempts += 1;
      throw new Error(`metrics backend slow (attempt ${this.failedAttempts})`);
    }
    this.failedAttempts = 0;
    this.reads += 1;
    const candidate = typeof this.candidate === 'function' ? this.candidate(this.reads) : this.candidate;
    if (this.splitBy) {
      const route = this.splitBy.router.routes[this.splitBy.router.routes.length - 1];
      const share = (route?.versions[1]?.weight ?? 0) / 100;
      const total = this.splitBy.totalRequests;
      grow(this.totals.baseline, { ...this.baseline, requests: Math.round(total * (1 - share)) });
      grow(this.totals.candidate, { ...candidate, requests: Math.round(total * share) });
    } else {
      grow(this.totals.baseline, this.baseline);
      grow(this.totals.candidate, candidate);
    }
    return structuredClone(this.totals);
  }
}

function grow(totals: VersionMetrics, profile: TrafficProfile): void {
  const errors = Math.round(profile.requests * profile.errorRate);
  totals.requests += profile.requests;
  totals.errors += errors;
  const spread = profile.latencySpread ?? 0;
  for (let i = 0; i < profile.requests; i++) {
    const position = profile.requests > 1 ? i / (profile.requests - 1) : 0.5; // 0..1, evenly
    observe(totals.latency, profile.latencyMs * (1 - spread + 2 * spread * position));
  }
}

export class RecordingNotifier implements Notifier {
  readonly events: Array<{ destination: string; event: RolloutEvent }> = [];
  async notify(destination: string, event: RolloutEvent): Promise<void> {
    this.events.push({ destination, event });
  }
}
