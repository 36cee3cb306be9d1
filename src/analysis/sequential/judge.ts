/**
 * The sequential judge: compares the candidate with the concurrent baseline interval by
 * interval, with one anytime-valid e-process per metric kept for the whole rollout (never reset
 * between checks or steps; it mixes in copies of itself started after each interval, with fixed
 * weights summing to 1, so a late regression is not held back by the healthy intervals before
 * it: ratio-test.ts, RESTART_SHARE), so the false-rollback probability of the whole rollout is
 * at most `alpha` however many checks are made and however the steps are timed.
 *
 *  - each gate metric of the table in src/analysis/gate-metrics.ts: rates (errors, truncated
 *    answers, invalid structured output) by the rate ratio candidate/baseline, H0 ratio ≤ r₀
 *    (ratio-test.ts); histograms (latency, TTFB, TTFT, inter-token latency) by the same test on
 *    the counts of requests slower than a boundary fixed from the baseline's own early
 *    distribution (boundary.ts); means (output tokens, cost per request) by the same test on
 *    sums in units of the baseline's dispersion;
 *  - a shadow step's mirrored pairs: sign tests on how often the candidate did worse than the
 *    baseline on the same request (its own share of α, shadowAlphaShare);
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
import { DEFAULT_GATE_METRICS, GATE_METRIC_NAMES, GATE_METRICS, PAIRED_LABELS, type GateMetricName, type MeanData } from '../gate-metrics';
import { summarize, type Histogram, type PairedMetric, type ShadowSample, type VersionMetrics } from '../metrics';
import { medianOfLatest, passageCdf } from './first-passage';
import { chooseBoundaryIndex, exceedances, isValidHistogram, scaleToleranceRatio } from './boundary';
import { resolveOptions, type ExceedanceMetricName, type SequentialJudgeOptions, type SequentialJudgeOptionsInput } from './options';
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

type HoldReason = 'thin_traffic' | 'srm' | 'metrics_missing';
/** A gate metric's name (the table in src/analysis/gate-metrics.ts). */
export type MetricName = GateMetricName;

/**
 * One gate metric's evidence, carried for the whole rollout. Exceedance metrics also keep their
 * boundary; mean metrics the dispersion unit their sums are counted in.
 */
export interface GateProcess {
  evidence: RatioEvidence;
  /** Exceedance: the boundary (ms, a bucket edge) for the next interval; null until chosen. */
  boundaryMs?: number | null;
  /** Exceedance: baseline histograms pooled since the boundary was last chosen. */
  calibration?: Histogram | null;
  /** Mean: Var/mean of the baseline's per-request values (the unit sums are tested in); null until fixed. */
  unit?: number | null;
  /** Mean: the baseline's moments pooled until the unit is fixed. */
  pool?: MeanData | null;
  /** Mean: both versions' intervals pooled until the candidate has `meanMinCandidate` requests. */
  pending?: { baseline: MeanData; candidate: MeanData };
}
/** The shape of latency-like processes in states written before the gate-metric table. */
export type ExceedanceState = Required<Pick<GateProcess, 'evidence' | 'boundaryMs' | 'calibration'>>;

/** A shadow step's paired tests: fixed at its first check. */
export interface ShadowState {
  share: number;
  alphas: Partial<Record<PairedMetric, number>>;
  evidence: Partial<Record<PairedMetric, RatioEvidence>>;
  totals: { mirrored: number; dropped: number; pairs: number; evaluated: number; evaluatorErrors: number };
}

export interface SequentialState {
  version: 2;
  checks: number;
  /** Unused since the step policy counts inconclusive checks; kept in states written before. */
  consecutiveInconclusive?: number;
  /** Candidate requests (at a shadow step: mirrored pairs) since the last conclusive (pass) check. */
  pendingCandidateRequests: number;
  totals: { candidateRequests: number; candidateErrors: number; baselineRequests: number; baselineErrors: number };
  /** α per tested metric, fixed at the first comparison (null before it); the keys are the tested set. */
  alphas: Partial<Record<MetricName, number>> | null;
  /** The tested metrics' evidence (and errors', latency's and TTFB's, reported even when untested). */
  processes: Partial<Record<MetricName, GateProcess>>;
  /** The shadow step's paired tests, once it has had a check. */
  shadow?: ShadowState;
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

/** A state as written before the gate-metric table (version 1): errors, latency and TTFB by name. */
interface SequentialStateV1 extends Omit<SequentialState, 'version' | 'alphas' | 'processes' | 'shadow'> {
  version: 1;
  alphas: { errors: number; latency: number; ttfb: number } | null;
  errors: RatioEvidence;
  latency: ExceedanceState;
  ttfb: ExceedanceState;
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
    judge: (judgeInput, state) => judgeInterval(options, judgeInput, upgradeState(state)),
  };
}

