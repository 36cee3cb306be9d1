import { FRACTIONS, rateBelowLogE, rateUpperBound } from '../../src/analysis/sequential/rate-bound';
import { binomial, rng } from '../../bench/judge/random';

describe('anytime-valid error-rate bound', () => {
  it('matches the closed form for error-free traffic', () => {
    // e = 0: E_n(q) = mean_f ((1 − f q)/(1 − q))^n.
    const n = 1000;
    const q = 0.005;
    const expected = FRACTIONS.reduce((s, f) => s + Math.pow((1 - f * q) / (1 - q), n), 0) / FRACTIONS.length;
    expect(Math.exp(rateBelowLogE(0, n, q))).toBeCloseTo(expected, 10);
    // Hand-worked: f = 0 dominates, (1/0.995)^1000 = 150.6…, so E ≈ (150.6 + 42.5 + 12.1 + 3.5)/4 ≈ 52.
    expect(expected).toBeGreaterThan(51);
    expect(expected).toBeLessThan(53);
  });

  it('an error drops the f = 0 component only', () => {
    const q = 0.01;
    const one = rateBelowLogE(1, 2000, q);
    const byHand = Math.log(
      FRACTIONS.filter((f) => f > 0).reduce((s, f) => s + f * Math.pow((1 - f * q) / (1 - q), 1999), 0) / FRACTIONS.length,
    );
    expect(one).toBeCloseTo(byHand, 10);
  });

  it('the bound is the point where E reaches 1/α, grows with the errors and shrinks with the requests', () => {
    const ub = rateUpperBound(0, 5000, 0.1);
    expect(rateBelowLogE(0, 5000, ub)).toBeGreaterThanOrEqual(Math.log(10));
    expect(rateBelowLogE(0, 5000, ub * 0.99)).toBeLessThan(Math.log(10));
    // ≈ ln(4/α)/n for error-free traffic: 3.69/5000 ≈ 0.074%.
    expect(ub).toBeGreaterThan(0.0006);
    expect(ub).toBeLessThan(0.0009);
    expect(rateUpperBound(5, 5000, 0.1)).toBeGreaterThan(ub);
    expect(rateUpperBound(5, 5000, 0.1)).toBeGreaterThan(5 / 5000);
    expect(rateUpperBound(0, 50_000, 0.1)).toBeLessThan(ub / 5);
    expect(rateUpperBound(0, 0, 0.1)).toBe(1);
    expect(rateUpperBound(10, 10, 0.1)).toBe(1);
  });

  it('E has expectation exactly 1 at the null rate and below it above (exact binomial sums)', () => {
    const n = 60;
    const q = 0.05;
    for (const p of [q, 0.1, 0.3]) {
      let mean = 0;
      for (let e = 0; e <= n; e++) {
        const prob = Math.exp(logChoose(n, e) + e * Math.log(p) + (n - e) * Math.log(1 - p));
        mean += prob * Math.exp(rateBelowLogE(e, n, q));
      }
      if (p === q) expect(mean).toBeCloseTo(1, 10);
      else expect(mean).toBeLessThan(1);
    }
  });

  it('covers the true rate at every look with probability ≥ 1 − α (Monte Carlo)', () => {
    const alpha = 0.1;
    const p = 0.01;
    const random = rng(20261130);
    const reps = 400;
    let missed = 0;
    for (let r = 0; r < reps; r++) {
      let errors = 0;
      let requests = 0;
      for (let look = 0; look < 60; look++) {
        errors += binomial(random, 500, p);
        requests += 500;
        if (rateUpperBound(errors, requests, alpha) < p) {
          missed += 1;
          break;
        }
      }
    }
    // Ville: ≤ α; 400 reps put a true 10% at most ~14% with overwhelming probability.
    expect(missed / reps).toBeLessThan(0.14);
  });
});

function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}
