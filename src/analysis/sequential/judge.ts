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
 *  - resource use (CPU seconds per request, memory): ratio thresholds, a few breaches in a row;
 *  - hard fast path for a catastrophic candidate; holds (inconclusive) for thin traffic, a
 *    sample-ratio mismatch or missing metrics; too many holds in a row fail.
 *
 * Pure and deterministic (no I/O, clocks, randomness or Node built-ins): it runs inside
 * Temporal workflow code. The state is plain JSON and carries through continue-as-new.
 */
import type { Judge, JudgeInput, Judgement, Verdict } from '../judge';
import { summarize, type Histogram, type VersionMetrics } from '../metrics';
import { chooseBoundaryIndex, exceedances, isValidHistogram, scaleToleranceRatio } from './boundary';
import { resolveOptions, type SequentialJudgeOptions, type SequentialJudgeOptionsInput } from './options';
import {
  addInterval,
  lowerLogE,
  maximumLikelihoodRatio,
  newRatioEvidence,
  observedRatio,
  regressionLogE,
  upperConfidenceBound,
  type RatioEvidence,
} from './ratio-test';
import { rateUpperBound } from './rate-bound';
import { sampleRatioTest, type SrmResult } from './srm';

export type LatencyMetric = 'latency' | 'ttfb';
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
  consecutiveInconclusive: number;
  /** Candidate requests since the last conclusive (pass) check. */
  pendingCandidateRequests: number;
  totals: { candidateRequests: number; candidateErrors: number; baselineRequests: number; baselineErrors: number };
  /** α per tested metric, fixed at the first comparison (null before it). */
  alphas: { errors: number; latency: number; ttfb: number } | null;
  errors: RatioEvidence;
  latency: ExceedanceState;
  ttfb: ExceedanceState;
  resourceBreaches: number;
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
    consecutiveInconclusive: 0,
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
  const A = interval?.baseline;
  const B = interval?.candidate;
  const candidateOk = validCounts(B);
  const baselineOk = validCounts(A);
  if (!candidateOk) holds.push('candidate request/error counts are missing or malformed.');
  if (!baselineOk && weight < 100) holds.push('baseline request/error counts are missing or malformed.');

  // Cumulative totals and the hard fast path.
  if (candidateOk) {
    state.totals.candidateRequests += B.requests;
    state.totals.candidateErrors += B.errors;
    state.pendingCandidateRequests += B.requests;
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
    holds.push(`the candidate's configured weight is ${weight}%, so there is nothing to judge.`);
  } else if (weight >= 100) {
    notes.push('at 100% there is no concurrent baseline; the comparison evidence is carried unchanged.');
    if (candidateOk && B.requests === 0) holds.push('the candidate served no requests in the interval (missing scrape?).');
  } else if (candidateOk && baselineOk) {
    if (B.requests === 0) holds.push('the candidate served no requests in the interval (missing scrape or no traffic).');
    if (A.requests === 0) holds.push('the baseline served no requests in the interval (missing scrape?).');
    if (A.requests > 0 && B.requests > 0) {
      srm = sampleRatioTest(B.requests, A.requests, weight, options.srmAlpha);
      if (srm.mismatch) {
        holds.push(
          `sample-ratio mismatch: the candidate got ${pct(srm.observedShare)} of ${A.requests + B.requests} requests against a configured ${weight}% (p ≤ ${sci(srm.pValue)} < ${sci(options.srmAlpha)}); the interval is not compared.`,
        );
      } else {
        updateEvidence(options, state, A, B, holds);
      }
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

  if (state.pendingCandidateRequests < analysis.minRequests && holds.length === 0) {
    holds.push(
      `the candidate served ${state.pendingCandidateRequests} requests since the last conclusive check, fewer than minRequests ${analysis.minRequests}.`,
    );
  }

  let verdict: Verdict = failures.length > 0 ? 'fail' : holds.length > 0 ? 'inconclusive' : 'pass';
  if (verdict === 'inconclusive') {
    state.consecutiveInconclusive += 1;
    const limit = inconclusiveLimit(options, analysis.inconclusiveLimit);
    if (limit > 0 && state.consecutiveInconclusive >= limit) {
      verdict = 'fail';
      failures.push(`${state.consecutiveInconclusive} inconclusive checks in a row reached the limit of ${limit}: ${holds.join(' ')}`);
    }
  } else {
    state.consecutiveInconclusive = 0;
  }
  if (verdict === 'pass') state.pendingCandidateRequests = 0;

  const readiness = readyMetrics(state, digests);
  const readyToAdvance =
    verdict === 'pass' && readiness.every((m) => m.ready) && readiness.length > 0 && state.totals.candidateRequests >= options.readyMinRequests;

  let reasons: string[];
  if (verdict === 'fail') {
    state.failure = failures;
    reasons = failures;
  } else if (verdict === 'inconclusive') {
    reasons = [...holds, ...notes];
  } else {
    reasons = [...passSentences(options, state, digests), ...notes];
    if (readyToAdvance) reasons.push('every metric is bounded below its tolerance: ready to advance.');
  }
  return { verdict, reasons, metrics, evidence: report(options, state, srm, digests), readyToAdvance, state };
}

function updateEvidence(options: SequentialJudgeOptions, state: SequentialState, A: VersionMetrics, B: VersionMetrics, holds: string[]): void {
  const latencyOk = isValidHistogram(A.latency) && isValidHistogram(B.latency) && total(A.latency) > 0 && total(B.latency) > 0;
  const ttfbOk = isValidHistogram(A.timeToFirstByte) && isValidHistogram(B.timeToFirstByte) && total(A.timeToFirstByte) > 0 && total(B.timeToFirstByte) > 0;
  if (!state.alphas) {
    // The tested set is fixed once, from which metrics exist, never from their values.
    const { errors, latency, ttfb } = options.alphaSplit;
    state.alphas = ttfbOk
      ? { errors: options.alpha * errors, latency: options.alpha * latency, ttfb: options.alpha * ttfb }
      : { errors: options.alpha * errors, latency: options.alpha * (latency + ttfb), ttfb: 0 };
  }
  state.errors = addInterval(state.errors, { candidateTrials: B.requests, baselineTrials: A.requests, candidateEvents: B.errors, baselineEvents: A.errors });

  const latency = updateExceedance(options, 'latency', state.latency, latencyOk ? A.latency : undefined, latencyOk ? B.latency : undefined);
  if (latency) holds.push(`latency: ${latency}`);
  if (state.alphas.ttfb > 0) {
    const ttfb = updateExceedance(options, 'ttfb', state.ttfb, ttfbOk ? A.timeToFirstByte : undefined, ttfbOk ? B.timeToFirstByte : undefined);
    if (ttfb) holds.push(`time to first byte: ${ttfb}`);
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
  if (!state.alphas) return [];
  return (['errors', 'latency', 'ttfb'] as const).filter((name) => state.alphas![name] > 0).map((name) => ({ name, ready: digests[name].ready }));
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
    srm: srm ? { observedShare: sig(srm.observedShare), expectedShare: srm.expectedShare, pValue: sig(srm.pValue), mismatch: srm.mismatch } : null,
    totals: { ...state.totals },
    pendingCandidateRequests: state.pendingCandidateRequests,
    consecutiveInconclusive: state.consecutiveInconclusive,
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
  };
}

function inconclusiveLimit(options: SequentialJudgeOptions, specLimit: number | undefined): number {
  const limits = [options.maxConsecutiveInconclusive, specLimit ?? 0].filter((n) => n > 0);
  return limits.length === 0 ? 0 : Math.min(...limits);
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
