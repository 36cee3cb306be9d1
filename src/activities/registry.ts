/**
 * Adapter kinds: what a spec's `routing` or `metrics` names by `kind`, with its options' schema
 * (validated at start: a 400 names the field) and how to build it. Each implementation is one
 * file (./routers/*.ts, ./metric-sources/*.ts) and one line in its registry (the index.ts beside it).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import type { UrlAllowList } from '../spec/url-allow-list';
import type { TrafficRoute } from './types';

/** Worker-side settings an adapter may need beyond its options (src/config.ts reads them). */
export interface AdapterSettings {
  gatewayUrl: string;
  gatewayAdminToken?: string;
  /** A kubeconfig file (KUBECONFIG); undefined: in-cluster configuration. */
  kubeconfig?: string;
  /** URL_ALLOW_LIST: the activities refuse a URL outside it (./index.ts); undefined: any URL. */
  urlAllowList?: UrlAllowList;
}

/** `z.strictObject({ kind: z.literal(kind), ...options })`. */
export type OptionsSchema = z.ZodObject<any, any>;

export interface AdapterKind<Schema extends OptionsSchema, Adapter> {
  kind: z.output<Schema>['kind'];
  options: Schema;
  /**
   * Routers: `required`, the spec's baseline and candidate give the `url` traffic goes to;
   * `unused`, the router knows where versions serve (its options name them) and a `url` is refused.
   */
  versionUrls?: 'required' | 'unused';
  /** What the options need of the spec's versions (e.g. a backend for each), as issues under the options' path. */
  checkVersions?(options: z.output<Schema>, versions: readonly string[]): Array<{ path: Array<string | number>; message: string }>;
  /** For a metric source: the routing kinds whose traffic it can see (undefined: any). */
  sees?: readonly string[];
  /**
   * For a router: the route features it implements beyond a weighted split (TrafficRoute.match:
   * a header selects who is split; TrafficRoute.mirror: shadow traffic). Undefined: none.
   */
  supports?: ReadonlyArray<RouteFeature>;
  create(options: z.output<Schema>, settings: AdapterSettings): Adapter;
}

/** What a TrafficRoute may ask of a router beyond its weights (AdapterKind.supports). */
export type RouteFeature = 'match' | 'mirror';
export const ROUTE_FEATURES: readonly RouteFeature[] = ['match', 'mirror'];

/** The features `route` uses. */
export function routeFeatures(route: TrafficRoute): RouteFeature[] {
  return ROUTE_FEATURES.filter((feature) => route[feature] !== undefined);
}

/**
 * A router's own check (the spec refuses earlier: this is defence in depth): a route using a
 * feature the router does not implement fails for good, naming the feature and the router.
 */
export function refuseUnsupported(kind: string, supports: ReadonlyArray<RouteFeature> | undefined, route: TrafficRoute): void {
  const missing = routeFeatures(route).filter((feature) => !supports?.includes(feature));
  if (missing.length === 0) return;
  throw ApplicationFailure.nonRetryable(
    `route of ${route.target}: the ${kind} router does not support ${missing.map((f) => `"${f}"`).join(' or ')} (it supports ${supports?.length ? supports.map((f) => `"${f}"`).join(', ') : 'weights only'})`,
    'UnsupportedRouteFeature',
  );
}

/** An adapter kind, its options' type inferred from its schema. */
export function defineAdapter<Schema extends OptionsSchema, Adapter>(kind: AdapterKind<Schema, Adapter>): AdapterKind<Schema, Adapter> {
  return kind;
}

/**
 * Builds adapters from a registry, one per distinct options (a worker runs many rollouts; each
 * adapter instance may hold connections).
 */
export function adapterCache<Options extends { kind: string }, Adapter>(
  registry: readonly AdapterKind<OptionsSchema, Adapter>[],
  settings: AdapterSettings,
): (options: Options) => Adapter {
  const built = new Map<string, Adapter>();
  return (options) => {
    const key = JSON.stringify(options);
    let adapter = built.get(key);
    if (!adapter) {
      const kind = registry.find((k) => k.kind === options.kind);
      if (!kind) throw new Error(`no adapter of kind "${options.kind}" (known: ${registry.map((k) => k.kind).join(', ')})`);
      adapter = kind.create(kind.options.parse(options), settings);
      built.set(key, adapter);
    }
    return adapter;
  };
}
