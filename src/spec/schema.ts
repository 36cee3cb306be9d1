/**
 * The rollout spec: the one definition of what a rollout asks for, used by the API and the CLI
 * to validate input, and (as types only) by the workflow. Durations arrive as strings (`30s`)
 * and leave validation as milliseconds, so nothing downstream parses text again.
 */
import { z } from 'zod';
import { METRIC_SOURCES } from '../activities/metric-sources';
import type { AdapterKind, OptionsSchema } from '../activities/registry';
import { ROUTERS } from '../activities/routers';
import { GATE_METRIC_NAMES } from '../analysis/gate-metrics';
import { sequentialOptionsSchema } from '../analysis/sequential/schema';
import { formatDuration, parseDuration } from './duration';
import { HEADER_NAME_PATTERN, HEADER_VALUE_PATTERN, WEIGHT_RESOLUTION, callbackUrlSchema, isWeightMultiple, targetSchema, upstreamUrlSchema, versionNameSchema } from './patterns';

/**
 * A duration string within [min, max]: nothing a spec says may make time stand still (a zero
 * interval) or put a timer beyond what anyone means (and what Temporal's timers accept).
 */
const duration = (what: string, min: number, max: number) =>
  z
    .string({ error: `${what} must be a duration string such as "30s", "5m" or "1h"` })
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `${what} "${text}" is not a duration such as "30s", "5m" or "1h"` });
        return z.NEVER;
      }
      if (ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message: `${what} must be between ${formatDuration(min)} and ${formatDuration(max)}, got "${text}"` });
        return z.NEVER;
      }
      return ms;
    });

const SECOND = 1_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Upper bounds on counts: far above any real use, low enough that no loop or payload runs away. */
export const SPEC_LIMITS = { steps: 100, checks: 100_000, requests: 100_000_000 } as const;

const count = (what: string, min: number, max: number) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .min(min, `${what} must be at least ${min}`)
    .max(max, `${what} must be at most ${max}`);

const modelVersion = (role: string) =>
  z.strictObject(
    {
      version: versionNameSchema(`${role}.version`),
      /** Where the version serves: required by routers that send traffic to URLs, refused by the others. */
      url: upstreamUrlSchema(`${role}.url`).optional(),
      /** Token prices, for the `cost` gate metric (currency units per million tokens). */
      pricing: z
        .strictObject({
          inputPer1M: z.number({ error: `${role}.pricing.inputPer1M must be a number` }).min(0, `${role}.pricing.inputPer1M must be at least 0`),
          outputPer1M: z.number({ error: `${role}.pricing.outputPer1M must be a number` }).min(0, `${role}.pricing.outputPer1M must be at least 0`),
        }, { error: `${role}.pricing must be an object with "inputPer1M" and "outputPer1M"` })
        .optional(),
    },
    { error: `${role} must be an object with "version" (and "url", for the routers that send traffic to URLs)` },
  );

const percent = (what: string, min: 'above0' | 'atLeast0') =>
  z
    .number({ error: `${what} must be a number` })
    [min === 'above0' ? 'gt' : 'min'](0, `${what} must be ${min === 'above0' ? 'above' : 'at least'} 0`)
    .max(100, `${what} must be at most 100`)
    .refine(isWeightMultiple, `${what} must be a percentage in steps of ${WEIGHT_RESOLUTION} (e.g. 12.5 or 0.25)`)
    // Exactly on the resolution from here on: 99.99999999999976 is 100, and every layer sees the same number.
    .transform((weight) => Number(weight.toFixed(2)));

