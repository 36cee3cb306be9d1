/**
 * Drives one judge through one simulated rollout, either at a fixed weight for a horizon or up
 * the full ladder, one check per interval. On the ladder every step is decided by the product's
 * own step policy (src/workflows/step-policy.ts, as the workflow calls it): each step bakes for
 * BAKE intervals; with our judge (adaptive, readiness required) a step of at most 25% ends early
 * once ready, a step not ready at the end of its bake is extended while its evidence leans toward
 * a regression (up to `maxExtensionChecks`), and leaving 25% or 50% waits for ready — extended,
 * then holding, still checking (so still rolling back on a failing check). A rollout still
 * holding at the gate when the horizon ends counts as "held" (an operator would have had to
 * decide). The fixed-schedule baselines end each step at the end of its bake.
 */
import type { AnalysisSpec, RolloutStep } from '../../src/spec/schema';
import { NO_CHECKS, decideAfterCheck, newStepCounters, type CheckOutcome, type StepContext, type StepDecision, type Waiting, type WaitReason } from '../../src/workflows/step-policy';
import type { MetricsSample } from '../../src/analysis/metrics';
import { GATE_METRIC_NAMES, GATE_METRICS, type GateMetricName } from '../../src/analysis/gate-metrics';
import type { BenchJudge } from './judges';
import { addSamples, emptySample, intervalAt, truthAt, type Rollout } from './simulator';

/** The ladder's weights; after the last, the candidate takes 100% (promotion, a step without bake). */
export const LADDER = [1, 5, 10, 25, 50];
export const BAKE = 10;

export type Schedule = { kind: 'fixed'; weight: number } | { kind: 'ladder' };

export interface Outcome {
  rolledBack: boolean;
  promoted: boolean;
  /** Ladder, ours: still holding at the readiness gate when the horizon ended. */
  held: boolean;
  /** Interval index of the decision (rollback or promotion); the horizon if none. */
  decidedAt: number;
  weightAtDecision: number;
  /** Candidate requests served since the regression's onset until the rollback. */
  candidateRequestsSinceOnset: number;
  candidateRequests: number;
  /** Excess errors + excess slow requests (beyond the nominal p95) served by the regressed candidate. */
  harmed: number;
  /** The first check that found the evidence ready (interval index), and the candidate requests served by then. */
  readyAt: number | null;
  readyCandidateRequests: number | null;
  /** A rollback by ours: the gate metrics its failing check named (reasons starting with a metric's label); [] for other causes. */
  failedOn?: GateMetricName[];
  /** Ours: the largest e-value each tested gate metric reached over the rollout's checks. */
  maxEValue?: Record<string, number>;
}

export const ANALYSIS: AnalysisSpec = {
  judge: 'sequential',
  readiness: 'required',
  maxExtensionChecks: 30,
  interval: 30_000,
  minRequests: 50,
  failureLimit: 1,
  inconclusiveLimit: 0,
  maxMetricsOutage: 300_000,
  thresholds: { maxErrorRate: 0.02, maxLatencyP95Ms: 1000 },
};

/** Two hours of 30 s checks: room for every step's extensions, and for holds at the gate. */
export const LADDER_HORIZON = 240;

/** The ladder as a spec's steps: each baked for BAKE intervals, then 100% without a bake. */
export function ladderSteps(analysis: AnalysisSpec): RolloutStep[] {
  return [...LADDER.map((weight) => ({ weight, bake: BAKE * analysis.interval, gate: 'auto' as const })), { weight: 100, gate: 'auto' as const }];
}

/** One check's record, for comparing the bench's loop with the workflow's (test/workflow/step-policy-parity.test.ts). */
export interface CheckRecord {
  step: number;
  weight: number;
  verdict: CheckOutcome['verdict'];
  action: StepDecision['kind'];
  /** What a step that goes on waits for, and the estimate of how long (seconds), when it has one. */
  waiting?: { reason: WaitReason; seconds?: number };
}

/** A decision's waiting as a CheckRecord has it. */
export function waitingRecord(waiting: Waiting | undefined): CheckRecord['waiting'] {
  if (!waiting) return undefined;
  return { reason: waiting.reason, ...(waiting.estimate?.seconds !== undefined ? { seconds: waiting.estimate.seconds } : {}) };
}

