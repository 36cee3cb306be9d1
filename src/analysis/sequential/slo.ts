/**
 * SLO guardrails: the spec's `analysis.thresholds`, when given, as absolute limits on the
 * candidate beside the comparison with the baseline. The candidate fails once its error rate, or
 * its p95 latency, is *credibly* above the limit: anytime-valid, inside the rollout's α.
 *
 * One-sample test (the mirror image of rate-bound.ts). H0(q): every request of the candidate
 * fails with probability at most q, whatever came before it. Against an alternative p₁ = f·q
 * (f > 1) each request contributes the likelihood-ratio factor (p₁/q)^x·((1 − p₁)/(1 − q))^{1−x};
 * given the past, with the request failing with probability p, its mean is
 *
 *     m(p) = p·f + (1 − p)·(1 − f·q)/(1 − q),
 *
 * which is 1 at p = q (q·f + 1 − f·q) and increasing in p (dm/dp = f − (1 − f·q)/(1 − q) > 0,
 * since f > 1 > (1 − f·q)/(1 − q)), so m(p) ≤ 1 for every p ≤ q: the product over requests is a
 * nonnegative supermartingale under H0(q) (each request may have its own p ≤ q), and so is the
 * fixed-weight mixture over the factors,
 *
 *     S_n(q) = mean_f  f^e · ((1 − f·q)/(1 − q))^{n − e}        (e failures in n requests).
 *
 * Ville's inequality: P(sup_n S_n(q) ≥ 1/α) ≤ α under H0(q), however often it is looked at, and
 * only the cumulative counts are needed (the order of the requests does not change the product).
 * Factors with f·q ≥ 1 are replaced by the alternative p₁ = (1 + q)/2 (the argument needs only
 * q < p₁ < 1), so the set of alternatives, fixed by q, never degenerates.
 *
 * What H0 means: the failure probability is at most q at every request, not on average over the
 * rollout. A candidate at 1% on average with a spell at 5% was above a 2% SLO during the spell,
 * and the test may say so; errors in bursts (an outage, shared or not) count like any others:
 * the SLO is absolute, not relative to the baseline. The comparison tests are where a shared
 * outage is not the candidate's fault.
 *
 * Limits. q = 0: any failure at all refutes H0 with certainty (e-value ∞; under H0 it cannot
 * happen). q ≥ 1 cannot be exceeded: the judge does not test it (no share of α).
 *
 * p95. "p95 ≤ L" means P(latency > L) ≤ 5%, so the p95 SLO is the same test with q = 0.05 on
 * the requests slower than L. The histograms only count requests slower than a bucket edge, so
 * each interval uses b = the smallest edge of its histogram at or above L: P(> b) ≤ P(> L), so
 * a candidate with p95 ≤ L has at most 5% of requests slower than b and H0 holds for the counted
 * events (valid, conservative by at most one bucket: a p95 between L and b is not caught). b
 * depends on L and the histogram's edges only, never on its counts, so it may change between
 * intervals (finer edges in a new gateway) without harming validity. When the histogram has no
 * finite edge at or above L, requests slower than the last edge are not requests slower than L:
 * that interval cannot be tested, and the judge reports the SLO untestable (never silently).
 */
import type { Histogram } from '../metrics';

/** Alternatives above the limit, as factors of it, mixed with equal weights. */
export const SLO_FACTORS: readonly number[] = [1.25, 1.5, 2, 3, 5];

/** The p95 SLO: the fraction of requests that may be slower than the limit. */
export const P95_EXCEEDANCE = 0.05;

/** The alternatives p₁ > q the one-sample test mixes (see the header). */
export function sloAlternatives(q: number): number[] {
  return SLO_FACTORS.map((f) => (f * q < 1 ? f * q : (1 + q) / 2));
}

/**
 * ln S_n(q): evidence that the rate is above q, from e events in n trials. +∞ when q = 0 and
 * there was an event; 0 (no evidence, ever) when q ≥ 1.
 */
export function rateAboveLogE(events: number, trials: number, q: number): number {
  if (!(events >= 0 && trials >= events)) throw new RangeError(`rateAboveLogE: need 0 ≤ events ≤ trials, got ${events}/${trials}`);
  if (q >= 1) return 0;
  if (!(q > 0)) return events > 0 ? Infinity : 0;
  const misses = trials - events;
  const terms = sloAlternatives(q).map((p1) => events * Math.log(p1 / q) + misses * (Math.log1p(-p1) - Math.log1p(-q)));
  const max = Math.max(...terms);
  return max + Math.log(terms.reduce((s, t) => s + Math.exp(t - max), 0) / terms.length);
}

