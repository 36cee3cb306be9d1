/**
 * The rollout workflow: walks a candidate model version through traffic steps, checks its
 * metrics against the baseline's as it bakes, and undoes everything it changed when the judge
 * fails it, an operator aborts, or something breaks.
 *
 * Read top to bottom: state and message handlers, then the story (attach the candidate, each
 * step: set weights → bake with checks → gate), then its endings (promotion, compensation,
 * continue-as-new). Deterministic: no I/O (activities do that) and only the workflow clock.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type SignalDefinition,
} from '@temporalio/workflow';
import type { UpdateDefinition } from '@temporalio/common';
import type { MetricReading, MetricWindow, RolloutActivities } from '../activities';
import { judgeFor } from '../analysis/judges';
import { emptyVersionMetrics, sampleBetween, summarize, type MetricsSample } from '../analysis/metrics';
import { baselineMismatch, describeServing } from '../spec/baseline';
import type { RolloutSpec, RolloutStep } from '../spec/schema';
import {
  NOT_APPLICABLE,
  OPERATOR_ACTIONS,
  OPERATOR_SIGNALS,
  OPERATOR_UPDATES,
  TEMPORAL_ACTOR,
  statusQuery,
  type OperatorAction,
} from './messages';
import { CanaryWeight, RolloutPhase, RolloutTarget, canaryWeightAttribute } from './search-attributes';
import { newRolloutState, recordDecision, recordEvent, routeAt, routeForStep, routeToRestore, statusOf, upgradeState, weightsOf, type RolloutState } from './state';
import { reasonsText, type Decision, type DecisionPageRequest, type FinalPhase, type Phase, type RolloutStatus } from './status';
import type { RolloutEvent, TrafficRoute } from '../activities/types';
import { decisionSummary } from './summary';
import { decideAfterCheck, decideOnMetricsOutage, type CheckCounters, type CheckOutcome, type StepContext, type StepDecision, type Waiting } from './step-policy';

export interface RolloutInput {
  spec: RolloutSpec;
  /** Present when this run continues an earlier one (continue-as-new). */
  state?: RolloutState;
  /** Continue-as-new once history reaches this many events, even unprompted (tests use it). */
  historyLimit?: number;
  /** Who started it (the API: the token's name); absent: "temporal" (started through Temporal directly). */
  startedBy?: string;
}

/** Reads and changes of traffic: bounded, so a router that stays down fails the rollout (and restores). */
const { setTrafficWeights, readTrafficRoute } = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '2m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s' },
});

/** Undoing changes must not give up early: traffic has to get back to the baseline. */
const compensation = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '15m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
});

/** Notifications are best effort: a few tries, never holding up the rollout. */
const { notify } = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
});

const DEFAULT_HISTORY_LIMIT = 20_000;

type StepsOutcome =
  | { kind: 'completed' }
  | { kind: 'promote' }
  | { kind: 'rollback'; reason: string }
  | { kind: 'continue-as-new' };

