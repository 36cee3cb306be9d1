/**
 * The sequential judge: compares the candidate with the concurrent baseline interval by
 * interval, with one anytime-valid e-process per metric kept for the whole rollout (never reset
 * between checks or steps; it mixes in copies of itself started after each interval, with fixed
 * weights summing to 1, so a late regression is not held back by the healthy intervals before
 * it: ratio-test.ts, RESTART_SHARE), so the false-rollback probability of the whole rollout is
 * at most `alpha` however many checks are made and however the steps are timed.
 *
 *  - errors: rate ratio candidate/baseline, H0 ratio ≤ r₀ (ratio-test.ts);
 *  - latency and time-to-first-byte: the same test on the counts of requests slower than a
 *    boundary fixed from the baseline's own early distribution (boundary.ts);
 *  - SLO guardrails, when the spec gives `analysis.thresholds`: one-sample anytime-valid tests
 *    that the candidate's error rate, or its p95 latency, is above the limit, on the candidate's
 *    cumulative counts at every weight (slo.ts). They get `sloAlphaShare` of α (split evenly),
 *    the comparison tests keep the rest, so the whole rollout stays within α;
 *  - resource use (CPU seconds per request, memory): ratio thresholds, a few breaches in a row;
 *  - hard fast path for a catastrophic candidate; holds (inconclusive) for thin traffic, a
 *    sample-ratio mismatch or missing metrics (the step policy limits how many in a row).
 *
 * Pure and deterministic (no I/O, clocks, randomness or Node built-ins): it runs inside
 * Temporal workflow code. The state is plain JSON and carries through continue-as-new.
 */
import type { Judge, JudgeInput, Judgement, Verdict } from '../judge';
import { summarize, type Histogram, type VersionMetrics } from '../metrics';
import { medianOfLatest, passageCdf } from './first-passage';
import { chooseBoundaryIndex, exceedances, isValidHistogram, scaleToleranceRatio } from './boundary';
import { resolveOptions, type SequentialJudgeOptions, type SequentialJudgeOptionsInput } from './options';
import {
  addInterval,
  lowerLogE,
  maximumLikelihoodRatio,
  newRatioEvidence,
  observedRatio,
  regressionLogE,
  readinessPassage,
  upperConfidenceBound,
  type RatioEvidence,
} from './ratio-test';
import { rateUpperBound, requestsUntilRateBound } from './rate-bound';
import { addLatencyInterval, initialSloState, P95_EXCEEDANCE, sloLogE, type SloName, type SloProcess, type SloState } from './slo';
import { sampleRatioTest, type SrmResult } from './srm';

export type LatencyMetric = 'latency' | 'ttfb';
type HoldReason = 'thin_traffic' | 'srm' | 'metrics_missing';
export type MetricName = 'errors' | LatencyMetric;

export interface ExceedanceState {
  /** Boundary (ms, a bucket edge) for the next interval, chosen from earlier baseline data; null until the first is chosen. */
  boundaryMs: number | null;
  /** Baseline histograms pooled since the boundary was last chosen (null when none are pending). */
  calibration: Histogram | null;
  evidence: RatioEvidence;
}

export interface SequentialState {
  version: 1;
  checks: number;
  /** Unused since the step policy counts inconclusive checks; kept in states written before. */
  consecutiveInconclusive?: number;
  /** Candidate requests since the last conclusive (pass) check. */
  pendingCandidateRequests: number;
  totals: { candidateRequests: number; candidateErrors: number; baselineRequests: number; baselineErrors: number };
  /** α per tested metric, fixed at the first comparison (null before it). */
  alphas: { errors: number; latency: number; ttfb: number } | null;
  errors: RatioEvidence;
  latency: ExceedanceState;
  ttfb: ExceedanceState;
  resourceBreaches: number;
  /**
   * SLO guardrails (analysis.thresholds), fixed at the first check: their α and cumulative
   * candidate counts. Absent in states written before them: set up at the next check (the
   * comparison's α, if already fixed then, is left as it was; see `startSlo`).
   */
  slo?: SloState;
  /** Once failed, always failed: the reasons of the first failure. */
  failure: string[] | null;
}

export const SEQUENTIAL_JUDGE_NAME = 'sequential';

/** A sequential judge with the given options (defaults: DEFAULT_SEQUENTIAL_OPTIONS). */
export function createSequentialJudge(input: SequentialJudgeOptionsInput = {}): Judge<SequentialState> {
  const options = resolveOptions(input);
  return {
    name: SEQUENTIAL_JUDGE_NAME,
    failIsFinal: true,
    adaptive: true,
    initialState: () => initialSequentialState(options),
    judge: (judgeInput, state) => judgeInterval(options, judgeInput, state),
  };
}