/** The edge b used for a p95 limit: the smallest finite bucket edge ≥ the limit, if any. */
export function sloBoundary(boundsMs: readonly number[], limitMs: number): { index: number; boundaryMs: number } | undefined {
  let best: number | undefined;
  for (let i = 0; i < boundsMs.length; i++) {
    const b = boundsMs[i]!;
    if (Number.isFinite(b) && b >= limitMs && (best === undefined || b < boundsMs[best]!)) best = i;
  }
  return best === undefined ? undefined : { index: best, boundaryMs: boundsMs[best]! };
}

/** Requests of a histogram slower than the edge at `index` (every bucket after it, +Inf included). */
export function countAbove(histogram: Histogram, index: number): number {
  let sum = 0;
  for (let i = index + 1; i < histogram.counts.length; i++) sum += histogram.counts[i] ?? 0;
  return sum;
}

/** One SLO's process: plain JSON in the judge's state. */
export interface SloProcess {
  /** maxErrorRate (a rate), or maxLatencyP95Ms (ms). */
  limit: number;
  /** This SLO's share of the rollout's α, fixed at the first check. */
  alpha: number;
  /** Cumulative events (errors; requests slower than the boundary) and trials since the process started. */
  events: number;
  requests: number;
  /** p95 only: the edge the latest tested interval used (null until one was tested). */
  boundaryMs?: number | null;
  /** p95 only: intervals whose histogram had no edge at or above the limit (not tested). */
  untestedIntervals?: number;
  /** p95 only: the last finite edge of the latest such histogram. */
  lastEdgeMs?: number | null;
}

export interface SloState {
  /** The fraction of α the SLO tests share (0 when none is given); fixed at the first check. */
  share: number;
  errorRate: SloProcess | null;
  latencyP95: SloProcess | null;
}

/**
 * The SLO processes for the given thresholds, fixed once: each SLO that can be exceeded gets
 * alpha·share/k (k of them); none given → share 0, and the comparison keeps the whole α.
 */
export function initialSloState(thresholds: { maxErrorRate?: number; maxLatencyP95Ms?: number } | undefined, alpha: number, share: number): SloState {
  const errorGiven = typeof thresholds?.maxErrorRate === 'number' && thresholds.maxErrorRate >= 0 && thresholds.maxErrorRate < 1;
  const latencyGiven = typeof thresholds?.maxLatencyP95Ms === 'number' && thresholds.maxLatencyP95Ms > 0 && Number.isFinite(thresholds.maxLatencyP95Ms);
  const k = (errorGiven ? 1 : 0) + (latencyGiven ? 1 : 0);
  if (k === 0) return { share: 0, errorRate: null, latencyP95: null };
  const each = (alpha * share) / k;
  return {
    share,
    errorRate: errorGiven ? { limit: thresholds!.maxErrorRate!, alpha: each, events: 0, requests: 0 } : null,
    latencyP95: latencyGiven ? { limit: thresholds!.maxLatencyP95Ms!, alpha: each, events: 0, requests: 0, boundaryMs: null, untestedIntervals: 0, lastEdgeMs: null } : null,
  };
}

/** The null rate of an SLO's test. */
export function sloNullRate(name: SloName, process: SloProcess): number {
  return name === 'errorRate' ? process.limit : P95_EXCEEDANCE;
}

export type SloName = 'errorRate' | 'latencyP95';

/** ln of the SLO's e-value. */
export function sloLogE(name: SloName, process: SloProcess): number {
  return rateAboveLogE(process.events, process.requests, sloNullRate(name, process));
}

/**
 * Adds one interval of the candidate to the p95 process in place. Returns 'untestable' when the
 * histogram has no finite edge at or above the limit (the interval is not counted).
 */
export function addLatencyInterval(process: SloProcess, histogram: Histogram): 'tested' | 'untestable' | 'empty' {
  const total = histogram.counts.reduce((s, n) => s + n, 0);
  if (total <= 0) return 'empty';
  const edge = sloBoundary(histogram.boundsMs, process.limit);
  if (!edge) {
    process.untestedIntervals = (process.untestedIntervals ?? 0) + 1;
    const finite = histogram.boundsMs.filter((b) => Number.isFinite(b));
    process.lastEdgeMs = finite.length > 0 ? Math.max(...finite) : null;
    return 'untestable';
  }
  process.boundaryMs = edge.boundaryMs;
  process.events += countAbove(histogram, edge.index);
  process.requests += total;
  return 'tested';
}
