/** The embedded gateway's own counts as a MetricSource: GET /admin/metrics/:target (cumulative per version). */
import { z } from 'zod';
import { emptyVersionMetrics, type MetricsSample, type ShadowSample, type VersionMetrics } from '../../analysis/metrics';
import { requestJson } from '../http';
import { defineAdapter } from '../registry';
import type { GatewayOptions } from '../routers/gateway';
import type { MetricQuery, MetricSource } from '../types';

/** src/gateway/metrics.ts `snapshot`: versions with their LLM figures, and the target's mirrored pairs once it had a mirror. */
interface GatewayMetricsResponse {
  target: string;
  versions: Record<string, VersionMetrics>;
  shadow?: ShadowSample;
}

/** `metrics: { kind: "gateway" }`: what the worker's gateway (GATEWAY_URL) counted. It sees only traffic it routes. */
export const gatewayMetrics = defineAdapter({
  kind: 'gateway',
  options: z.strictObject({ kind: z.literal('gateway') }),
  sees: ['gateway'],
  create: (_options, settings): MetricSource => gatewayMetricSource({ url: settings.gatewayUrl, adminToken: settings.gatewayAdminToken }),
});

export function gatewayMetricSource({ url, adminToken }: GatewayOptions): MetricSource {
  return {
    async read({ target, baseline, candidate }: MetricQuery) {
      const body = await requestJson<GatewayMetricsResponse>({
        method: 'GET',
        url: `${url}/admin/metrics/${encodeURIComponent(target)}`,
        token: adminToken,
      });
      // A version the gateway has not seen yet has served nothing.
      const sample: MetricsSample = {
        baseline: body.versions[baseline.version] ?? emptyVersionMetrics(),
        candidate: body.versions[candidate.version] ?? emptyVersionMetrics(),
      };
      if (body.shadow) sample.shadow = body.shadow;
      return { kind: 'cumulative', sample };
    },
  };
}
