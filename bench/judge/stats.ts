/** Clopper-Pearson intervals and quantiles for the benchmark report. */
import { logGamma } from './random';

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
