/**
 * The rollout's durable state: everything needed to pick the story up again after
 * continue-as-new. Plain data and pure functions (no Temporal APIs), so they are easy to test.
 */
import type { MetricsSample } from '../analysis/metrics';
import type { TrafficRoute } from '../activities/types';
import type { RolloutSpec, RolloutStep } from '../spec/schema';
import { complementWeight } from '../spec/patterns';
import type { Decision, DecisionPageRequest, EarlierDecisions, MetricsOutage, OperatorEvent, Outcome, Phase, RolloutStatus, Weights } from './status';
import { isFinal, pageOfDecisions } from './status';
import type { Waiting } from './step-policy';

/**
 * Decisions kept whole in the state (≈2 KB each): enough for every chart and page a person reads,
 * few enough that the state, the status query's answer and the continue-as-new payload stay far
 * below Temporal's 2 MB payload limit however long a rollout runs. Older ones are counted.
 */
export const DECISIONS_KEPT = 100;
/** Operator events kept (newest); the history has them all. */
export const EVENTS_KEPT = 50;

/** An undo registered by a change the rollout made; compensation runs them in reverse. */
export interface Undo {
  description: string;
  route: TrafficRoute;
}

export interface RolloutState {
  id: string;
  spec: RolloutSpec;
  phase: Phase;
  stepIndex: number;
  /** Where in the current step the rollout is: weights not yet set, baking, or at the gate. */
  stage: 'apply' | 'bake' | 'gate';
  bakedMs: number;
  sinceCheckMs: number;
  weights: Weights;
  /** The last cumulative metric reading; the next check's interval starts here. */
  lastReading?: MetricsSample;
  /** Workflow time of the last successful reading (or of attaching): the next reading's window starts here. */
  lastReadAtMs?: number;
  /** Checks run in the current step, and those run after its bake (extensions). */
  stepChecks: number;
  stepExtensions: number;
  /** Why the rollout holds at the current step while checks go on (the readiness gate); cleared when the step ends. */
  holding?: string;
  /** What the current step waits for, from its latest check that did not end it (step-policy.ts). */
  waiting?: Waiting;
  failedChecks: number;
  consecutiveInconclusive: number;
  /** The newest decisions, whole (at most DECISIONS_KEPT). */
  decisions: Decision[];
  /** Decisions made so far, kept or not; the next one's `seq` is this + 1. */
  decisionCount: number;
  earlierDecisions: EarlierDecisions;
  /** Operator actions received, newest last (at most EVENTS_KEPT). */
  events: OperatorEvent[];
  /** Set while the metric source cannot be read (ms: workflow clock of the first failed read). */
  metricsOutage?: MetricsOutage & { sinceMs: number };
  judgeState: unknown;
  /**
   * The route that served the target before the rollout's first change, read at attach:
   * compensation's last undo restores it exactly. null: the target had no route (the baseline
   * alone is restored); absent until the rollout has attached.
   */
  routeBefore?: TrafficRoute | null;
  undos: Undo[];
  /** Operator requests not yet acted upon. */
  requested: { abort?: { reason: string }; promote?: boolean; approve?: boolean; /** who asked for the promotion */ promotedBy?: string };
  startedAt: string;
  /** Who started the rollout (absent in states of older versions). */
  startedBy?: string;
  updatedAt: string;
  outcome?: Outcome;
  /** How many runs (continue-as-new) the rollout has taken so far. */
  runs: number;
}

export function newRolloutState(id: string, spec: RolloutSpec, judgeState: unknown, at: string, startedBy?: string): RolloutState {
  return {
    ...(startedBy ? { startedBy } : {}),
    id,
    spec,
    phase: 'progressing',
    stepIndex: 0,
    stage: 'apply',
    bakedMs: 0,
    sinceCheckMs: 0,
    stepChecks: 0,
    stepExtensions: 0,
    weights: { baseline: 100, candidate: 0 },
    failedChecks: 0,
    consecutiveInconclusive: 0,
    decisions: [],
    decisionCount: 0,
    earlierDecisions: noEarlierDecisions(),
    events: [],
    judgeState,
    undos: [],
    requested: {},
    startedAt: at,
    updatedAt: at,
    runs: 1,
  };
}

function noEarlierDecisions(): EarlierDecisions {
  return { count: 0, verdicts: { pass: 0, fail: 0, inconclusive: 0 } };
}

/**
 * Fills in what states written by earlier versions of the workflow lack (a rollout that
 * continued as new across a deploy), so that the rest of the code can rely on every field.
 */
export function upgradeState(state: RolloutState): RolloutState {
  state.decisionCount ??= state.decisions.length;
  state.earlierDecisions ??= noEarlierDecisions();
  state.events ??= [];
  // Specs from before routing and metrics were chosen per rollout: the embedded gateway's.
  state.spec.routing ??= { kind: 'gateway' };
  state.spec.metrics ??= { kind: 'gateway' };
  // Attached by a version that captured nothing: its undos restore the baseline alone.
  if (state.routeBefore === undefined && state.undos.length > 0) state.routeBefore = null;
  state.decisions.forEach((d, i) => (d.seq ??= state.decisionCount - state.decisions.length + i + 1));
  keepDecisionsBounded(state);
  return state;
}

