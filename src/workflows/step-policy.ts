/**
 * The step policy: after each check, whether the current step ends, goes on baking, is
 * extended, holds, or the rollout rolls back — and why, as a stable reason code and a plain
 * sentence with, where the judge can tell, how much more candidate traffic a waiting step needs.
 *
 * Pure (no Temporal APIs, no clock): the rollout workflow and the judge benchmark
 * (bench/judge/rollout.ts) both call it, so the benchmark measures the policy the product runs.
 * Every limit on checks (failureLimit, inconclusiveLimit, maxExtensionChecks,
 * maxMetricsOutage) is applied here and nowhere else.
 *
 * The rules, for a step with a bake:
 *  - a failed check rolls back at once for a judge whose failures are final (sequential), or
 *    once `failureLimit` checks have failed (threshold); too many inconclusive checks in a row
 *    roll back (too little traffic does not count: it waits), and so does a metric source
 *    unreadable for `maxMetricsOutage`;
 *  - only a passing check ends a step: inconclusive or failed (under the limit) checks hold it;
 *  - readiness `advisory` (and any judge that cannot tell readiness): the step ends at the end
 *    of its bake, as with Argo Rollouts and Flagger; readiness is only reported;
 *  - readiness `required` (the default, sequential judge):
 *    - a step of at most 25% ends early once ready, after at least two checks; a larger step
 *      serves its bake in full (a regression that begins late is still to be caught before 100%);
 *    - at the end of the bake, a step whose next weight is beyond 25% (the readiness gate) waits
 *      for ready: extended up to `maxExtensionChecks`, then it holds, still checking (so still
 *      rolling back on a failing check), and moves on by itself once ready;
 *    - other steps, when not ready at the end of the bake, are extended while the evidence leans
 *      toward a regression (some metric's e-value ≥ 1, up to `maxExtensionChecks`), else end.
 */
import type { Verdict } from '../analysis/judge';
import { DEFAULT_SEQUENTIAL_OPTIONS } from '../analysis/sequential/options';
import type { AnalysisSpec, RolloutStep } from '../spec/schema';
import { formatDuration } from '../spec/duration';
import { reasonsText } from './status';

/** Beyond this weight a rollout only goes with every metric bounded below its tolerance (readiness `required`). */
export const READINESS_REQUIRED_ABOVE = 25;
/** A step may end early on clear evidence only after this many checks. */
export const MIN_CHECKS_BEFORE_EARLY_END = 2;

/** Why a step waits: stable codes, for people, the UI, the CLI and webhooks alike. */
export const WAIT_REASONS = [
  'thin_traffic',
  'needs_evidence',
  'inconclusive',
  'srm',
  'metrics_missing',
  'failed_check',
  'paused',
  'awaiting_approval',
] as const;
export type WaitReason = (typeof WAIT_REASONS)[number];

export interface Estimate {
  /** Candidate requests still needed, if the traffic goes on as it has. */
  candidateRequests: number;
  /** The same at the candidate's request rate in the last interval (absent when it served none). */
  seconds?: number;
}

export interface Waiting {
  reason: WaitReason;
  message: string;
  estimate?: Estimate;
}

/** A check as the policy sees it: the judge's verdict and what it can tell of readiness. */
export interface CheckOutcome {
  verdict: Verdict;
  /** The judge's reasons (the rollback reason quotes them). */
  reasons: string[];
  /** The judge says the evidence bounds every metric below its tolerance. */
  ready: boolean;
  /** The evidence leans toward a regression without showing one (worth a longer look). */
  marginal: boolean;
  /** Why the judge is not conclusive, or not ready; `candidateRequests` when it can tell. */
  wait?: { reason: WaitReason; message: string; candidateRequests?: number };
  /** Candidate requests per second in the interval just checked. */
  candidateRate?: number;
}

/** What the policy needs of the judge itself. */
export interface JudgeTraits {
  name: string;
  /** Failures account for repeated looks: the first one rolls back. */
  failIsFinal: boolean;
  /** Tells readiness, so that steps may end early, be extended and hold. */
  adaptive: boolean;
}

export interface StepContext {
  analysis: AnalysisSpec;
  judge: JudgeTraits;
  step: Pick<RolloutStep, 'weight' | 'bake'>;
  /** The next step's weight; undefined for the last step. */
  nextWeight: number | undefined;
}

/** The step's and the rollout's check counters. */
export interface CheckCounters {
  /** Checks in the current step, and those after its bake (extensions). */
  stepChecks: number;
  stepExtensions: number;
  /** Failed checks and inconclusive checks in a row, in the whole rollout. */
  failedChecks: number;
  consecutiveInconclusive: number;
}

