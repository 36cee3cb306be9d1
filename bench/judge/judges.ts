/**
 * The judges compared by the benchmark, behind one small interface: each rollout gets a fresh
 * runner that sees every interval's MetricsSample and says whether to roll back (and, for
 * ours, whether the evidence is ready to advance).
 *
 *  - sequential: ours (src/analysis/sequential), defaults.
 *  - flagger: fixed thresholds on the candidate (the repo's judge v0), roll back after 5 failed
 *    checks in the rollout (Flagger's `threshold: 5`).
 *  - argo-0 / argo-3: the same per-check thresholds, roll back when failed checks exceed
 *    `failureLimit` 0 / 3 (Argo Rollouts AnalysisTemplate semantics).
 *  - kayenta: per interval, Mann-Whitney of candidate vs baseline (latency and TTFB on the
 *    histogram buckets, with ties; errors as 0/1) at 98% confidence, a failing metric fails
 *    the interval (score below the marginal threshold) and the rollout.
 *  - naive-z: cumulative two-proportion z-tests (errors; requests above the baseline's p95
 *    bucket edge) re-run at every interval at one-sided 1%: the "peeking" baseline.
 *
 * Matched comparison: every baseline is a `Calibratable` family with one knob (the threshold
 * scale for the threshold judges, the critical z for Kayenta and naive z). `stock` is the knob as
 * configured above; `make(knob)` builds the judge with another value; `critical(checks)` is, for
 * one recorded rollout (the fixed schedule's checks), the knob value below which that rollout
 * would be rolled back (the judges are monotone in their knob). run.ts calibrates the knob on
 * separate A/A seeds so that a calibrated baseline rolls back about as many A/A rollouts as ours,
 * then compares power at that matched false-rollback rate.
 */
import type { AnalysisSpec } from '../../src/spec/schema';
import type { Histogram, MetricsSample } from '../../src/analysis/metrics';
import { summarize } from '../../src/analysis/metrics';
import { THRESHOLD_DEFAULTS, thresholdJudge } from '../../src/analysis/threshold-judge';
import { judgeFor } from '../../src/analysis/judges';
import { resolveOptions } from '../../src/analysis/sequential';
import { intervalLogLik } from '../../src/analysis/sequential/ratio-test';
import type { CheckOutcome, JudgeTraits } from '../../src/workflows/step-policy';
import type { JudgeInput } from '../../src/analysis/judge';
import { GATE_METRIC_NAMES } from '../../src/analysis/gate-metrics';
import { chooseBoundaryIndex } from '../../src/analysis/sequential/boundary';

export interface Runner {
  /**
   * One interval's check, as the step policy (src/workflows/step-policy.ts) reads it; ours also
   * gives its tested gate metrics' e-values (for the bench's calibration check, Ville's bound).
   */
  check(sample: MetricsSample, weight: number): CheckOutcome & { eValues?: Record<string, number> };
}

export interface BenchJudge {
  name: string;
  /** What the step policy needs of the judge: ours is adaptive; the others bake each step for a fixed time. */
  traits: JudgeTraits;
  /** `pricing`: the versions' token prices (the spec's `versions.*.pricing`), for the cost metric; only ours reads it. */
  start(analysis: AnalysisSpec, pricing?: JudgeInput['pricing']): Runner;
}

/**
 * Ours, as the workflow runs it: the judge the spec asks for (judgeFor), with the spec's
 * defaults; the scenarios' thresholds are for the threshold baselines, so ours runs without SLOs.
 */
const sequential: BenchJudge = {
  name: 'sequential',
  traits: { name: 'sequential', failIsFinal: true, adaptive: true },
  start(analysis, pricing) {
    const { thresholds: _forBaselines, ...ours } = analysis;
    const judge = judgeFor(ours);
    let state = judge.initialState();
    return {
      check(sample, weight) {
        const j = judge.judge({ analysis: ours, candidateWeight: weight, interval: sample, ...(pricing ? { pricing } : {}) }, state);
        state = j.state;
        return {
          verdict: j.verdict,
          reasons: j.reasons,
          ready: j.readyToAdvance === true,
          marginal: j.marginal === true,
          ...(j.wait ? { wait: j.wait } : {}),
          candidateRate: sample.candidate.requests / (analysis.interval / 1000),
          eValues: testedEValues(j.evidence),
        };
      },
    };
  },
};

/** The tested gate metrics' e-values in a judgement's evidence (MetricReport.eValue). */
function testedEValues(evidence: Record<string, unknown> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of GATE_METRIC_NAMES) {
    const m = evidence?.[name] as { tested?: boolean; eValue?: number } | undefined;
    if (m?.tested && typeof m.eValue === 'number') out[name] = m.eValue;
  }
  return out;
}

