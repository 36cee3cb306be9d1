/**
 * The rollout's durable state: everything needed to pick the story up again after
 * continue-as-new. Plain data and pure functions (no Temporal APIs), so they are easy to test.
 */
import type { MetricsSample } from '../analysis/metrics';
import type { Verdict } from '../analysis/judge';
import type { TrafficRoute } from '../activities/types';
import type { RolloutSpec } from '../spec/schema';
import type { Decision, Outcome, Phase, RolloutStatus, Weights } from './status';

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
  /** The verdict of the current step's latest check; only a pass lets the step end. */
  stepVerdict?: Verdict;
  /** Whether the current step's latest check said the evidence is clear enough to advance. */
  stepReady: boolean;
  /** Checks run in the current step, and those run after its bake (extensions). */
  stepChecks: number;
  stepExtensions: number;
  /** Why the rollout holds at the current step while checks go on (the readiness gate); cleared when the step ends. */
  holding?: string;
  failedChecks: number;
  consecutiveInconclusive: number;
  decisions: Decision[];
  judgeState: unknown;
  undos: Undo[];
  /** Operator requests not yet acted upon. */
  requested: { abort?: { reason: string }; promote?: boolean; approve?: boolean };
  startedAt: string;
  updatedAt: string;
  outcome?: Outcome;
  /** How many runs (continue-as-new) the rollout has taken so far. */
  runs: number;
}

export function newRolloutState(id: string, spec: RolloutSpec, judgeState: unknown, at: string): RolloutState {
  return {
    id,
    spec,
    phase: 'progressing',
    stepIndex: 0,
    stage: 'apply',
    bakedMs: 0,
    sinceCheckMs: 0,
    stepReady: false,
    stepChecks: 0,
    stepExtensions: 0,
    weights: { baseline: 100, candidate: 0 },
    failedChecks: 0,
    consecutiveInconclusive: 0,
    decisions: [],
    judgeState,
    undos: [],
    requested: {},
    startedAt: at,
    updatedAt: at,
    runs: 1,
  };
}

/** The traffic split for a target with the candidate at `candidateWeight` percent. */
export function routeAt(spec: RolloutSpec, id: string, candidateWeight: number): TrafficRoute {
  return {
    target: spec.target,
    salt: id,
    versions: [
      { ...spec.baseline, weight: 100 - candidateWeight },
      { ...spec.candidate, weight: candidateWeight },
    ],
  };
}

/** The split before the rollout: the baseline alone. */
export function baselineOnlyRoute(spec: RolloutSpec, id: string): TrafficRoute {
  return { target: spec.target, salt: id, versions: [{ ...spec.baseline, weight: 100 }] };
}

export function weightsOf(route: TrafficRoute, spec: RolloutSpec): Weights {
  const weightOf = (version: string) => route.versions.find((v) => v.version === version)?.weight ?? 0;
  return { baseline: weightOf(spec.baseline.version), candidate: weightOf(spec.candidate.version) };
}

export function statusOf(state: RolloutState): RolloutStatus {
  const { spec } = state;
  const step = spec.steps[state.stepIndex];
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
    },
    failedChecks: state.failedChecks,
    decisions: state.decisions,
    startedAt: state.startedAt,
    updatedAt: state.updatedAt,
    spec,
  };
  if (state.outcome) status.outcome = state.outcome;
  return status;
}