export function initialSequentialState(options: SequentialJudgeOptions): SequentialState {
  return {
    version: 2,
    checks: 0,
    pendingCandidateRequests: 0,
    totals: { candidateRequests: 0, candidateErrors: 0, baselineRequests: 0, baselineErrors: 0 },
    alphas: null,
    processes: Object.fromEntries(DEFAULT_GATE_METRICS.map((name) => [name, newProcess(options, name, options.tolerances[name])])),
    resourceBreaches: 0,
    failure: null,
  };
}

/** A state written before the gate-metric table, read as today's (the same evidence, by name). */
export function upgradeState(state: SequentialState | SequentialStateV1): SequentialState {
  if (state.version === 2) return state;
  const { errors, latency, ttfb, alphas, version: _version, ...rest } = state;
  const tested = alphas ? Object.fromEntries(Object.entries(alphas).filter(([, a]) => a > 0)) : null;
  return { ...rest, version: 2, alphas: tested, processes: { errors: { evidence: errors }, latency: { ...latency }, ttfb: { ...ttfb } } };
}

function newProcess(options: SequentialJudgeOptions, name: MetricName, r0: number): GateProcess {
  const evidence = newRatioEvidence(r0, options.alternatives);
  const test = GATE_METRICS[name].test;
  if (test === 'exceedance') return { evidence, boundaryMs: null, calibration: null };
  if (test === 'mean') return { evidence, unit: null, pool: null };
  return { evidence };
}

/** One metric's evidence in a decision (`evidence.errors`, `.latency`, `.ttft`, …). */
export interface MetricReport {
  tested: boolean;
  /** Plain words for the metric ("time to first token"). */
  label: string;
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
  /** Events (errors, slow requests; for a mean metric its sum in dispersion units) and requests. */
  candidate: { events: number; requests: number };
  baseline: { events: number; requests: number };
  boundaryMs?: number | null;
  calibrationObservations?: number;
  /** Mean metrics: the dispersion unit (null while pooling) and each side's mean per request. */
  unit?: number | null;
  candidateMean?: number | null;
  baselineMean?: number | null;
  /** Errors: upper (1 − readyAlpha) bound on the candidate's error rate, and the limit it is held to. */
  errorRateUpperBound?: number;
  errorRateLimit?: number;
}

interface CheckContext {
  options: SequentialJudgeOptions;
  input: JudgeInput;
  state: SequentialState;
  hold: (reason: HoldReason, sentence: string) => void;
  failures: string[];
  notes: string[];
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
  const ctx: CheckContext = { options, input, state, hold, failures, notes };
  const A = interval?.baseline;
  const B = interval?.candidate;
  const shadowStep = input.shadow === true;
  const candidateOk = validCounts(B);
  const baselineOk = validCounts(A);
  if (!shadowStep && !candidateOk) hold('metrics_missing', 'candidate request/error counts are missing or malformed.');
  if (!baselineOk && weight < 100) hold('metrics_missing', 'baseline request/error counts are missing or malformed.');

  // Cumulative totals and the hard fast path.
  if (candidateOk) {
    state.totals.candidateRequests += B.requests;
    state.totals.candidateErrors += B.errors;
    if (!shadowStep) state.pendingCandidateRequests += B.requests;
    addSloInterval(slo, B, notes);
  }
  if (baselineOk) {
    state.totals.baselineRequests += A.requests;
    state.totals.baselineErrors += A.errors;
  }
  if (candidateOk && !shadowStep) {
    const catastrophe = catastrophic(options, B, baselineOk ? A : undefined, 'in this interval') ??
      catastrophic(options, { requests: state.totals.candidateRequests, errors: state.totals.candidateErrors },
        { requests: state.totals.baselineRequests, errors: state.totals.baselineErrors }, 'since the rollout started');
    if (catastrophe) failures.push(catastrophe);
  }

