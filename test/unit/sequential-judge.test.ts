import type { JudgeInput } from '../../src/analysis/judge';
import { LATENCY_BUCKETS_MS, type Histogram, type MetricsSample, type VersionMetrics } from '../../src/analysis/metrics';
import { createSequentialJudge, type SequentialState } from '../../src/analysis/sequential';
import { sequentialOptionsSchema } from '../../src/analysis/sequential/schema';
import { exceedances } from '../../src/analysis/sequential/boundary';
import type { AnalysisSpec } from '../../src/spec/schema';
import { poisson as poissonDraw, rng } from '../../bench/judge/random';
import { analysisOf } from '../helpers/specs';

/** No thresholds: the comparison with the baseline alone (SLO guardrails: test/unit/slo.test.ts). */
const analysis: AnalysisSpec = analysisOf();

/** Probability of each bucket for lognormal(ln 200, 0.5) latencies scaled by `factor`. */
function bucketProbabilities(factor: number): number[] {
  const bounds = LATENCY_BUCKETS_MS;
  const cdf = bounds.map((b) => normalCdf((Math.log(b / factor) - Math.log(200)) / 0.5));
  return [...cdf.map((c, i) => c - (i === 0 ? 0 : cdf[i - 1]!)), 1 - cdf[cdf.length - 1]!];
}

const expectedCache = new Map<string, Histogram>();
const cumulativeCache = new Map<number, number[]>();
function cumulativeOf(factor: number): number[] {
  let c = cumulativeCache.get(factor);
  if (!c) {
    let sum = 0;
    c = bucketProbabilities(factor).map((p) => (sum += p));
    c[c.length - 1] = 1;
    cumulativeCache.set(factor, c);
  }
  return c;
}

/**
 * A histogram of n latencies: with `random`, n independent draws; without, the expected counts
 * rounded (largest remainders), deterministic.
 */
function histogramOf(n: number, factor = 1, random?: () => number): Histogram {
  const probabilities = bucketProbabilities(factor);
  const counts = new Array(probabilities.length).fill(0) as number[];
  if (random) {
    const cumulative = cumulativeOf(factor);
    for (let i = 0; i < n; i++) {
      const u = random();
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (u > cumulative[mid]!) lo = mid + 1;
        else hi = mid;
      }
      counts[lo] = (counts[lo] ?? 0) + 1;
    }
    return { boundsMs: [...LATENCY_BUCKETS_MS], counts };
  }
  const key = `${n}|${factor}`;
  const cached = expectedCache.get(key);
  if (cached) return { boundsMs: [...cached.boundsMs], counts: [...cached.counts] };
  const exact = probabilities.map((p) => p * n);
  exact.forEach((x, i) => (counts[i] = Math.floor(x)));
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  const missing = n - counts.reduce((a, b) => a + b, 0);
  for (let k = 0; k < missing; k++) counts[order[k]![1]] = (counts[order[k]![1]] ?? 0) + 1;
  const h = { boundsMs: [...LATENCY_BUCKETS_MS], counts };
  expectedCache.set(key, h);
  return { boundsMs: [...h.boundsMs], counts: [...h.counts] };
}

function normalCdf(x: number): number {
  // Zelen & Severo 26.2.17, |error| < 7.5e-8.
  const t = 1 / (1 + 0.2316419 * Math.abs(x));
  const d = 0.3989422804 * Math.exp((-x * x) / 2);
  const p = d * t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  return x > 0 ? 1 - p : p;
}

function version(requests: number, errors: number, latencyFactor = 1, random?: () => number): VersionMetrics {
  return { requests, errors, latency: histogramOf(requests, latencyFactor, random) };
}

function sample(candidate: VersionMetrics, baseline: VersionMetrics): MetricsSample {
  return { baseline, candidate };
}

const input = (interval: MetricsSample, candidateWeight = 10): JudgeInput => ({ analysis, candidateWeight, interval });

