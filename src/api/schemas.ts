/**
 * zod schemas of what the REST API answers, for the OpenAPI document (openapi.ts) only: the
 * responses are built as plain TS objects (src/workflows/status.ts: workflow code never imports
 * zod), so these describe them, and the type checks at the bottom keep the two identical: a
 * field added, removed, renamed, made optional or retyped in an interface and not here (or
 * the other way round) is a compile error naming the schema.
 *
 * The request side needs no schemas of its own: the document is generated from the very
 * schemas the routes validate with (the spec schema, and the query and body schemas of
 * rollouts.ts).
 */
import { z } from 'zod';
import type { TrafficRoute } from '../activities/types';
import type { VersionSummary } from '../analysis/metrics';
import type { Verdict } from '../analysis/judge';
import { rolloutSpecSchema } from '../spec';
import { OPERATOR_ACTIONS } from '../workflows/messages';
import { FINAL_PHASES } from '../workflows/status';
import type {
  Decision,
  DecisionPage,
  EarlierDecisions,
  MetricsOutage,
  OperatorEvent,
  ActivityRetry,
  Outcome,
  Phase,
  RolloutStatus,
  RolloutSummary,
  Weights,
} from '../workflows/status';
import { WAIT_REASONS, type StepDecision, type Waiting } from '../workflows/step-policy';
import type { ErrorBody, ErrorCode } from './errors';

const timestamp = (description: string) => z.iso.datetime().describe(description);
const count = (description: string) => z.number().int().min(0).describe(description);
/** A traffic share in percent (steps of 0.01). */
const percent = (description: string) => z.number().min(0).max(100).describe(description);

export const phaseSchema = z
  .enum(['progressing', 'paused', 'awaiting_approval', 'rolling_back', ...FINAL_PHASES])
  .describe('progressing, paused and awaiting_approval can take actions; rolling_back is on its way to rolled_back; the other four are final');
export const finalPhaseSchema = z.enum(FINAL_PHASES);
export const verdictSchema = z.enum(['pass', 'fail', 'inconclusive']);

export const modelVersionSchema = z.object({ version: z.string(), url: z.string().optional().describe('where the version serves, for routers that send traffic to URLs') });

export const weightsSchema = z
  .object({ baseline: percent('percent of traffic on the baseline'), candidate: percent('percent of traffic on the candidate') })
  .describe('the traffic split now; they add up to 100');

export const versionSummarySchema = z
  .object({
    requests: count('requests in the interval checked'),
    errors: count('of them, failed'),
    errorRate: z.number().min(0).max(1),
    latencyP50Ms: z.number().min(0).optional(),
    latencyP95Ms: z.number().min(0).optional(),
    latencyP99Ms: z.number().min(0).optional(),
    timeToFirstByteP95Ms: z.number().min(0).optional(),
    timeToFirstTokenP95Ms: z.number().min(0).optional(),
    interTokenLatencyP95Ms: z.number().min(0).optional(),
    outputTokensMean: z.number().min(0).optional().describe('LLM answers: mean output tokens per request'),
    truncatedRate: z.number().min(0).max(1).optional().describe('LLM answers cut off at max tokens (finish_reason "length")'),
    invalidOutputRate: z.number().min(0).max(1).optional().describe('answers to response_format requests whose content is not JSON'),
  })
  .describe("one version's metrics over a check's interval");

export const waitingSchema = z
  .object({
    reason: z.enum(WAIT_REASONS).describe('a stable code'),
    message: z.string().describe('one plain sentence'),
    estimate: z
      .object({
        candidateRequests: count('candidate requests still needed, if the traffic goes on as it has'),
        seconds: count('the same in seconds at the current candidate traffic (absent when it served none)').optional(),
      })
      .optional(),
  })
  .describe('what a step waits for');

export const decisionSchema = z
  .object({
    seq: z.number().int().min(1).describe('1-based number of the check in the rollout; the cursor for paging decisions (`before`)'),
    summary: z.string().optional().describe('the decision in plain words: what was seen and what happens next'),
    at: timestamp('when the check ran'),
    step: count('0-based index of the step checked'),
    weight: percent('the candidate weight during the check'),
    verdict: verdictSchema,
    reasons: z.array(z.string()),
    metrics: z.object({ baseline: versionSummarySchema, candidate: versionSummarySchema }),
    evidence: z.record(z.string(), z.unknown()).optional().describe("the judge's evidence (e-values, bounds...); its shape depends on the judge"),
    failedChecks: count('failed checks counted so far in this rollout, this one included'),
    then: z
      .object({ action: z.enum(['rollback', 'end', 'bake', 'extend', 'hold']), reason: z.string().optional() })
      .optional()
      .describe('what the step policy made of the check'),
    waiting: waitingSchema.optional(),
  })
  .describe('one metric check');

