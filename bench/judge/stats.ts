/** Clopper-Pearson intervals and quantiles for the benchmark report. */
import { logGamma, normalCdf } from './random';

function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}


/** Regularized incomplete beta I_x(a, b) (Numerical Recipes continued fraction). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(a * Math.log(x) + b * Math.log(1 - x) - logBeta(a, b));
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  let f = 1;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = Math.abs(d) < 1e-300 ? 1e-300 : d;
  d = 1 / d;
  f = d;
  for (let m = 1; m < 300; m++) {
    let num = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + num * d;
    d = Math.abs(d) < 1e-300 ? 1e-300 : d;
    c = 1 + num / c;
    c = Math.abs(c) < 1e-300 ? 1e-300 : c;
    d = 1 / d;
    f *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + num * d;
    d = Math.abs(d) < 1e-300 ? 1e-300 : d;
    c = 1 + num / c;
    c = Math.abs(c) < 1e-300 ? 1e-300 : c;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-12) break;
  }
  return (front * f) / a;
}

function betaQuantile(p: number, a: number, b: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (incompleteBeta(mid, a, b) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Exact (Clopper-Pearson) 95% interval for k successes in n trials. */
export function clopperPearson(k: number, n: number, level = 0.95): [number, number] {
  if (n === 0) return [0, 1];
  const tail = (1 - level) / 2;
  const lower = k === 0 ? 0 : betaQuantile(tail, k, n - k + 1);
  const upper = k === n ? 1 : betaQuantile(1 - tail, k + 1, n - k);
  return [lower, upper];
}

export function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Two-proportion z statistic for x1/n1 − x2/n2 (pooled variance); 0 when both are 0 or 1 (no
 * difference can be told).
 */
export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): number {
  const pooled = (x1 + x2) / (n1 + n2);
  const variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2);
  if (!(variance > 0)) return 0;
  return (x1 / n1 - x2 / n2) / Math.sqrt(variance);
}

/** The standard normal quantile (bisection on the CDF: plenty for a report). */
export function normalQuantile(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The oracle for a detection cell: candidate requests a fixed-sample one-sided test of
 * "p_B ≤ r₀·p_A" at level α needs to reject with the given power when p_B = factor·p_A, at a
 * constant weight w (percent, n_A = n_B·(100 − w)/w): the usual power calculation for a
 * two-proportion test with a margin, on D = p̂_B − r₀·p̂_A, with its standard deviation under
 * the null (p_B = r₀·p_A) and under the alternative:
 *   √n_B = (z_{1−α}·σ₀ + z_power·σ₁) / (p_B − r₀·p_A),  σ² = p_B(1 − p_B) + r₀²·p_A(1 − p_A)·w/(100 − w).
 */
export function fixedSampleDetectionN(o: { baseRate: number; factor: number; weight: number; r0: number; alpha: number; power: number }): number {
  const pA = o.baseRate;
  const pB = pA * o.factor;
  const share = o.weight / (100 - o.weight);
  const sd = (candidateRate: number) => Math.sqrt(candidateRate * (1 - candidateRate) + o.r0 ** 2 * pA * (1 - pA) * share);
  const root = (normalQuantile(1 - o.alpha) * sd(o.r0 * pA) + normalQuantile(o.power) * sd(pB)) / (pB - o.r0 * pA);
  return root * root;
}

/**
 * The fixed-sample bound for readiness of an identical candidate: requests a one-sided test at
 * level α needs to show "error rate ≤ the baseline's + slack" with the given power when the
 * candidate's rate equals the baseline's (normal approximation, baseline rate known):
 *   n = p(1 − p)·((z_{1−α} + z_power) / slack)².
 */
export function fixedSampleReadinessN(o: { baseRate: number; slack: number; alpha: number; power: number }): number {
  const z = normalQuantile(1 - o.alpha) + normalQuantile(o.power);
  return o.baseRate * (1 - o.baseRate) * (z / o.slack) ** 2;
}
