/**
 * Traffic routers by `routing.kind`. Adding one: a file here exporting its AdapterKind, and a
 * line below.
 */
import type { z } from 'zod';
import type { AdapterKind, OptionsSchema } from '../registry';
import type { TrafficRouter } from '../types';
import { gatewayRouter } from './gateway';
import { gatewayApiRouter } from './gateway-api';
import { nginxRouter } from './nginx';

export const ROUTERS = [gatewayRouter, nginxRouter, gatewayApiRouter] as const satisfies readonly AdapterKind<OptionsSchema, TrafficRouter>[];

/** A spec's `routing`, as validated. */
export type RoutingSpec = z.output<(typeof ROUTERS)[number]['options']>;