export function runRollout(
  judge: BenchJudge,
  rollout: Rollout,
  schedule: Schedule,
  analysis: AnalysisSpec,
  cache: Map<string, MetricsSample>,
  trace?: CheckRecord[],
): Outcome {
  const runner = judge.start(analysis, rollout.world.llm?.pricing);
  const steps = ladderSteps(analysis);
  let step = 0;
  let counters = NO_CHECKS;
  let holding = false;
  let carry: MetricsSample | undefined;
  let candidateRequests = 0;
  let sinceOnset = 0;
  let harmed = 0;
  let readyAt: number | null = null;
  let readyCandidateRequests: number | null = null;
  let maxEValue: Record<string, number> | undefined;
  const weightAt = () => (schedule.kind === 'fixed' ? schedule.weight : steps[step]!.weight);
  for (let k = 0; k < rollout.horizon; k++) {
    const weight = weightAt();
    const truth = truthAt(rollout, k);
    let sample = intervalAt(rollout, k, weight, cache);
    const nB = sample.candidate.requests;
    candidateRequests += nB;
    if (truth.regressed) {
      sinceOnset += nB;
      harmed += nB * (Math.max(0, truth.candidateErrorRate - truth.baselineErrorRate) + Math.max(0, truth.candidateSlow - truth.baselineSlow));
    }
    if (rollout.missing[k]) {
      carry = carry ? addSamples(carry, sample) : sample;
      sample = emptySample();
    } else if (carry) {
      sample = addSamples(carry, sample);
      carry = undefined;
    }
    const check = runner.check(sample, weight);
    if (check.eValues) {
      maxEValue ??= {};
      for (const [name, e] of Object.entries(check.eValues)) maxEValue[name] = Math.max(maxEValue[name] ?? 0, e);
    }
    if (check.ready && readyAt === null) {
      readyAt = k;
      readyCandidateRequests = candidateRequests;
    }
    const done = (o: Partial<Outcome>): Outcome => ({
      rolledBack: false,
      promoted: false,
      held: false,
      decidedAt: k,
      weightAtDecision: weight,
      candidateRequestsSinceOnset: sinceOnset,
      candidateRequests,
      harmed,
      readyAt,
      readyCandidateRequests,
      ...(maxEValue ? { maxEValue } : {}),
      ...o,
    });
    // A fixed weight is one endless step: its bake never ends, so only a rollback decides.
    const current = schedule.kind === 'fixed' ? { weight, bake: rollout.horizon * analysis.interval } : steps[step]!;
    const context: StepContext = { analysis, judge: judge.traits, step: current, nextWeight: schedule.kind === 'fixed' ? undefined : steps[step + 1]?.weight };
    const bake = current.bake ?? 0;
    const bakedMs = (counters.stepChecks + 1) * analysis.interval;
    const next = decideAfterCheck(context, counters, check, { bakeWasOver: counters.stepChecks * analysis.interval >= bake, bakedMs });
    counters = next.counters;
    const { decision } = next;
    const waiting = waitingRecord('waiting' in decision ? decision.waiting : undefined);
    trace?.push({ step, weight, verdict: check.verdict, action: decision.kind, ...(waiting ? { waiting } : {}) });
    if (decision.kind === 'rollback') return done({ rolledBack: true, failedOn: failedMetrics(check.reasons) });
    holding = decision.kind === 'hold' && decision.gate;
    // A fixed weight stays for the whole horizon: a step that may end (ready) does not move it.
    if (decision.kind === 'end' && schedule.kind === 'ladder') {
      step += 1;
      counters = newStepCounters(counters);
      holding = false;
      // The step at 100% has no bake: reaching it is the promotion.
      if (!steps[step]!.bake) return done({ promoted: true });
    }
  }
  return {
    rolledBack: false,
    promoted: false,
    held: holding,
    decidedAt: rollout.horizon,
    weightAtDecision: weightAt(),
    candidateRequestsSinceOnset: sinceOnset,
    candidateRequests,
    harmed,
    readyAt,
    readyCandidateRequests,
    ...(maxEValue ? { maxEValue } : {}),
  };
}

/** The gate metrics a failing check's reasons name (the sequential judge starts each with the metric's label). */
function failedMetrics(reasons: readonly string[]): GateMetricName[] {
  return GATE_METRIC_NAMES.filter((name) => reasons.some((r) => r.startsWith(`${GATE_METRICS[name].label}:`)));
}