/** A baseline's check: it only says whether to roll back (its own counting decides). */
const rollbackIf = (rollback: boolean): CheckOutcome => ({ verdict: rollback ? 'fail' : 'pass', reasons: [], ready: false, marginal: false });
const fixedSchedule = (name: string): JudgeTraits => ({ name, failIsFinal: true, adaptive: false });

/**
 * A floor, not a contender: the sequential probability ratio test that knows the true error-rate
 * ratio — the likelihood ratio of "ratio = factor" against "ratio = r₀" on the same
 * interval-conditional split of errors as ours, rolling back at 1/α (our judge's errors share).
 * Anytime-valid like ours, and the most powerful such test for that one alternative (Wald), so
 * its detection delay is the least any anytime-valid test at this α can do: our judge, which
 * does not know the ratio and also watches for late regressions, can only come near it.
 */
export function sprtOracle(factor: number): BenchJudge {
  const o = resolveOptions({});
  const r0 = o.tolerances.errors;
  const threshold = Math.log(1 / (o.alpha * o.alphaSplit.errors));
  return {
    name: 'sprt-oracle',
    traits: fixedSchedule('sprt-oracle'),
    start() {
      let llr = 0;
      return {
        check({ baseline: A, candidate: B }) {
          if (A.requests > 0 && B.requests > 0) {
            llr += intervalLogLik(factor, B.requests, A.requests, B.errors, A.errors) - intervalLogLik(r0, B.requests, A.requests, B.errors, A.errors);
          }
          return rollbackIf(llr >= threshold);
        },
      };
    },
  };
}

/** One check as a fixed-schedule judge saw it (for calibration). */
export interface RecordedCheck {
  sample: MetricsSample;
  weight: number;
}

export interface Calibratable {
  /** The stock judge's name; the calibrated one is `${name}-cal`. */
  name: string;
  knob: string;
  stock: number;
  make(knob: number, name?: string): BenchJudge;
  /** Rolls back at `knob` iff knob < critical(checks) (monotone judges). */
  critical(checks: readonly RecordedCheck[], analysis: AnalysisSpec): number;
}

function limitsOf(analysis: AnalysisSpec): { maxErrorRate: number; maxLatencyP95Ms: number } {
  return { ...THRESHOLD_DEFAULTS, ...analysis.thresholds };
}

function scaled(analysis: AnalysisSpec, scale: number): AnalysisSpec {
  const limits = limitsOf(analysis);
  return { ...analysis, thresholds: { maxErrorRate: limits.maxErrorRate * scale, maxLatencyP95Ms: limits.maxLatencyP95Ms * scale } };
}

/**
 * Per-check thresholds (the repo's judge v0) with both thresholds multiplied by `scale`, rolling
 * back at the `failures`-th failed check.
 */
function thresholdCounting(name: string, failures: number): Calibratable {
  return {
    name,
    knob: 'threshold scale',
    stock: 1,
    make(scale, label = name) {
      return {
        name: label,
        traits: fixedSchedule(label),
        start(analysis) {
          const a = scaled(analysis, scale);
          let failed = 0;
          return {
            check(sample, weight) {
              const j = thresholdJudge.judge({ analysis: a, candidateWeight: weight, interval: sample }, null);
              if (j.verdict === 'fail') failed += 1;
              return rollbackIf(failed >= failures);
            },
          };
        },
      };
    },
    critical(checks, analysis) {
      // A check fails at scale c iff c < max(error rate / maxErrorRate, p95 / maxLatencyP95Ms).
      const ratios = checks.map(({ sample }) => {
        const c = summarize(sample.candidate);
        if (c.requests < analysis.minRequests) return 0;
        const limits = limitsOf(analysis);
        const lat = c.latencyP95Ms === undefined ? 0 : c.latencyP95Ms / limits.maxLatencyP95Ms;
        return Math.max(c.errorRate / limits.maxErrorRate, lat);
      });
      ratios.sort((x, y) => y - x);
      return ratios[failures - 1] ?? 0;
    },
  };
}

const Z98 = 2.3263; // two-sided 98% → one tail of 1%

/** Mann-Whitney z for "candidate stochastically larger", from grouped (bucketed) data with ties. */
export function mannWhitneyZ(candidate: readonly number[], baseline: readonly number[]): number | undefined {
  const nB = candidate.reduce((s, x) => s + x, 0);
  const nA = baseline.reduce((s, x) => s + x, 0);
  const N = nA + nB;
  if (nA === 0 || nB === 0) return undefined;
  let below = 0;
  let U = 0;
  let ties = 0;
  for (let j = 0; j < candidate.length; j++) {
    const a = baseline[j] ?? 0;
    const c = candidate[j] ?? 0;
    U += c * (below + 0.5 * a);
    below += a;
    const t = a + c;
    ties += t * t * t - t;
  }
  const mean = (nA * nB) / 2;
  const variance = ((nA * nB) / 12) * (N + 1 - ties / (N * (N - 1)));
  if (!(variance > 0)) return undefined;
  return (U - mean) / Math.sqrt(variance);
}