export const earlierDecisionsSchema = z
  .object({
    count: count('decisions older than those kept whole'),
    verdicts: z.object({ pass: count('passed'), fail: count('failed'), inconclusive: count('inconclusive') }),
    firstAt: timestamp('the oldest one').optional(),
    lastAt: timestamp('the newest one').optional(),
  })
  .describe('counts of the decisions the status no longer keeps whole (the Temporal history has them all)');

export const decisionPageSchema = z.object({
  total: count('decisions made in the whole rollout'),
  kept: count('decisions kept whole (the newest)'),
  nextBefore: z.number().int().min(1).optional().describe('pass as `before` to read the next older page; absent on the oldest page'),
  earlier: earlierDecisionsSchema,
});

export const metricsOutageSchema = z
  .object({
    since: timestamp('first failed read'),
    failedReads: count('failed reads in a row'),
    lastError: z.string(),
    rollbackAt: timestamp('when the rollout rolls back if the metrics are still unreadable (analysis.maxMetricsOutage)'),
  })
  .describe('while the metric source cannot be read: checks are inconclusive until rollbackAt');

export const activityRetrySchema = z
  .object({
    activity: z.string().describe('the activity, e.g. setTrafficWeights (restoring traffic while rolling back)'),
    attempt: z.number().int().min(2).describe('the attempt under way or next (2 and up)'),
    lastError: z.string().describe("the last attempt's failure"),
    nextAttemptAt: timestamp('when the next attempt is due').optional(),
  })
  .describe('an activity Temporal is retrying for the rollout');

export const operatorEventSchema = z
  .object({
    at: timestamp('when the rollout received it'),
    action: z.enum(OPERATOR_ACTIONS),
    via: z.enum(['update', 'signal']).describe('update: the REST API; signal: the temporal CLI or UI'),
    by: z.string().optional().describe('who: the API token\'s name ("anonymous" on an API without tokens), or "temporal" for a signal or update sent to Temporal without a `by`'),
    reason: z.string().optional(),
    applied: z.boolean().describe('false: it did not apply in the phase (signals only), see note'),
    note: z.string(),
  })
  .describe('an operator action as the rollout received it');

export const outcomeSchema = z.object({ result: finalPhaseSchema, reason: z.string(), at: timestamp('when the rollout ended') });

export const rolloutStatusSchema = z
  .object({
    id: z.string().describe('rollout-<target>'),
    target: z.string(),
    phase: phaseSchema,
    baseline: modelVersionSchema,
    candidate: modelVersionSchema,
    weights: weightsSchema,
    step: z.object({
      index: count('0-based index of the current step; equals total once every step is done'),
      total: count('steps in the spec'),
      weight: percent("the current step's weight"),
      bakeMs: count("the current step's bake"),
      bakedMs: z.number().min(0).describe('how much of the bake has elapsed (pauses excluded)'),
      holding: z.string().optional().describe('set while the step holds past its bake for want of evidence (readiness)'),
      waiting: waitingSchema.optional(),
    }),
    failedChecks: count('failed checks in the rollout'),
    decisions: z.array(decisionSchema).describe('the requested page of decisions, oldest first (by default every decision kept whole)'),
    decisionPage: decisionPageSchema,
    metricsOutage: metricsOutageSchema.optional(),
    events: z.array(operatorEventSchema).describe('operator actions received (the newest 50), applied or not'),
    startedAt: timestamp('when the rollout started'),
    startedBy: z.string().optional().describe('who started it: the API token\'s name ("anonymous" on an API without tokens), or "temporal" when started through Temporal directly'),
    updatedAt: timestamp('when its state last changed'),
    outcome: outcomeSchema.optional().describe('set once the phase is final'),
    links: z.object({ temporalUi: z.url().describe("the workflow's history in the Temporal UI") }).optional(),
    stale: z.string().optional().describe('set when no worker answered and the status was rebuilt from what Temporal recorded; says why'),
    retrying: z
      .array(activityRetrySchema)
      .optional()
      .describe('set while Temporal retries a failed activity of the rollout, e.g. restoring traffic while the router is down: the rollout keeps trying until it succeeds'),
    spec: rolloutSpecSchema.describe('the spec as the API validated it: defaults filled in, durations in milliseconds'),
  })
  .describe("a rollout's status");

export const rolloutSummarySchema = z
  .object({
    id: z.string(),
    runId: z.string().describe('the Temporal run'),
    target: z.string(),
    phase: z.union([phaseSchema, z.literal('unknown')]),
    canaryWeight: z.number().min(0).max(100).optional().describe('the candidate weight last recorded'),
    startedAt: timestamp('when the run started').optional(),
    closedAt: timestamp('when the run closed').optional(),
    links: z.object({ temporalUi: z.url() }),
  })
  .describe('a line of the rollout list');