  let srm: SrmResult | undefined;
  if (shadowStep) {
    comparePairs(ctx, interval?.shadow);
  } else if (weight <= 0) {
    hold('thin_traffic', `the candidate's configured weight is ${weight}%, so there is nothing to judge.`);
  } else if (weight >= 100) {
    notes.push('at 100% there is no concurrent baseline; the comparison evidence is carried unchanged.');
    if (candidateOk && B.requests === 0) hold('thin_traffic', 'the candidate served no requests in the interval (missing scrape?).');
  } else if (candidateOk && baselineOk) {
    // A version without requests is thin traffic, unless the split itself is off: no candidate
    // request among many at its weight is a sample-ratio mismatch (something is wrong), not a wait.
    // With a header match only matching requests are split, so the shares are not the weight's.
    if (A.requests + B.requests > 0 && !input.matched) srm = sampleRatioTest(B.requests, A.requests, weight, options.srmAlpha);
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
      updateEvidence(ctx, A, B);
    }
  }

  // Rejections (sticky).
  const digests = digest(options, state);
  for (const name of testedMetrics(state)) {
    const alpha = state.alphas![name]!;
    const logE = digests[name]!.logE;
    if (logE >= Math.log(1 / alpha)) failures.push(regressionSentence(name, state.processes[name]!, logE, alpha));
  }
  for (const [name, alpha] of pairedMetrics(state)) {
    const evidence = state.shadow!.evidence[name]!;
    const logE = regressionLogE(evidence);
    if (logE >= Math.log(1 / alpha)) failures.push(pairedRegressionSentence(name, evidence, logE, alpha));
  }

  // SLO guardrails (sticky like every failure).
  for (const [name, p] of sloProcesses(slo)) {
    const logE = sloLogE(name, p);
    if (logE >= Math.log(1 / p.alpha)) failures.push(sloBreachSentence(name, p, logE));
  }

  // Resource use.
  const resource = shadowStep ? { checked: false, breaches: [] } : resourceCheck(options, A, B);
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
    const what = shadowStep ? `${state.pendingCandidateRequests} mirrored pairs were completed` : `the candidate served ${state.pendingCandidateRequests} requests`;
    hold('thin_traffic', `${what} since the last conclusive check, fewer than minRequests ${analysis.minRequests}.`);
  }

  // Too many inconclusive checks in a row are the step policy's to count (src/workflows/step-policy.ts).
  const verdict: Verdict = failures.length > 0 ? 'fail' : holds.length > 0 ? 'inconclusive' : 'pass';
  if (verdict === 'pass') state.pendingCandidateRequests = 0;

  const readiness = shadowStep ? pairedReadiness(options, state) : testedMetrics(state).map((name) => digests[name]!.ready);
  const enough = shadowStep || state.totals.candidateRequests >= options.readyMinRequests;
  const readyToAdvance = verdict === 'pass' && readiness.length > 0 && readiness.every(Boolean) && enough;
  const marginal = testedMetrics(state).some((name) => digests[name]!.logE >= 0) || sloProcesses(slo).some(([name, p]) => sloLogE(name, p) >= 0);
  let wait: Judgement<SequentialState>['wait'];
  if (verdict === 'inconclusive' && holdReason) wait = { reason: holdReason, message: holds.join(' '), ...(thinBy !== undefined ? { candidateRequests: thinBy } : {}) };
  else if (verdict === 'pass' && !readyToAdvance) wait = shadowStep ? { reason: 'needs_evidence', message: 'not yet: the paired tests do not yet bound every metric below its tolerance' } : needsEvidence(options, state, digests, weight);

  let reasons: string[];
  if (verdict === 'fail') {
    state.failure = failures;
    reasons = failures;
  } else if (verdict === 'inconclusive') {
    reasons = [...holds, ...notes];
  } else {
    reasons = [...(shadowStep ? pairedPassSentences(state) : passSentences(options, state, digests)), ...sloPassSentences(slo), ...notes];
    if (readyToAdvance) reasons.push('every metric is bounded below its tolerance: ready to advance.');
  }
  return { verdict, reasons, metrics, evidence: report(options, state, srm, digests), readyToAdvance, marginal, ...(wait ? { wait } : {}), state };
}

/**
 * The tested set and each metric's α, fixed once at the first comparison from which metrics
 * exist (never from their values): the spec's `analysis.metrics`, or the table's defaults that
 * both versions measure. With SLO guardrails and a shadow step, the comparison keeps what their
 * shares leave of α.
 */
function fixTestedSet(ctx: CheckContext, A: VersionMetrics, B: VersionMetrics): void {
  const { options, state, input } = ctx;
  const listed = input.analysis.metrics as Partial<Record<MetricName, { tolerance?: number }>> | undefined;
  const weights: Partial<Record<MetricName, number>> = {};
  if (listed) {
    for (const name of GATE_METRIC_NAMES) if (listed[name]) weights[name] = options.alphaSplit[name];
  } else {
    for (const name of DEFAULT_GATE_METRICS) {
      const row = GATE_METRICS[name];
      const measured = name === 'errors' || (row.test === 'exceedance' && hasData(row.read(A)) && hasData(row.read(B)));
      if (measured) weights[name] = (weights[name] ?? 0) + options.alphaSplit[name];
      else if (name === 'ttfb') weights.latency = (weights.latency ?? 0) + options.alphaSplit.ttfb; // TTFB is part of the latency
    }
  }
  const sum = Object.values(weights).reduce((s, w) => s + w, 0);
  // The listed metrics share the whole α; the defaults keep the split the options give (summing to 1 unless changed).
  const scale = listed || sum > 1 ? 1 / sum : 1;
  const alpha = options.alpha * (1 - (state.slo?.share ?? 0) - (state.shadow?.share ?? 0));
  state.alphas = Object.fromEntries(Object.entries(weights).map(([name, w]) => [name, alpha * w * scale]));
  for (const name of Object.keys(weights) as MetricName[]) {
    const tolerance = listed?.[name]?.tolerance ?? options.tolerances[name];
    const existing = state.processes[name];
    if (!existing || existing.evidence.intervals === 0) state.processes[name] = newProcess(options, name, tolerance);
  }
}

