/** MetricSource for the embedded gateway: GET /admin/metrics/:target (cumulative per version). */
import { emptyVersionMetrics, type VersionMetrics } from '../analysis/metrics';
import type { GatewayOptions } from './gateway-router';
import { requestJson } from './http';
import type { MetricQuery, MetricSource } from './types';

interface GatewayMetricsResponse {
  target: string;
  versions: Record<string, VersionMetrics>;
}

export function gatewayMetricSource({ url, adminToken }: GatewayOptions): MetricSource {
  return {
    async read({ target, baseline, candidate }: MetricQuery) {
      const body = await requestJson<GatewayMetricsResponse>({
        method: 'GET',
        url: `${url}/admin/metrics/${encodeURIComponent(target)}`,
        token: adminToken,
      });
      // A version the gateway has not seen yet has served nothing.
      return {
        baseline: body.versions[baseline.version] ?? emptyVersionMetrics(),
        candidate: body.versions[candidate.version] ?? emptyVersionMetrics(),
      };
    },
  };
}