export const stepSchema = z
  .strictObject({
    /** The candidate's share of live traffic (of the matching requests, with `match`); 0 on a shadow step, which serves it none. */
    weight: percent('weight', 'above0').default(0),
    /**
     * A shadow step (before any live weight): this percent of the baseline's requests is copied
     * to the candidate, whose answers nobody sees; the pairs are compared. Embedded gateway only.
     */
    shadow: percent('shadow', 'above0').optional(),
    /** Only requests whose header has one of these values are split by `weight`; the rest stay on the baseline. */
    match: z
      .strictObject(
        {
          header: z.string({ error: 'match.header must be a string' }).regex(HEADER_NAME_PATTERN, 'match.header must be an HTTP header name (letters, digits and -, at most 100)').transform((h) => h.toLowerCase()),
          values: z
            .array(z.string({ error: 'match.values must be strings' }).regex(HEADER_VALUE_PATTERN, 'match.values must be 1-200 visible ASCII characters without quotes or backslashes'), { error: 'match.values must be an array of strings' })
            .min(1, 'match.values must list at least one value')
            .max(20, 'match.values may list at most 20 values'),
        },
        { error: 'match must be an object with "header" and "values"' },
      )
      .optional(),
    /** How long to hold this weight while checks run; omitted means move on without baking. */
    bake: duration('bake', SECOND, 30 * DAY).optional(),
    /** `manual`: after the bake, wait for an operator's approval before the next step. */
    gate: z.enum(['auto', 'manual'], { error: 'gate must be "auto" or "manual"' }).default('auto'),
  })
  .superRefine((step, ctx) => {
    if (step.shadow !== undefined && step.weight > 0) ctx.addIssue({ code: 'custom', path: ['shadow'], message: 'a step is either live (weight) or shadow (shadow), not both: a shadow step sends users no candidate answer' });
    if (step.shadow !== undefined && step.match !== undefined) ctx.addIssue({ code: 'custom', path: ['match'], message: 'match is not read on a shadow step: it mirrors the baseline\'s requests, whoever sent them' });
    if (step.shadow === undefined && step.weight === 0) ctx.addIssue({ code: 'custom', path: ['weight'], message: 'weight is required (or shadow, for a shadow step)' });
  });

const analysisShape = z.strictObject({
  /**
   * `sequential` (default): anytime-valid comparison with the concurrent baseline, with adaptive
   * steps (src/analysis/sequential). `threshold`: fixed limits on the candidate per check, failed
   * checks counted up to `failureLimit` (judge v0, Argo/Flagger-style).
   */
  judge: z.enum(['threshold', 'sequential'], { error: 'judge must be "threshold" or "sequential"' }).default('sequential'),
  /** Options of the sequential judge (alpha, tolerances...); defaults when omitted. */
  sequential: sequentialOptionsSchema.optional(),
  /**
   * Sequential judge. `required` (default): going beyond 25% needs every metric bounded below its
   * tolerance, and small steps end early once it is; `advisory`: steps end after their bake when
   * nothing fails (as with Argo Rollouts and Flagger), readiness is only reported.
   */
  readiness: z.enum(['required', 'advisory'], { error: 'readiness must be "required" or "advisory"' }).default('required'),
  /** Sequential judge, readiness required: extra checks a step may take while its evidence is not ready. */
  maxExtensionChecks: count('maxExtensionChecks', 0, SPEC_LIMITS.checks).default(30),
  /** Time between checks; at least 1 s, so that a bake always advances. */
  interval: duration('interval', SECOND, HOUR).default(parseDuration('30s')!),
  minRequests: count('minRequests', 1, SPEC_LIMITS.requests).default(50),
  /** Threshold judge: failed checks that roll back (the sequential judge rolls back at its first). */
  failureLimit: count('failureLimit', 1, SPEC_LIMITS.checks).default(2),
  /** Consecutive inconclusive checks tolerated before the rollout is rolled back; 0 = unlimited. */
  inconclusiveLimit: count('inconclusiveLimit', 0, SPEC_LIMITS.checks).default(0),
  /**
   * How long the metric source may stay unreadable: its checks are inconclusive (the step holds)
   * until then, and the rollout rolls back once the outage has lasted this long.
   */
  maxMetricsOutage: duration('maxMetricsOutage', SECOND, DAY).default(parseDuration('5m')!),
  /**
   * Absolute limits on the candidate. Threshold judge: per check (defaults 5% and 800 ms).
   * Sequential judge: SLO guardrails beside the comparison with the baseline, only when given:
   * the candidate fails once its error rate or p95 is credibly above the limit.
   */
  /**
   * Sequential judge: the gate metrics to hold the candidate to (src/analysis/gate-metrics.ts),
   * each with an optional tolerance (ratio candidate/baseline). Omitted: errors, latency and time
   * to first byte (when measured).
   */
  metrics: z
    .strictObject(
      Object.fromEntries(
        GATE_METRIC_NAMES.map((name) => [
          name,
          z
            .strictObject(
              { tolerance: z.number({ error: `metrics.${name}.tolerance must be a number` }).min(1, `metrics.${name}.tolerance must be at least 1 (a ratio candidate/baseline)`).max(100, `metrics.${name}.tolerance must be at most 100`).optional() },
              { error: `metrics.${name} must be an object, e.g. {} or { "tolerance": 1.25 }` },
            )
            .optional(),
        ]),
      ) as Record<(typeof GATE_METRIC_NAMES)[number], z.ZodOptional<z.ZodObject<{ tolerance: z.ZodOptional<z.ZodNumber> }, z.core.$strict>>>,
      { error: `metrics must be an object naming gate metrics: ${GATE_METRIC_NAMES.map((n) => `"${n}"`).join(', ')}` },
    )
    .refine((m) => Object.values(m).some((v) => v !== undefined), 'metrics must name at least one gate metric')
    .optional(),
  /**
   * A shadow step's evaluator: a sample of the mirrored pairs is posted to `url` as
   * `{prompt, baseline, candidate}`; its `{verdict}` (better | same | worse) or `{score}` enters a
   * paired sequential test.
   */
  evaluator: z
    .strictObject(
      {
        url: callbackUrlSchema('evaluator.url'),
        sample: z.number({ error: 'evaluator.sample must be a number' }).gt(0, 'evaluator.sample must be above 0').max(1, 'evaluator.sample must be at most 1 (a fraction of the mirrored pairs)').default(0.1),
      },
      { error: 'evaluator must be an object with "url" (and "sample")' },
    )
    .optional(),
  thresholds: z
    .strictObject({
      maxErrorRate: z.number().min(0, 'maxErrorRate must be between 0 and 1').max(1, 'maxErrorRate must be between 0 and 1').optional(),
      maxLatencyP95Ms: z.number().positive('maxLatencyP95Ms must be above 0').optional(),
    })
    .optional(),
});