export function initialSequentialState(options: SequentialJudgeOptions): SequentialState {
  const exceedance = (r0: number): ExceedanceState => ({ boundaryMs: null, calibration: null, evidence: newRatioEvidence(r0, options.alternatives) });
  return {
    version: 1,
    checks: 0,
    pendingCandidateRequests: 0,
    totals: { candidateRequests: 0, candidateErrors: 0, baselineRequests: 0, baselineErrors: 0 },
    alphas: null,
    errors: newRatioEvidence(options.tolerances.errors, options.alternatives),
    latency: exceedance(options.tolerances.latency),
    ttfb: exceedance(options.tolerances.ttfb),
    resourceBreaches: 0,
    failure: null,
  };
}

/** One metric's evidence in a decision (`evidence.errors`, `.latency`, `.ttfb`). */
export interface MetricReport {
  tested: boolean;
  alpha: number;
  /** The e-value at which the judge rolls back (1/α). */
  rollbackAt: number;
  eValue: number;
  /** Evidence for "ratio < r₀" (readiness), and the level it needs. */
  readyEValue: number;
  readyAt: number;
  ready: boolean;
  r0: number;
  /** Upper end of the (1 − readyAlpha) confidence sequence for the ratio; null = unbounded yet. */
  upperBound: number | null;
  estimate: number | null;
  observedRatio: number | null;
  intervals: number;
  candidate: { events: number; requests: number };
  baseline: { events: number; requests: number };
  boundaryMs?: number | null;
  calibrationObservations?: number;
  /** Errors: upper (1 − readyAlpha) bound on the candidate's error rate, and the limit it is held to. */
  errorRateUpperBound?: number;
  errorRateLimit?: number;
}

function judgeInterval(options: SequentialJudgeOptions, input: JudgeInput, previous: SequentialState): Judgement<SequentialState> {
  const { interval, analysis } = input;
  const weight = input.candidateWeight;
  const state = cloneState(previous);
  const metrics = { baseline: safeSummary(interval?.baseline), candidate: safeSummary(interval?.candidate) };

  if (state.failure) {
    return { verdict: 'fail', reasons: ['the rollout already failed: ' + state.failure.join(' ')], metrics, evidence: report(options, state, undefined), readyToAdvance: false, state };
  }
  state.checks += 1;

  const failures: string[] = [];
  const holds: string[] = [];
  const notes: string[] = [];
  const slo = startSlo(options, state, analysis);
  /** Why the check holds: the code of the first hold (see step-policy WAIT_REASONS). */
  let holdReason: HoldReason | undefined;
  const hold = (reason: HoldReason, sentence: string) => {
    holdReason ??= reason;
    holds.push(sentence);
  };
  const A = interval?.baseline;
  const B = interval?.candidate;
  const candidateOk = validCounts(B);
  const baselineOk = validCounts(A);
  if (!candidateOk) hold('metrics_missing', 'candidate request/error counts are missing or malformed.');
  if (!baselineOk && weight < 100) hold('metrics_missing', 'baseline request/error counts are missing or malformed.');

  // Cumulative totals and the hard fast path.
  if (candidateOk) {
    state.totals.candidateRequests += B.requests;
    state.totals.candidateErrors += B.errors;
    state.pendingCandidateRequests += B.requests;
    addSloInterval(slo, B, notes);
  }
  if (baselineOk) {
    state.totals.baselineRequests += A.requests;
    state.totals.baselineErrors += A.errors;
  }
  if (candidateOk) {
    const catastrophe = catastrophic(options, B, baselineOk ? A : undefined, 'in this interval') ??
      catastrophic(options, { requests: state.totals.candidateRequests, errors: state.totals.candidateErrors },
        { requests: state.totals.baselineRequests, errors: state.totals.baselineErrors }, 'since the rollout started');
    if (catastrophe) failures.push(catastrophe);
  }

  let srm: SrmResult | undefined;
  if (weight <= 0) {
    hold('thin_traffic', `the candidate's configured weight is ${weight}%, so there is nothing to judge.`);
  } else if (weight >= 100) {
    notes.push('at 100% there is no concurrent baseline; the comparison evidence is carried unchanged.');
    if (candidateOk && B.requests === 0) hold('thin_traffic', 'the candidate served no requests in the interval (missing scrape?).');
  } else if (candidateOk && baselineOk) {
    // A version without requests is thin traffic, unless the split itself is off: no candidate
    // request among many at its weight is a sample-ratio mismatch (something is wrong), not a wait.
    if (A.requests + B.requests > 0) srm = sampleRatioTest(B.requests, A.requests, weight, options.srmAlpha);
    if (srm?.mismatch) {
      hold(
        'srm',
        `sample-ratio mismatch: the candidate got ${pct(srm.observedShare)} of ${A.requests + B.requests} requests against a configured ${weight}% (p ≤ ${sci(srm.pValue)} < ${sci(options.srmAlpha)}); the interval is not compared.`,
      );
    } else if (B.requests === 0) {
      hold('thin_traffic', 'the candidate served no requests in the interval (missing scrape or no traffic).');
    } else if (A.requests === 0) {
      hold('thin_traffic', 'the baseline served no requests in the interval (missing scrape?).');
    } else {
      updateEvidence(options, state, A, B, hold);
    }
  }

  // Rejections (sticky).
  const digests = digest(options, state);
  const alphas = state.alphas;
  if (alphas) {
    for (const name of ['errors', 'latency', 'ttfb'] as const) {
      const alpha = alphas[name];
      if (!(alpha > 0)) continue;
      const evidence = evidenceOf(state, name);
      const logE = digests[name].logE;
      if (logE >= Math.log(1 / alpha)) failures.push(regressionSentence(name, state, evidence, logE, alpha));
    }
  }

  // SLO guardrails (sticky like every failure).
  for (const [name, p] of sloProcesses(slo)) {
    const logE = sloLogE(name, p);
    if (logE >= Math.log(1 / p.alpha)) failures.push(sloBreachSentence(name, p, logE));
  }

  // Resource use.
  const resource = resourceCheck(options, A, B);
  if (resource.breaches.length > 0) {
    state.resourceBreaches += 1;
    const sentence = `${resource.breaches.join('; ')} (${state.resourceBreaches} check(s) in a row, ${options.resource.breachesToFail} fail).`;
    if (state.resourceBreaches >= options.resource.breachesToFail) failures.push(`resource use: ${sentence}`);
    else notes.push(`resource use: ${sentence}`);
  } else if (resource.checked) {
    state.resourceBreaches = 0;
  }

  let thinBy: number | undefined;
  if (state.pendingCandidateRequests < analysis.minRequests && holds.length === 0) {
    thinBy = analysis.minRequests - state.pendingCandidateRequests;
    hold(
      'thin_traffic',
      `the candidate served ${state.pendingCandidateRequests} requests since the last conclusive check, fewer than minRequests ${analysis.minRequests}.`,
    );
  }

  // Too many inconclusive checks in a row are the step policy's to count (src/workflows/step-policy.ts).
  const verdict: Verdict = failures.length > 0 ? 'fail' : holds.length > 0 ? 'inconclusive' : 'pass';
  if (verdict === 'pass') state.pendingCandidateRequests = 0;

  const readiness = readyMetrics(state, digests);
  const readyToAdvance =
    verdict === 'pass' && readiness.every((m) => m.ready) && readiness.length > 0 && state.totals.candidateRequests >= options.readyMinRequests;
  const marginal = testedMetrics(state).some((name) => digests[name].logE >= 0) || sloProcesses(slo).some(([name, p]) => sloLogE(name, p) >= 0);
  let wait: Judgement<SequentialState>['wait'];
  if (verdict === 'inconclusive' && holdReason) wait = { reason: holdReason, message: holds.join(' '), ...(thinBy !== undefined ? { candidateRequests: thinBy } : {}) };
  else if (verdict === 'pass' && !readyToAdvance) wait = needsEvidence(options, state, digests, weight);

  let reasons: string[];
  if (verdict === 'fail') {
    state.failure = failures;
    reasons = failures;
  } else if (verdict === 'inconclusive') {
    reasons = [...holds, ...notes];
  } else {
    reasons = [...passSentences(options, state, digests), ...sloPassSentences(slo), ...notes];
    if (readyToAdvance) reasons.push('every metric is bounded below its tolerance: ready to advance.');
  }
  return { verdict, reasons, metrics, evidence: report(options, state, srm, digests), readyToAdvance, marginal, ...(wait ? { wait } : {}), state };
}

