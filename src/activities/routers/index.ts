/**
 * Traffic routers by `routing.kind`. Adding one: a file here exporting its AdapterKind, and a
 * line below.
 */
import type { z } from 'zod';
import type { AdapterKind, OptionsSchema, RouteFeature } from '../registry';
import type { TrafficRouter } from '../types';
import { gatewayRouter } from './gateway';
import { gatewayApiRouter } from './gateway-api';
import { nginxRouter } from './nginx';

export const ROUTERS = [gatewayRouter, nginxRouter, gatewayApiRouter] as const satisfies readonly AdapterKind<OptionsSchema, TrafficRouter>[];

/** A spec's `routing`, as validated. */
export type RoutingSpec = z.output<(typeof ROUTERS)[number]['options']>;

/** Whether the router of `kind` implements `feature` (AdapterKind.supports): false for an unknown kind. */
export function routerSupports(kind: string, feature: RouteFeature): boolean {
  const router: AdapterKind<OptionsSchema, TrafficRouter> | undefined = ROUTERS.find((r) => r.kind === kind);
  return router?.supports?.includes(feature) ?? false;
}