export const analysisSchema = analysisShape;

/**
 * Fields the chosen judge would not read, from the input as sent (the parsed spec has defaults
 * filled in): refused, naming them, so that nothing a user configures is silently ignored.
 */
export function unreadAnalysisFields(input: unknown): Array<{ path: Array<string | number>; message: string }> {
  const analysis = typeof input === 'object' && input !== null ? (input as Record<string, unknown>).analysis : undefined;
  if (typeof analysis !== 'object' || analysis === null || Array.isArray(analysis)) return [];
  const given = analysis as Record<string, unknown>;
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const refuse = (path: string[], why: string) => issues.push({ path: ['analysis', ...path], message: `${path.join('.')} is not read here: ${why}` });
  const has = (field: string) => given[field] !== undefined;
  const judge = given.judge ?? 'sequential';
  if (judge === 'threshold') {
    for (const field of ['sequential', 'readiness', 'maxExtensionChecks', 'metrics', 'evaluator']) {
      if (has(field)) refuse([field], 'only the sequential judge reads it, and analysis.judge is "threshold"');
    }
  }
  if (judge === 'sequential') {
    if (has('failureLimit')) refuse(['failureLimit'], 'the sequential judge rolls back at its first failed check (its test already accounts for every look); only the threshold judge counts failed checks');
    if (given.readiness === 'advisory' && has('maxExtensionChecks')) refuse(['maxExtensionChecks'], 'with analysis.readiness "advisory" a step ends after its bake and is never extended');
    const options = typeof given.sequential === 'object' && given.sequential !== null ? (given.sequential as Record<string, unknown>) : {};
    if (options.maxConsecutiveInconclusive !== undefined && typeof given.inconclusiveLimit === 'number' && given.inconclusiveLimit > 0) {
      refuse(['sequential', 'maxConsecutiveInconclusive'], 'analysis.inconclusiveLimit is set and takes its place; give one of the two');
    }
    const thresholds = typeof given.thresholds === 'object' && given.thresholds !== null ? (given.thresholds as Record<string, unknown>) : {};
    if (options.sloAlphaShare !== undefined && thresholds.maxErrorRate === undefined && thresholds.maxLatencyP95Ms === undefined) {
      refuse(['sequential', 'sloAlphaShare'], 'it is the share of α for the SLO guardrails, and analysis.thresholds gives none');
    }
  }
  return issues;
}

/** A registry's option schemas, as the tuple z.discriminatedUnion takes. */
type RegistrySchemas<R extends readonly { options: unknown }[]> = { [I in keyof R]: R[I]['options'] };
const kindsOf = (registry: readonly { kind: string }[]) => registry.map((k) => `"${k.kind}"`).join(', ');

/** How the target's traffic is split: the embedded gateway (default), or the user's NGINX or Gateway API (src/activities/routers). */
export const routingSchema = z
  .discriminatedUnion('kind', ROUTERS.map((r) => r.options) as unknown as RegistrySchemas<typeof ROUTERS>, {
    error: (issue) => (issue.code === 'invalid_union' ? `routing.kind must be one of ${kindsOf(ROUTERS)}` : undefined),
  })
  .default({ kind: 'gateway' });