export type StepDecision =
  | { kind: 'rollback'; reason: string }
  | { kind: 'end'; reason: string }
  /** The bake goes on: nothing to wait for but time. */
  | { kind: 'bake' }
  /** Past its bake, the step takes another check because its evidence is not ready. */
  | { kind: 'extend'; waiting: Waiting }
  /**
   * The step waits for a conclusive or passing check, or (readiness gate, extensions used up)
   * for ready: `gate` then, and the rollout says once that it holds.
   */
  | { kind: 'hold'; waiting: Waiting; gate: boolean };

export const NO_CHECKS: CheckCounters = { stepChecks: 0, stepExtensions: 0, failedChecks: 0, consecutiveInconclusive: 0 };

/** Counters of a new step: the rollout-wide ones carry on. */
export function newStepCounters(counters: CheckCounters): CheckCounters {
  return { ...counters, stepChecks: 0, stepExtensions: 0 };
}

/** Consecutive inconclusive checks that roll back: the spec's limit, else the sequential judge's own (0 = none). */
export function inconclusiveLimitOf(analysis: AnalysisSpec): number {
  if (analysis.inconclusiveLimit > 0) return analysis.inconclusiveLimit;
  if (analysis.judge !== 'sequential') return 0;
  return analysis.sequential?.maxConsecutiveInconclusive ?? DEFAULT_SEQUENTIAL_OPTIONS.maxConsecutiveInconclusive;
}

/** True when the step's readiness decides whether the rollout may go on (readiness `required`, adaptive judge). */
function readinessRequired(ctx: StepContext): boolean {
  return ctx.judge.adaptive && ctx.analysis.readiness !== 'advisory';
}

/** Leaving this step goes beyond 25%: readiness is required first. */
export function isReadinessGate(ctx: StepContext): boolean {
  return readinessRequired(ctx) && ctx.nextWeight !== undefined && ctx.nextWeight > READINESS_REQUIRED_ABOVE && ctx.nextWeight > ctx.step.weight;
}

/**
 * After one check: the counters with it counted, and what the step does next. `bakeWasOver`:
 * the step's bake had ended before this check (the check is an extension); `bakedMs`: the bake
 * time served, this check's interval included.
 */
export function decideAfterCheck(
  ctx: StepContext,
  before: CheckCounters,
  check: CheckOutcome,
  timing: { bakeWasOver: boolean; bakedMs: number },
): { counters: CheckCounters; decision: StepDecision } {
  const counters: CheckCounters = {
    stepChecks: before.stepChecks + 1,
    stepExtensions: before.stepExtensions + (timing.bakeWasOver ? 1 : 0),
    failedChecks: before.failedChecks + (check.verdict === 'fail' ? 1 : 0),
    consecutiveInconclusive: inconclusiveStreak(before.consecutiveInconclusive, check),
  };
  return { counters, decision: decide(ctx, counters, check, timing.bakedMs) };
}

/**
 * Inconclusive checks in a row, this one counted. Too little traffic neither counts nor resets
 * the streak: the step waits for traffic (a candidate that serves few requests harms few users),
 * whereas a sample-ratio mismatch or missing figures say something is wrong.
 */
function inconclusiveStreak(streak: number, check: CheckOutcome): number {
  if (check.verdict !== 'inconclusive') return 0;
  return check.wait?.reason === 'thin_traffic' ? streak : streak + 1;
}

/**
 * A check without figures: the metric source could not be read for `outageMs`. It holds the
 * step; it neither counts toward nor resets the inconclusive streak (an outage has its own limit).
 */
export function decideOnMetricsOutage(
  ctx: StepContext,
  counters: CheckCounters,
  outage: { since: string; ms: number; failedReads: number; lastError: string; rollbackAt: string },
): { counters: CheckCounters; decision: StepDecision } {
  const next = { ...counters, stepChecks: counters.stepChecks + 1 };
  const limit = ctx.analysis.maxMetricsOutage;
  if (outage.ms >= limit) {
    return { counters: next, decision: { kind: 'rollback', reason: `metrics unavailable for ${formatDuration(outage.ms)} (${outage.failedReads} failed reads), at least analysis.maxMetricsOutage: ${outage.lastError}` } };
  }
  const message =
    `metrics unavailable since ${outage.since} (${outage.failedReads} failed read(s)): ${outage.lastError}; ` +
    `the step holds, and the rollout rolls back if they stay unavailable until ${outage.rollbackAt} (analysis.maxMetricsOutage ${formatDuration(limit)})`;
  return { counters: next, decision: { kind: 'hold', gate: false, waiting: { reason: 'metrics_missing', message } } };
}

