/**
 * The rollout's activities: the only code through which the control plane touches the world.
 * `createActivities` wires adapter implementations chosen by the worker (or a test).
 */
import { log } from '@temporalio/activity';
import type { MetricsSample } from '../analysis/metrics';
import type { MetricQuery, MetricSource, Notifier, RolloutEvent, TrafficRoute, TrafficRouter } from './types';

export * from './types';

export interface ActivityDeps {
  router: TrafficRouter;
  metrics: MetricSource;
  notifier: Notifier;
}

export interface NotifyInput {
  destination: string;
  event: RolloutEvent;
}

export function createActivities({ router, metrics, notifier }: ActivityDeps) {
  return {
    async setTrafficWeights(route: TrafficRoute): Promise<void> {
      const split = route.versions.map((v) => `${v.version}=${v.weight}%`).join(' ');
      log.info(`setting traffic weights for ${route.target}: ${split}`);
      await router.setWeights(route);
    },
    /** What the target serves now (undefined: no route); the rollout captures it before its first change. */
    async readTrafficRoute(target: string): Promise<TrafficRoute | undefined> {
      return router.readRoute(target);
    },
    /** Cumulative per-version counters; the workflow derives each interval from two readings. */
    async collectMetrics(query: MetricQuery): Promise<MetricsSample> {
      return metrics.read(query);
    },
    async notify({ destination, event }: NotifyInput): Promise<void> {
      await notifier.notify(destination, event);
    },
  };
}

export type RolloutActivities = ReturnType<typeof createActivities>;
