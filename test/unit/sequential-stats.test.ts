import {
  addInterval,
  DEFAULT_ALTERNATIVES,
  GRID_LOW,
  intervalLogLik,
  lowerLogE,
  newRatioEvidence,
  ratioGrid,
  regressionLogE,
  upperConfidenceBound,
} from '../../src/analysis/sequential/ratio-test';
import { bernoulliKL, sampleRatioTest } from '../../src/analysis/sequential/srm';
import { chooseBoundaryIndex, exceedances, scaleToleranceRatio } from '../../src/analysis/sequential/boundary';

const logChoose = (n: number, k: number) => lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);
function lgamma(x: number): number {
  // Stirling series, accurate to ~1e-10 for x ≥ 8; shift small arguments up.
  let shift = 0;
  while (x < 8) {
    shift -= Math.log(x);
    x += 1;
  }
  const x2 = 1 / (x * x);
  return shift + (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + (1 / x) * (1 / 12 - x2 * (1 / 360 - x2 * (1 / 1260 - x2 / 1680)));
}

describe('ratio test: closed-form values', () => {
  // A hand-worked interval: baseline 9 errors in 900 requests, candidate 3 in 100, r0 = 1.2.
  // θ(1.2) = 120/1020 = 0.117647, θ(2) = 200/1100 = 0.181818,
  // LR(2 vs 1.2) = (0.181818/0.117647)^3 · (0.818182/0.882353)^9 = 3.6916 · 0.50679 = 1.87084.
  const counts = { candidateTrials: 100, baselineTrials: 900, candidateEvents: 3, baselineEvents: 9 };

  it('matches the hand-worked likelihood ratio of one interval', () => {
    const lr = Math.exp(intervalLogLik(2, 100, 900, 3, 9) - intervalLogLik(1.2, 100, 900, 3, 9));
    expect(lr).toBeCloseTo(1.870838, 5);
  });

  it('mixes the alternatives with equal weights', () => {
    const e = addInterval(newRatioEvidence(1.2), counts);
    expect(e.alternatives).toEqual([...DEFAULT_ALTERNATIVES]);
    const lr = (r: number) => Math.exp(intervalLogLik(r, 100, 900, 3, 9) - intervalLogLik(1.2, 100, 900, 3, 9));
    expect(Math.exp(regressionLogE(e))).toBeCloseTo((lr(1.5) + lr(2) + lr(3) + lr(5)) / 4, 10);
    expect(lr(2)).toBeCloseTo(1.870838, 5);
  });

  it('keeps only alternatives at least 10% above the tolerance', () => {
    expect(newRatioEvidence(1.25).alternatives).toEqual([1.5, 2, 3, 5]);
    expect(newRatioEvidence(1.4).alternatives).toEqual([2, 3, 5]);
    expect(newRatioEvidence(12).alternatives).toEqual([18, 24, 36, 60]);
  });

  it('puts r0 exactly on the grid at the documented index', () => {
    const grid = ratioGrid(1.2, [2]);
    expect(grid[-GRID_LOW]).toBe(1.2);
    expect(grid[grid.length - 1]).toBe(2);
  });

  it('has expectation exactly 1 at r0 and below 1 inside the null (exact binomial enumeration)', () => {
    const nA = 700;
    const nB = 300;
    const m = 25; // errors in the interval, conditioned on
    const theta = (r: number) => (r * nB) / (r * nB + nA);
    for (const rTrue of [1.2, 1, 0.5]) {
      const t = theta(rTrue);
      let mean = 0;
      for (let x = 0; x <= m; x++) {
        const p = Math.exp(logChoose(m, x) + x * Math.log(t) + (m - x) * Math.log(1 - t));
        const e = addInterval(newRatioEvidence(1.2), { candidateTrials: nB, baselineTrials: nA, candidateEvents: x, baselineEvents: m - x });
        mean += p * Math.exp(regressionLogE(e));
      }
      if (rTrue === 1.2) expect(mean).toBeCloseTo(1, 10);
      else expect(mean).toBeLessThan(1);
    }
  });

  it('readiness e-process has expectation ≤ 1 when the ratio is at or above r0', () => {
    const nA = 500;
    const nB = 500;
    const m = 40;
    for (const rTrue of [1.2, 2]) {
      const t = (rTrue * nB) / (rTrue * nB + nA);
      let mean = 0;
      for (let x = 0; x <= m; x++) {
        const p = Math.exp(logChoose(m, x) + x * Math.log(t) + (m - x) * Math.log(1 - t));
        const e = addInterval(newRatioEvidence(1.2), { candidateTrials: nB, baselineTrials: nA, candidateEvents: x, baselineEvents: m - x });
        mean += p * Math.exp(lowerLogE(e));
      }
      expect(mean).toBeLessThanOrEqual(1 + 1e-10);
      if (rTrue === 1.2) expect(mean).toBeCloseTo(1, 10);
    }
  });

  it('is unchanged by intervals with no events or with one version idle', () => {
    const e0 = newRatioEvidence(1.2);
    const e1 = addInterval(e0, { candidateTrials: 100, baselineTrials: 900, candidateEvents: 0, baselineEvents: 0 });
    expect(e1.logLik).toEqual(e0.logLik);
    const e2 = addInterval(e0, { candidateTrials: 0, baselineTrials: 900, candidateEvents: 0, baselineEvents: 5 });
    expect(e2).toBe(e0);
  });

  it('the confidence bound covers the true ratio and shrinks toward it', () => {
    // Expected counts with ratio exactly 1 over many intervals: the bound lands just above 1.
    let e = newRatioEvidence(1.2);
    const bounds: number[] = [];
    for (let k = 0; k < 200; k++) {
      e = addInterval(e, { candidateTrials: 1000, baselineTrials: 1000, candidateEvents: 10, baselineEvents: 10 });
      if (k % 50 === 49) bounds.push(upperConfidenceBound(e, 0.05)!);
    }
    for (let i = 1; i < bounds.length; i++) expect(bounds[i]!).toBeLessThanOrEqual(bounds[i - 1]!);
    expect(bounds[bounds.length - 1]!).toBeGreaterThan(1);
    expect(bounds[bounds.length - 1]!).toBeLessThanOrEqual(1.2); // rounded up to the grid: r0 itself is rejected
    expect(lowerLogE(e)).toBeGreaterThan(Math.log(20));
  });
});

describe('sample-ratio test', () => {
  it('computes the Bernoulli KL divergence', () => {
    expect(bernoulliKL(0.5, 0.5)).toBe(0);
    expect(bernoulliKL(0.65, 0.5)).toBeCloseTo(0.65 * Math.log(1.3) + 0.35 * Math.log(0.7), 12);
  });

  it('accepts a share on target and flags a gross mismatch', () => {
    expect(sampleRatioTest(500, 500, 50, 1e-6)).toMatchObject({ pValue: 1, mismatch: false });
    const r = sampleRatioTest(650, 350, 50, 1e-6);
    expect(r.mismatch).toBe(true);
    expect(r.pValue).toBeCloseTo(2 * Math.exp(-1000 * bernoulliKL(0.65, 0.5)), 25);
  });

  it('its p-value is never below the exact binomial tail (conservative at a 1% weight)', () => {
    const N = 3000;
    const p = 0.01;
    for (const k of [45, 57, 70]) {
      let tail = 0;
      for (let x = k; x <= N; x++) tail += Math.exp(logChoose(N, x) + x * Math.log(p) + (N - x) * Math.log(1 - p));
      expect(sampleRatioTest(k, N - k, 1, 1e-6).pValue).toBeGreaterThanOrEqual(2 * tail * (1 - 1e-9));
    }
  });
});

describe('latency boundary', () => {
  it('picks the bucket edge whose baseline exceedance is closest to 5%', () => {
    const bounds = [100, 200, 300, 500, 1000];
    // 1000 observations: above 300 → 120 (12%), above 500 → 40 (4%), above 1000 → 5.
    const counts = [300, 400, 180, 80, 35, 5];
    expect(chooseBoundaryIndex(bounds, counts, 0.95)).toBe(3);
    expect(exceedances({ boundsMs: bounds, counts }, 500)).toBe(40);
    expect(exceedances({ boundsMs: bounds, counts }, 400)).toBeUndefined();
  });

  it('has no edge to offer for an empty histogram', () => {
    expect(chooseBoundaryIndex([1, 2], [0, 0, 0], 0.95)).toBeUndefined();
  });

  it('turns a time-scale tolerance into the exceedance ratio of the local tail', () => {
    // A power-law tail S(t) = (100/t)^3 above 100 ms: a uniform slow-down by s multiplies S(b) by s^3.
    const bounds = [100, 200, 400, 800];
    const S = (t: number) => Math.pow(100 / t, 3);
    const n = 1e6;
    const counts = [0, n * (S(100) - S(200)), n * (S(200) - S(400)), n * (S(400) - S(800)), n * S(800)];
    expect(scaleToleranceRatio(bounds, counts, 2, 1.1)).toBeCloseTo(Math.pow(1.1, 3), 6);
    expect(scaleToleranceRatio(bounds, counts, 2, 1)).toBe(1);
    expect(scaleToleranceRatio(bounds, counts, 0, 1.1)).toBe(1); // no edge below
  });
});