function updateEvidence(ctx: CheckContext, A: VersionMetrics, B: VersionMetrics): void {
  const { options, state, hold } = ctx;
  if (!state.alphas) fixTestedSet(ctx, A, B);
  for (const name of testedMetrics(state)) {
    const row = GATE_METRICS[name];
    const process = state.processes[name]!;
    let problem: string | undefined;
    if (row.test === 'rate') {
      const a = row.read(A);
      const b = row.read(B);
      if (!a || !b) problem = 'it is not measured for one of the versions.';
      else process.evidence = addInterval(process.evidence, { candidateTrials: b.trials, baselineTrials: a.trials, candidateEvents: b.events, baselineEvents: a.events });
    } else if (row.test === 'exceedance') {
      const a = row.read(A);
      const b = row.read(B);
      const ok = isValidHistogram(a) && isValidHistogram(b) && total(a) > 0 && total(b) > 0;
      problem = updateExceedance(options, name as ExceedanceMetricName, process, ok ? a : undefined, ok ? b : undefined);
    } else {
      problem = updateMean(options, process, row.read(A, ctx.input.pricing?.baseline), row.read(B, ctx.input.pricing?.candidate));
    }
    if (problem) hold('metrics_missing', `${row.label}: ${problem}`);
  }
}

/**
 * Updates one exceedance process in place; returns a hold sentence when the metric is missing.
 * The interval is first tested at the boundary chosen before it (if any), then its baseline
 * histogram joins the pool the next boundary is chosen from (boundary.ts: the boundary is
 * predictable, so the test stays valid while it tracks the baseline's quantile).
 */
function updateExceedance(options: SequentialJudgeOptions, name: ExceedanceMetricName, process: GateProcess, a: Histogram | undefined, b: Histogram | undefined): string | undefined {
  if (!a || !b) return 'the histogram is missing, empty or malformed for one of the versions.';
  if (process.boundaryMs != null) {
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
      const first = process.boundaryMs == null;
      process.boundaryMs = pool.boundsMs[j]!;
      if (first && process.evidence.intervals === 0) {
        // The tolerance, fixed once before any interval is tested: the larger of the ratio
        // tolerance and the exceedance ratio a uniform slow-down by the scale tolerance gives.
        const r0 = Math.max(process.evidence.r0, scaleToleranceRatio(pool.boundsMs, pool.counts, j, options.scaleTolerance[name]));
        process.evidence = newRatioEvidence(r0, options.alternatives);
      }
      process.calibration = null;
    }
  }
  return undefined;
}

/**
 * A mean metric: the interval's sums are tested as counts in units of the baseline's dispersion
 * (Var/mean per request), fixed once from the baseline's first `meanMinBaseline` requests and
 * never from the candidate's: a quasi-Poisson scaling, so that sums of many requests have about
 * the variance of counts and the rate-ratio test's mean-ratio H0 applies.
 */
function updateMean(options: SequentialJudgeOptions, process: GateProcess, a: MeanData | undefined, b: MeanData | undefined): string | undefined {
  if (!validMean(a) || !validMean(b)) return 'it is not measured for one of the versions (for cost: versions need pricing).';
  if (process.unit != null) {
    // Intervals are pooled until the candidate has meanMinCandidate requests (a count, never a
    // value, so the test stays valid): a sum over few requests of a heavy-tailed quantity is one
    // long answer, not a mean, and the quasi-Poisson scaling would overstate it.
    const add = (x: MeanData | undefined, y: MeanData): MeanData => (x ? { count: x.count + y.count, sum: x.sum + y.sum, sumSquares: x.sumSquares + y.sumSquares } : { ...y });
    const pending = { baseline: add(process.pending?.baseline, a), candidate: add(process.pending?.candidate, b) };
    if (pending.candidate.count < options.meanMinCandidate) {
      process.pending = pending;
      return undefined;
    }
    delete process.pending;
    const unit = process.unit;
    process.evidence = addInterval(process.evidence, {
      candidateTrials: pending.candidate.count,
      baselineTrials: pending.baseline.count,
      candidateEvents: pending.candidate.sum / unit,
      baselineEvents: pending.baseline.sum / unit,
    });
    return undefined;
  }
  const pool = process.pool ?? { count: 0, sum: 0, sumSquares: 0 };
  process.pool = { count: pool.count + a.count, sum: pool.sum + a.sum, sumSquares: pool.sumSquares + a.sumSquares };
  const { count, sum, sumSquares } = process.pool;
  if (count >= Math.max(2, options.meanMinBaseline) && sum > 0) {
    const mean = sum / count;
    const variance = Math.max(0, (sumSquares - (sum * sum) / count) / (count - 1));
    // A constant quantity has no dispersion: a floor of 1% of the mean keeps the unit finite.
    process.unit = Math.max(variance / mean, mean * 0.01);
    process.pool = null;
  }
  return undefined;
}