export async function rollout(input: RolloutInput): Promise<RolloutStatus> {
  const judge = judgeFor(input.spec.analysis);
  const state: RolloutState = input.state
    ? upgradeState(input.state)
    : newRolloutState(workflowInfo().workflowId, input.spec, judge.initialState(), workflowInfo().startTime.toISOString(), actorOf(input.startedBy));
  const { spec } = state;
  /**
   * Metric reads retry within one interval at most: an outage then shows as inconclusive checks
   * (the step holds) and, past analysis.maxMetricsOutage, rolls back; it never fails the rollout.
   */
  const { collectMetrics } = proxyActivities<RolloutActivities>({
    startToCloseTimeout: '15s',
    scheduleToCloseTimeout: Math.max(5_000, Math.min(spec.analysis.interval, 120_000)),
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s' },
  });
  const pendingNotifications: Promise<unknown>[] = [];
  // Created before any handler can run, so an abort always has a scope to cancel.
  const stepsScope = new CancellationScope();

  // ---- Messages: what operators can ask, and when it applies ----

  setHandler(statusQuery, (page?: DecisionPageRequest) => statusOf(state, page));

  for (const action of OPERATOR_ACTIONS) {
    const update = OPERATOR_UPDATES[action] as UpdateDefinition<RolloutStatus, [unknown]>;
    setHandler(update, (request: unknown) => operate(action, 'update', request), { validator: (_request: unknown) => requirePhase(action) });
    setHandler(OPERATOR_SIGNALS[action] as SignalDefinition<[unknown]>, (request: unknown) => void operate(action, 'signal', request));
  }

  // ---- The story ----

  publishSearchAttributes();
  if (state.runs === 1) {
    announce('phase', `rollout of ${spec.candidate.version} over ${spec.baseline.version} started by ${state.startedBy ?? TEMPORAL_ACTOR}`, { action: 'start', by: state.startedBy ?? TEMPORAL_ACTOR });
  }

  let outcome: StepsOutcome;
  try {
    outcome = await stepsScope.run(progressThroughSteps);
  } catch (err) {
    await endWithCompensation(...failureEnding(err));
    return finish();
  }

  switch (outcome.kind) {
    case 'continue-as-new':
      await condition(allHandlersFinished);
      await Promise.allSettled(pendingNotifications);
      state.runs += 1;
      return continueAsNew<typeof rollout>({ spec, state, historyLimit: input.historyLimit });
    case 'rollback':
      await endWithCompensation('rolled_back', outcome.reason);
      return finish();
    case 'completed':
    case 'promote':
      await promoteCandidate(
        outcome.kind === 'promote' ? `promoted by ${state.requested.promotedBy ?? 'operator'}` : 'every step passed',
        outcome.kind === 'promote' ? { action: 'promote', by: state.requested.promotedBy ?? TEMPORAL_ACTOR } : undefined,
      );
      return finish();
  }

  /** Attach the candidate, then each step: set weights → bake with checks → gate. */
  async function progressThroughSteps(): Promise<StepsOutcome> {
    if (state.stepIndex === 0 && state.stage === 'apply' && state.undos.length === 0) await attachCandidate();
    while (state.stepIndex < spec.steps.length) {
      if (state.requested.promote) return { kind: 'promote' };
      const step = spec.steps[state.stepIndex]!;
      if (state.stage === 'apply') {
        await applyRoute(routeForStep(spec, step));
        state.stage = 'bake';
        state.bakedMs = 0;
        state.sinceCheckMs = 0;
        state.stepChecks = 0;
        state.stepExtensions = 0;
        delete state.holding;
        delete state.waiting;
      }
      if (state.stage === 'bake') {
        const baked = await bake(step);
        if (baked) return baked;
        state.stage = 'gate';
      }
      if (step.gate === 'manual') {
        await awaitApproval();
        if (state.requested.promote) return { kind: 'promote' };
      }
      state.stepIndex += 1;
      state.stage = 'apply';
      touch();
    }
    return { kind: 'completed' };
  }

  /**
   * Captures what serves the target now (compensation ends by restoring exactly that), refusing
   * to go on if it is no longer the spec's baseline; then registers the candidate with the router
   * at 0%, and reads the counters the first check will be measured from. Each undo is registered
   * before its change: a change whose activity timed out may still have happened, and undoing it
   * is harmless either way.
   */
  async function attachCandidate(): Promise<void> {
    const live = await readLiveRoute();
    const changed = baselineMismatch(spec.baseline, live);
    if (changed) {
      throw ApplicationFailure.nonRetryable(`the live route changed after the rollout was accepted: ${changed}; nothing was changed`, 'BaselineMismatch');
    }
    state.routeBefore = live ?? null;
    const detach = live ? `detach candidate ${spec.candidate.version}, restoring the route before the rollout (${describeServing(live)})` : `detach candidate ${spec.candidate.version}`;
    state.undos.push({ description: detach, route: routeToRestore(state) });
    state.undos.push({ description: `restore 100% to baseline ${spec.baseline.version}`, route: routeAt(spec, 0) });
    await applyRoute(routeAt(spec, 0));
    const window = { startMs: workflowClockMs(), endMs: workflowClockMs() };
    const reading = await readMetrics(window);
    state.lastReadAtMs = window.endMs;
    if (!('failed' in reading) && reading.kind === 'cumulative') state.lastReading = reading.sample;
  }

  /**
   * What serves the target now. Only a read, so an abort does not cut it short: the rollout must
   * not end while the read's result is arriving (Temporal would refuse that workflow task, and
   * the abort's update with it). Once it is in, an abort ends the rollout before anything changed.
   */
  async function readLiveRoute(): Promise<TrafficRoute | undefined> {
    const read = CancellationScope.nonCancellable(() => readTrafficRoute({ routing: spec.routing, target: spec.target }));
    await read.catch(() => undefined);
    if (stepsScope.consideredCancelled) throw new CancelledFailure('aborted before the rollout changed anything');
    return read;
  }

  /**
   * Holds the step's weight for its bake time (counted only while not paused), running a check
   * every analysis interval and once more when the bake ends; after each check the step policy
   * (step-policy.ts) says whether the step ends, goes on, or the rollout rolls back. Returns how
   * the rollout must go on when it cannot simply take the next step.
   */
  async function bake(step: RolloutStep): Promise<StepsOutcome | undefined> {
    const bakeMs = step.bake ?? 0;
    if (bakeMs === 0) return undefined;
    const { interval } = spec.analysis;
    // Bake time is elapsed workflow time, pauses excluded: a check that runs late (a slow metric
    // source, a busy worker) still counts, so a 60 s bake takes 60 s however long its checks take.
    let countedUntil = workflowClockMs();
    const countElapsed = () => {
      const now = workflowClockMs();
      const elapsed = Math.max(0, now - countedUntil);
      countedUntil = now;
      state.bakedMs += elapsed;
      state.sinceCheckMs += elapsed;
    };
    for (;;) {
      countElapsed(); // including the last check's own time
      const baked = state.bakedMs >= bakeMs;
      const slice = baked ? interval - state.sinceCheckMs : Math.min(interval - state.sinceCheckMs, bakeMs - state.bakedMs);
      if (slice > 0) await condition(() => state.phase === 'paused' || state.requested.promote === true, slice);
      countElapsed();
      touch();
      if (state.requested.promote) return { kind: 'promote' };
      if (state.phase === 'paused') {
        await condition(() => state.phase !== 'paused');
        countedUntil = workflowClockMs();
        continue;
      }
      if (state.sinceCheckMs >= interval || state.bakedMs >= bakeMs) {
        // The next interval starts as this check does, less the check's own lateness (timer to task),
        // so that checks keep to their schedule instead of drifting by it; a check more than an
        // interval late starts the schedule afresh rather than bunching the next ones up.
        const lateMs = state.sinceCheckMs - interval;
        state.sinceCheckMs = lateMs > 0 && lateMs < interval ? lateMs : 0;
        const decision = await runCheck(step, baked);
        if (decision.kind === 'rollback') return { kind: 'rollback', reason: decision.reason };
        if (decision.kind === 'end') return undefined;
        if (continueAsNewDue()) return { kind: 'continue-as-new' };
      }
    }
  }

  /** One metric check: read, judge, record, and what the step policy makes of it. */
  async function runCheck(step: RolloutStep, bakeWasOver: boolean): Promise<StepDecision> {
    const context = stepContext(step);
    const window = { startMs: state.lastReadAtMs ?? workflowClockMs(), endMs: workflowClockMs() };
    const reading = await readMetrics(window);
    if ('failed' in reading) {
      const outage = noteMetricsOutage(reading.failed);
      const { counters, decision } = decideOnMetricsOutage(context, countersOf(state), outage);
      return settleCheck(step, counters, decision, { verdict: 'inconclusive', reasons: [waitingOf(decision)?.message ?? outage.lastError], metrics: noMetrics() });
    }
    const outage = state.metricsOutage;
    delete state.metricsOutage;
    if (outage) announce('phase', `metrics readable again after ${outage.failedReads} failed read(s) since ${outage.since}`);
    state.lastReadAtMs = window.endMs;
    if (reading.kind === 'cumulative' && !state.lastReading) {
      // Nothing to measure an interval from (the reading at attach failed): counting starts now.
      state.lastReading = reading.sample;
      const message = 'metrics are readable again; the next check measures the traffic from this reading';
      const check: CheckOutcome = { verdict: 'inconclusive', reasons: [message], ready: false, marginal: false, wait: { reason: 'metrics_missing', message } };
      const { counters, decision } = decideAfterCheck(context, countersOf(state), check, { bakeWasOver, bakedMs: state.bakedMs });
      return settleCheck(step, counters, decision, { verdict: 'inconclusive', reasons: [message], metrics: noMetrics() });
    }
    // Cumulative counters: the interval is the difference of two readings; a windowed source's reading is the interval.
    const interval = reading.kind === 'interval' ? reading.sample : sampleBetween(state.lastReading, reading.sample);
    if (reading.kind === 'cumulative') state.lastReading = reading.sample;
    const judgement = judge.judge(
      {
        analysis: spec.analysis,
        candidateWeight: step.weight,
        interval,
        ...(step.shadow !== undefined ? { shadow: true } : {}),
        ...(step.match ? { matched: true } : {}),
        pricing: { ...(spec.baseline.pricing ? { baseline: spec.baseline.pricing } : {}), ...(spec.candidate.pricing ? { candidate: spec.candidate.pricing } : {}) },
      },
      state.judgeState,
    );
    state.judgeState = judgement.state;
    const check: CheckOutcome = {
      verdict: judgement.verdict,
      reasons: judgement.reasons,
      ready: judgement.readyToAdvance === true,
      marginal: judgement.marginal === true,
      ...(judgement.wait ? { wait: judgement.wait } : {}),
      candidateRate: interval.candidate.requests / (spec.analysis.interval / 1000),
    };
    const { counters, decision } = decideAfterCheck(context, countersOf(state), check, { bakeWasOver, bakedMs: state.bakedMs });
    return settleCheck(step, counters, decision, {
      verdict: judgement.verdict,
      reasons: judgement.reasons,
      metrics: judgement.metrics,
      ...(judgement.evidence ? { evidence: judgement.evidence } : {}),
    });
  }

  /** Records a check with the policy's decision and applies its counters and what the step waits for. */
  function settleCheck(step: RolloutStep, counters: CheckCounters, decision: StepDecision, judged: Pick<Decision, 'verdict' | 'reasons' | 'metrics' | 'evidence'>): StepDecision {
    state.stepChecks = counters.stepChecks;
    state.stepExtensions = counters.stepExtensions;
    state.failedChecks = counters.failedChecks;
    state.consecutiveInconclusive = counters.consecutiveInconclusive;
    const waiting = waitingOf(decision);
    const then = decision.kind === 'rollback' || decision.kind === 'end' ? { action: decision.kind, reason: decision.reason } : { action: decision.kind };
    record({ at: nowIso(), step: state.stepIndex, weight: step.weight, ...judged, failedChecks: state.failedChecks, then, ...(waiting ? { waiting } : {}) });
    const previous = state.waiting;
    if (waiting) state.waiting = waiting;
    else delete state.waiting;
    // Said when the step starts to wait for something new, and once when it holds at the readiness gate: not at every check.
    if (decision.kind === 'hold' && decision.gate) {
      if (!state.holding) announce('hold', decision.waiting.message, decision.waiting);
      state.holding = decision.waiting.message;
    } else if (waiting && waiting.reason !== previous?.reason) {
      announce('hold', waiting.message, waiting);
    }
    touch();
    return decision;
  }

  /** Starts or extends the record of a metric-source outage; what the policy needs to judge it. */
  function noteMetricsOutage(error: string): { since: string; ms: number; failedReads: number; lastError: string; rollbackAt: string } {
    const now = workflowClockMs();
    const outage = (state.metricsOutage ??= {
      since: nowIso(),
      sinceMs: now,
      failedReads: 0,
      lastError: error,
      rollbackAt: new Date(now + spec.analysis.maxMetricsOutage).toISOString(),
    });
    outage.failedReads += 1;
    outage.lastError = error;
    return { since: outage.since, ms: now - outage.sinceMs, failedReads: outage.failedReads, lastError: error, rollbackAt: outage.rollbackAt };
  }

  function stepContext(step: RolloutStep): StepContext {
    return { analysis: spec.analysis, judge: { name: judge.name, failIsFinal: judge.failIsFinal === true, adaptive: judge.adaptive === true }, step, nextWeight: spec.steps[state.stepIndex + 1]?.weight };
  }

  /** The metric source's reading for `window`, or why it could not be read (cancellation passes through). */
  async function readMetrics(window: MetricWindow): Promise<MetricReading | { failed: string }> {
    try {
      const reading: MetricReading | MetricsSample = await collectMetrics({ metrics: spec.metrics, query: { target: spec.target, baseline: spec.baseline, candidate: spec.candidate, window } });
      // A reading in a history from before sources were chosen per rollout: the gateway's cumulative counters.
      return 'kind' in reading ? reading : { kind: 'cumulative', sample: reading };
    } catch (err) {
      if (isCancellation(err) || !(err instanceof ActivityFailure)) throw err;
      return { failed: describeError(err) };
    }
  }

  function record(decision: Omit<Decision, 'seq' | 'summary'>): void {
    const next = { weight: spec.steps[state.stepIndex + 1]?.weight ?? 100, approval: spec.steps[state.stepIndex]?.gate === 'manual' };
    const summary = decisionSummary({ baseline: spec.baseline.version, candidate: spec.candidate.version }, decision, next);
    const recorded = recordDecision(state, { summary, ...decision });
    touch();
    announce('decision', summary, recorded);
  }

  async function awaitApproval(): Promise<void> {
    enterPhase('awaiting_approval', `step ${state.stepIndex + 1} at ${state.weights.candidate}% baked; waiting for approval`);
    await condition(() => state.requested.approve === true || state.requested.promote === true);
    state.requested.approve = false;
  }

  // ---- Operator actions (updates and signals alike) ----

  /**
   * Applies an operator's action and records it (who, why, how it came). Updates reach here only
   * when their validator let them through; a signal that does not apply is recorded with why and
   * changes nothing — a signal can never fail the workflow.
   */
  function operate(action: OperatorAction, via: 'update' | 'signal', request: unknown): RolloutStatus {
    const { by, reason } = readRequest(request);
    // The audit always names someone: a payload without `by` came through Temporal itself.
    const actor = actorOf(by);
    const refusal = notApplicable(action);
    if (refusal) {
      recordEvent(state, { at: nowIso(), action, via, by: actor, ...(reason ? { reason } : {}), applied: false, note: refusal });
      touch();
      return statusOf(state);
    }
    const audit: OperatorAudit = { action, by: actor, via, ...(reason ? { reason } : {}) };
    const note = perform(action, by, reason, audit);
    recordEvent(state, { at: nowIso(), action, via, by: actor, ...(reason ? { reason } : {}), applied: true, note });
    touch();
    return statusOf(state);
  }

  /** `by`: as the payload said (the messages say "operator" without one, as they always have); `audit` goes with the webhook event. */
  function perform(action: OperatorAction, by: string | undefined, reason: string | undefined, audit: OperatorAudit): string {
    const who = by ?? 'operator';
    switch (action) {
      case 'pause':
        enterPhase('paused', `paused by ${who}`, audit);
        return 'paused: the bake clock and checks stop until resumed';
      case 'resume':
        enterPhase('progressing', `resumed by ${who}`, audit);
        return 'resumed';
      case 'abort':
        state.requested.abort = { reason: reason || `aborted by ${who}` };
        enterPhase('rolling_back', reason ? `aborted by ${who}: ${reason}` : state.requested.abort.reason, audit);
        stepsScope.cancel();
        return 'aborting: traffic goes back to the baseline';
      case 'promote':
        state.requested.promote = true;
        if (by) state.requested.promotedBy = by;
        if (state.phase !== 'progressing') enterPhase('progressing', `promotion requested by ${who}`, audit);
        return 'promoting: the candidate takes 100% now';
      case 'approve':
        state.requested.approve = true;
        enterPhase('progressing', `approved by ${who}`, audit);
        return 'approved: the rollout goes on to the next step';
    }
  }

  /** Why `action` does not apply now, or undefined when it does. */
  function notApplicable(action: OperatorAction): string | undefined {
    const allowed = APPLIES_WHEN[action];
    if (allowed.includes(state.phase)) return undefined;
    return `cannot ${action} a rollout that is ${state.phase}; ${action} applies when ${allowed.join(' or ')}`;
  }

  function requirePhase(action: OperatorAction): void {
    const refusal = notApplicable(action);
    if (refusal) throw ApplicationFailure.create({ type: NOT_APPLICABLE, message: refusal, nonRetryable: true });
  }

  // ---- Endings ----

  async function promoteCandidate(reason: string, audit?: OperatorAudit | StartAudit): Promise<void> {
    try {
      if (state.weights.candidate !== 100 || state.weights.baseline !== 0) await applyRoute(routeAt(spec, 100));
    } catch (err) {
      await endWithCompensation(...failureEnding(err));
      return;
    }
    state.stepIndex = spec.steps.length;
    state.undos = []; // the candidate is now what serves: nothing to undo
    conclude('promoted', reason, audit);
  }

  /** Undo every change, newest first, whatever ended the rollout; cancellation cannot stop it. */
  async function endWithCompensation(result: FinalPhase, reason: string): Promise<void> {
    if (state.phase !== 'rolling_back') enterPhase('rolling_back', reason);
    const failedUndos: string[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (const undo of [...state.undos].reverse()) {
        try {
          await compensation.setTrafficWeights({ routing: spec.routing, route: undo.route });
          state.weights = weightsOf(undo.route, spec);
          publishSearchAttributes();
        } catch (err) {
          failedUndos.push(`${undo.description}: ${describeError(err)}`);
        }
      }
    });
    state.undos = [];
    if (failedUndos.length > 0) {
      conclude('failed', `${reason}; compensation incomplete, traffic may not be restored: ${failedUndos.join('; ')}`);
    } else {
      conclude(result, reason);
    }
  }

  function failureEnding(err: unknown): [FinalPhase, string] {
    if (isCancellation(err)) {
      return ['aborted', state.requested.abort?.reason ?? 'rollout workflow cancelled'];
    }
    return ['failed', describeError(err)];
  }

  /** Lets handlers and notifications finish; cancellation of the workflow cannot cut this short. */
  async function finish(): Promise<RolloutStatus> {
    await CancellationScope.nonCancellable(async () => {
      await condition(allHandlersFinished);
      await Promise.allSettled(pendingNotifications);
    });
    return statusOf(state);
  }

  // ---- Bookkeeping ----

  async function applyRoute(route: TrafficRoute): Promise<void> {
    await setTrafficWeights({ routing: spec.routing, route });
    state.weights = weightsOf(route, spec);
    touch();
    publishSearchAttributes();
  }

  /** `audit`: the operator action that caused it, sent as the webhook event's `data`. */
  function enterPhase(phase: Phase, reason: string, audit?: OperatorAudit | StartAudit): void {
    if (state.phase === phase) return;
    state.phase = phase;
    touch();
    publishSearchAttributes();
    announce('phase', `${phase}: ${reason}`, audit);
  }

  function conclude(result: FinalPhase, reason: string, audit?: OperatorAudit | StartAudit): void {
    state.outcome = { result, reason, at: nowIso() };
    enterPhase(result, reason, audit);
  }

  function publishSearchAttributes(): void {
    bookkeeping('search attributes', () =>
      upsertSearchAttributes([
        { key: RolloutTarget, value: spec.target },
        { key: RolloutPhase, value: state.phase },
        { key: CanaryWeight, value: canaryWeightAttribute(state.weights.candidate) },
      ]),
    );
  }

  /** Sends an event to the spec's webhook without waiting for it; failures only log. */
  function announce(kind: RolloutEvent['kind'], message: string, data?: unknown): void {
    log.info(message);
    const destination = spec.notify?.webhook;
    if (!destination) return;
    const event = { kind, rolloutId: state.id, target: spec.target, phase: state.phase, at: nowIso(), message, data };
    pendingNotifications.push(
      CancellationScope.nonCancellable(() => notify({ destination, event })).catch((err) =>
        log.warn(`notification to ${destination} failed: ${describeError(err)}`),
      ),
    );
  }

  function continueAsNewDue(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= (input.historyLimit ?? DEFAULT_HISTORY_LIMIT);
  }

  /** Marks the state changed, and refreshes the "current details" the Temporal UI shows. */
  function touch(): void {
    state.updatedAt = nowIso();
    const last = state.decisions[state.decisions.length - 1];
    const step = Math.min(state.stepIndex + 1, spec.steps.length);
    bookkeeping('current details', () =>
      setCurrentDetails(
        [
          `**${state.phase}** — step ${step}/${spec.steps.length}, ${spec.candidate.version} at ${state.weights.candidate}% (${spec.baseline.version} ${state.weights.baseline}%)`,
          state.waiting ? `waiting (${state.waiting.reason}): ${state.waiting.message}` : '',
          last ? `last check: **${last.verdict}** — ${last.summary ?? reasonsText(last.reasons)}` : 'no check yet',
          state.outcome ? `outcome: **${state.outcome.result}** — ${state.outcome.reason}` : '',
        ]
          .filter(Boolean)
          .join('\n\n'),
      ),
    );
  }
}

