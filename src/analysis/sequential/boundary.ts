/**
 * Latency as exceedance counts. A request "exceeds" when it is slower than a boundary b on a
 * histogram bucket edge; per interval the exceedance counts come straight from the buckets
 * above b, and the ratio test (ratio-test.ts) compares the candidate's exceedance rate with
 * the baseline's.
 *
 * How b is chosen, and why the test stays valid: b must not depend on the counts it is then
 * tested on (choosing it from the same interval's baseline histogram would make the baseline's
 * exceedance count ≈ 5% of its requests by construction, not a random count). So:
 *  1. the baseline's histograms are pooled over consecutive intervals until they hold at least
 *     `minBaselineObservations` (the candidate is never looked at);
 *  2. b = the bucket edge whose pooled baseline exceedance fraction is closest (in log terms) to
 *     1 − quantile (5% for the p95), among edges with at least one exceedance;
 *  3. b is used for the intervals after the pool, until the next pool fills and gives the next
 *     b (with ~3,000 requests a check, every interval). The first pool's intervals are not
 *     tested. Every interval's factor depends on b only through data from before it
 *     (b is predictable), which is all the supermartingale argument needs: conditional on the
 *     past and the interval's totals, the factor has mean ≤ 1 under "the candidate's exceedance
 *     rate at b is at most r₀ times the baseline's", whatever b is.
 * Tracking matters for power, not validity: the ratio a slower candidate produces at a fixed b
 * depends on where b sits in the tail. A shared latency shock that moves both versions away
 * from the early p95 (faster: b lands in a slow mode both share; slower: b lands in the body)
 * shrinks that ratio toward 1; a boundary that follows the baseline's recent p95 keeps it.
 * Daily drift moves the exceedance rate of both versions; conditioning on each interval's
 * totals removes it.
 *
 * Tolerance. A tolerance on the exceedance ratio means different slow-downs for different tail
 * shapes: at the p95 of a steep tail (TTFB, lognormal σ 0.4) a candidate 4% slower throughout
 * already has 1.25× the exceedances, so small genuine pod-to-pod differences look like
 * regressions. `scaleTolerance` s₀ states it in time units instead ("up to s₀× slower is not a
 * regression"): r₀ = the exceedance ratio a uniform slow-down by s₀ would give at b, from the
 * baseline's own local tail, S(b/s₀)/S(b), with log S interpolated linearly in log t between
 * the edge below b and b (exact for a power-law tail). It is computed once, from the first
 * pool, before any interval is tested, so it is a constant of the test like any r₀.
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

/**
 * The exceedance ratio S(b/s)/S(b) that a uniform slow-down by `scale` gives at the edge
 * `index` of a baseline histogram (see the header); 1 when it cannot be told (first edge, or
 * no observations above the edge).
 */
export function scaleToleranceRatio(boundsMs: readonly number[], counts: readonly number[], index: number, scale: number): number {
  if (!(scale > 1) || index <= 0) return 1;
  let above = 0;
  for (let i = index + 1; i < counts.length; i++) above += counts[i] ?? 0;
  const aboveLower = above + (counts[index] ?? 0); // observations above the edge below b
  const upper = boundsMs[index]!;
  const lower = boundsMs[index - 1]!;
  if (above <= 0 || !(upper > lower && lower > 0)) return 1;
  const exponent = Math.min(1, Math.log(scale) / Math.log(upper / lower)); // b/s beyond the edge below: use the chord's end
  return Math.pow(aboveLower / above, exponent);
}