/** A shadow step's check: the interval's mirrored pairs into the paired sign tests. */
function comparePairs(ctx: CheckContext, shadow: ShadowSample | undefined): void {
  const { options, state, input, hold, notes } = ctx;
  if (!shadow || !(shadow.pairs >= 0)) {
    hold('metrics_missing', 'the shadow step has no mirrored pairs from the metric source (only the embedded gateway mirrors).');
    return;
  }
  if (!state.shadow) {
    const listed = input.analysis.metrics as Partial<Record<MetricName, unknown>> | undefined;
    const names = (listed ? GATE_METRIC_NAMES.filter((n) => listed[n]) : DEFAULT_GATE_METRICS)
      .map((n) => (GATE_METRICS[n] as { paired?: PairedMetric }).paired)
      .filter((p): p is PairedMetric => p !== undefined);
    if (input.analysis.evaluator) names.push('verdict');
    const share = options.shadowAlphaShare;
    const each = (options.alpha * share) / Math.max(1, names.length);
    state.shadow = {
      share,
      alphas: Object.fromEntries(names.map((n) => [n, each])),
      evidence: Object.fromEntries(names.map((n) => [n, newRatioEvidence(options.pairedTolerance, options.alternatives)])),
      totals: { mirrored: 0, dropped: 0, pairs: 0, evaluated: 0, evaluatorErrors: 0 },
    };
  }
  const s = state.shadow;
  s.totals.mirrored += shadow.mirrored;
  s.totals.dropped += shadow.dropped;
  s.totals.pairs += shadow.pairs;
  s.totals.evaluated += shadow.evaluated;
  s.totals.evaluatorErrors += shadow.evaluatorErrors;
  state.pendingCandidateRequests += shadow.pairs;
  // Mirrors dropped because the candidate fell behind are its slowest requests: pairs without them
  // would flatter it, so a check that lost many is not compared.
  const offered = shadow.mirrored + shadow.dropped;
  if (offered > 0 && shadow.dropped / offered > MAX_DROPPED_SHARE) {
    hold('metrics_missing', `${shadow.dropped} of ${offered} mirrored requests were dropped (the candidate fell behind the mirror queue); the pairs left would flatter it, so the interval is not compared.`);
    return;
  }
  if (shadow.dropped > 0) notes.push(`${shadow.dropped} of ${offered} mirrored requests were dropped (the candidate fell behind the mirror queue).`);
  for (const name of Object.keys(s.evidence) as PairedMetric[]) {
    // Equal trials on both sides: the test is then on the odds that a pair goes worse rather than better.
    s.evidence[name] = addInterval(s.evidence[name]!, { candidateTrials: shadow.pairs, baselineTrials: shadow.pairs, candidateEvents: shadow.worse[name] ?? 0, baselineEvents: shadow.better[name] ?? 0 });
  }
}

/** At most this share of a check's mirrored requests may be dropped for it to be compared. */
const MAX_DROPPED_SHARE = 0.05;

function pairedMetrics(state: SequentialState): Array<[PairedMetric, number]> {
  return state.shadow ? (Object.entries(state.shadow.alphas) as Array<[PairedMetric, number]>) : [];
}

function pairedReadiness(options: SequentialJudgeOptions, state: SequentialState): boolean[] {
  return pairedMetrics(state).map(([name]) => lowerLogE(state.shadow!.evidence[name]!) >= Math.log(1 / options.readyAlpha));
}

function pairedRegressionSentence(name: PairedMetric, evidence: RatioEvidence, logE: number, alpha: number): string {
  return `${PAIRED_LABELS[name]}: the candidate did worse in ${evidence.candidateEvents} and better in ${evidence.baselineEvents} of ${evidence.candidateTrials} mirrored pairs; the e-value ${sig(capExp(logE))} reached ${sig(1 / alpha)} (α = ${sig(alpha)}): worse more than ${sig(evidence.r0)}× as often as better.`;
}