/** Where the versions' figures come from: the embedded gateway's counts (default), or Prometheus (src/activities/metric-sources). */
export const metricsSchema = z
  .discriminatedUnion('kind', METRIC_SOURCES.map((m) => m.options) as unknown as RegistrySchemas<typeof METRIC_SOURCES>, {
    error: (issue) => (issue.code === 'invalid_union' ? `metrics.kind must be one of ${kindsOf(METRIC_SOURCES)}` : undefined),
  })
  .default({ kind: 'gateway' });

/**
 * The spec's fields; `baseline` required or not. The shape with an optional baseline is a rollout
 * *request*: the API takes a baseline left out from what the target serves now (./baseline.ts).
 */
const shapeWith = <B extends z.ZodType>(baseline: B) =>
  z.strictObject(
    {
      target: targetSchema(),
      /** What serves the target now, at 100%. */
      baseline,
      candidate: modelVersion('candidate'),
      steps: z
        .array(stepSchema, { error: 'steps must be an array' })
        .min(1, 'steps must hold at least one step')
        .max(SPEC_LIMITS.steps, `steps may hold at most ${SPEC_LIMITS.steps} steps`),
      analysis: analysisSchema.prefault({}),
      routing: routingSchema,
      metrics: metricsSchema,
      /** Where to send phase changes and decisions (JSON POST). */
      notify: z.strictObject({ webhook: callbackUrlSchema('notify.webhook') }).optional(),
    },
    { error: 'the rollout spec must be a JSON object' },
  );

const specShape = shapeWith(modelVersion('baseline'));
const requestShape = shapeWith(modelVersion('baseline').optional());

// Cross-field rules run even when other fields are invalid (`when`), so one response lists
// every problem; each rule guards against the parts it reads being malformed.
const crossFieldsWhen = { when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null };

/** A complete spec, as the workflow runs it. */
export const rolloutSpecSchema = specShape.superRefine(crossFieldRules, crossFieldsWhen);

/** A spec as a client may send it to the API: `baseline` may be left out (taken from the live route). */
export const rolloutRequestSchema = requestShape.superRefine(crossFieldRules, crossFieldsWhen);

function crossFieldRules(spec: Partial<z.output<typeof requestShape>>, ctx: z.RefinementCtx): void {
  const baseline = spec.baseline?.version;
  if (typeof baseline === 'string' && baseline === spec.candidate?.version) {
    ctx.addIssue({ code: 'custom', path: ['candidate', 'version'], message: `candidate.version must differ from baseline.version ("${baseline}")` });
  }
  const analysis = spec.analysis;
  if (analysis?.metrics?.cost) {
    for (const role of ['baseline', 'candidate'] as const) {
      const version = spec[role];
      // A baseline left out of a request is taken from the live route, which has no prices.
      if (!version?.pricing) ctx.addIssue({ code: 'custom', path: [role, 'pricing'], message: `${role}.pricing is required: analysis.metrics.cost compares the versions' cost per request` });
    }
  }
  const hasShadow = Array.isArray(spec.steps) && spec.steps.some((step) => typeof step?.shadow === 'number');
  if (analysis?.evaluator && !hasShadow) {
    ctx.addIssue({ code: 'custom', path: ['analysis', 'evaluator'], message: 'analysis.evaluator is not read here: it judges the mirrored pairs of a shadow step, and steps has none' });
  }
  adapterRules(spec, ctx);
  if (!Array.isArray(spec.steps)) return;
  const interval = spec.analysis?.interval;
  const steps = spec.steps as Array<Partial<RolloutStepShape> | undefined>;
  steps.forEach((step, i) => {
    const previous = steps[i - 1]?.weight;
    const shadowStep = typeof step?.shadow === 'number';
    if (shadowStep && steps.slice(0, i).some((s) => typeof s?.weight === 'number' && s.weight > 0)) {
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'shadow'], message: 'a shadow step must come before every live step (it compares the candidate before any user sees it)' });
    }
    if (step?.match && i === steps.length - 1) {
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'match'], message: 'the last step sends every request to the candidate, so it cannot match a header' });
    }
    // A header-matched step's weight is of the matching requests only (internal users at 100%, then
    // 5% of everyone is a fine ladder): weights increase from step to step among the unmatched ones.
    const matched = step?.match !== undefined || steps[i - 1]?.match !== undefined;
    if (!shadowStep && !matched && typeof step?.weight === 'number' && typeof previous === 'number' && previous > 0 && step.weight <= previous) {
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'weight'], message: `weight must be above the previous step's (${previous})` });
    }
    if (typeof step?.bake === 'number' && typeof interval === 'number' && step.bake < interval) {
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'bake'], message: 'bake must be at least analysis.interval' });
    }
  });
  const lastIndex = steps.length - 1;
  const lastWeight = steps[lastIndex]?.weight;
  if (typeof lastWeight === 'number' && lastWeight !== 100) {
    ctx.addIssue({ code: 'custom', path: ['steps', lastIndex, 'weight'], message: 'the last step must have weight 100' });
  }
}

