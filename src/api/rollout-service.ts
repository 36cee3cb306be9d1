/**
 * What the REST API asks of Temporal: start a rollout, list them, read one, send it an operator
 * update. HTTP-free; failures come out as ApiErrors (404, 409...) or Temporal errors that
 * errors.ts maps.
 */
import {
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import {
  ApplicationFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  defaultPayloadConverter,
  type TypedSearchAttributes,
} from '@temporalio/common';
import type { RoutingSpec, TrafficRoute, TrafficRouter } from '../activities';
import type { Config } from '../config';
import { DEFAULT_GATE_METRICS, GATE_METRIC_NAMES, GATE_METRICS } from '../analysis/gate-metrics';
import { resolveOptions } from '../analysis/sequential';
import { THRESHOLD_DEFAULTS } from '../analysis/threshold-judge';
import { formatDuration, resolveBaseline, type RolloutRequest, type RolloutSpec } from '../spec';
import { NOT_APPLICABLE, OPERATOR_UPDATES_WITH_REQUEST, ROLLOUT_WORKFLOW, rolloutWorkflowId, statusQuery, type OperatorRequest } from '../workflows/messages';
import type { RolloutInput, rollout } from '../workflows/rollout';
import { CanaryWeight, RolloutPhase, RolloutTarget } from '../workflows/search-attributes';
import { newRolloutState, statusOf } from '../workflows/state';
import { FINAL_PHASES, isFinal, withDecisionPage, type ActivityRetry, type DecisionPageRequest, type Phase, type RolloutStatus, type RolloutSummary } from '../workflows/status';
import { ApiError, invalidInput, isDeadlineExceeded, workflowTaskFailing } from './errors';

/** A start's Idempotency-Key and a fingerprint of its body: kept in the run's memo. */
export interface Idempotency {
  key: string;
  /** sha256 of the request body (canonical JSON): the same key with another body is refused. */
  request: string;
}

export interface StartOptions {
  /** Who starts it (the API token's name). */
  by?: string;
  idempotency?: Idempotency;
}

export interface StartResult {
  status: RolloutStatus;
  /** The Idempotency-Key named a rollout already started: this is that one, nothing new was started. */
  replayed: boolean;
}

const IDEMPOTENCY_MEMO = 'idempotency';
/** How many of a target's runs, newest first, a key is looked up in. */
const IDEMPOTENCY_LOOKBACK_RUNS = 20;

function idempotencyOf(memo: Record<string, unknown> | undefined): Idempotency | undefined {
  const value = memo?.[IDEMPOTENCY_MEMO] as Partial<Idempotency> | undefined;
  return typeof value?.key === 'string' && typeof value.request === 'string' ? { key: value.key, request: value.request } : undefined;
}

export const PHASES: readonly Phase[] = ['progressing', 'paused', 'awaiting_approval', 'rolling_back', ...FINAL_PHASES];

export const ACTIONS = ['pause', 'resume', 'abort', 'promote', 'approve'] as const;
export type Action = (typeof ACTIONS)[number];

export interface ListFilter {
  target?: string;
  phase?: Phase;
  limit?: number;
}

export interface RolloutServiceOptions {
  client: Client;
  config: Pick<Config, 'namespace' | 'taskQueue' | 'temporalUiUrl'>;
  /** The traffic router whose live routes a start is checked against (the workers' router for the spec's routing). */
  routerFor: (routing: RoutingSpec) => TrafficRouter;
  /** How long a status query may take before GET falls back to what visibility knows. */
  queryTimeoutMs?: number;
  /** How long an operator update may wait for the worker before the API answers 504. */
  updateTimeoutMs?: number;
}

export class RolloutService {
  private readonly client: Client;
  private readonly config: RolloutServiceOptions['config'];
  private readonly routerFor: (routing: RoutingSpec) => TrafficRouter;
  private readonly queryTimeoutMs: number;
  private readonly updateTimeoutMs: number;

  constructor(options: RolloutServiceOptions) {
    this.client = options.client;
    this.config = options.config;
    this.routerFor = options.routerFor;
    this.queryTimeoutMs = options.queryTimeoutMs ?? 5_000;
    this.updateTimeoutMs = options.updateTimeoutMs ?? 20_000;
  }

  temporalUiLink(workflowId: string, runId: string): string {
    const { temporalUiUrl, namespace } = this.config;
    return `${temporalUiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
  }

  /**
   * Starts the rollout's workflow; the status returned is the initial one, built locally. First,
   * what the target serves now is read from the router: a baseline given must be what serves it
   * (409 `baseline_mismatch` otherwise), one left out is taken from it (400 when it cannot be);
   * a router that cannot be read is a 503. Nothing is started or changed unless all is well.
   */
  async start(request: RolloutRequest, options: StartOptions = {}): Promise<StartResult> {
    const { by, idempotency } = options;
    const workflowId = rolloutWorkflowId(request.target);
    if (idempotency) {
      // A retried start (its first answer lost) gets the rollout the first one started, before
      // anything else is checked: by now the target serves that rollout's split.
      const earlier = await this.startedWith(workflowId, idempotency);
      if (earlier) return { status: await this.get(workflowId, earlier.runId), replayed: true };
    }
    const live = await this.liveRoute(request.routing, request.target);
    const resolved = resolveBaseline(request, live);
    if (!resolved.ok) {
      // A rollout in progress is why the target serves a split: say that instead.
      await this.refuseIfRunning(workflowId, request.target);
      if ('issues' in resolved) throw invalidInput('invalid_spec', 'invalid rollout spec', resolved.issues);
      throw new ApiError(
        409,
        'baseline_mismatch',
        `${resolved.mismatch}: the rollout was not started and nothing changed; give the baseline that serves the target, ` +
          'or leave baseline out to take it from the live route',
        undefined,
        { live: resolved.live },
      );
    }
    const { spec } = resolved;
    const startedAt = new Date().toISOString();
    let runId: string;
    try {
      const handle = await this.client.workflow.start<typeof rollout>(ROLLOUT_WORKFLOW, {
        args: [{ spec, ...(by ? { startedBy: by } : {}) } satisfies RolloutInput],
        workflowId,
        taskQueue: this.config.taskQueue,
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: [
          { key: RolloutTarget, value: spec.target },
          { key: RolloutPhase, value: 'progressing' },
          { key: CanaryWeight, value: 0 },
        ],
        staticSummary: summarizeSpec(spec),
        staticDetails: detailSpec(spec),
        ...(idempotency ? { memo: { [IDEMPOTENCY_MEMO]: idempotency } } : {}),
      });
      runId = handle.firstExecutionRunId;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        // The same start sent twice at once: the one that lost the race answers with the winner's rollout.
        const earlier = idempotency ? await this.startedWith(workflowId, idempotency) : undefined;
        if (earlier) return { status: await this.get(workflowId, earlier.runId), replayed: true };
        const running = await this.client.workflow
          .getHandle(workflowId)
          .describe()
          .then((d) => d.runId)
          .catch(() => 'unknown');
        throw inProgress(spec.target, workflowId, running);
      }
      throw err;
    }
    const status = statusOf(newRolloutState(workflowId, spec, null, startedAt, by));
    return { status: { ...status, links: { temporalUi: this.temporalUiLink(workflowId, runId) } }, replayed: false };
  }

  /**
   * The target's run started with this Idempotency-Key, if any: the latest run (read from the
   * workflow itself, so a start just made is seen at once), else one of the target's recent runs
   * (visibility). The key sent with a different request is a 422: it cannot mean a retry.
   */
  private async startedWith(workflowId: string, idempotency: Idempotency): Promise<{ runId: string } | undefined> {
    const latest = await this.client.workflow
      .getHandle(workflowId)
      .describe()
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      });
    if (!latest) return undefined;
    const runs: Array<{ runId: string; memo?: Record<string, unknown> }> = [latest];
    if (idempotencyOf(latest.memo)?.key !== idempotency.key) {
      const query = `WorkflowId = '${workflowId}' AND WorkflowType = '${ROLLOUT_WORKFLOW}'`;
      for await (const info of this.client.workflow.list({ query, pageSize: IDEMPOTENCY_LOOKBACK_RUNS })) {
        runs.push(info);
        if (runs.length > IDEMPOTENCY_LOOKBACK_RUNS) break;
      }
    }
    const match = runs.find((run) => idempotencyOf(run.memo)?.key === idempotency.key);
    if (!match) return undefined;
    if (idempotencyOf(match.memo)?.request !== idempotency.request) {
      throw new ApiError(
        422,
        'idempotency_key_reused',
        `Idempotency-Key ${JSON.stringify(idempotency.key)} was sent with a different rollout spec (run ${match.runId}); nothing was started: ` +
          'a retry must send the same body, a new rollout a new key',
      );
    }
    return { runId: match.runId };
  }

  /** Every rollout run, running and closed, newest first (continued-as-new runs are folded). */
  async list(filter: ListFilter = {}): Promise<RolloutSummary[]> {
    const limit = filter.limit ?? 100;
    const clauses = [`WorkflowType = '${ROLLOUT_WORKFLOW}'`, `ExecutionStatus != 'ContinuedAsNew'`];
    // Both values are validated against strict patterns by the route before they get here.
    if (filter.target) clauses.push(`RolloutTarget = '${filter.target}'`);
    if (filter.phase) clauses.push(`RolloutPhase = '${filter.phase}'`);
    const rollouts: RolloutSummary[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND '), pageSize: Math.min(limit, 100) })) {
      rollouts.push(this.summaryOf(info));
      if (rollouts.length >= limit) break;
    }
    return rollouts.sort((a, b) => (b.startedAt ?? '').localeCompare(a.startedAt ?? ''));
  }

  /** The rollout's current status: from the workflow while it runs, from its end once closed. */
  async get(workflowId: string, runId?: string, page: DecisionPageRequest = {}): Promise<RolloutStatus> {
    // A running rollout pages its own answer; a closed one's result is paged here (and paging a page again changes nothing).
    return withDecisionPage(await this.currentStatus(workflowId, runId, page), page);
  }

  private async currentStatus(workflowId: string, runId: string | undefined, page: DecisionPageRequest): Promise<RolloutStatus> {
    let description = await this.describe(workflowId, runId);
    if (description.status.name === 'RUNNING') {
      const handle = this.client.workflow.getHandle<typeof rollout>(workflowId, description.runId);
      try {
        const status = await this.client.connection.withDeadline(Date.now() + this.queryTimeoutMs, () =>
          handle.query(statusQuery, page),
        );
        const retrying = retriesOf(description);
        return this.withLinks(retrying.length > 0 ? { ...status, retrying } : status, description.runId);
      } catch (err) {
        // Closed in the meantime, or no worker answering: say what visibility knows.
        description = await this.describe(workflowId, description.runId);
        if (description.status.name === 'RUNNING') {
          return { ...(await this.statusFromDescription(description)), stale: this.staleReason(description, err) };
        }
      }
    }
    return this.closedStatus(description);
  }

  /** Sends an operator update (with who: `by`) to the rollout's current run; returns the status it answers. */
  async act(action: Action, workflowId: string, body: OperatorRequest = {}): Promise<RolloutStatus> {
    const description = await this.describe(workflowId);
    if (description.status.name !== 'RUNNING') throw await this.notApplicableAfterClose(action, description);
    const handle = this.client.workflow.getHandle<typeof rollout>(workflowId, description.runId);
    try {
      // Every update carries who (the history keeps it with the update); abort, also why.
      const request: OperatorRequest = { ...(body.by ? { by: body.by } : {}), ...(action === 'abort' && body.reason !== undefined ? { reason: body.reason } : {}) };
      const status = await this.client.connection.withDeadline(Date.now() + this.updateTimeoutMs, () =>
        handle.executeUpdate(OPERATOR_UPDATES_WITH_REQUEST[action], { args: [request] }),
      );
      return this.withLinks(status, description.runId);
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === NOT_APPLICABLE) {
        throw new ApiError(409, 'not_applicable', cause.message);
      }
      if (err instanceof WorkflowNotFoundError || err instanceof WorkflowUpdateFailedError) {
        // The run closed between describe and update (or while the update was in flight).
        const now = await this.describe(workflowId, description.runId);
        if (now.status.name !== 'RUNNING') throw await this.notApplicableAfterClose(action, now);
      }
      if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
        // Temporal refuses updates only from the third failed task attempt on; before, they wait.
        const attempt = (await this.describe(workflowId, description.runId)).raw.pendingWorkflowTask?.attempt ?? 0;
        if (attempt > 1) throw workflowTaskFailing(`the ${action} waited ${this.updateTimeoutMs} ms; the workflow task is on attempt ${attempt}`);
      }
      throw err;
    }
  }

  // ---- helpers ----

  /** What the target serves now; a router that cannot say is a 503 (a rollout never starts blind). */
  private async liveRoute(routing: RoutingSpec, target: string): Promise<TrafficRoute | undefined> {
    try {
      return await this.routerFor(routing).readRoute(target);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new ApiError(
        503,
        'router_unavailable',
        `the traffic router could not say what target ${target} serves now (${why}); the rollout was not started and nothing changed: try again once the router answers`,
      );
    }
  }

  /** 409 `conflict` when the target's rollout is running; best effort (any other answer: nothing to say). */
  private async refuseIfRunning(workflowId: string, target: string): Promise<void> {
    const description = await this.client.connection
      .withDeadline(Date.now() + this.queryTimeoutMs, () => this.client.workflow.getHandle(workflowId).describe())
      .catch(() => undefined);
    if (description?.status.name === 'RUNNING' && description.type === ROLLOUT_WORKFLOW) throw inProgress(target, workflowId, description.runId);
  }

  private async describe(workflowId: string, runId?: string): Promise<WorkflowExecutionDescription> {
    try {
      const description = await this.client.workflow.getHandle(workflowId, runId).describe();
      if (description.type !== ROLLOUT_WORKFLOW) throw notFound(workflowId);
      return description;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(workflowId);
      throw err;
    }
  }

  /** Why the status comes from visibility: a failing workflow task is told apart from a silent worker. */
  private staleReason(description: WorkflowExecutionDescription, err: unknown): string {
    const attempt = description.raw.pendingWorkflowTask?.attempt ?? 0;
    if (attempt > 1) {
      return (
        `the rollout's workflow task is failing or timing out on the worker (attempt ${attempt}), so it cannot answer: ` +
        'see its history in the Temporal UI, then fix or roll back the worker, or terminate the rollout'
      );
    }
    if (isDeadlineExceeded(err) || isDeadlineExceeded((err as { cause?: unknown }).cause)) {
      return `no worker answered the status query within ${this.queryTimeoutMs} ms`;
    }
    return `the status query failed: ${(err as Error).message}`;
  }

  private async notApplicableAfterClose(action: Action, description: WorkflowExecutionDescription): Promise<ApiError> {
    const status = await this.closedStatus(description);
    const why = status.outcome?.reason ? ` (${status.outcome.reason})` : '';
    return new ApiError(409, 'not_applicable', `rollout is ${status.phase}; cannot ${action} a rollout that has ended${why}`);
  }

  /** A closed run: its result when it completed, else what its search attributes last said. */
  private async closedStatus(description: WorkflowExecutionDescription): Promise<RolloutStatus> {
    // A run that continued as new is not the rollout's end: the chain's latest run is.
    if (description.status.name === 'CONTINUED_AS_NEW') return this.get(description.workflowId);
    const handle = this.client.workflow.getHandle<typeof rollout>(description.workflowId, description.runId, { followRuns: false });
    if (description.status.name === 'COMPLETED') {
      return this.withLinks(await handle.result(), description.runId);
    }
    let failure: string | undefined;
    try {
      await handle.result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) failure = err.cause?.message || err.message;
    }
    return this.statusFromDescription(description, failure);
  }

  /**
   * A status from visibility alone (the run is terminated, timed out, failed, or its worker is
   * not answering): the spec from the run's input, phase and weight from search attributes.
   */
  private async statusFromDescription(description: WorkflowExecutionDescription, failure?: string): Promise<RolloutStatus> {
    const input = await this.inputOf(description);
    const spec = input.spec;
    const attributes = description.typedSearchAttributes;
    const lastPhase = phaseOf(attributes);
    const weight = attributes.get(CanaryWeight) ?? 0;
    const state = newRolloutState(description.workflowId, spec, null, description.startTime.toISOString(), input.startedBy);
    state.weights = { baseline: 100 - weight, candidate: weight };
    const reached = spec.steps.findIndex((s) => s.weight >= weight);
    state.stepIndex = weight > 0 && reached >= 0 ? reached : 0;
    state.updatedAt = (description.closeTime ?? new Date()).toISOString();
    if (description.status.name === 'RUNNING') {
      state.phase = lastPhase ?? 'progressing';
    } else if (lastPhase && isFinal(lastPhase)) {
      state.phase = lastPhase;
      state.outcome = { result: lastPhase, reason: failure ?? `workflow ${statusWord(description)}`, at: state.updatedAt };
    } else {
      // Closed without the workflow concluding: no compensation ran.
      state.phase = 'failed';
      const how = failure ? `workflow ${statusWord(description)}: ${failure}` : `workflow ${statusWord(description)}`;
      state.outcome = {
        result: 'failed',
        reason: `${how} while ${lastPhase ?? 'running'}; compensation did not run, the candidate may still receive ${weight}% of traffic`,
        at: state.updatedAt,
      };
    }
    return this.withLinks(statusOf(state), description.runId);
  }

  /** What the run was started with (spec, startedBy): the first event's input. */
  private async inputOf(description: WorkflowExecutionDescription): Promise<RolloutInput> {
    const response = await this.client.workflowService.getWorkflowExecutionHistory({
      namespace: this.config.namespace,
      execution: { workflowId: description.workflowId, runId: description.runId },
      maximumPageSize: 1,
    });
    const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) throw new Error(`rollout ${description.workflowId} run ${description.runId} has no input`);
    return defaultPayloadConverter.fromPayload<RolloutInput>(payload);
  }

  private summaryOf(info: WorkflowExecutionInfo): RolloutSummary {
    const attributes = info.typedSearchAttributes;
    const lastPhase = phaseOf(attributes);
    let phase: RolloutSummary['phase'] = lastPhase ?? 'unknown';
    if (info.status.name !== 'RUNNING' && info.status.name !== 'COMPLETED' && !(lastPhase && isFinal(lastPhase))) {
      phase = 'failed'; // terminated or timed out before concluding: see GET /v1/rollouts/:id
    }
    const summary: RolloutSummary = {
      id: info.workflowId,
      runId: info.runId,
      target: attributes.get(RolloutTarget) ?? info.workflowId.replace(/^rollout-/, ''),
      phase,
      startedAt: info.startTime.toISOString(),
      links: { temporalUi: this.temporalUiLink(info.workflowId, info.runId) },
    };
    const weight = attributes.get(CanaryWeight);
    if (weight !== undefined) summary.canaryWeight = weight;
    if (info.closeTime) summary.closedAt = info.closeTime.toISOString();
    return summary;
  }

  private withLinks(status: RolloutStatus, runId: string): RolloutStatus {
    return { ...status, links: { temporalUi: this.temporalUiLink(status.id, runId) } };
  }
}