function pairedPassSentences(state: SequentialState): string[] {
  if (!state.shadow) return [];
  const t = state.shadow.totals;
  const head = `shadow: ${t.pairs} mirrored pairs compared (users saw only the baseline's answers)${t.evaluated > 0 ? `, ${t.evaluated} judged by the evaluator` : ''}.`;
  return [
    head,
    ...pairedMetrics(state).map(([name, alpha]) => {
      const e = state.shadow!.evidence[name]!;
      return `${PAIRED_LABELS[name]}: worse in ${e.candidateEvents}, better in ${e.baselineEvents}; e-value ${sig(capExp(regressionLogE(e)))} below ${sig(1 / alpha)} (tolerance ${sig(e.r0)}× as often worse as better).`;
    }),
  ];
}

/** Everything derived from one metric's evidence, computed once per check. */
interface Digest {
  logE: number;
  readyLogE: number;
  upperBound: number | undefined;
  /** Rate metrics: the candidate's rate bound, and the rate it must stay under (baseline + slack). */
  rateBound?: { upperBound: number; limit: number };
  ready: boolean;
}
type Digests = Partial<Record<MetricName, Digest>>;

function digest(options: SequentialJudgeOptions, state: SequentialState): Digests {
  const out: Digests = {};
  for (const name of Object.keys(state.processes) as MetricName[]) {
    const process = state.processes[name]!;
    const evidence = process.evidence;
    const readyLogE = lowerLogE(evidence);
    const upperBound = upperConfidenceBound(evidence, options.readyAlpha);
    let ready = readyLogE >= Math.log(1 / options.readyAlpha);
    let rateBound: Digest['rateBound'];
    if (GATE_METRICS[name].test === 'rate' && options.readyErrorRateSlack > 0 && evidence.baselineTrials > 0) {
      // Absolute side: rare or absent events cannot bound a ratio, but can bound a rate.
      const limit = evidence.baselineEvents / evidence.baselineTrials + options.readyErrorRateSlack;
      rateBound = { upperBound: rateUpperBound(evidence.candidateEvents, evidence.candidateTrials, options.readyAlpha), limit };
      ready ||= rateBound.upperBound <= limit;
    }
    if (calibrating(process)) ready = false;
    out[name] = { logE: regressionLogE(evidence), readyLogE, upperBound, ...(rateBound ? { rateBound } : {}), ready };
  }
  return out;
}

/** An exceedance metric without its boundary, or a mean metric without its unit, tests nothing yet. */
function calibrating(process: GateProcess): boolean {
  return process.boundaryMs === null || process.unit === null;
}

/** The metrics this rollout tests (fixed at the first comparison), in the table's order. */
function testedMetrics(state: SequentialState): MetricName[] {
  const alphas = state.alphas;
  if (!alphas) return [];
  return GATE_METRIC_NAMES.filter((name) => (alphas[name] ?? 0) > 0);
}

/**
 * Why a passing check is not ready, and (when every unready metric can tell) the candidate
 * requests still needed at this weight if the candidate keeps up with the baseline from now on.
 */
function needsEvidence(options: SequentialJudgeOptions, state: SequentialState, digests: Digests, weight: number): NonNullable<Judgement<SequentialState>['wait']> {
  const unready = testedMetrics(state).filter((name) => !digests[name]!.ready);
  // Each unready metric's wait as a CDF over candidate requests; the step waits for the latest (its median is reported).
  const waits: Array<{ cdf: (n: number) => number; typical: number } | undefined> = unready.map((name) => {
    const process = state.processes[name]!;
    if (calibrating(process)) return undefined; // still calibrating its boundary or unit
    const evidence = process.evidence;
    const byRatio = readinessPassage(evidence, options.readyAlpha, weight / 100);
    const bound = digests[name]!.rateBound;
    const baselineRate = evidence.baselineTrials > 0 ? evidence.baselineEvents / evidence.baselineTrials : 0;
    // The rate bound's wait is nearly certain (rare events barely move it); either way makes the metric ready.
    const byRate = bound ? requestsUntilRateBound(evidence.candidateEvents, evidence.candidateTrials, bound.limit, options.readyAlpha, baselineRate) : undefined;
    if (byRatio === undefined && byRate === undefined) return undefined;
    if (byRatio === 0 || byRate === 0) return { cdf: () => 1, typical: 0 };
    const rateCdf = (n: number) => (byRate !== undefined && n >= byRate ? 1 : 0);
    if (byRatio === undefined) return { cdf: rateCdf, typical: byRate! };
    return { cdf: (n) => Math.max(rateCdf(n), passageCdf(n, byRatio)), typical: Math.min(byRatio.mean, byRate ?? Infinity) };
  });
  const shortOfMinimum = Math.max(0, options.readyMinRequests - state.totals.candidateRequests);
  const parts: string[] = unready.map((name) => {
    const d = digests[name]!;
    return `${GATE_METRICS[name].label}${d.upperBound === undefined ? ' (ratio unbounded so far)' : ` (ratio ≤ ${sig(d.upperBound)} so far, tolerance ${sig(state.processes[name]!.evidence.r0)}×)`}`;
  });
  if (shortOfMinimum > 0) parts.push(`${state.totals.candidateRequests} of the ${options.readyMinRequests} candidate requests readiness needs`);
  // A detail for the step policy's sentence ("the evidence does not yet bound every metric below its tolerance (…)").
  const message = parts.length > 0 ? `not yet: ${parts.join('; ')}` : 'no comparison yet';
  if (waits.some((w) => w === undefined)) return { reason: 'needs_evidence', message };
  const known = waits as Array<{ cdf: (n: number) => number; typical: number }>;
  const median = medianOfLatest(known.map((w) => w.cdf), 4 * Math.max(1, ...known.map((w) => w.typical)));
  return { reason: 'needs_evidence', message, candidateRequests: Math.max(shortOfMinimum, median) };
}