function updateEvidence(options: SequentialJudgeOptions, state: SequentialState, A: VersionMetrics, B: VersionMetrics, hold: (reason: HoldReason, sentence: string) => void): void {
  const latencyOk = isValidHistogram(A.latency) && isValidHistogram(B.latency) && total(A.latency) > 0 && total(B.latency) > 0;
  const ttfbOk = isValidHistogram(A.timeToFirstByte) && isValidHistogram(B.timeToFirstByte) && total(A.timeToFirstByte) > 0 && total(B.timeToFirstByte) > 0;
  if (!state.alphas) {
    // The tested set is fixed once, from which metrics exist, never from their values.
    // With SLO guardrails the comparison keeps 1 − their share of α (fixed at the first check).
    const alpha = options.alpha * (1 - (state.slo?.share ?? 0));
    const { errors, latency, ttfb } = options.alphaSplit;
    state.alphas = ttfbOk
      ? { errors: alpha * errors, latency: alpha * latency, ttfb: alpha * ttfb }
      : { errors: alpha * errors, latency: alpha * (latency + ttfb), ttfb: 0 };
  }
  state.errors = addInterval(state.errors, { candidateTrials: B.requests, baselineTrials: A.requests, candidateEvents: B.errors, baselineEvents: A.errors });

  const latency = updateExceedance(options, 'latency', state.latency, latencyOk ? A.latency : undefined, latencyOk ? B.latency : undefined);
  if (latency) hold('metrics_missing', `latency: ${latency}`);
  if (state.alphas.ttfb > 0) {
    const ttfb = updateExceedance(options, 'ttfb', state.ttfb, ttfbOk ? A.timeToFirstByte : undefined, ttfbOk ? B.timeToFirstByte : undefined);
    if (ttfb) hold('metrics_missing', `time to first byte: ${ttfb}`);
  }
}