describe('sequential judge', () => {
  it('fails a catastrophic candidate at the first check', () => {
    const judge = createSequentialJudge();
    const j = judge.judge(input(sample(version(60, 15), version(540, 3))), judge.initialState());
    expect(j.verdict).toBe('fail');
    expect(j.reasons[0]).toMatch(/catastrophic candidate: 15\/60 requests failed/);
  });

  it('does not blame the candidate for an outage the baseline shares', () => {
    const judge = createSequentialJudge();
    const j = judge.judge(input(sample(version(60, 15), version(540, 130))), judge.initialState());
    expect(j.verdict).not.toBe('fail');
  });

  it('holds (inconclusive) on a sample-ratio mismatch and does not use the interval', () => {
    const judge = createSequentialJudge();
    const s0 = judge.initialState();
    // Configured 10%, observed 30% of 2000 requests.
    const j = judge.judge(input(sample(version(600, 30), version(1400, 2))), s0);
    expect(j.verdict).toBe('inconclusive');
    expect(j.reasons[0]).toMatch(/sample-ratio mismatch: the candidate got 30\.00% of 2000 requests against a configured 10%/);
    expect(j.state.processes.errors!.evidence.intervals).toBe(0);
    expect((j.evidence as { srm: { mismatch: boolean } }).srm.mismatch).toBe(true);
  });

  it('holds when metrics are missing or malformed', () => {
    const judge = createSequentialJudge();
    const s0 = judge.initialState();
    // No candidate request among a few: thin traffic, a wait; among 900 at 10%: the split is off.
    const noCandidate = judge.judge(input(sample(version(0, 0), version(5, 0))), s0);
    expect(noCandidate.verdict).toBe('inconclusive');
    expect(noCandidate.reasons.join(' ')).toMatch(/candidate served no requests/);
    expect(noCandidate.wait).toMatchObject({ reason: 'thin_traffic' });
    const offSplit = judge.judge(input(sample(version(0, 0), version(900, 9))), s0);
    expect(offSplit.verdict).toBe('inconclusive');
    expect(offSplit.wait).toMatchObject({ reason: 'srm', message: expect.stringMatching(/sample-ratio mismatch: the candidate got 0.00% of 900 requests/) });

    const broken = judge.judge(input(sample({ requests: NaN, errors: 0, latency: histogramOf(0) }, version(900, 9))), s0);
    expect(broken.verdict).toBe('inconclusive');
    expect(broken.reasons[0]).toMatch(/missing or malformed/);

    const noLatency = judge.judge(input(sample({ ...version(100, 1), latency: { boundsMs: [1, 2], counts: [0] } }, version(900, 9))), s0);
    expect(noLatency.verdict).toBe('inconclusive');
    expect(noLatency.reasons.join(' ')).toMatch(/latency: the histogram is missing/);
    expect(noLatency.state.processes.errors!.evidence.intervals).toBe(1); // errors still count
  });

  it('holds below minRequests, pooling thin intervals until they reach it', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    const j1 = judge.judge(input(sample(version(30, 0), version(270, 3))), s);
    expect(j1.verdict).toBe('inconclusive');
    expect(j1.reasons[0]).toMatch(/30 requests since the last conclusive check, fewer than minRequests 50/);
    s = j1.state;
    const j2 = judge.judge(input(sample(version(30, 0), version(270, 3))), s);
    expect(j2.verdict).toBe('pass');
    expect(j2.state.pendingCandidateRequests).toBe(0);
  });

  it('keeps answering inconclusive on holds in a row, with wait.reason set (the step policy counts them)', () => {
    const judge = createSequentialJudge({ maxConsecutiveInconclusive: 3 });
    let s = judge.initialState();
    for (let k = 0; k < 12; k++) {
      const j = judge.judge(input(sample(version(0, 0), version(5, 0))), s);
      expect(j.verdict).toBe('inconclusive');
      expect(j.wait).toMatchObject({ reason: 'thin_traffic' });
      expect(j.wait!.message).toMatch(/candidate served no requests/);
      s = j.state;
    }
    expect(s.failure).toBeNull();
    // Malformed counts: metrics_missing, however many in a row, and the spec's inconclusiveLimit is not the judge's either.
    const strict = createSequentialJudge();
    let t = strict.initialState();
    for (let k = 0; k < 5; k++) {
      const j = strict.judge({ ...input(sample({ requests: NaN, errors: 0, latency: histogramOf(0) }, version(900, 9))), analysis: { ...analysis, inconclusiveLimit: 1 } }, t);
      expect(j.verdict).toBe('inconclusive');
      expect(j.wait).toMatchObject({ reason: 'metrics_missing' });
      t = j.state;
    }
    // Thin traffic below minRequests says how many candidate requests are still needed.
    const thin = judge.judge(input(sample(version(20, 0), version(180, 2))), judge.initialState());
    expect(thin.wait).toEqual(expect.objectContaining({ reason: 'thin_traffic', candidateRequests: 30 }));
  });

  it('is ready to advance on clear evidence, not before', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    const readiness: boolean[] = [];
    for (let k = 0; k < 40; k++) {
      // 20% weight, 1% errors on both, identical latency.
      const j = judge.judge(input(sample(version(2000, 20), version(8000, 80)), 20), s);
      expect(j.verdict).toBe('pass');
      readiness.push(j.readyToAdvance === true);
      s = j.state;
    }
    expect(readiness[0]).toBe(false);
    expect(readiness[readiness.length - 1]).toBe(true);
    const ev = (judgeRun(judge, s).evidence ?? {}) as Record<string, { upperBound: number; ready: boolean; boundaryMs?: number }>;
    expect(ev.errors!.upperBound).toBeLessThanOrEqual(1.2);
    expect(ev.latency!.ready).toBe(true);
    expect(ev.latency!.boundaryMs).toBeGreaterThan(200);
  });

  it('is ready on error-free traffic through the error-rate bound (no events: no ratio to bound)', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    let readyAt = -1;
    let last: ReturnType<typeof judge.judge> | undefined;
    for (let k = 0; k < 30 && readyAt < 0; k++) {
      last = judge.judge(input(sample(version(500, 0), version(1500, 0)), 25), s);
      expect(last.verdict).toBe('pass');
      s = last.state;
      if (last.readyToAdvance) readyAt = k;
    }
    const ev = (last!.evidence ?? {}) as Record<string, { upperBound: number | null; errorRateUpperBound: number; errorRateLimit: number; ready: boolean }>;
    expect(ev.errors!.upperBound).toBeNull(); // the ratio stays unbounded without errors
    expect(ev.errors!.ready).toBe(true);
    expect(ev.errors!.errorRateLimit).toBe(0.002);
    expect(ev.errors!.errorRateUpperBound).toBeLessThanOrEqual(0.002);
    // ≈ ln(4/0.1)/0.002 ≈ 1.8k error-free candidate requests (and latency must be ready too).
    expect(readyAt).toBeGreaterThanOrEqual(3);
    expect(readyAt).toBeLessThan(12);
    expect(last!.reasons.join(' ')).toMatch(/error rate ≤ 0\.\d+% with 90% confidence \(ready at ≤ 0\.20%: the baseline.s \+ 0\.20%\)/);
    // Without the slack, error-free traffic is never ready.
    const strict = createSequentialJudge({ readyErrorRateSlack: 0 });
    let t = strict.initialState();
    for (let k = 0; k < 30; k++) {
      const j = strict.judge(input(sample(version(500, 0), version(1500, 0)), 25), t);
      expect(j.readyToAdvance).toBe(false);
      t = j.state;
    }
  });

  it('a candidate with errors where the baseline has none is not ready through the rate bound', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    for (let k = 0; k < 30; k++) {
      const j = judge.judge(input(sample(version(500, k % 2), version(1500, 0)), 25), s); // 0.1% vs 0%
      expect(j.readyToAdvance).toBe(false);
      s = j.state;
    }
  });

  it('rolls back a regressed candidate and stays failed', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    let failedAt = -1;
    for (let k = 0; k < 30 && failedAt < 0; k++) {
      const j = judge.judge(input(sample(version(300, 15), version(2700, 27))), s); // 5% vs 1%
      s = j.state;
      if (j.verdict === 'fail') {
        failedAt = k;
        expect(j.reasons[0]).toMatch(/^error rate: candidate \d+\/\d+ .* the e-value [\d.e+]+ reached 166\.7 \(α = 0\.006\)/);
      }
    }
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(failedAt).toBeLessThan(3);
    const after = judge.judge(input(sample(version(300, 3), version(2700, 27))), s);
    expect(after.verdict).toBe('fail');
    expect(after.reasons[0]).toMatch(/already failed/);
  });

  it('catches a slower candidate on the latency exceedance test', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    let verdict = 'pass';
    let k = 0;
    for (; k < 30 && verdict !== 'fail'; k++) {
      const j = judge.judge(input(sample(version(300, 3, 1.5), version(2700, 27))), s);
      verdict = j.verdict;
      s = j.state;
    }
    expect(verdict).toBe('fail');
    expect(s.failure![0]).toMatch(/^latency: requests slower than \d+ ms/);
  });

  it('tests each interval at a boundary chosen from earlier baseline data only (predictable), tracking it', () => {
    const judge = createSequentialJudge();
    let s = judge.initialState();
    const j1 = judge.judge(input(sample(version(300, 3), version(2700, 27))), s);
    expect(j1.state.processes.latency!.evidence.intervals).toBe(0); // the first pool is not tested
    const first = j1.state.processes.latency!.boundaryMs;
    expect(first).not.toBeNull();
    s = j1.state;
    // Both versions twice as slow: this interval is still tested at the earlier boundary...
    const j2 = judge.judge(input(sample(version(300, 3, 2), version(2700, 27, 2))), s);
    expect(j2.state.processes.latency!.evidence.intervals).toBe(1);
    expect(j2.state.processes.latency!.evidence.baselineEvents).toBe(exceedances(version(2700, 27, 2).latency, first!));
    // ...and the next one at a boundary that followed the baseline.
    expect(j2.state.processes.latency!.boundaryMs).toBeGreaterThan(first!);
    // r0 was fixed once, from the first pool: the larger of 1.25 and the 10% slow-down's ratio.
    expect(j2.state.processes.latency!.evidence.r0).toBe(j1.state.processes.latency!.evidence.r0);
    expect(j1.state.processes.latency!.evidence.r0).toBeGreaterThanOrEqual(1.25);
  });

  it('state is plain JSON, round-trips, and the evidence is never reset between calls', () => {
    const judge = createSequentialJudge();
    let s: SequentialState = judge.initialState();
    const random = rng(7);
    let previousIntervals = 0;
    for (let k = 0; k < 12; k++) {
      const w = k < 6 ? 5 : 25; // a step change in the middle
      const nB = w === 5 ? 150 : 750;
      const j = judge.judge(input(sample(version(nB, 2, 1, random), version(3000 - nB, 30, 1, random)), w), s);
      const roundTripped = JSON.parse(JSON.stringify(j.state)) as SequentialState;
      expect(roundTripped).toEqual(j.state);
      expect(j.state.processes.errors!.evidence.intervals).toBe(previousIntervals + 1);
      previousIntervals = j.state.processes.errors!.evidence.intervals;
      s = roundTripped;
    }
    expect(s.processes.errors!.evidence.candidateTrials).toBe(6 * 150 + 6 * 750);
    // Same inputs from a round-tripped state give the same judgement (determinism).
    const x = input(sample(version(750, 8), version(2250, 20)), 25);
    expect(judge.judge(x, s)).toEqual(judge.judge(x, JSON.parse(JSON.stringify(s)) as SequentialState));
  });

  it('checks resource use as a ratio, failing after consecutive breaches', () => {
    const judge = createSequentialJudge({ resource: { breachesToFail: 2 } });
    let s = judge.initialState();
    const heavy = (): MetricsSample => ({
      candidate: { ...version(300, 3), cpuSeconds: 300 * 2, memoryBytes: 2e9 },
      baseline: { ...version(2700, 27), cpuSeconds: 2700, memoryBytes: 1e9 },
    });
    const j1 = judge.judge(input(heavy()), s);
    expect(j1.verdict).toBe('pass');
    expect(j1.reasons.join(' ')).toMatch(/CPU per request 2 s vs baseline 1 s is 2×, above 1.5×/);
    s = j1.state;
    const j2 = judge.judge(input(heavy()), s);
    expect(j2.verdict).toBe('fail');
    expect(j2.reasons[0]).toMatch(/^resource use: .*memory 1907 MiB vs baseline 954 MiB is 2×/);
  });

  it('parses options with the zod fragment', () => {
    expect(sequentialOptionsSchema.parse({ alpha: 0.05, tolerances: { errors: 1.5 } })).toEqual({ alpha: 0.05, tolerances: { errors: 1.5 } });
    expect(sequentialOptionsSchema.safeParse({ alpha: 2 }).success).toBe(false);
    expect(sequentialOptionsSchema.safeParse({ bogus: 1 }).success).toBe(false);
    expect(() => createSequentialJudge({ alpha: 0 })).toThrow(/alpha must be in/);
  });
});

