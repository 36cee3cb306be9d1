/**
 * zod fragment for the sequential judge's options, for the spec to plug in as
 * `analysis.sequential`. Every field is optional; omitted fields take DEFAULT_SEQUENTIAL_OPTIONS
 * (applied by createSequentialJudge / resolveOptions, so the parsed value stays small).
 */
import { z } from 'zod';
import { GATE_METRIC_NAMES } from '../gate-metrics';
import { EXCEEDANCE_METRIC_NAMES } from './options';

const fraction = (what: string) => z.number({ error: `${what} must be a number` }).gt(0, `${what} must be above 0`).lt(1, `${what} must be below 1`);
const share = (what: string) => z.number({ error: `${what} must be a number` }).min(0, `${what} must be at least 0`).max(1, `${what} must be at most 1`);
const ratio = (what: string) => z.number({ error: `${what} must be a number` }).min(1, `${what} must be at least 1`);
const count = (what: string) => z.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).min(0, `${what} must be 0 or more`);

/** `{ <metric>: <value>, … }` over the gate-metric table's names, every one optional. */
function perMetric(names: readonly string[], field: string, value: (what: string) => z.ZodNumber) {
  return z.strictObject(Object.fromEntries(names.map((n) => [n, value(`${field}.${n}`).optional()]))).optional();
}

export const sequentialOptionsSchema = z
  .strictObject({
    alpha: fraction('alpha').optional(),
    alphaSplit: perMetric(GATE_METRIC_NAMES, 'alphaSplit', share),
    sloAlphaShare: z
      .number({ error: 'sloAlphaShare must be a number' })
      .gt(0, 'sloAlphaShare must be above 0 (the share of alpha the SLO guardrails of analysis.thresholds get; without any, they could never fail the candidate)')
      .lt(1, 'sloAlphaShare must be below 1 (the share of alpha the SLO guardrails of analysis.thresholds get; the comparison with the baseline keeps the rest)')
      .optional(),
    tolerances: perMetric(GATE_METRIC_NAMES, 'tolerances', ratio),
    scaleTolerance: perMetric(EXCEEDANCE_METRIC_NAMES, 'scaleTolerance', ratio),
    shadowAlphaShare: fraction('shadowAlphaShare').optional(),
    pairedTolerance: ratio('pairedTolerance').optional(),
    meanMinBaseline: count('meanMinBaseline').optional(),
    meanMinCandidate: count('meanMinCandidate').optional(),
    alternatives: z.array(z.number().gt(1, 'alternatives must be above 1').max(1000, 'alternatives must be at most 1000')).min(1, 'alternatives must list at least one').max(16, 'alternatives may list at most 16').optional(),
    latencyQuantile: fraction('latencyQuantile').optional(),
    boundaryMinBaseline: count('boundaryMinBaseline').optional(),
    catastrophicErrorRate: share('catastrophicErrorRate').optional(),
    catastrophicMinRequests: count('catastrophicMinRequests').optional(),
    catastrophicMinRatio: z.number().min(0).optional(),
    srmAlpha: fraction('srmAlpha').optional(),
    maxConsecutiveInconclusive: count('maxConsecutiveInconclusive').optional(),
    readyAlpha: fraction('readyAlpha').optional(),
    readyMinRequests: count('readyMinRequests').optional(),
    readyErrorRateSlack: share('readyErrorRateSlack').optional(),
    resource: z
      .strictObject({
        maxCpuPerRequestRatio: ratio('resource.maxCpuPerRequestRatio').optional(),
        maxMemoryRatio: ratio('resource.maxMemoryRatio').optional(),
        maxMemoryBytes: count('resource.maxMemoryBytes').optional(),
        breachesToFail: count('resource.breachesToFail').min(1).optional(),
      })
      .optional(),
  })
  .refine((o) => !o.alphaSplit || (o.alphaSplit.errors ?? 0.6) + (o.alphaSplit.latency ?? 0.3) + (o.alphaSplit.ttfb ?? 0.1) <= 1 + 1e-9, {
    message: 'alphaSplit shares must sum to at most 1',
    path: ['alphaSplit'],
  });

export type SequentialOptionsSpec = z.output<typeof sequentialOptionsSchema>;
