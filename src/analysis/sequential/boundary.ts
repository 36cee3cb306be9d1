/**
 * Latency as exceedance counts. A request "exceeds" when it is slower than a boundary b on a
 * histogram bucket edge; per interval the exceedance counts come straight from the buckets
 * above b, and the ratio test (ratio-test.ts) compares the candidate's exceedance rate with
 * the baseline's.
 *
 * How b is chosen, and why the test stays valid: b must not depend on the counts it is then
 * tested on (choosing it from the same interval's baseline histogram would make the baseline's
 * exceedance count ≈ 5% of its requests by construction, not a random count). So:
 *  1. calibration: the baseline's histograms are summed over the first intervals until they
 *     hold at least `minBaselineObservations`; those intervals are used for nothing else by the
 *     latency test (the candidate is not looked at);
 *  2. b = the bucket edge whose baseline exceedance fraction is closest (in log terms) to
 *     1 − quantile (5% for the p95), among edges with at least one exceedance;
 *  3. b is then fixed in the judge state for the rest of the rollout. Every later interval's
 *     factor depends on b only through data from before it, which is what the supermartingale
 *     argument needs. Daily drift moves the exceedance rate of both versions; conditioning on
 *     each interval's totals removes it.
 */
import type { Histogram } from '../metrics';

/** Index of the bucket edge to use, or undefined when the histogram holds no usable edge. */
export function chooseBoundaryIndex(boundsMs: readonly number[], counts: readonly number[], quantile: number): number | undefined {
  const total = counts.reduce((s, n) => s + n, 0);
  if (total <= 0) return undefined;
  const target = 1 - quantile;
  let above = total;
  let best: number | undefined;
  let bestDistance = Infinity;
  for (let j = 0; j < boundsMs.length; j++) {
    above -= counts[j] ?? 0; // observations in buckets after edge j
    if (above <= 0) break;
    const distance = Math.abs(Math.log(above / total / target));
    if (distance < bestDistance) {
      bestDistance = distance;
      best = j;
    }
  }
  return best;
}

/** Requests slower than `boundaryMs` (a bucket edge of `histogram`), or undefined if it is not an edge. */
export function exceedances(histogram: Histogram, boundaryMs: number): number | undefined {
  const j = histogram.boundsMs.indexOf(boundaryMs);
  if (j < 0) return undefined;
  let sum = 0;
  for (let i = j + 1; i < histogram.counts.length; i++) sum += histogram.counts[i] ?? 0;
  return sum;
}

/** True when the histogram is well-formed: one count per bucket plus +Inf, finite, ≥ 0. */
export function isValidHistogram(histogram: Histogram | undefined): histogram is Histogram {
  if (!histogram || !Array.isArray(histogram.boundsMs) || !Array.isArray(histogram.counts)) return false;
  if (histogram.counts.length !== histogram.boundsMs.length + 1) return false;
  return histogram.counts.every((n) => Number.isFinite(n) && n >= 0);
}
