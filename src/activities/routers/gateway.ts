/** The embedded gateway (src/gateway) as a TrafficRouter: PUT /admin/routes/:target, GET to read it back. */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { requestJson, requestJsonOrAbsent } from '../http';
import { defineAdapter } from '../registry';
import type { RouteChange, TrafficRoute, TrafficRouter } from '../types';

export interface GatewayOptions {
  /** Base URL of the gateway, e.g. http://127.0.0.1:8080. */
  url: string;
  adminToken?: string;
}

/** The gateway's route as GET /admin/routes/:target answers it (src/gateway/routes.ts, `Route`). */
const gatewayRoute = z.object({
  versions: z.array(z.object({ name: z.string(), url: z.string(), weight: z.number() })).min(1),
  salt: z.string(),
  match: z.object({ header: z.string(), values: z.array(z.string()), others: z.string() }).optional(),
  mirror: z
    .object({ from: z.string(), to: z.string(), percent: z.number(), evaluator: z.object({ url: z.string(), sample: z.number() }).optional() })
    .optional(),
});
type GatewayRoute = z.infer<typeof gatewayRoute>;

/** The match and mirror of a route as the gateway has them (its names are the TrafficRoute's), for sending and comparing. */
function extrasOf(route: Pick<TrafficRoute, 'match' | 'mirror'>): Pick<GatewayRoute, 'match' | 'mirror'> {
  const extras: Pick<GatewayRoute, 'match' | 'mirror'> = {};
  if (route.match) extras.match = { header: route.match.header.toLowerCase(), values: [...route.match.values], others: route.match.others };
  if (route.mirror) {
    const { from, to, percent, evaluator } = route.mirror;
    extras.mirror = { from, to, percent, ...(evaluator ? { evaluator: { url: evaluator.url, sample: evaluator.sample } } : {}) };
  }
  return extras;
}

/** `routing: { kind: "gateway" }`: the gateway the worker is configured with (GATEWAY_URL). */
export const gatewayRouter = defineAdapter({
  kind: 'gateway',
  options: z.strictObject({ kind: z.literal('gateway') }),
  versionUrls: 'required',
  supports: ['match', 'mirror'],
  create: (_options, settings): TrafficRouter => gatewayTrafficRouter({ url: settings.gatewayUrl, adminToken: settings.gatewayAdminToken }),
});

export function gatewayTrafficRouter({ url, adminToken }: GatewayOptions): TrafficRouter {
  const routeUrl = (target: string) => `${url}/admin/routes/${encodeURIComponent(target)}`;
  const router: TrafficRouter = {
    async setWeights(route: TrafficRoute, change: RouteChange) {
      const versions = route.versions.map((v) => {
        if (!v.url) throw ApplicationFailure.nonRetryable(`version ${v.version} of ${route.target} has no url: the embedded gateway sends traffic to URLs`, 'InvalidRoute');
        return { name: v.version, url: v.url, weight: v.weight };
      });
      // The salt fixes which users hash to the candidate: one per rollout (or the captured route's own).
      const salt = route.routerState?.salt ?? change.rolloutId;
      // The gateway answers with the route it now serves (stored, then in its table): verified when it is this one.
      const extras = extrasOf(route);
      const served = gatewayRoute.safeParse(await requestJson<unknown>({ method: 'PUT', url: routeUrl(route.target), token: adminToken, body: { versions, salt, ...extras } }));
      const same =
        served.success &&
        served.data.salt === salt &&
        JSON.stringify(served.data.versions.map((v) => [v.name, v.weight])) === JSON.stringify(versions.map((v) => [v.name, v.weight])) &&
        JSON.stringify(extrasOf(served.data)) === JSON.stringify(extras);
      if (!same) throw new Error(`the gateway at ${url} did not confirm the route of ${route.target} it was given (${JSON.stringify(served.success ? served.data : served.error.issues).slice(0, 300)})`);
    },

    async readRoute(target: string) {
      // 404 `unknown_target`: the gateway has no route for it (src/gateway/admin.ts).
      const body = await requestJsonOrAbsent<unknown>({ method: 'GET', url: routeUrl(target), token: adminToken }, 'unknown_target');
      if (body === undefined) return undefined;
      const parsed = gatewayRoute.safeParse(body);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(`GET ${routeUrl(target)} answered something that is not a route: ${JSON.stringify(body).slice(0, 300)}`, 'UpstreamRejected');
      }
      const route: TrafficRoute = {
        target,
        versions: parsed.data.versions.map((v) => ({ version: v.name, url: v.url, weight: v.weight })),
        routerState: { salt: parsed.data.salt },
      };
      return { ...route, ...extrasOf(parsed.data) };
    },
  };
  return router;
}