function metricReport(options: SequentialJudgeOptions, state: SequentialState, name: MetricName, d: Digest): MetricReport {
  const process = state.processes[name]!;
  const evidence = process.evidence;
  const alpha = state.alphas?.[name] ?? 0;
  const ucb = d.upperBound;
  const report: MetricReport = {
    tested: alpha > 0,
    label: GATE_METRICS[name].label,
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
    candidate: { events: sig(evidence.candidateEvents), requests: evidence.candidateTrials },
    baseline: { events: sig(evidence.baselineEvents), requests: evidence.baselineTrials },
  };
  if (process.boundaryMs !== undefined) {
    report.boundaryMs = process.boundaryMs;
    if (process.calibration) report.calibrationObservations = total(process.calibration);
  }
  if (process.unit !== undefined) {
    report.unit = process.unit === null ? null : sig(process.unit);
    const mean = (events: number, n: number) => (process.unit != null && n > 0 ? sig((events * process.unit) / n) : null);
    report.candidateMean = mean(evidence.candidateEvents, evidence.candidateTrials);
    report.baselineMean = mean(evidence.baselineEvents, evidence.baselineTrials);
  }
  return report;
}

function report(options: SequentialJudgeOptions, state: SequentialState, srm: SrmResult | undefined, digests = digest(options, state)): Record<string, unknown> {
  const perMetric = Object.fromEntries(
    GATE_METRIC_NAMES.filter((name) => state.processes[name]).map((name) => [name, metricReport(options, state, name, digests[name]!)]),
  );
  return {
    judge: SEQUENTIAL_JUDGE_NAME,
    alpha: options.alpha,
    checks: state.checks,
    ...perMetric,
    slo: sloReport(state.slo),
    shadow: shadowReport(options, state),
    srm: srm ? { observedShare: sig(srm.observedShare), expectedShare: srm.expectedShare, pValue: sig(srm.pValue), mismatch: srm.mismatch } : null,
    totals: { ...state.totals },
    pendingCandidateRequests: state.pendingCandidateRequests,
    resourceBreaches: state.resourceBreaches,
  };
}

/** `evidence.shadow`: the paired tests of a shadow step (null for a rollout without one). */
function shadowReport(options: SequentialJudgeOptions, state: SequentialState): Record<string, unknown> | null {
  if (!state.shadow) return null;
  const metrics = Object.fromEntries(
    pairedMetrics(state).map(([name, alpha]) => {
      const e = state.shadow!.evidence[name]!;
      const logE = regressionLogE(e);
      return [name, { label: PAIRED_LABELS[name], worse: e.candidateEvents, better: e.baselineEvents, pairs: e.candidateTrials, r0: e.r0, alpha, eValue: sig(capExp(logE)), rollbackAt: sig(1 / alpha), ready: lowerLogE(e) >= Math.log(1 / options.readyAlpha), failed: logE >= Math.log(1 / alpha) }];
    }),
  );
  return { share: state.shadow.share, ...state.shadow.totals, metrics };
}

function regressionSentence(name: MetricName, process: GateProcess, logE: number, alpha: number): string {
  const row = GATE_METRICS[name];
  const e = process.evidence;
  const side = (events: number, n: number) => `${sig(events)}/${n} (${pct(rate(events, n))})`;
  let what: string;
  let claim: string;
  if (row.test === 'mean') {
    const unit = process.unit ?? 1;
    const per = (events: number, n: number) => (n > 0 ? sig((events * unit) / n) : 0);
    what = `${row.label}: candidate ${per(e.candidateEvents, e.candidateTrials)} vs baseline ${per(e.baselineEvents, e.baselineTrials)} on average over ${e.candidateTrials} and ${e.baselineTrials} requests`;
    claim = `the candidate's mean is more than ${sig(e.r0)}× the baseline's`;
  } else {
    const subject = row.test === 'exceedance' ? ` requests slower than ${process.boundaryMs} ms,` : '';
    what = `${row.label}:${subject} candidate ${side(e.candidateEvents, e.candidateTrials)} vs baseline ${side(e.baselineEvents, e.baselineTrials)}`;
    claim = `the candidate's rate is more than ${sig(e.r0)}× the baseline's`;
  }
  return `${what}; the e-value ${sig(capExp(logE))} reached ${sig(1 / alpha)} (α = ${sig(alpha)}): ${claim}.`;
}