/**
 * Updates one exceedance process in place; returns a hold sentence when the metric is missing.
 * The interval is first tested at the boundary chosen before it (if any), then its baseline
 * histogram joins the pool the next boundary is chosen from (boundary.ts: the boundary is
 * predictable, so the test stays valid while it tracks the baseline's quantile).
 */
function updateExceedance(options: SequentialJudgeOptions, name: LatencyMetric, process: ExceedanceState, a: Histogram | undefined, b: Histogram | undefined): string | undefined {
  if (!a || !b) return 'the histogram is missing, empty or malformed for one of the versions.';
  if (process.boundaryMs !== null) {
    const eA = exceedances(a, process.boundaryMs);
    const eB = exceedances(b, process.boundaryMs);
    if (eA === undefined || eB === undefined) return `the boundary ${process.boundaryMs} ms is no longer a bucket edge of the histograms.`;
    process.evidence = addInterval(process.evidence, { candidateTrials: total(b), baselineTrials: total(a), candidateEvents: eB, baselineEvents: eA });
  }
  // Pool the baseline (only) toward the next boundary.
  const cal = process.calibration;
  if (cal && sameEdges(cal, a)) cal.counts = cal.counts.map((n, i) => n + (a.counts[i] ?? 0));
  else process.calibration = { boundsMs: [...a.boundsMs], counts: [...a.counts] };
  const pool = process.calibration!;
  if (total(pool) >= options.boundaryMinBaseline) {
    const j = chooseBoundaryIndex(pool.boundsMs, pool.counts, options.latencyQuantile);
    if (j !== undefined) {
      const first = process.boundaryMs === null;
      process.boundaryMs = pool.boundsMs[j]!;
      if (first && process.evidence.intervals === 0) {
        // The tolerance, fixed once before any interval is tested: the larger of the ratio
        // tolerance and the exceedance ratio a uniform slow-down by the scale tolerance gives.
        const r0 = Math.max(options.tolerances[name], scaleToleranceRatio(pool.boundsMs, pool.counts, j, options.scaleTolerance[name]));
        process.evidence = newRatioEvidence(r0, options.alternatives);
      }
      process.calibration = null;
    }
  }
  return undefined;
}

function evidenceOf(state: SequentialState, name: MetricName): RatioEvidence {
  return name === 'errors' ? state.errors : state[name].evidence;
}

/** Everything derived from one metric's evidence, computed once per check. */
interface Digest {
  logE: number;
  readyLogE: number;
  upperBound: number | undefined;
  /** Errors only: the candidate's error-rate bound, and the rate it must stay under (baseline + slack). */
  rateBound?: { upperBound: number; limit: number };
  ready: boolean;
}
type Digests = Record<MetricName, Digest>;

function digest(options: SequentialJudgeOptions, state: SequentialState): Digests {
  const out = {} as Digests;
  for (const name of ['errors', 'latency', 'ttfb'] as const) {
    const evidence = evidenceOf(state, name);
    const readyLogE = lowerLogE(evidence);
    const upperBound = upperConfidenceBound(evidence, options.readyAlpha);
    let ready = readyLogE >= Math.log(1 / options.readyAlpha);
    let rateBound: Digest['rateBound'];
    if (name === 'errors' && options.readyErrorRateSlack > 0 && evidence.baselineTrials > 0) {
      // Absolute side: rare or absent errors cannot bound a ratio, but can bound a rate.
      const limit = evidence.baselineEvents / evidence.baselineTrials + options.readyErrorRateSlack;
      rateBound = { upperBound: rateUpperBound(evidence.candidateEvents, evidence.candidateTrials, options.readyAlpha), limit };
      ready ||= rateBound.upperBound <= limit;
    }
    if (name !== 'errors' && state[name].boundaryMs === null) ready = false;
    out[name] = { logE: regressionLogE(evidence), readyLogE, upperBound, ...(rateBound ? { rateBound } : {}), ready };
  }
  return out;
}

/** Readiness of each tested metric. */
function readyMetrics(state: SequentialState, digests: Digests): Array<{ name: MetricName; ready: boolean }> {
  return testedMetrics(state).map((name) => ({ name, ready: digests[name].ready }));
}

/** The metrics this rollout tests (fixed at the first comparison). */
function testedMetrics(state: SequentialState): MetricName[] {
  if (!state.alphas) return [];
  return (['errors', 'latency', 'ttfb'] as const).filter((name) => state.alphas![name] > 0);
}

/**
 * Why a passing check is not ready, and (when every unready metric can tell) the candidate
 * requests still needed at this weight if the candidate keeps up with the baseline from now on.
 */