/**
 * What the chosen adapters need of the rest of the spec: version URLs for routers that send
 * traffic to URLs, none for the others (their options say where versions serve, and a URL would
 * be silently ignored), and a metric source that can see the chosen router's traffic.
 */
function adapterRules(spec: Partial<z.output<typeof requestShape>>, ctx: z.RefinementCtx): void {
  const routing = ROUTERS.find((r) => r.kind === (spec.routing as { kind?: unknown } | undefined)?.kind);
  const metrics = METRIC_SOURCES.find((m) => m.kind === (spec.metrics as { kind?: unknown } | undefined)?.kind);
  if (routing) {
    for (const role of ['baseline', 'candidate'] as const) {
      const version = spec[role];
      if (typeof version !== 'object' || version === null) continue;
      if (routing.versionUrls === 'required' && version.url === undefined) {
        ctx.addIssue({ code: 'custom', path: [role, 'url'], message: `${role}.url is required with routing.kind "${routing.kind}": it sends traffic to the URL` });
      }
      if (routing.versionUrls === 'unused' && version.url !== undefined) {
        ctx.addIssue({ code: 'custom', path: [role, 'url'], message: `${role}.url is not read with routing.kind "${routing.kind}": its options say where each version serves` });
      }
    }
  }
  const versions = [spec.baseline?.version, spec.candidate?.version].filter((v): v is string => typeof v === 'string');
  const checkVersions = (routing as AdapterKind<OptionsSchema, unknown> | undefined)?.checkVersions;
  if (checkVersions && typeof spec.routing === 'object' && spec.routing !== null) {
    for (const issue of checkVersions(spec.routing, versions)) ctx.addIssue({ code: 'custom', path: ['routing', ...issue.path], message: issue.message });
  }
  // Route features: a header match needs a router that can express it, a shadow step one that mirrors,
  // and the mirrored pairs are recorded by the embedded gateway only (its metric source reads them).
  const supports = routing?.supports ?? [];
  (Array.isArray(spec.steps) ? spec.steps : []).forEach((step, i) => {
    if (!routing || typeof step !== 'object' || step === null) return;
    if (step.match && !supports.includes('match')) {
      ctx.addIssue({ code: 'custom', path: ['steps', i, 'match'], message: `steps.${i}.match is not supported by routing.kind "${routing.kind}"` });
    }
    if (typeof step.shadow === 'number') {
      if (!supports.includes('mirror')) ctx.addIssue({ code: 'custom', path: ['steps', i, 'shadow'], message: `steps.${i}.shadow needs a router that mirrors traffic, and routing.kind "${routing.kind}" does not: use the embedded gateway ("gateway")` });
      else if (metrics && metrics.kind !== 'gateway') ctx.addIssue({ code: 'custom', path: ['steps', i, 'shadow'], message: `steps.${i}.shadow needs metrics.kind "gateway": the embedded gateway records the mirrored pairs` });
    }
  });
  if (routing && metrics?.sees && !metrics.sees.includes(routing.kind)) {
    ctx.addIssue({
      code: 'custom',
      path: ['metrics', 'kind'],
      message: `metrics.kind "${metrics.kind}" sees only traffic routed by ${metrics.sees.map((k) => `"${k}"`).join(', ')}, and routing.kind is "${routing.kind}": give a metric source that sees it (e.g. "prometheus")`,
    });
  }
}

type RolloutStepShape = z.output<typeof stepSchema>;

/** A complete spec as a client writes it (durations as strings, defaults optional). */
export type RolloutSpecInput = z.input<typeof rolloutSpecSchema>;
/** What a client may send to the API: a spec whose `baseline` may be left out. */
export type RolloutRequestInput = z.input<typeof rolloutRequestSchema>;
/** A validated request: a spec whose baseline may still have to be taken from the live route. */
export type RolloutRequest = z.output<typeof rolloutRequestSchema>;
/** A validated, complete spec: defaults filled in, durations in milliseconds, the baseline known. */
export type RolloutSpec = z.output<typeof rolloutSpecSchema>;
export type RolloutStep = RolloutSpec['steps'][number];
export type AnalysisSpec = RolloutSpec['analysis'];
export type { RoutingSpec } from '../activities/routers';
export type { MetricsSpec } from '../activities/metric-sources';