/**
 * Runs bookkeeping (search attributes, UI details) so that it can never stand between the rollout
 * and its compensation: a value Temporal's SDK refuses is logged, not a failed workflow task.
 */
function bookkeeping(what: string, publish: () => void): void {
  try {
    publish();
  } catch (err) {
    log.warn(`${what} not updated: ${describeError(err)}`);
  }
}

/** The phases in which each operator action applies (design: 409 for an update outside them). */
const APPLIES_WHEN: Record<OperatorAction, Phase[]> = {
  pause: ['progressing'],
  resume: ['paused'],
  abort: ['progressing', 'paused', 'awaiting_approval'],
  promote: ['progressing', 'paused', 'awaiting_approval'],
  approve: ['awaiting_approval'],
};

/** What a webhook `phase` event caused by an operator carries in `data`: who did what, how. */
interface OperatorAudit {
  action: OperatorAction;
  by: string;
  via: 'update' | 'signal';
  reason?: string;
}
/** The start's event `data`, and a promotion's (whose `via` is not kept). */
interface StartAudit {
  action: 'start' | 'promote';
  by: string;
}

/** Who the audit names: `by` when given, else someone with access to Temporal itself. */
function actorOf(by: string | undefined): string {
  return by && by.trim() !== '' ? by.trim().slice(0, 200) : TEMPORAL_ACTOR;
}