/** Records a decision (numbering it) and folds the oldest whole one into the counts when over DECISIONS_KEPT. */
export function recordDecision(state: RolloutState, decision: Omit<Decision, 'seq'>): Decision {
  state.decisionCount += 1;
  const numbered: Decision = { seq: state.decisionCount, ...decision };
  state.decisions.push(numbered);
  keepDecisionsBounded(state);
  return numbered;
}

export function recordEvent(state: RolloutState, event: OperatorEvent): void {
  state.events.push(event);
  if (state.events.length > EVENTS_KEPT) state.events.splice(0, state.events.length - EVENTS_KEPT);
}

function keepDecisionsBounded(state: RolloutState): void {
  const excess = state.decisions.length - DECISIONS_KEPT;
  if (excess <= 0) return;
  const earlier = state.earlierDecisions;
  for (const old of state.decisions.splice(0, excess)) {
    earlier.count += 1;
    earlier.verdicts[old.verdict] += 1;
    earlier.firstAt ??= old.at;
    earlier.lastAt = old.at;
  }
}

/** The traffic split for a target with the candidate at `candidateWeight` percent. */
export function routeAt(spec: RolloutSpec, candidateWeight: number): TrafficRoute {
  const version = (v: RolloutSpec['baseline'], weight: number) => ({ version: v.version, ...(v.url !== undefined ? { url: v.url } : {}), weight });
  return {
    target: spec.target,
    versions: [version(spec.baseline, complementWeight(candidateWeight)), version(spec.candidate, candidateWeight)],
  };
}

/** A step's route: its weight, and its header match or (a shadow step) its mirror to the candidate. */
export function routeForStep(spec: RolloutSpec, step: RolloutStep): TrafficRoute {
  const route = routeAt(spec, step.weight);
  if (step.match) route.match = { header: step.match.header, values: [...step.match.values], others: spec.baseline.version };
  if (step.shadow !== undefined) {
    const evaluator = spec.analysis.evaluator;
    route.mirror = { from: spec.baseline.version, to: spec.candidate.version, percent: step.shadow, ...(evaluator ? { evaluator: { url: evaluator.url, sample: evaluator.sample } } : {}) };
  }
  return route;
}

/** The split before the rollout: the baseline alone. */
export function baselineOnlyRoute(spec: RolloutSpec): TrafficRoute {
  return { target: spec.target, versions: [{ ...spec.baseline, weight: 100 }] };
}

/** The route compensation ends on: the one captured before the rollout, else the baseline alone. */
export function routeToRestore(state: RolloutState): TrafficRoute {
  return state.routeBefore ?? baselineOnlyRoute(state.spec);
}

export function weightsOf(route: TrafficRoute, spec: RolloutSpec): Weights {
  const weightOf = (version: string) => route.versions.find((v) => v.version === version)?.weight ?? 0;
  return { baseline: weightOf(spec.baseline.version), candidate: weightOf(spec.candidate.version) };
}

export function statusOf(state: RolloutState, page?: DecisionPageRequest): RolloutStatus {
  const { spec } = state;
  const step = spec.steps[state.stepIndex];
  const { decisions, nextBefore } = pageOfDecisions(state.decisions, page);
  const status: RolloutStatus = {
    id: state.id,
    target: spec.target,
    phase: state.phase,
    baseline: spec.baseline,
    candidate: spec.candidate,
    weights: { ...state.weights },
    step: {
      index: state.stepIndex,
      total: spec.steps.length,
      weight: step?.weight ?? state.weights.candidate,
      bakeMs: step?.bake ?? 0,
      bakedMs: step ? state.bakedMs : 0,
      ...(state.holding ? { holding: state.holding } : {}),
      ...waitingNow(state),
    },
    failedChecks: state.failedChecks,
    decisions,
    decisionPage: {
      total: state.decisionCount,
      kept: state.decisions.length,
      ...(nextBefore === undefined ? {} : { nextBefore }),
      earlier: state.earlierDecisions,
    },
    events: state.events,
    startedAt: state.startedAt,
    ...(state.startedBy ? { startedBy: state.startedBy } : {}),
    updatedAt: state.updatedAt,
    spec,
  };
  if (state.outcome) status.outcome = state.outcome;
  if (state.metricsOutage) {
    const { sinceMs: _sinceMs, ...outage } = state.metricsOutage;
    status.metricsOutage = outage;
  }
  return status;
}

/** What the step waits for: an operator, while paused or at a manual gate; else its latest check's reason. */
function waitingNow(state: RolloutState): { waiting?: Waiting } {
  if (state.phase === 'paused') return { waiting: { reason: 'paused', message: 'paused by an operator: the bake clock and checks stop until resumed' } };
  if (state.phase === 'awaiting_approval') return { waiting: { reason: 'awaiting_approval', message: `step ${state.stepIndex + 1} has baked; it waits for an operator to approve (or promote, or abort)` } };
  if (isFinal(state.phase) || state.phase === 'rolling_back') return {};
  return state.waiting ? { waiting: state.waiting } : {};
}