function needsEvidence(options: SequentialJudgeOptions, state: SequentialState, digests: Digests, weight: number): NonNullable<Judgement<SequentialState>['wait']> {
  const unready = testedMetrics(state).filter((name) => !digests[name].ready);
  // Each unready metric's wait as a CDF over candidate requests; the step waits for the latest (its median is reported).
  const waits: Array<{ cdf: (n: number) => number; typical: number } | undefined> = unready.map((name) => {
    if (name !== 'errors' && state[name].boundaryMs === null) return undefined; // still calibrating its boundary
    const evidence = evidenceOf(state, name);
    const byRatio = readinessPassage(evidence, options.readyAlpha, weight / 100);
    const bound = digests[name].rateBound;
    const baselineRate = evidence.baselineTrials > 0 ? evidence.baselineEvents / evidence.baselineTrials : 0;
    // The rate bound's wait is nearly certain (rare events barely move it); either way makes errors ready.
    const byRate = bound ? requestsUntilRateBound(evidence.candidateEvents, evidence.candidateTrials, bound.limit, options.readyAlpha, baselineRate) : undefined;
    if (byRatio === undefined && byRate === undefined) return undefined;
    if (byRatio === 0 || byRate === 0) return { cdf: () => 1, typical: 0 };
    const rateCdf = (n: number) => (byRate !== undefined && n >= byRate ? 1 : 0);
    if (byRatio === undefined) return { cdf: rateCdf, typical: byRate! };
    return { cdf: (n) => Math.max(rateCdf(n), passageCdf(n, byRatio)), typical: Math.min(byRatio.mean, byRate ?? Infinity) };
  });
  const shortOfMinimum = Math.max(0, options.readyMinRequests - state.totals.candidateRequests);
  const parts: string[] = unready.map((name) => `${LABEL[name]}${digests[name].upperBound === undefined ? ' (ratio unbounded so far)' : ` (ratio ≤ ${sig(digests[name].upperBound!)} so far, tolerance ${sig(evidenceOf(state, name).r0)}×)`}`);
  if (shortOfMinimum > 0) parts.push(`${state.totals.candidateRequests} of the ${options.readyMinRequests} candidate requests readiness needs`);
  // A detail for the step policy's sentence ("the evidence does not yet bound every metric below its tolerance (…)").
  const message = parts.length > 0 ? `not yet: ${parts.join('; ')}` : 'no comparison yet';
  if (waits.some((w) => w === undefined)) return { reason: 'needs_evidence', message };
  const known = waits as Array<{ cdf: (n: number) => number; typical: number }>;
  const median = medianOfLatest(known.map((w) => w.cdf), 4 * Math.max(1, ...known.map((w) => w.typical)));
  return { reason: 'needs_evidence', message, candidateRequests: Math.max(shortOfMinimum, median) };
}

function metricReport(options: SequentialJudgeOptions, state: SequentialState, name: MetricName, d: Digest): MetricReport {
  const evidence = evidenceOf(state, name);
  const alpha = state.alphas?.[name] ?? 0;
  const ucb = d.upperBound;
  const report: MetricReport = {
    tested: alpha > 0,
    alpha,
    rollbackAt: alpha > 0 ? sig(1 / alpha) : 0,
    eValue: sig(capExp(d.logE)),
    readyEValue: sig(capExp(d.readyLogE)),
    readyAt: sig(1 / options.readyAlpha),
    ready: alpha > 0 && d.ready,
    r0: evidence.r0,
    upperBound: ucb === undefined ? null : sig(ucb),
    ...(d.rateBound ? { errorRateUpperBound: sig(d.rateBound.upperBound), errorRateLimit: sig(d.rateBound.limit) } : {}),
    estimate: nullable(maximumLikelihoodRatio(evidence)),
    observedRatio: nullable(observedRatio(evidence)),
    intervals: evidence.intervals,
    candidate: { events: evidence.candidateEvents, requests: evidence.candidateTrials },
    baseline: { events: evidence.baselineEvents, requests: evidence.baselineTrials },
  };
  if (name !== 'errors') {
    const process = state[name];
    report.boundaryMs = process.boundaryMs;
    if (process.calibration) report.calibrationObservations = total(process.calibration);
  }
  return report;
}

function report(options: SequentialJudgeOptions, state: SequentialState, srm: SrmResult | undefined, digests = digest(options, state)): Record<string, unknown> {
  return {
    judge: SEQUENTIAL_JUDGE_NAME,
    alpha: options.alpha,
    checks: state.checks,
    errors: metricReport(options, state, 'errors', digests.errors),
    latency: metricReport(options, state, 'latency', digests.latency),
    ttfb: metricReport(options, state, 'ttfb', digests.ttfb),
    slo: sloReport(state.slo),
    srm: srm ? { observedShare: sig(srm.observedShare), expectedShare: srm.expectedShare, pValue: sig(srm.pValue), mismatch: srm.mismatch } : null,
    totals: { ...state.totals },
    pendingCandidateRequests: state.pendingCandidateRequests,
    resourceBreaches: state.resourceBreaches,
  };
}