export function isPhase(value: string): value is Phase {
  return (PHASES as readonly string[]).includes(value);
}

function phaseOf(attributes: TypedSearchAttributes): Phase | undefined {
  const value = attributes.get(RolloutPhase);
  return value !== undefined && isPhase(value) ? value : undefined;
}

/** The rollout's activities that failed and are being retried (Temporal keeps the last failure). */
function retriesOf(description: WorkflowExecutionDescription): ActivityRetry[] {
  return (description.raw.pendingActivities ?? [])
    .filter((a) => (a.attempt ?? 1) > 1 && a.lastFailure)
    .map((a) => ({
      activity: a.activityType?.name ?? 'activity',
      attempt: a.attempt ?? 2,
      lastError: a.lastFailure?.cause?.message ? `${a.lastFailure.message}: ${a.lastFailure.cause.message}` : (a.lastFailure?.message ?? 'unknown'),
      ...(a.nextAttemptScheduleTime?.seconds != null ? { nextAttemptAt: new Date(Number(a.nextAttemptScheduleTime.seconds) * 1000).toISOString() } : {}),
    }));
}

function statusWord(description: WorkflowExecutionDescription): string {
  return description.status.name.toLowerCase().replace(/_/g, ' ');
}

function inProgress(target: string, workflowId: string, runId: string): ApiError {
  return new ApiError(409, 'conflict', `target ${target} already has a rollout in progress: ${workflowId} (run ${runId})`);
}

