import { analysisOf as parsedAnalysis } from '../helpers/specs';
import {
  NO_CHECKS,
  decideAfterCheck,
  decideOnMetricsOutage,
  inconclusiveLimitOf,
  isReadinessGate,
  newStepCounters,
  type CheckCounters,
  type CheckOutcome,
  type StepContext,
} from '../../src/workflows/step-policy';
import type { AnalysisSpec } from '../../src/spec';

const SEQUENTIAL = { name: 'sequential', failIsFinal: true, adaptive: true };
const THRESHOLD = { name: 'threshold', failIsFinal: false, adaptive: false };
const INTERVAL = 30_000;

const analysisOf = (analysis: Record<string, unknown> = {}): AnalysisSpec => parsedAnalysis(analysis as never);

function context(weight: number, nextWeight: number | undefined, overrides: Partial<StepContext> = {}): StepContext {
  return { analysis: analysisOf(), judge: SEQUENTIAL, step: { weight, bake: 10 * INTERVAL }, nextWeight, ...overrides };
}

const pass = (over: Partial<CheckOutcome> = {}): CheckOutcome => ({ verdict: 'pass', reasons: ['fine.'], ready: false, marginal: false, ...over });
const ready = pass({ ready: true });

/** Runs checks through the policy as a step would, one interval each; returns each decision. */
function drive(ctx: StepContext, checks: CheckOutcome[], start: CheckCounters = NO_CHECKS) {
  let counters = start;
  return checks.map((check) => {
    const bake = ctx.step.bake ?? 0;
    const out = decideAfterCheck(ctx, counters, check, { bakeWasOver: counters.stepChecks * INTERVAL >= bake, bakedMs: (counters.stepChecks + 1) * INTERVAL });
    counters = out.counters;
    return { ...out.decision, counters };
  });
}