function passSentences(options: SequentialJudgeOptions, state: SequentialState, digests: Digests): string[] {
  if (!state.alphas) return ['no comparison has been possible yet.'];
  const out: string[] = [];
  for (const name of testedMetrics(state)) {
    const row = GATE_METRICS[name];
    const process = state.processes[name]!;
    const alpha = state.alphas[name]!;
    const evidence = process.evidence;
    if (process.boundaryMs === null) {
      out.push(`${row.label}: calibrating the boundary from ${total(process.calibration ?? { boundsMs: [], counts: [] })} baseline observations (needs ${options.boundaryMinBaseline}).`);
      continue;
    }
    if (process.unit === null) {
      out.push(`${row.label}: measuring the baseline's spread from ${process.pool?.count ?? 0} requests (needs ${options.meanMinBaseline}).`);
      continue;
    }
    const d = digests[name]!;
    const ucb = d.upperBound;
    const subject =
      row.test === 'exceedance'
        ? `requests slower than ${process.boundaryMs} ms candidate ${evidence.candidateEvents}/${evidence.candidateTrials} vs baseline ${evidence.baselineEvents}/${evidence.baselineTrials}`
        : row.test === 'mean'
          ? `candidate ${sig((evidence.candidateEvents * process.unit!) / Math.max(1, evidence.candidateTrials))} vs baseline ${sig((evidence.baselineEvents * process.unit!) / Math.max(1, evidence.baselineTrials))} per request`
          : `${name === 'errors' ? 'errors ' : ''}candidate ${evidence.candidateEvents}/${evidence.candidateTrials} vs baseline ${evidence.baselineEvents}/${evidence.baselineTrials}`;
    const confidence = `${Math.round((1 - options.readyAlpha) * 100)}% confidence`;
    const rateBound = d.rateBound;
    const absolute = rateBound ? `; ${name === 'errors' ? 'error rate' : 'rate'} ≤ ${pct(rateBound.upperBound)} with ${confidence} (ready at ≤ ${pct(rateBound.limit)}: the baseline's + ${pct(options.readyErrorRateSlack)})` : '';
    out.push(
      `${row.label}: ${subject}; e-value ${sig(capExp(d.logE))} below ${sig(1 / alpha)} (tolerance ${sig(evidence.r0)}×); ratio ≤ ${ucb === undefined ? 'unbounded yet' : sig(ucb)} with ${confidence}${absolute}.`,
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
  const process = (x: GateProcess): GateProcess => ({
    ...x,
    evidence: ratio(x.evidence),
    ...(x.calibration ? { calibration: { boundsMs: [...x.calibration.boundsMs], counts: [...x.calibration.counts] } } : {}),
    ...(x.pool ? { pool: { ...x.pool } } : {}),
    ...(x.pending ? { pending: { baseline: { ...x.pending.baseline }, candidate: { ...x.pending.candidate } } } : {}),
  });
  const mapValues = <K extends string, V>(o: Partial<Record<K, V>>, f: (v: V) => V) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v as V)])) as Partial<Record<K, V>>;
  return {
    ...s,
    totals: { ...s.totals },
    alphas: s.alphas ? { ...s.alphas } : null,
    processes: mapValues(s.processes, process),
    ...(s.shadow ? { shadow: { ...s.shadow, alphas: { ...s.shadow.alphas }, totals: { ...s.shadow.totals }, evidence: mapValues(s.shadow.evidence, ratio) } } : {}),
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

const validMean = (m: MeanData | undefined): m is MeanData => !!m && isNum(m.count) && isNum(m.sum) && isNum(m.sumSquares) && m.count >= 0 && m.sum >= 0;
const hasData = (h: Histogram | undefined) => isValidHistogram(h) && total(h) > 0;
const total = (h: Histogram | undefined) => (h ? h.counts.reduce((s, n) => s + n, 0) : 0);
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const rate = (e: number, n: number) => (n > 0 ? e / n : 0);
const capExp = (logE: number) => (logE > 690 ? Math.exp(690) : Math.exp(logE));
const nullable = (x: number | undefined) => (x === undefined ? null : sig(x));
const sig = (x: number) => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(4)));
const sci = (x: number) => (x === 0 ? '0' : x.toExponential(1));
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
