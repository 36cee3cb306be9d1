import {
  addInterval,
  DEFAULT_ALTERNATIVES,
  GRID_LOW,
  intervalLogLik,
  lowerLogE,
  newRatioEvidence,
  ratioGrid,
  regressionLogE,
  RESTART_SHARE,
  restartWeight,
  upperConfidenceBound,
  type RatioEvidence,
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

  it('mixes the alternatives with equal weights (plus the restarts, which have not seen data yet)', () => {
    const e = addInterval(newRatioEvidence(1.2), counts);
    expect(e.alternatives).toEqual([...DEFAULT_ALTERNATIVES]);
    const lr = (r: number) => Math.exp(intervalLogLik(r, 100, 900, 3, 9) - intervalLogLik(1.2, 100, 900, 3, 9));
    // Before any data E = 1; after one interval: the full-history mixture, the process started
    // after it (still 1) and the starts still to come (1 each) — the latter two weigh RESTART_SHARE.
    expect(Math.exp(regressionLogE(newRatioEvidence(1.2)))).toBeCloseTo(1, 12);
    expect(Math.exp(regressionLogE(e))).toBeCloseTo((1 - RESTART_SHARE) * ((lr(1.5) + lr(2) + lr(3) + lr(5)) / 4) + RESTART_SHARE, 10);
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

  it('restarts: the recursion equals the explicit mixture over start points, and the weights sum to 1', () => {
    let total = 1 - RESTART_SHARE;
    for (let s = 1; s < 1e6; s++) total += restartWeight(s);
    expect(total).toBeCloseTo(1, 3); // the tail beyond 10^6 is RESTART_SHARE/1000
    const data = [
      [100, 900, 3, 9],
      [120, 880, 0, 7],
      [90, 910, 6, 8],
      [0, 1000, 0, 10], // not contributing: no start, no factor
      [150, 850, 5, 5],
      [100, 900, 0, 0], // contributing, no events: factor 1
      [110, 890, 7, 6],
    ] as const;
    let e: RatioEvidence = newRatioEvidence(1.2);
    const used: Array<readonly [number, number, number, number]> = [];
    for (const [nB, nA, eB, eA] of data) {
      e = addInterval(e, { candidateTrials: nB, baselineTrials: nA, candidateEvents: eB, baselineEvents: eA });
      if (nB > 0 && nA > 0) used.push([nB, nA, eB, eA]);
      const t = used.length;
      // Σ_j w_j [(1−ρ)·Π_{k≤t} f + Σ_{1≤s≤t} π_s Π_{s<k≤t} f] + ρ·(t+1)^{-1/2}
      const f = (r: number, k: number) => {
        const [b, a, xb, xa] = used[k]!;
        return Math.exp(intervalLogLik(r, b, a, xb, xa) - intervalLogLik(1.2, b, a, xb, xa));
      };
      const product = (r: number, from: number) => used.slice(from).reduce((p, _, i) => p * f(r, from + i), 1);
      let expected = RESTART_SHARE / Math.sqrt(t + 1);
      for (const r of DEFAULT_ALTERNATIVES) {
        let component = (1 - RESTART_SHARE) * product(r, 0);
        for (let s = 1; s <= t; s++) component += restartWeight(s) * product(r, s);
        expected += component / DEFAULT_ALTERNATIVES.length;
      }
      expect(regressionLogE(e)).toBeCloseTo(Math.log(expected), 10);
    }
    expect(e.intervals).toBe(used.length);
  });

  it('restarts keep the expectation exactly 1 at r0 over several intervals (exact enumeration)', () => {
    // Two intervals, each binomial given its total: E[E_2] = 1 at r0 (a martingale), < 1 below.
    const shapes = [
      { nB: 150, nA: 850, m: 12 },
      { nB: 300, nA: 700, m: 9 },
    ];
    for (const rTrue of [1.2, 1]) {
      const probs = shapes.map(({ nB, nA, m }) => {
        const t = (rTrue * nB) / (rTrue * nB + nA);
        return Array.from({ length: m + 1 }, (_, x) => Math.exp(logChoose(m, x) + x * Math.log(t) + (m - x) * Math.log(1 - t)));
      });
      let mean = 0;
      for (let x1 = 0; x1 <= shapes[0]!.m; x1++) {
        const e1 = addInterval(newRatioEvidence(1.2), { candidateTrials: shapes[0]!.nB, baselineTrials: shapes[0]!.nA, candidateEvents: x1, baselineEvents: shapes[0]!.m - x1 });
        for (let x2 = 0; x2 <= shapes[1]!.m; x2++) {
          const e2 = addInterval(e1, { candidateTrials: shapes[1]!.nB, baselineTrials: shapes[1]!.nA, candidateEvents: x2, baselineEvents: shapes[1]!.m - x2 });
          mean += probs[0]![x1]! * probs[1]![x2]! * Math.exp(regressionLogE(e2));
        }
      }
      if (rTrue === 1.2) expect(mean).toBeCloseTo(1, 10);
      else expect(mean).toBeLessThan(1);
    }
  });

  it('restarts: at the least-favourable null r = r0, sup_t E_t ≥ 1/α in at most ~α of runs (Monte Carlo)', () => {
    // The boundary of the null (a martingale, not the downward drift of r < r0): 1,500 runs of 60
    // intervals, Poisson-by-inversion counts conditioned into a binomial split, α = 0.1.
    let seed = 99;
    const uniform = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) + 0.5) / 2147483648;
    const binomial = (m: number, p: number) => {
      let x = 0;
      for (let i = 0; i < m; i++) if (uniform() < p) x++;
      return x;
    };
    const poisson = (mean: number) => {
      let k = 0;
      let p = Math.exp(-mean);
      let c = p;
      const u = uniform();
      while (u > c && k < 1000) p *= mean / ++k, (c += p);
      return k;
    };
    const alpha = 0.1;
    const runs = 1500;
    let rejections = 0;
    for (let run = 0; run < runs; run++) {
      let e = newRatioEvidence(1.2);
      for (let k = 0; k < 60; k++) {
        const nB = k < 20 ? 50 : 250;
        const nA = 1000 - nB;
        const m = poisson(0.02 * (1.2 * nB + nA));
        const x = binomial(m, (1.2 * nB) / (1.2 * nB + nA));
        e = addInterval(e, { candidateTrials: nB, baselineTrials: nA, candidateEvents: x, baselineEvents: m - x });
        if (regressionLogE(e) >= Math.log(1 / alpha)) {
          rejections++;
          break;
        }
      }
    }
    // Ville: P(reject) ≤ α = 0.1; P(Binomial(1500, 0.1) ≥ 190) ≈ 0.001.
    expect(rejections).toBeLessThan(190);
  }, 20_000);

  it('restarts make a late regression detectable sooner than the full-history process alone', () => {
    // 5% weight, 1% errors: exactly the baseline's rate (r = 1), then twice it from interval 41.
    const step = (e: RatioEvidence, r: number) => addInterval(e, { candidateTrials: 200, baselineTrials: 2800, candidateEvents: 2 * r, baselineEvents: 28 });
    let e = newRatioEvidence(1.2);
    for (let k = 0; k < 40; k++) e = step(e, 1); // healthy: evidence for the null piles up
    let withRestarts = -1;
    let without = -1;
    for (let k = 1; k <= 60; k++) {
      e = step(e, 2);
      const full = e.logLik; // the full-history mixture alone, at full weight (no restarts)
      const base = full[-GRID_LOW]!;
      const alone = Math.log(DEFAULT_ALTERNATIVES.reduce((s, _, j) => s + Math.exp(full[full.length - DEFAULT_ALTERNATIVES.length + j]! - base), 0) / DEFAULT_ALTERNATIVES.length);
      if (withRestarts < 0 && regressionLogE(e) >= Math.log(1 / 0.006)) withRestarts = k;
      if (without < 0 && alone >= Math.log(1 / 0.006)) without = k;
    }
    expect(withRestarts).toBeGreaterThan(0);
    // Deterministic counts: 34 intervals after the onset with restarts, 46 without.
    expect(without).toBeGreaterThan(0);
    expect(withRestarts).toBeLessThan(without - 10);
  });

  it('a state from before restarts (no `restarts`) keeps working and starts restarting', () => {
    const legacy = addInterval(newRatioEvidence(1.2), counts);
    delete legacy.restarts;
    const old = JSON.parse(JSON.stringify(legacy)) as RatioEvidence;
    const base = old.logLik[-GRID_LOW]!;
    const J = old.alternatives.length;
    const mix = old.alternatives.reduce((s, _, j) => s + Math.exp(old.logLik[old.logLik.length - J + j]! - base), 0) / J;
    expect(Math.exp(regressionLogE(old))).toBeCloseTo((1 - RESTART_SHARE) * mix + RESTART_SHARE, 10);
    const next = addInterval(old, counts);
    expect(next.restarts).toHaveLength(J);
    expect(next.restarts!.every(Number.isFinite)).toBe(true);
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