const LABEL: Record<MetricName, string> = { errors: 'error rate', latency: 'latency', ttfb: 'time to first byte' };

function regressionSentence(name: MetricName, state: SequentialState, evidence: RatioEvidence, logE: number, alpha: number): string {
  const what =
    name === 'errors'
      ? `errors: candidate ${evidence.candidateEvents}/${evidence.candidateTrials} (${pct(rate(evidence.candidateEvents, evidence.candidateTrials))}) vs baseline ${evidence.baselineEvents}/${evidence.baselineTrials} (${pct(rate(evidence.baselineEvents, evidence.baselineTrials))})`
      : `${LABEL[name]}: requests slower than ${state[name].boundaryMs} ms, candidate ${evidence.candidateEvents}/${evidence.candidateTrials} (${pct(rate(evidence.candidateEvents, evidence.candidateTrials))}) vs baseline ${evidence.baselineEvents}/${evidence.baselineTrials} (${pct(rate(evidence.baselineEvents, evidence.baselineTrials))})`;
  return `${what}; the e-value ${sig(capExp(logE))} reached ${sig(1 / alpha)} (α = ${sig(alpha)}): the candidate's rate is more than ${sig(evidence.r0)}× the baseline's.`;
}

function passSentences(options: SequentialJudgeOptions, state: SequentialState, digests: Digests): string[] {
  if (!state.alphas) return ['no comparison has been possible yet.'];
  const out: string[] = [];
  for (const name of ['errors', 'latency', 'ttfb'] as const) {
    const alpha = state.alphas[name];
    if (!(alpha > 0)) continue;
    const evidence = evidenceOf(state, name);
    if (name !== 'errors' && state[name].boundaryMs === null) {
      out.push(`${LABEL[name]}: calibrating the boundary from ${total(state[name].calibration ?? { boundsMs: [], counts: [] })} baseline observations (needs ${options.boundaryMinBaseline}).`);
      continue;
    }
    const ucb = digests[name].upperBound;
    const subject = name === 'errors' ? 'errors' : `requests slower than ${state[name].boundaryMs} ms`;
    const confidence = `${Math.round((1 - options.readyAlpha) * 100)}% confidence`;
    const rateBound = digests[name].rateBound;
    const absolute = rateBound ? `; error rate ≤ ${pct(rateBound.upperBound)} with ${confidence} (ready at ≤ ${pct(rateBound.limit)}: the baseline's + ${pct(options.readyErrorRateSlack)})` : '';
    out.push(
      `${LABEL[name]}: ${subject} candidate ${evidence.candidateEvents}/${evidence.candidateTrials} vs baseline ${evidence.baselineEvents}/${evidence.baselineTrials}; e-value ${sig(capExp(digests[name].logE))} below ${sig(1 / alpha)} (tolerance ${sig(evidence.r0)}×); ratio ≤ ${ucb === undefined ? 'unbounded yet' : sig(ucb)} with ${confidence}${absolute}.`,
    );
  }
  return out;
}

/**
 * The SLO processes, set up once from the spec's thresholds at the first check that finds none
 * in the state (a new rollout, or a state written before SLOs existed). In a new rollout the
 * comparison's α is fixed later (its first comparison) and scaled by 1 − share, so the SLOs and
 * the comparison together stay within α. In a state written before, whose comparison α was
 * already fixed at the whole α, it is left unchanged (shrinking it now would not undo the looks
 * already made at it): for such a rollout the bound is α·(1 + share), and only for it.
 */
function startSlo(options: SequentialJudgeOptions, state: SequentialState, analysis: JudgeInput['analysis']): SloState {
  state.slo ??= initialSloState(analysis?.thresholds, options.alpha, options.sloAlphaShare);
  return state.slo;
}

function sloProcesses(slo: SloState | undefined): Array<[SloName, SloProcess]> {
  const out: Array<[SloName, SloProcess]> = [];
  if (slo?.errorRate) out.push(['errorRate', slo.errorRate]);
  if (slo?.latencyP95) out.push(['latencyP95', slo.latencyP95]);
  return out;
}

/** Adds the candidate's interval to the SLO processes (every weight: the tests need no baseline). */
function addSloInterval(slo: SloState, B: VersionMetrics, notes: string[]): void {
  if (slo.errorRate) {
    slo.errorRate.events += B.errors;
    slo.errorRate.requests += B.requests;
  }
  const p95 = slo.latencyP95;
  if (p95 && isValidHistogram(B.latency)) {
    const firstUntested = (p95.untestedIntervals ?? 0) === 0;
    if (addLatencyInterval(p95, B.latency) === 'untestable' && firstUntested) notes.push(untestableSentence(p95));
  }
}

function untestableSentence(p: SloProcess): string {
  return `SLO analysis.thresholds.maxLatencyP95Ms ${sig(p.limit)} ms cannot be tested: the latency histogram has no bucket edge at or above it (the last is ${p.lastEdgeMs ?? 'none'} ms), and requests slower than a lower edge are not requests slower than the limit; intervals without such an edge never fail the candidate on it (reported in evidence.slo).`;
}

