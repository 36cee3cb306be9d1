/** TrafficRouter for the embedded gateway: PUT /admin/routes/:target, and GET to read it back. */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { requestJson, requestJsonOrAbsent } from './http';
import type { TrafficRoute, TrafficRouter } from './types';

export interface GatewayOptions {
  /** Base URL of the gateway, e.g. http://127.0.0.1:8080. */
  url: string;
  adminToken?: string;
}

/** The gateway's route as GET /admin/routes/:target answers it (src/gateway/routes.ts, `Route`). */
const gatewayRoute = z.object({
  versions: z.array(z.object({ name: z.string(), url: z.string(), weight: z.number() })).min(1),
  salt: z.string(),
});

export function gatewayTrafficRouter({ url, adminToken }: GatewayOptions): TrafficRouter {
  const routeUrl = (target: string) => `${url}/admin/routes/${encodeURIComponent(target)}`;
  return {
    async setWeights(route: TrafficRoute) {
      await requestJson({
        method: 'PUT',
        url: routeUrl(route.target),
        token: adminToken,
        body: {
          versions: route.versions.map((v) => ({ name: v.version, url: v.url, weight: v.weight })),
          ...(route.salt ? { salt: route.salt } : {}),
        },
      });
    },

    async readRoute(target: string) {
      // 404 `unknown_target`: the gateway has no route for it (src/gateway/admin.ts).
      const body = await requestJsonOrAbsent<unknown>({ method: 'GET', url: routeUrl(target), token: adminToken }, 'unknown_target');
      if (body === undefined) return undefined;
      const parsed = gatewayRoute.safeParse(body);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(`GET ${routeUrl(target)} answered something that is not a route: ${JSON.stringify(body).slice(0, 300)}`, 'UpstreamRejected');
      }
      return {
        target,
        versions: parsed.data.versions.map((v) => ({ version: v.name, url: v.url, weight: v.weight })),
        salt: parsed.data.salt,
      };
    },
  };
}