function kayentaZ(sample: MetricsSample, analysis: AnalysisSpec): number {
  const { baseline: A, candidate: B } = sample;
  if (B.requests < analysis.minRequests || A.requests < analysis.minRequests) return -Infinity;
  const zs = [
    mannWhitneyZ([B.requests - B.errors, B.errors], [A.requests - A.errors, A.errors]),
    mannWhitneyZ(B.latency.counts, A.latency.counts),
    B.timeToFirstByte && A.timeToFirstByte ? mannWhitneyZ(B.timeToFirstByte.counts, A.timeToFirstByte.counts) : undefined,
  ];
  return Math.max(-Infinity, ...zs.map((z) => z ?? -Infinity));
}

const kayenta = criticalZJudge('kayenta', (analysis) => (sample) => kayentaZ(sample, analysis));

function twoProportionZ(x1: number, n1: number, x0: number, n0: number): number | undefined {
  if (n1 === 0 || n0 === 0) return undefined;
  const p = (x1 + x0) / (n1 + n0);
  const se = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n0));
  return se > 0 ? (x1 / n1 - x0 / n0) / se : undefined;
}

const above = (h: Histogram, j: number) => h.counts.slice(j + 1).reduce((s, x) => s + x, 0);

/** The naive z-tests' running statistic: max of the cumulative error and p95-exceedance z's. */
function naiveZRunner(analysis: AnalysisSpec): (sample: MetricsSample) => number {
  let nA = 0;
  let nB = 0;
  let eA = 0;
  let eB = 0;
  let hA: number[] | undefined;
  let hB: number[] | undefined;
  return (sample) => {
    const { baseline: A, candidate: B } = sample;
    nA += A.requests;
    nB += B.requests;
    eA += A.errors;
    eB += B.errors;
    hA = hA ? hA.map((x, i) => x + (A.latency.counts[i] ?? 0)) : [...A.latency.counts];
    hB = hB ? hB.map((x, i) => x + (B.latency.counts[i] ?? 0)) : [...B.latency.counts];
    if (nB < analysis.minRequests) return -Infinity;
    const zErr = twoProportionZ(eB, nB, eA, nA);
    const j = chooseBoundaryIndex(A.latency.boundsMs, hA, 0.95);
    const zLat =
      j === undefined
        ? undefined
        : twoProportionZ(above({ boundsMs: A.latency.boundsMs, counts: hB }, j), nB, above({ boundsMs: A.latency.boundsMs, counts: hA }, j), nA);
    return Math.max(zErr ?? -Infinity, zLat ?? -Infinity);
  };
}

const naiveZ = criticalZJudge('naive-z', naiveZRunner);

/**
 * A judge that rolls back when a z statistic of the checks so far exceeds a critical value
 * (98% one-sided when stock). `statistic` is made once per rollout and may keep running sums.
 */
function criticalZJudge(family: string, statistic: (analysis: AnalysisSpec) => (sample: MetricsSample) => number): Calibratable {
  return {
    name: family,
    knob: 'critical z',
    stock: Z98,
    make(zCritical, name = family) {
      return {
        name,
        traits: fixedSchedule(name),
        start(analysis) {
          const z = statistic(analysis);
          return { check: (sample) => rollbackIf(z(sample) > zCritical) };
        },
      };
    },
    critical(checks, analysis) {
      const z = statistic(analysis);
      return Math.max(-Infinity, ...checks.map(({ sample }) => z(sample)));
    },
  };
}

/** The baseline families, stock-configured in JUDGES and calibrated by run.ts. */
export const BASELINES: Calibratable[] = [
  thresholdCounting('flagger', 5),
  thresholdCounting('argo-0', 1),
  thresholdCounting('argo-3', 4),
  kayenta,
  naiveZ,
];

export const JUDGES: BenchJudge[] = [sequential, ...BASELINES.map((b) => b.make(b.stock))];

/** The calibrated variants, knob by family name. */
export function calibratedJudges(knobs: Record<string, number>): BenchJudge[] {
  return BASELINES.filter((b) => knobs[b.name] !== undefined).map((b) => b.make(knobs[b.name]!, `${b.name}-cal`));
}

/** A fixed-schedule judge that never rolls back and records what it saw (for calibration). */
export function recorder(into: RecordedCheck[]): BenchJudge {
  return {
    name: 'recorder',
    traits: fixedSchedule('recorder'),
    start: () => ({
      check(sample, weight) {
        into.push({ sample, weight });
        return rollbackIf(false);
      },
    }),
  };
}