function judgeRun(judge: ReturnType<typeof createSequentialJudge>, s: SequentialState) {
  return judge.judge(input(sample(version(2000, 20), version(8000, 80)), 20), s);
}

describe('sequential judge: A/A Monte Carlo (small scale)', () => {
  it('rejects identical versions at a rate compatible with α (within its interval)', () => {
    // α = 0.2 (large, so that a broken test would show at this scale); 200 rollouts × 30 checks
    // at a 20% weight with Poisson counts drawn by inversion and random latency histograms.
    const alpha = 0.2;
    const runs = 200;
    const random = rng(2024);
    const poisson = (mean: number) => poissonDraw(random, mean);
    let rejections = 0;
    for (let r = 0; r < runs; r++) {
      const judge = createSequentialJudge({ alpha, maxConsecutiveInconclusive: 0 });
      let s = judge.initialState();
      for (let k = 0; k < 30; k++) {
        const nA = 600;
        const nB = 150;
        // Drifting base rate, identical for both versions (the ratio is 1 ≤ r0).
        const rate = 0.02 * (1 + 0.5 * Math.sin(k / 5));
        const j = judge.judge(input(sample(version(nB, Math.min(nB, poisson(nB * rate)), 1, random), version(nA, Math.min(nA, poisson(nA * rate)), 1, random)), 20), s);
        s = j.state;
        if (j.verdict === 'fail') {
          rejections += 1;
          break;
        }
      }
    }
    // The observed rate must not be significantly above α: P(Binomial(200, 0.2) ≥ 59) ≈ 0.0009,
    // so 59+ rejections would be evidence of invalidity (an e-process is usually well below α).
    expect(rejections).toBeLessThan(59);
  }, 10_000);
});