const sloName = (name: SloName) => (name === 'errorRate' ? 'maxErrorRate' : 'maxLatencyP95Ms');
const sloLimit = (name: SloName, p: SloProcess) => (name === 'errorRate' ? `${sig(p.limit * 100)}%` : `${sig(p.limit)} ms`);

function sloBreachSentence(name: SloName, p: SloProcess, logE: number): string {
  const head = `SLO analysis.thresholds.${sloName(name)} ${sloLimit(name, p)}`;
  if (name === 'errorRate') {
    const counts = `${p.events}/${p.requests} (${pct(rate(p.events, p.requests))}) since the SLO check started`;
    if (p.limit <= 0) return `${head}: the candidate's error rate is above it: ${counts}; with a limit of 0 any failed request breaches it.`;
    return `${head}: the candidate's error rate is above it: ${counts}; the e-value ${sig(capExp(logE))} reached 1/α = ${sig(1 / p.alpha)} (α = ${sig(p.alpha)}).`;
  }
  const edge = p.boundaryMs !== p.limit ? ` (the first bucket edge at or above the limit)` : '';
  return (
    `${head}: the candidate's p95 latency is above it: ${p.events}/${p.requests} requests (${pct(rate(p.events, p.requests))}) were slower than ${p.boundaryMs} ms${edge}, ` +
    `more than the ${pct(P95_EXCEEDANCE)} a p95 allows; the e-value ${sig(capExp(logE))} reached 1/α = ${sig(1 / p.alpha)} (α = ${sig(p.alpha)}).`
  );
}

function sloPassSentences(slo: SloState | undefined): string[] {
  return sloProcesses(slo).map(([name, p]) => {
    const e = `e-value ${sig(capExp(sloLogE(name, p)))} below ${sig(1 / p.alpha)}`;
    if (name === 'errorRate') return `SLO error rate ≤ ${sloLimit(name, p)}: candidate ${p.events}/${p.requests} (${pct(rate(p.events, p.requests))}); ${e}.`;
    const untested = p.untestedIntervals ?? 0;
    if (p.requests === 0 && untested > 0) return `SLO p95 ≤ ${sloLimit(name, p)}: untestable (no bucket edge at or above it; the last is ${p.lastEdgeMs ?? 'none'} ms).`;
    const skipped = untested > 0 ? `; ${untested} interval(s) untested (no edge at or above the limit)` : '';
    return `SLO p95 ≤ ${sloLimit(name, p)}: candidate ${p.events}/${p.requests} (${pct(rate(p.events, p.requests))}) slower than ${p.boundaryMs ?? '–'} ms, ${pct(P95_EXCEEDANCE)} allowed; ${e}${skipped}.`;
  });
}

/** `evidence.slo`: per given SLO, its limit, counts, e-value and where it rolls back; null when none is given. */
export interface SloReport {
  share: number;
  errorRate: SloMetricReport | null;
  latencyP95: SloMetricReport | null;
}
export interface SloMetricReport {
  limit: number;
  /** p95: the edge the counted requests were slower than (null until an interval was tested). */
  boundaryMs?: number | null;
  /** The rate the test holds the counts to (maxErrorRate; 0.05 for the p95). */
  nullRate: number;
  events: number;
  requests: number;
  observedRate: number | null;
  eValue: number;
  alpha: number;
  rollbackAt: number;
  breached: boolean;
  /** False when no interval could be tested (p95: no bucket edge at or above the limit). */
  testable: boolean;
  untestedIntervals?: number;
  lastEdgeMs?: number | null;
}

function sloReport(slo: SloState | undefined): SloReport | null {
  if (!slo || (!slo.errorRate && !slo.latencyP95)) return null;
  const one = (name: SloName, p: SloProcess | null): SloMetricReport | null => {
    if (!p) return null;
    const logE = sloLogE(name, p);
    const out: SloMetricReport = {
      limit: p.limit,
      nullRate: name === 'errorRate' ? p.limit : P95_EXCEEDANCE,
      events: p.events,
      requests: p.requests,
      observedRate: p.requests > 0 ? sig(p.events / p.requests) : null,
      eValue: sig(capExp(logE)),
      alpha: sig(p.alpha),
      rollbackAt: sig(1 / p.alpha),
      breached: logE >= Math.log(1 / p.alpha),
      testable: true,
    };
    if (name === 'latencyP95') {
      out.boundaryMs = p.boundaryMs ?? null;
      out.untestedIntervals = p.untestedIntervals ?? 0;
      out.lastEdgeMs = p.lastEdgeMs ?? null;
      out.testable = !(p.requests === 0 && (p.untestedIntervals ?? 0) > 0);
    }
    return out;
  };
  return { share: slo.share, errorRate: one('errorRate', slo.errorRate), latencyP95: one('latencyP95', slo.latencyP95) };
}

