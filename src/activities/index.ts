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

/**
 * An input scheduled before routing was chosen per rollout (a bare TrafficRoute) still works: a
 * rollout that was compensating across the upgrade must still get its traffic back.
 */
function routeInput(input: RouteInput | TrafficRoute): RouteInput {
  return 'route' in input ? input : { routing: { kind: 'gateway' }, route: input };
}

export function createActivities({ routerFor, metricsFor, notifier }: ActivityDeps) {
  return {
    async setTrafficWeights(input: RouteInput): Promise<void> {
      const { routing, route } = routeInput(input);
      const split = route.versions.map((v) => `${v.version}=${v.weight}%`).join(' ');
      log.info(`setting traffic weights for ${route.target} (${routing.kind}): ${split}`);
      const { workflowExecution } = Context.current().info;
      await routerFor(routing).setWeights(route, { rolloutId: workflowExecution?.workflowId ?? route.target });
    },
    /** What the target serves now (undefined: no route); the rollout captures it before its first change. */
    async readTrafficRoute(input: ReadRouteInput): Promise<TrafficRoute | undefined> {
      const { routing, target } = typeof input === 'string' ? { routing: { kind: 'gateway' } as const, target: input } : input; // see routeInput
      return routerFor(routing).readRoute(target);
    },
    /** Per-version figures: cumulative counters (the workflow diffs two readings) or the window's own. */
    async collectMetrics(input: MetricsInput): Promise<MetricReading> {
      // Scheduled before metrics were chosen per rollout: the gateway's counters, for the same versions (see routeInput).
      const { metrics, query } = 'query' in input ? input : { metrics: { kind: 'gateway' } as const, query: { ...(input as MetricQuery), window: { startMs: 0, endMs: 0 } } };
      return metricsFor(metrics).read(query);
    },
    async notify({ destination, event }: NotifyInput): Promise<void> {
      await notifier.notify(destination, event);
    },
  };
}

export type RolloutActivities = ReturnType<typeof createActivities>;