/** An operator's request as sent by anyone who can signal the workflow: only short strings are kept. */
function readRequest(request: unknown): { by?: string; reason?: string } {
  if (typeof request !== 'object' || request === null) return {};
  const text = (value: unknown, max: number) => (typeof value === 'string' && value.trim() !== '' ? value.trim().slice(0, max) : undefined);
  const { by, reason } = request as Record<string, unknown>;
  const out: { by?: string; reason?: string } = {};
  const who = text(by, 200);
  const why = text(reason, 1000);
  if (who) out.by = who;
  if (why) out.reason = why;
  return out;
}

/**
 * Workflow time. Inside a workflow Temporal replaces `Date` with the deterministic clock of the
 * current workflow task, so this is replay-safe; it is the only clock this file reads.
 */
function workflowClockMs(): number {
  return Date.now();
}

function nowIso(): string {
  return new Date(workflowClockMs()).toISOString();
}

function describeError(err: unknown): string {
  if (err instanceof ActivityFailure) {
    return `activity ${err.activityType} failed: ${err.cause?.message ?? err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function countersOf(state: RolloutState): CheckCounters {
  return { stepChecks: state.stepChecks, stepExtensions: state.stepExtensions, failedChecks: state.failedChecks, consecutiveInconclusive: state.consecutiveInconclusive };
}

function waitingOf(decision: StepDecision): Waiting | undefined {
  return decision.kind === 'extend' || decision.kind === 'hold' ? decision.waiting : undefined;
}

/** The figures of a check that had none to read. */
function noMetrics(): Decision['metrics'] {
  const nothing = summarize(emptyVersionMetrics());
  return { baseline: nothing, candidate: nothing };
}