function decide(ctx: StepContext, counters: CheckCounters, check: CheckOutcome, bakedMs: number): StepDecision {
  const { analysis, judge, step } = ctx;
  const reasons = reasonsText(check.reasons);
  if (check.verdict === 'fail') {
    if (judge.failIsFinal) return { kind: 'rollback', reason: `the ${judge.name} judge failed the candidate: ${reasons}` };
    if (counters.failedChecks >= analysis.failureLimit) {
      return { kind: 'rollback', reason: `${counters.failedChecks} failed checks reached failureLimit ${analysis.failureLimit}: ${reasons}` };
    }
    const message = `check failed (${counters.failedChecks} of failureLimit ${analysis.failureLimit}): ${reasons}; the step holds until a check passes`;
    return { kind: 'hold', gate: false, waiting: { reason: 'failed_check', message } };
  }
  if (check.verdict === 'inconclusive') {
    const limit = inconclusiveLimitOf(analysis);
    if (limit > 0 && counters.consecutiveInconclusive >= limit) {
      return { kind: 'rollback', reason: `${counters.consecutiveInconclusive} inconclusive checks in a row reached inconclusiveLimit ${limit}: ${reasons}` };
    }
    const wait = check.wait ?? { reason: 'inconclusive' as const, message: reasons };
    const rollsBackAt = limit > 0 ? ` (${counters.consecutiveInconclusive} of ${limit} inconclusive checks in a row roll back)` : '';
    return { kind: 'hold', gate: false, waiting: withEstimate(ctx, check, wait.reason, `${stripStop(wait.message)}; the step holds${rollsBackAt}`, wait.candidateRequests) };
  }

  // A passing check.
  const bakeMs = step.bake ?? 0;
  const baked = bakedMs >= bakeMs;
  if (!readinessRequired(ctx)) return baked ? { kind: 'end', reason: 'baked: the check passed' } : { kind: 'bake' };
  if (check.ready) {
    if (baked) return { kind: 'end', reason: 'baked and ready' };
    if (step.weight <= READINESS_REQUIRED_ABOVE && counters.stepChecks >= MIN_CHECKS_BEFORE_EARLY_END) return { kind: 'end', reason: 'ready: the evidence bounds every metric below its tolerance' };
    return { kind: 'bake' };
  }
  if (!baked) return { kind: 'bake' };
  const maxExtensions = analysis.maxExtensionChecks;
  const extensionsLeft = counters.stepExtensions < maxExtensions;
  const unready = `the evidence does not yet bound every metric below its tolerance${check.wait ? ` (${stripStop(check.wait.message)})` : ''}`;
  if (isReadinessGate(ctx)) {
    if (extensionsLeft) {
      const message = `${unready}; going beyond ${READINESS_REQUIRED_ABOVE}% needs it, so the step is extended (${counters.stepExtensions} of ${maxExtensions} extra checks)`;
      return { kind: 'extend', waiting: withEstimate(ctx, check, 'needs_evidence', message, check.wait?.candidateRequests) };
    }
    const message =
      `holding at ${step.weight}%: after ${counters.stepChecks} checks ${unready}, which going beyond ${READINESS_REQUIRED_ABOVE}% requires; ` +
      `checks go on and the rollout moves on once it does (promote or abort to decide now)`;
    return { kind: 'hold', gate: true, waiting: withEstimate(ctx, check, 'needs_evidence', message, check.wait?.candidateRequests) };
  }
  if (check.marginal && extensionsLeft) {
    const message = `${unready}, and the evidence leans toward a regression: the step is extended (${counters.stepExtensions} of ${maxExtensions} extra checks)`;
    // It ends when ready, when nothing leans any more, or when the extensions run out: at most that many checks' traffic.
    const cap = check.candidateRate === undefined ? undefined : (maxExtensions - counters.stepExtensions) * check.candidateRate * (analysis.interval / 1000);
    const needed = [check.wait?.candidateRequests, cap].filter((x): x is number => x !== undefined);
    return { kind: 'extend', waiting: withEstimate(ctx, check, 'needs_evidence', message, needed.length > 0 ? Math.min(...needed) : undefined) };
  }
  return { kind: 'end', reason: check.marginal ? 'baked; extensions used up' : 'baked: the check passed, nothing leans toward a regression' };
}

function withEstimate(ctx: StepContext, check: CheckOutcome, reason: WaitReason, message: string, candidateRequests: number | undefined): Waiting {
  if (candidateRequests === undefined || !Number.isFinite(candidateRequests)) return { reason, message: `${message}.` };
  const needed = Math.max(0, Math.ceil(candidateRequests));
  const rate = check.candidateRate;
  // A step ends only at a check: the wait is whole intervals.
  const intervalSeconds = ctx.analysis.interval / 1000;
  const seconds = rate !== undefined && rate > 0 ? Math.ceil(needed / rate / intervalSeconds) * intervalSeconds : undefined;
  const estimate: Estimate = seconds === undefined ? { candidateRequests: needed } : { candidateRequests: needed, seconds };
  const at = seconds === undefined ? '' : `, about ${formatDuration(Math.max(1, seconds) * 1000)} at the current traffic`;
  return { reason, message: `${message}; about ${needed} more candidate requests${at}.`, estimate };
}

const stripStop = (s: string) => s.replace(/[.\s]+$/, '');
