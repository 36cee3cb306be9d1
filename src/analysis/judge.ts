/**
 * The judge: a pure function from one check's metrics to a verdict. The workflow calls it
 * directly (deterministic, no I/O); judges with memory across checks (sequential tests) keep
 * it in `state`, which the workflow stores and carries through continue-as-new.
 */
import type { AnalysisSpec } from '../spec/schema';
import type { Pricing } from './gate-metrics';
import type { MetricsSample, VersionSummary } from './metrics';
import type { WaitReason } from '../workflows/step-policy';

export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface JudgeInput {
  analysis: AnalysisSpec;
  /** The candidate's configured traffic share during the interval, percent. */
  candidateWeight: number;
  /** Metrics of the interval just ended, both versions (and a shadow step's mirrored pairs). */
  interval: MetricsSample;
  /** A shadow step: the candidate serves no user; its mirrored answers are compared in pairs. */
  shadow?: boolean;
  /** The step splits only requests matching a header (`match`): shares of all traffic are not the weight. */
  matched?: boolean;
  /** The versions' token prices (spec `pricing`), for the cost metric. */
  pricing?: { baseline?: Pricing; candidate?: Pricing };
}

export interface Judgement<State> {
  verdict: Verdict;
  /** Plain sentences with the numbers behind the verdict. */
  reasons: string[];
  metrics: { baseline: VersionSummary; candidate: VersionSummary };
  /** Judge-specific evidence (e-values, bounds...) recorded with the decision. */
  evidence?: Record<string, unknown>;
  /**
   * Set by judges that can tell: the evidence already shows no regression beyond tolerance
   * for every metric (the step may end early, and the rollout may go beyond 25%).
   */
  readyToAdvance?: boolean;
  /** Set by judges that can tell: the evidence leans toward a regression without showing one. */
  marginal?: boolean;
  /**
   * Why the check is not conclusive, or (a pass) not ready: a stable code and a plain sentence,
   * with the candidate requests still needed when the judge can tell.
   */
  wait?: { reason: WaitReason; message: string; candidateRequests?: number };
  state: State;
}

export interface Judge<State = unknown> {
  readonly name: string;
  /**
   * True when a `fail` already accounts for repeated looks (sequential tests): the rollout rolls
   * back at the first one instead of counting failures up to `failureLimit`.
   */
  readonly failIsFinal?: boolean;
  /** True when the judge sets `readyToAdvance`, so steps may end early or be extended. */
  readonly adaptive?: boolean;
  initialState(): State;
  judge(input: JudgeInput, state: State): Judgement<State>;
}
