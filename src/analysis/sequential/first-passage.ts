/**
 * How long until an e-process with positive drift crosses its threshold, as a distribution: the
 * log e-value's walk is close to Brownian motion with drift, whose first passage to a barrier is
 * inverse Gaussian (mean = distance / drift, shape = distance² / variance). Steps report its
 * median: a sequential test's stopping time is right-skewed (the mean path's crossing, which is
 * the mean, overstates the typical wait by a third or more at the distances readiness covers).
 */

/** An inverse Gaussian first-passage time, in candidate trials. */
export interface Passage {
  mean: number;
  shape: number;
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 on erf; absolute error below 1e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** P(T ≤ t) for T inverse Gaussian. */
export function passageCdf(t: number, { mean, shape }: Passage): number {
  if (t <= 0) return 0;
  const ratio = shape / mean;
  if (ratio > 300) {
    // So concentrated that exp(2λ/μ) overflows: the normal limit, variance μ³/λ.
    return normalCdf((t - mean) / Math.sqrt((mean * mean * mean) / shape));
  }
  const root = Math.sqrt(shape / t);
  return normalCdf(root * (t / mean - 1)) + Math.exp(2 * ratio) * normalCdf(-root * (t / mean + 1));
}

/**
 * The median of the latest of several waits (every metric must be ready): the t at which the
 * product of their CDFs reaches ½. Each wait is a CDF over candidate trials; `upper` bounds the
 * search (where every CDF is essentially 1).
 */
export function medianOfLatest(cdfs: ReadonlyArray<(t: number) => number>, upper: number): number {
  const all = (t: number) => cdfs.reduce((p, cdf) => p * cdf(t), 1);
  let lo = 0;
  let hi = Math.max(1, upper);
  while (all(hi) < 0.5 && hi < 1e12) hi *= 2;
  while (hi - lo > Math.max(1, 0.005 * lo)) {
    const mid = (lo + hi) / 2;
    if (all(mid) >= 0.5) hi = mid;
    else lo = mid;
  }
  return hi;
}
