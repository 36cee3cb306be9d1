/**
 * Metric sources by `metrics.kind`. Adding one: a file here exporting its AdapterKind, and a
 * line below.
 */
import type { z } from 'zod';
import type { AdapterKind, OptionsSchema } from '../registry';
import type { MetricSource } from '../types';
import { gatewayMetrics } from './gateway';
import { prometheusMetrics } from './prometheus';

export const METRIC_SOURCES = [gatewayMetrics, prometheusMetrics] as const satisfies readonly AdapterKind<OptionsSchema, MetricSource>[];

/** A spec's `metrics`, as validated. */
export type MetricsSpec = z.output<(typeof METRIC_SOURCES)[number]['options']>;
