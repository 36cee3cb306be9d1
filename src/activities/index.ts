/**
 * The rollout's activities: the only code through which the control plane touches the world.
 * Each call names the rollout's `routing` or `metrics` (from its spec); `createActivities` gets
 * the adapters for them from the registries (registryAdapters), or from a test.
 */
import { Context, log } from '@temporalio/activity';
import type { MetricsSpec } from './metric-sources';
import { METRIC_SOURCES } from './metric-sources';
import { adapterCache, type AdapterSettings } from './registry';
import type { RoutingSpec } from './routers';
import { ROUTERS } from './routers';
import type { MetricQuery, MetricReading, MetricSource, Notifier, RolloutEvent, TrafficRoute, TrafficRouter } from './types';

export * from './types';
export type { RoutingSpec } from './routers';
export type { MetricsSpec } from './metric-sources';

export interface ActivityDeps {
  routerFor(routing: RoutingSpec): TrafficRouter;
  metricsFor(metrics: MetricsSpec): MetricSource;
  notifier: Notifier;
}

/** Routers as the registry builds them for each spec's `routing` (the API reads live routes with them too). */
export function registryRouters(settings: AdapterSettings): (routing: RoutingSpec) => TrafficRouter {
  return adapterCache<RoutingSpec, TrafficRouter>(ROUTERS, settings);
}

/** Adapters as the registries build them for each spec's `routing` and `metrics`. */
export function registryAdapters(settings: AdapterSettings, notifier: Notifier): ActivityDeps {
  return {
    routerFor: registryRouters(settings),
    metricsFor: adapterCache<MetricsSpec, MetricSource>(METRIC_SOURCES, settings),
    notifier,
  };
}

export interface RouteInput {
  routing: RoutingSpec;
  route: TrafficRoute;
}

export interface ReadRouteInput {
  routing: RoutingSpec;
  target: string;
}

export interface MetricsInput {
  metrics: MetricsSpec;
  query: MetricQuery;
}

export interface NotifyInput {
  destination: string;
  event: RolloutEvent;
}

export function createActivities({ routerFor, metricsFor, notifier }: ActivityDeps) {
  return {
    async setTrafficWeights({ routing, route }: RouteInput): Promise<void> {
      const split = route.versions.map((v) => `${v.version}=${v.weight}%`).join(' ');
      log.info(`setting traffic weights for ${route.target} (${routing.kind}): ${split}`);
      const { workflowExecution } = Context.current().info;
      await routerFor(routing).setWeights(route, { rolloutId: workflowExecution?.workflowId ?? route.target });
    },
    /** What the target serves now (undefined: no route); the rollout captures it before its first change. */
    async readTrafficRoute({ routing, target }: ReadRouteInput): Promise<TrafficRoute | undefined> {
      return routerFor(routing).readRoute(target);
    },
    /** Per-version figures: cumulative counters (the workflow diffs two readings) or the window's own. */
    async collectMetrics({ metrics, query }: MetricsInput): Promise<MetricReading> {
      return metricsFor(metrics).read(query);
    },
    async notify({ destination, event }: NotifyInput): Promise<void> {
      await notifier.notify(destination, event);
    },
  };
}

export type RolloutActivities = ReturnType<typeof createActivities>;