export const rolloutListSchema = z.object({ rollouts: z.array(rolloutSummarySchema).describe('newest first') });

/** errors.ts' ErrorCode, as values (checked against it below). */
export const ERROR_CODES = [
  'invalid_spec',
  'invalid_json',
  'invalid_request',
  'unsupported_media_type',
  'payload_too_large',
  'headers_too_large',
  'expectation_failed',
  'method_not_allowed',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'baseline_mismatch',
  'idempotency_key_reused',
  'not_applicable',
  'timeout',
  'workflow_task_failing',
  'temporal_unavailable',
  'router_unavailable',
  'internal',
] as const;

export const issueSchema = z.object({
  path: z.string().min(1).describe('the field, dotted (steps.1.weight), `id`, a query parameter, or (root)'),
  message: z.string(),
});

/** A target's route as the traffic router has it. */
export const trafficRouteSchema = z
  .object({
    target: z.string(),
    versions: z.array(z.object({ version: z.string(), weight: percent('percent of the traffic'), url: z.string().optional().describe('where the router sends it, as the router names it') })),
    routerState: z.record(z.string(), z.string()).optional().describe("router-private details (the embedded gateway's hashing salt)"),
    match: z
      .object({ header: z.string(), values: z.array(z.string()), others: z.string().describe('the version requests without a matching header get') })
      .optional()
      .describe('only requests with one of these header values are split by the weights'),
    mirror: z
      .object({ from: z.string(), to: z.string(), percent: z.number(), evaluator: z.object({ url: z.string(), sample: z.number() }).optional() })
      .optional()
      .describe("a shadow step: copies of percent% of from's requests go to to, whose answers nobody sees"),
  })
  .describe("a target's route as the traffic router has it");

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string().min(1).describe('what is wrong and what to do, in one line'),
      issues: z.array(issueSchema).min(1).optional().describe('one per problem (at most 50), naming the field'),
      live: trafficRouteSchema.optional().describe('baseline_mismatch: what the target serves now'),
    }),
  })
  .describe('every error, 4xx and 5xx');

export const healthSchema = z.object({
  ok: z.literal(true),
  temporal: z.object({ ok: z.literal(true), namespace: z.string() }),
});

export const healthUnavailableSchema = z.object({
  ok: z.literal(false),
  temporal: z.object({ ok: z.literal(false), namespace: z.string() }),
  error: z.object({ code: z.literal('temporal_unavailable'), message: z.string() }),
});

// ---- the schemas cannot drift from the interfaces ----

/** True only when A and B are identical types (optional vs required, unions, nested fields included). */
export type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** T with every intersection merged into one object type, at every depth (`A & B` and zod's merged object are the same type but not identical). */
type Normalize<T> = T extends readonly (infer U)[] ? Normalize<U>[] : T extends object ? { [K in keyof T]: Normalize<T[K]> } : T;
/** A and B describe the same values: identical once normalized. */
export type Same<A, B> = Equals<Normalize<A>, Normalize<B>>;
type Check<T extends true> = T;

export type SchemaChecks = [
  Check<Same<z.output<typeof phaseSchema>, Phase>>,
  Check<Same<z.output<typeof verdictSchema>, Verdict>>,
  Check<Same<z.output<typeof weightsSchema>, Weights>>,
  Check<Same<z.output<typeof versionSummarySchema>, VersionSummary>>,
  Check<Same<z.output<typeof waitingSchema>, Waiting>>,
  Check<Same<NonNullable<z.output<typeof decisionSchema>['then']>['action'], StepDecision['kind']>>,
  Check<Same<z.output<typeof decisionSchema>, Decision>>,
  Check<Same<z.output<typeof earlierDecisionsSchema>, EarlierDecisions>>,
  Check<Same<z.output<typeof decisionPageSchema>, DecisionPage>>,
  Check<Same<z.output<typeof metricsOutageSchema>, MetricsOutage>>,
  Check<Same<z.output<typeof activityRetrySchema>, ActivityRetry>>,
  Check<Same<z.output<typeof operatorEventSchema>, OperatorEvent>>,
  Check<Same<z.output<typeof outcomeSchema>, Outcome>>,
  Check<Same<z.output<typeof rolloutStatusSchema>, RolloutStatus>>,
  Check<Same<z.output<typeof rolloutSummarySchema>, RolloutSummary>>,
  Check<Same<z.output<typeof rolloutListSchema>, { rollouts: RolloutSummary[] }>>,
  Check<Same<(typeof ERROR_CODES)[number], ErrorCode>>,
  Check<Same<z.output<typeof trafficRouteSchema>, TrafficRoute>>,
  Check<Same<z.output<typeof errorBodySchema>, ErrorBody>>,
];
