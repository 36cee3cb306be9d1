/** TrafficRouter for the embedded gateway: PUT /admin/routes/:target. */
import { requestJson } from './http';
import type { TrafficRoute, TrafficRouter } from './types';

export interface GatewayOptions {
  /** Base URL of the gateway, e.g. http://127.0.0.1:8080. */
  url: string;
  adminToken?: string;
}

export function gatewayTrafficRouter({ url, adminToken }: GatewayOptions): TrafficRouter {
  return {
    async setWeights(route: TrafficRoute) {
      await requestJson({
        method: 'PUT',
        url: `${url}/admin/routes/${encodeURIComponent(route.target)}`,
        token: adminToken,
        body: {
          versions: route.versions.map((v) => ({ name: v.version, url: v.url, weight: v.weight })),
          ...(route.salt ? { salt: route.salt } : {}),
        },
      });
    },
  };
}
