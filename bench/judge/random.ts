/**
 * Seeded random numbers for the judge benchmark: a hashable seed (so one interval's draws are
 * a function of rollout seed, interval and weight alone) and exact samplers for the normal,
 * Poisson (PTRS, Hörmann 1993), binomial (BTRS, Hörmann 1993; inversion for small means) and
 * multinomial distributions.
 */

import { fmix, mixBlock } from '../../src/gateway/bucketing';

export type Random = () => number;

/** 32-bit mix of a list of integers (murmur3 blocks and finalizer). */
export function hashSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) h = mixBlock(h, (p | 0) ^ Math.floor(p / 4294967296));
  return fmix(h, 0);
}

/** mulberry32: fast, 2^32 period, fine for simulation streams of modest length. */
export function rng(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1)
  };
}

export function normal(r: Random): number {
  return Math.sqrt(-2 * Math.log(r())) * Math.cos(2 * Math.PI * r());
}

/** Standard normal CDF via Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const y = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-z * z);
  return x >= 0 ? 1 - 0.5 * y : 0.5 * y;
}

export function logGamma(x: number): number {
  let shift = 0;
  while (x < 8) {
    shift -= Math.log(x);
    x += 1;
  }
  const x2 = 1 / (x * x);
  return shift + (x - 0.5) * Math.log(x) - x + 0.9189385332046727 + (1 / x) * (1 / 12 - x2 * (1 / 360 - x2 * (1 / 1260 - x2 / 1680)));
}

export function poisson(r: Random, mean: number): number {
  if (mean <= 0) return 0;
  if (mean < 10) {
    let x = 0;
    let p = Math.exp(-mean);
    let s = p;
    const u = r();
    while (u > s && x < 1000) {
      x += 1;
      p *= mean / x;
      s += p;
    }
    return x;
  }
  // PTRS
  const slam = Math.sqrt(mean);
  const loglam = Math.log(mean);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const U = r() - 0.5;
    const V = r();
    const us = 0.5 - Math.abs(U);
    const k = Math.floor(((2 * a) / us + b) * U + mean + 0.43);
    if (us >= 0.07 && V <= vr) return k;
    if (k < 0 || (us < 0.013 && V > us)) continue;
    if (Math.log(V) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -mean + k * loglam - logGamma(k + 1)) return k;
  }
}

export function binomial(r: Random, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(r, n, 1 - p);
  if (n * p < 10) {
    // Waiting times: count geometric gaps until they pass n.
    const logq = Math.log1p(-p); // < 0 for any p > 0
    let x = 0;
    let sum = 0;
    for (;;) {
      sum += Math.ceil(Math.log(r()) / logq);
      if (sum > n) return x;
      x += 1;
    }
  }
  // BTRS
  const spq = Math.sqrt(n * p * (1 - p));
  const b = 1.15 + 2.53 * spq;
  const a = -0.0873 + 0.0248 * b + 0.01 * p;
  const c = n * p + 0.5;
  const vr = 0.92 - 4.2 / b;
  const alpha = (2.83 + 5.1 / b) * spq;
  const lpq = Math.log(p / (1 - p));
  const m = Math.floor((n + 1) * p);
  const h = logGamma(m + 1) + logGamma(n - m + 1);
  for (;;) {
    const u = r() - 0.5;
    let v = r();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + c);
    if (k < 0 || k > n) continue;
    if (us >= 0.07 && v <= vr) return k;
    v = Math.log((v * alpha) / (a / (us * us) + b));
    if (v <= h - logGamma(k + 1) - logGamma(n - k + 1) + (k - m) * lpq) return k;
  }
}

/** Multinomial counts of n over probabilities (summing to ~1), by conditional binomials. */
export function multinomial(r: Random, n: number, probabilities: readonly number[]): number[] {
  const counts = new Array(probabilities.length).fill(0) as number[];
  let remaining = n;
  let mass = 1;
  for (let j = 0; j < probabilities.length && remaining > 0; j++) {
    const p = probabilities[j]!;
    if (j === probabilities.length - 1 || mass <= p) {
      counts[j] = remaining;
      remaining = 0;
      break;
    }
    const x = binomial(r, remaining, Math.min(1, Math.max(0, p / mass)));
    counts[j] = x;
    remaining -= x;
    mass -= p;
  }
  return counts;
}