describe('step policy', () => {
  test('a small step ends early once ready, after at least two checks', () => {
    const ds = drive(context(5, 10), [ready, ready]);
    expect(ds.map((d) => d.kind)).toEqual(['bake', 'end']);
    expect(ds[1]).toMatchObject({ reason: expect.stringMatching(/^ready/) });
  });

  test('a step above 25% serves its whole bake even when ready', () => {
    const ds = drive(context(50, 100), Array.from({ length: 10 }, () => ready));
    expect(ds.map((d) => d.kind)).toEqual([...Array(9).fill('bake'), 'end']);
  });

  test('not ready at the end of the bake: ends, unless the evidence leans toward a regression (extended up to maxExtensionChecks)', () => {
    const ctx = context(5, 10, { analysis: analysisOf({ maxExtensionChecks: 3 }) });
    expect(drive(ctx, Array.from({ length: 10 }, () => pass())).at(-1)!.kind).toBe('end');
    const leaning = drive(ctx, Array.from({ length: 13 }, () => pass({ marginal: true })));
    // The check that ends the bake, then 3 extra checks: the last of them ends the step.
    expect(leaning.slice(9).map((d) => d.kind)).toEqual(['extend', 'extend', 'extend', 'end']);
    expect(leaning[9]).toMatchObject({ waiting: { reason: 'needs_evidence', message: expect.stringMatching(/leans toward a regression: the step is extended \(0 of 3/) } });
    expect(leaning.at(-1)).toMatchObject({ reason: 'baked; extensions used up' });
  });

  test('the readiness gate: leaving a step for more than 25% waits for ready, extended then holding, and ends once ready', () => {
    const ctx = context(25, 50, { analysis: analysisOf({ maxExtensionChecks: 2 }) });
    expect(isReadinessGate(ctx)).toBe(true);
    const ds = drive(ctx, [...Array.from({ length: 14 }, () => pass({ wait: { reason: 'needs_evidence', message: 'not yet: error rate', candidateRequests: 1234.2 }, candidateRate: 10 })), ready]);
    expect(ds.map((d) => d.kind)).toEqual([...Array(9).fill('bake'), 'extend', 'extend', 'hold', 'hold', 'hold', 'end']);
    const held = ds[11]!;
    expect(held).toMatchObject({ kind: 'hold', gate: true, waiting: { reason: 'needs_evidence', estimate: { candidateRequests: 1235, seconds: 150 } } }); // 124 s of traffic: the fifth 30 s check
    if (held.kind !== 'hold') throw new Error('unreachable');
    expect(held.waiting.message).toMatch(/^holding at 25%: after 12 checks the evidence does not yet bound every metric below its tolerance \(not yet: error rate\), which going beyond 25% requires/);
    expect(held.waiting.message).toMatch(/about 1235 more candidate requests, about 2m30s at the current traffic\.$/);
  });

  test('the gate is about the next weight: before 100% too, never from 100%, and not under readiness advisory or a non-adaptive judge', () => {
    expect(isReadinessGate(context(10, 25))).toBe(false);
    expect(isReadinessGate(context(10, 30))).toBe(true);
    expect(isReadinessGate(context(50, 100))).toBe(true);
    expect(isReadinessGate(context(100, undefined))).toBe(false);
    expect(isReadinessGate(context(25, 50, { analysis: analysisOf({ readiness: 'advisory' }) }))).toBe(false);
    expect(isReadinessGate(context(25, 50, { judge: THRESHOLD }))).toBe(false);
  });

  test('readiness advisory: a step ends after its bake on a passing check, never early, never extended', () => {
    const ctx = context(25, 50, { analysis: analysisOf({ readiness: 'advisory' }) });
    const ds = drive(ctx, [ready, ready, ...Array.from({ length: 8 }, () => pass({ marginal: true }))]);
    expect(ds.map((d) => d.kind)).toEqual([...Array(9).fill('bake'), 'end']);
  });

  test('only a passing check ends a step: inconclusive and failed-under-the-limit checks hold it, with their reason', () => {
    const ctx = context(10, 50, { judge: THRESHOLD, analysis: analysisOf({ judge: 'threshold', failureLimit: 3 }) });
    const thin: CheckOutcome = { verdict: 'inconclusive', reasons: ['few'], ready: false, marginal: false, wait: { reason: 'thin_traffic', message: 'the candidate served 12 requests, fewer than minRequests 50.', candidateRequests: 38 }, candidateRate: 0.4 };
    const failed: CheckOutcome = { verdict: 'fail', reasons: ['error rate 9% above 5%'], ready: false, marginal: false };
    const ds = drive(ctx, [...Array.from({ length: 10 }, () => pass()).slice(0, 9), thin, failed, pass()]);
    expect(ds.slice(9).map((d) => d.kind)).toEqual(['hold', 'hold', 'end']);
    expect(ds[9]).toMatchObject({ waiting: { reason: 'thin_traffic', estimate: { candidateRequests: 38, seconds: 120 } } }); // whole checks: 95 s of traffic is four
    expect(ds[10]).toMatchObject({ waiting: { reason: 'failed_check', message: expect.stringMatching(/check failed \(1 of failureLimit 3\)/) } });
  });

  test.each(['srm', 'metrics_missing', 'inconclusive'] as const)('an inconclusive check carries the judge\'s reason %s', (reason) => {
    const [d] = drive(context(10, 50), [{ verdict: 'inconclusive', reasons: ['x'], ready: false, marginal: false, wait: { reason, message: 'why.' } }]);
    expect(d).toMatchObject({ kind: 'hold', waiting: { reason, message: expect.stringMatching(/^why; the step holds \(1 of 10 inconclusive checks in a row roll back\)\.$/) } });
  });

  test('failures: final for the sequential judge, counted up to failureLimit for the threshold judge', () => {
    const failed: CheckOutcome = { verdict: 'fail', reasons: ['errors: worse.'], ready: false, marginal: false };
    expect(drive(context(10, 50), [failed])[0]).toEqual(expect.objectContaining({ kind: 'rollback', reason: 'the sequential judge failed the candidate: errors: worse.' }));
    const ctx = context(10, 50, { judge: THRESHOLD, analysis: analysisOf({ judge: 'threshold', failureLimit: 2 }) });
    const ds = drive(ctx, [failed, pass(), failed]);
    expect(ds.map((d) => d.kind)).toEqual(['hold', 'bake', 'rollback']);
    expect(ds[2]).toMatchObject({ reason: '2 failed checks reached failureLimit 2: errors: worse.' });
  });

  test('the inconclusive limit: the spec\'s, else the sequential judge\'s own; a passing check resets the streak', () => {
    expect(inconclusiveLimitOf(analysisOf())).toBe(10);
    expect(inconclusiveLimitOf(analysisOf({ inconclusiveLimit: 3 }))).toBe(3);
    expect(inconclusiveLimitOf(analysisOf({ sequential: { maxConsecutiveInconclusive: 4 } }))).toBe(4);
    expect(inconclusiveLimitOf(analysisOf({ judge: 'threshold' }))).toBe(0);
    const ctx = context(10, 50, { analysis: analysisOf({ inconclusiveLimit: 3 }) });
    const held: CheckOutcome = { verdict: 'inconclusive', reasons: ['thin.'], ready: false, marginal: false };
    const ds = drive(ctx, [held, held, pass(), held, held, held]);
    expect(ds.map((d) => d.kind)).toEqual(['hold', 'hold', 'bake', 'hold', 'hold', 'rollback']);
    expect(ds[5]).toMatchObject({ reason: '3 inconclusive checks in a row reached inconclusiveLimit 3: thin.' });
    // Too little traffic neither counts nor resets the streak: the step waits for traffic.
    const thin: CheckOutcome = { ...held, wait: { reason: 'thin_traffic', message: 'few.' } };
    const waits = drive(ctx, [held, ...Array.from({ length: 20 }, () => thin), held, held]);
    expect(waits.map((d) => d.kind)).toEqual([...Array(22).fill('hold'), 'rollback']);
    expect(waits[20]!.counters.consecutiveInconclusive).toBe(1);
    // No limit at all for the threshold judge by default.
    const unlimited = context(10, 50, { judge: THRESHOLD, analysis: analysisOf({ judge: 'threshold' }) });
    expect(drive(unlimited, Array.from({ length: 50 }, () => held)).every((d) => d.kind === 'hold')).toBe(true);
  });

  test('a metric-source outage holds the step (not counted as inconclusive) and rolls back at maxMetricsOutage', () => {
    const ctx = context(10, 50, { analysis: analysisOf({ maxMetricsOutage: '2m' }) });
    const counters = { ...NO_CHECKS, consecutiveInconclusive: 4 };
    const early = decideOnMetricsOutage(ctx, counters, { since: 't0', ms: 60_000, failedReads: 2, lastError: 'down', rollbackAt: 't1' });
    expect(early.counters).toEqual({ ...counters, stepChecks: 1 });
    expect(early.decision).toMatchObject({ kind: 'hold', waiting: { reason: 'metrics_missing', message: expect.stringMatching(/^metrics unavailable since t0 \(2 failed read\(s\)\): down; the step holds/) } });
    const late = decideOnMetricsOutage(ctx, counters, { since: 't0', ms: 120_000, failedReads: 5, lastError: 'down', rollbackAt: 't1' });
    expect(late.decision).toEqual({ kind: 'rollback', reason: 'metrics unavailable for 2m (5 failed reads), at least analysis.maxMetricsOutage: down' });
  });

  test('counters: checks and extensions per step, failures and the inconclusive streak for the rollout', () => {
    const ds = drive(context(5, 10, { analysis: analysisOf({ maxExtensionChecks: 5 }) }), Array.from({ length: 12 }, () => pass({ marginal: true })));
    expect(ds.at(-1)!.counters).toEqual({ stepChecks: 12, stepExtensions: 2, failedChecks: 0, consecutiveInconclusive: 0 });
    expect(newStepCounters({ stepChecks: 12, stepExtensions: 2, failedChecks: 1, consecutiveInconclusive: 2 })).toEqual({ stepChecks: 0, stepExtensions: 0, failedChecks: 1, consecutiveInconclusive: 2 });
  });
});
