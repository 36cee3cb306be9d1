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
 */
import type { AnalysisSpec } from '../../src/spec/schema';
import type { Histogram, MetricsSample } from '../../src/analysis/metrics';
import { thresholdJudge } from '../../src/analysis/threshold-judge';
import { createSequentialJudge, type SequentialState } from '../../src/analysis/sequential';
import { chooseBoundaryIndex } from '../../src/analysis/sequential/boundary';

export interface Check {
  rollback: boolean;
  /** Ours only: readyToAdvance, and whether the evidence leans toward regression (marginal). */
  ready?: boolean;
  marginal?: boolean;
}

export interface Runner {
  check(sample: MetricsSample, weight: number): Check;
}

export interface BenchJudge {
  name: string;
  /** Adaptive judges drive the ladder with readyToAdvance; others bake each step for a fixed time. */
  adaptive: boolean;
  start(analysis: AnalysisSpec): Runner;
}

const sequential: BenchJudge = {
  name: 'sequential',
  adaptive: true,
  start(analysis) {
    const judge = createSequentialJudge();
    let state: SequentialState = judge.initialState();
    return {
      check(sample, weight) {
        const j = judge.judge({ analysis, candidateWeight: weight, interval: sample }, state);
        state = j.state;
        const ev = j.evidence as Record<string, { tested?: boolean; eValue?: number }>;
        const marginal = ['errors', 'latency', 'ttfb'].some((m) => ev[m]?.tested && (ev[m]?.eValue ?? 0) >= 1);
        return { rollback: j.verdict === 'fail', ready: j.readyToAdvance === true, marginal };
      },
    };
  },
};

function thresholdCounting(name: string, rollbackWhenFailed: (failed: number) => boolean): BenchJudge {
  return {
    name,
    adaptive: false,
    start(analysis) {
      let failed = 0;
      return {
        check(sample, weight) {
          const j = thresholdJudge.judge({ analysis, candidateWeight: weight, interval: sample }, null);
          if (j.verdict === 'fail') failed += 1;
          return { rollback: rollbackWhenFailed(failed) };
        },
      };
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

const kayenta: BenchJudge = {
  name: 'kayenta',
  adaptive: false,
  start(analysis) {
    return {
      check(sample) {
        const { baseline: A, candidate: B } = sample;
        if (B.requests < analysis.minRequests || A.requests < analysis.minRequests) return { rollback: false };
        const zs = [
          mannWhitneyZ([B.requests - B.errors, B.errors], [A.requests - A.errors, A.errors]),
          mannWhitneyZ(B.latency.counts, A.latency.counts),
          B.timeToFirstByte && A.timeToFirstByte ? mannWhitneyZ(B.timeToFirstByte.counts, A.timeToFirstByte.counts) : undefined,
        ];
        return { rollback: zs.some((z) => z !== undefined && z > Z98) };
      },
    };
  },
};

function twoProportionZ(x1: number, n1: number, x0: number, n0: number): number | undefined {
  if (n1 === 0 || n0 === 0) return undefined;
  const p = (x1 + x0) / (n1 + n0);
  const se = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n0));
  return se > 0 ? (x1 / n1 - x0 / n0) / se : undefined;
}

const above = (h: Histogram, j: number) => h.counts.slice(j + 1).reduce((s, x) => s + x, 0);

const naiveZ: BenchJudge = {
  name: 'naive-z',
  adaptive: false,
  start(analysis) {
    let nA = 0;
    let nB = 0;
    let eA = 0;
    let eB = 0;
    let hA: number[] | undefined;
    let hB: number[] | undefined;
    return {
      check(sample) {
        const { baseline: A, candidate: B } = sample;
        nA += A.requests;
        nB += B.requests;
        eA += A.errors;
        eB += B.errors;
        hA = hA ? hA.map((x, i) => x + (A.latency.counts[i] ?? 0)) : [...A.latency.counts];
        hB = hB ? hB.map((x, i) => x + (B.latency.counts[i] ?? 0)) : [...B.latency.counts];
        if (nB < analysis.minRequests) return { rollback: false };
        const zErr = twoProportionZ(eB, nB, eA, nA);
        const j = chooseBoundaryIndex(A.latency.boundsMs, hA, 0.95);
        const zLat =
          j === undefined
            ? undefined
            : twoProportionZ(above({ boundsMs: A.latency.boundsMs, counts: hB }, j), nB, above({ boundsMs: A.latency.boundsMs, counts: hA }, j), nA);
        return { rollback: (zErr ?? 0) > Z98 || (zLat ?? 0) > Z98 };
      },
    };
  },
};

export const JUDGES: BenchJudge[] = [
  sequential,
  thresholdCounting('flagger', (failed) => failed >= 5),
  thresholdCounting('argo-0', (failed) => failed > 0),
  thresholdCounting('argo-3', (failed) => failed > 3),
  kayenta,
  naiveZ,
];