function notFound(workflowId: string): ApiError {
  return new ApiError(404, 'not_found', `no rollout with id ${workflowId}`);
}

/** One line for the Temporal UI's workflow list, e.g. "chat: v1 → v2 in 3 steps (10%, 50%, 100%)". */
export function summarizeSpec(spec: RolloutSpec): string {
  const n = spec.steps.length;
  const weights = spec.steps.map((s) => `${s.weight}%`).join(', ');
  return `${spec.target}: ${spec.baseline.version} → ${spec.candidate.version} in ${n} step${n === 1 ? '' : 's'} (${weights})`;
}

/** The spec in Temporal markdown, for the workflow's details panel. */
function detailSpec(spec: RolloutSpec): string {
  const { analysis } = spec;
  const steps = spec.steps.map((s, i) => {
    const what = s.shadow !== undefined ? `shadow: ${s.shadow}% of the baseline's requests mirrored, users see none of it` : `${s.weight}%`;
    const match = s.match ? ` of requests with ${s.match.header}: ${s.match.values.join(' | ')} (the rest stay on the baseline)` : '';
    return `${i + 1}. ${what}${match}${s.bake ? `, bake ${formatDuration(s.bake)}` : ''}${s.gate === 'manual' ? ', manual approval' : ''}`;
  });
  return [
    `**baseline** ${spec.baseline.version} (${spec.baseline.url})`,
    `**candidate** ${spec.candidate.version} (${spec.candidate.url})`,
    '',
    ...steps,
    '',
    `checks every ${formatDuration(analysis.interval)}, at least ${analysis.minRequests} requests; ${detailJudge(analysis)}`,
  ].join('\n');
}

