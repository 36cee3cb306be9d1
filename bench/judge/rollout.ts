/**
 * Drives one judge through one simulated rollout, either at a fixed weight for a horizon or up
 * the full ladder. On the ladder, fixed judges bake each step for BAKE intervals; the adaptive
 * judge (ours) follows the workflow policy its readyToAdvance is meant for:
 *  - end a step of at most 25% early once ready (after at least MIN_STEP intervals); larger
 *    steps serve their bake in full (a late regression is still to be caught before 100%);
 *  - at the end of the bake, extend while marginal (not ready and some e-value ≥ 1), up to
 *    `maxExtensionChecks` more intervals (MAX_STEP in all, as the workflow counts), then move on;
 *  - never go beyond 25% without ready: at the 25% and 50% steps, extend until ready; past
 *    MAX_STEP intervals the workflow holds the step, still checking (so still rolling back on a
 *    failing check), and moves on once ready. A rollout still holding when the horizon ends
 *    counts as "held" (an operator would have had to decide).
 */
import type { AnalysisSpec } from '../../src/spec/schema';
import type { MetricsSample } from '../../src/analysis/metrics';
import type { BenchJudge } from './judges';
import { addSamples, emptySample, intervalAt, truthAt, type Rollout } from './simulator';

export const LADDER = [1, 5, 10, 25, 50];
export const BAKE = 10;
export const MIN_STEP = 2;

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
}

export const ANALYSIS: AnalysisSpec = {
  judge: 'sequential',
  maxExtensionChecks: 30,
  interval: 30_000,
  minRequests: 50,
  failureLimit: 1,
  inconclusiveLimit: 0,
  maxMetricsOutage: 300_000,
  thresholds: { maxErrorRate: 0.02, maxLatencyP95Ms: 1000 },
};

/** The bake, then the workflow's default `maxExtensionChecks`. */
export const MAX_STEP = BAKE + ANALYSIS.maxExtensionChecks;
/** Two hours of 30 s checks: room for every step's extensions, and for holds at the gate. */
export const LADDER_HORIZON = 240;

export function runRollout(
  judge: BenchJudge,
  rollout: Rollout,
  schedule: Schedule,
  analysis: AnalysisSpec,
  cache: Map<string, MetricsSample>,
): Outcome {
  const runner = judge.start(analysis);
  let step = 0;
  let inStep = 0;
  let carry: MetricsSample | undefined;
  let candidateRequests = 0;
  let sinceOnset = 0;
  let harmed = 0;
  const weightAt = () => (schedule.kind === 'fixed' ? schedule.weight : LADDER[step]!);
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
    const done = (o: Partial<Outcome>): Outcome => ({
      rolledBack: false,
      promoted: false,
      held: false,
      decidedAt: k,
      weightAtDecision: weight,
      candidateRequestsSinceOnset: sinceOnset,
      candidateRequests,
      harmed,
      ...o,
    });
    if (check.rollback) return done({ rolledBack: true });
    if (schedule.kind === 'ladder') {
      inStep += 1;
      let advance = false;
      if (judge.adaptive) {
        const gate = weight >= 25; // leaving this step goes beyond 25%
        if (check.ready && (weight <= 25 ? inStep >= MIN_STEP : inStep >= BAKE)) advance = true;
        else if (inStep >= BAKE && !gate && !check.marginal) advance = true;
        else if (inStep >= MAX_STEP && !gate) advance = true;
      } else if (inStep >= BAKE) {
        advance = true;
      }
      if (advance) {
        step += 1;
        inStep = 0;
        if (step >= LADDER.length) return done({ promoted: true });
      }
    }
  }
  const holding = schedule.kind === 'ladder' && judge.adaptive && weightAt() >= 25 && inStep >= MAX_STEP;
  return {
    rolledBack: false,
    promoted: false,
    held: holding,
    decidedAt: rollout.horizon,
    weightAtDecision: weightAt(),
    candidateRequestsSinceOnset: sinceOnset,
    candidateRequests,
    harmed,
  };
}
