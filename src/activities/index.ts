/**
 * The rollout's activities: the only code through which the control plane touches the world.
 * Each call names the rollout's `routing` or `metrics` (from its spec); `createActivities` gets
 * the adapters for them from the registries (registryAdapters), or from a test.
 */
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { urlAllowed, urlRefusal, type UrlAllowList } from '../spec/url-allow-list';
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
  /**
   * URL_ALLOW_LIST (defence in depth: the API refuses such a spec at start, but a rollout started
   * straight through Temporal bypasses the API): a URL outside it fails the activity for good.
   * Undefined: any URL.
   */
  urlAllowList?: UrlAllowList;
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
    ...(settings.urlAllowList ? { urlAllowList: settings.urlAllowList } : {}),
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

/** A URL the allow-list refuses: the activity fails for good (no retry can change the setting's answer). */
function refuseUrl(list: UrlAllowList, path: string, url: string): never {
  throw ApplicationFailure.nonRetryable(urlRefusal(list, path, url), 'UrlNotAllowed');
}

/**
 * The URLs a route makes the data plane call, each with what it is (`version v2 url`, `mirror
 * evaluator url`): those of the versions that get requests — a weight above 0, the mirror's
 * target, the version that requests without the matched header go to — and the evaluator's. A
 * version at 0% gets none (a route back to the baseline keeps the candidate at 0%).
 */
function routeUrls(route: TrafficRoute): Array<{ path: string; url: string }> {
  const called = (v: TrafficRoute['versions'][number]) => v.weight > 0 || v.version === route.mirror?.to || v.version === route.match?.others;
  const urls = route.versions.flatMap((v) => (v.url && called(v) ? [{ path: `version ${v.version} url`, url: v.url }] : []));
  const evaluator = route.mirror?.evaluator?.url;
  return evaluator ? [...urls, { path: 'mirror evaluator url', url: evaluator }] : urls;
}

const sameUrl = (a: string, b: string) => {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
};

export function createActivities({ routerFor, metricsFor, notifier, urlAllowList }: ActivityDeps) {
  /** A URL (at `path`) the activity is about to call: refused for good when outside the allow-list. */
  function requireAllowed(path: string, url: string): void {
    if (urlAllowList && !urlAllowed(urlAllowList, url)) refuseUrl(urlAllowList, path, url);
  }

  /**
   * A route may send traffic only to URLs the allow-list allows, or that the target serves
   * already: restoring what served before (compensation, a rollback) is never refused, even if
   * the list changed since, so that traffic always gets back to the baseline.
   */
  async function checkRouteUrls(routing: RoutingSpec, route: TrafficRoute): Promise<void> {
    if (!urlAllowList) return;
    const outside = routeUrls(route).filter(({ url }) => !urlAllowed(urlAllowList, url));
    if (outside.length === 0) return;
    const live = await routerFor(routing).readRoute(route.target);
    const served = live ? routeUrls(live).map((u) => u.url) : [];
    const fresh = outside.find(({ url }) => !served.some((s) => sameUrl(s, url)));
    if (fresh) refuseUrl(urlAllowList, `${route.target}: ${fresh.path}`, fresh.url);
    log.warn(`route of ${route.target} keeps URLs outside ${urlAllowList.setting} that it serves already: ${outside.map((u) => u.url).join(', ')}`);
  }

  return {
    async setTrafficWeights(input: RouteInput): Promise<void> {
      const { routing, route } = routeInput(input);
      await checkRouteUrls(routing, route);
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
      const metricsUrl = (metrics as { url?: unknown }).url;
      if (typeof metricsUrl === 'string') requireAllowed('metrics.url', metricsUrl);
      return metricsFor(metrics).read(query);
    },
    async notify({ destination, event }: NotifyInput): Promise<void> {
      requireAllowed('notify.webhook', destination);
      await notifier.notify(destination, event);
    },
  };
}

export type RolloutActivities = ReturnType<typeof createActivities>;