function detailJudge(analysis: RolloutSpec['analysis']): string {
  if (analysis.judge === 'threshold') {
    const t = { ...THRESHOLD_DEFAULTS, ...analysis.thresholds };
    return `threshold judge: ${analysis.failureLimit} failed check(s) roll back; error rate ≤ ${t.maxErrorRate}, p95 ≤ ${t.maxLatencyP95Ms} ms`;
  }
  const o = resolveOptions(analysis.sequential);
  const slo = [
    analysis.thresholds?.maxErrorRate !== undefined ? `error rate ≤ ${analysis.thresholds.maxErrorRate}` : '',
    analysis.thresholds?.maxLatencyP95Ms !== undefined ? `p95 ≤ ${analysis.thresholds.maxLatencyP95Ms} ms` : '',
  ].filter(Boolean);
  // The gate metrics in plain words, each with its tolerance (the table, src/analysis/gate-metrics.ts).
  const listed = analysis.metrics ? GATE_METRIC_NAMES.filter((n) => analysis.metrics![n]) : DEFAULT_GATE_METRICS;
  const gates = listed.map((n) => `${GATE_METRICS[n].label} ${analysis.metrics?.[n]?.tolerance ?? o.tolerances[n]}×`).join(', ');
  return (
    `sequential judge vs the baseline: α = ${o.alpha} for the whole rollout; gates (tolerance candidate/baseline): ${gates}; the first failing check rolls back; ` +
    (analysis.readiness === 'advisory' ? 'steps end after their bake (readiness advisory)' : 'beyond 25% once every metric is bounded') +
    (slo.length > 0 ? `; SLO guardrails ${slo.join(', ')}` : '')
  );
}