function catastrophic(
  options: SequentialJudgeOptions,
  candidate: { requests: number; errors: number },
  baseline: { requests: number; errors: number } | undefined,
  when: string,
): string | undefined {
  if (candidate.requests < options.catastrophicMinRequests) return undefined;
  const candidateRate = candidate.errors / candidate.requests;
  if (candidateRate < options.catastrophicErrorRate) return undefined;
  const baselineRate = baseline && baseline.requests > 0 ? baseline.errors / baseline.requests : 0;
  if (candidateRate < options.catastrophicMinRatio * baselineRate) return undefined;
  return `catastrophic candidate: ${candidate.errors}/${candidate.requests} requests failed ${when} (${pct(candidateRate)} ≥ ${pct(options.catastrophicErrorRate)}; baseline ${pct(baselineRate)}).`;
}

function resourceCheck(options: SequentialJudgeOptions, A: VersionMetrics | undefined, B: VersionMetrics | undefined): { checked: boolean; breaches: string[] } {
  const breaches: string[] = [];
  let checked = false;
  if (!A || !B) return { checked, breaches };
  const r = options.resource;
  if (isNum(A.cpuSeconds) && isNum(B.cpuSeconds) && A.requests > 0 && B.requests > 0 && A.cpuSeconds > 0) {
    checked = true;
    const ratio = B.cpuSeconds / B.requests / (A.cpuSeconds / A.requests);
    if (ratio > r.maxCpuPerRequestRatio) {
      breaches.push(`CPU per request ${sig(B.cpuSeconds / B.requests)} s vs baseline ${sig(A.cpuSeconds / A.requests)} s is ${sig(ratio)}×, above ${r.maxCpuPerRequestRatio}×`);
    }
  }
  if (isNum(B.memoryBytes)) {
    if (isNum(A.memoryBytes) && A.memoryBytes > 0) {
      checked = true;
      const ratio = B.memoryBytes / A.memoryBytes;
      if (ratio > r.maxMemoryRatio) breaches.push(`memory ${mb(B.memoryBytes)} vs baseline ${mb(A.memoryBytes)} is ${sig(ratio)}×, above ${r.maxMemoryRatio}×`);
    }
    if (r.maxMemoryBytes > 0) {
      checked = true;
      if (B.memoryBytes > r.maxMemoryBytes) breaches.push(`memory ${mb(B.memoryBytes)} is above the cap ${mb(r.maxMemoryBytes)}`);
    }
  }
  return { checked, breaches };
}

/** A deep copy (the caller's state is never modified); cheaper than a JSON round trip. */
function cloneState(s: SequentialState): SequentialState {
  const ratio = (e: RatioEvidence): RatioEvidence => ({ ...e, alternatives: [...e.alternatives], logLik: [...e.logLik], ...(e.restarts ? { restarts: [...e.restarts] } : {}) });
  const exceedance = (x: ExceedanceState): ExceedanceState => ({
    boundaryMs: x.boundaryMs,
    calibration: x.calibration ? { boundsMs: [...x.calibration.boundsMs], counts: [...x.calibration.counts] } : null,
    evidence: ratio(x.evidence),
  });
  return {
    ...s,
    totals: { ...s.totals },
    alphas: s.alphas ? { ...s.alphas } : null,
    errors: ratio(s.errors),
    latency: exceedance(s.latency),
    ttfb: exceedance(s.ttfb),
    failure: s.failure ? [...s.failure] : null,
    ...(s.slo
      ? { slo: { share: s.slo.share, errorRate: s.slo.errorRate ? { ...s.slo.errorRate } : null, latencyP95: s.slo.latencyP95 ? { ...s.slo.latencyP95 } : null } }
      : {}),
  };
}

function validCounts(v: VersionMetrics | undefined): v is VersionMetrics {
  return (
    !!v && Number.isFinite(v.requests) && Number.isFinite(v.errors) && v.requests >= 0 && v.errors >= 0 && v.errors <= v.requests
  );
}

function safeSummary(v: VersionMetrics | undefined) {
  if (!validCounts(v)) return { requests: 0, errors: 0, errorRate: 0 };
  return summarize(isValidHistogram(v.latency) ? v : { ...v, latency: { boundsMs: [], counts: [0] } });
}

function sameEdges(a: Histogram, b: Histogram): boolean {
  return a.boundsMs.length === b.boundsMs.length && a.boundsMs.every((x, i) => x === b.boundsMs[i]);
}

const total = (h: Histogram | undefined) => (h ? h.counts.reduce((s, n) => s + n, 0) : 0);
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const rate = (e: number, n: number) => (n > 0 ? e / n : 0);
const capExp = (logE: number) => (logE > 690 ? Math.exp(690) : Math.exp(logE));
const nullable = (x: number | undefined) => (x === undefined ? null : sig(x));
const sig = (x: number) => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(4)));
const sci = (x: number) => (x === 0 ? '0' : x.toExponential(1));
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
