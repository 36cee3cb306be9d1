/**
 * An anytime-valid upper confidence bound on one version's error rate, from its cumulative
 * counts alone: the absolute side of error readiness. The ratio test (ratio-test.ts) cannot
 * bound a ratio when errors are rare or absent — a healthy model that never fails gives it no
 * events at all — while "at most q errors per request" can be shown from error-free traffic.
 *
 * H0(q): every request fails with probability at least q. Against an alternative p₀ = f·q
 * (f < 1) each request contributes the likelihood-ratio factor (p₀/q)^x·((1 − p₀)/(1 − q))^{1−x};
 * its conditional mean p·(p₀/q) + (1 − p)·(1 − p₀)/(1 − q) is 1 at p = q and decreasing in p,
 * so ≤ 1 under H0(q): the product is a nonnegative supermartingale, and so is the fixed-weight
 * mixture over f ∈ FRACTIONS,
 *
 *     E_n(q) = mean_f  f^e · ((1 − f·q)/(1 − q))^{n − e}        (e errors in n requests),
 *
 * and Ville's inequality bounds P(sup_n E_n(q) ≥ 1/α) ≤ α. E_n(q) grows with q, so the
 * rejected q form an interval above the bound `rateUpperBound` returns: with probability
 * ≥ 1 − α the bound stays above the true rate at every check. f = 0 makes an error-free run
 * reject q once n·q ≳ ln(FRACTIONS.length/α) (≈ 3.7k requests for q = 0.1% at α = 0.1); an
 * error zeroes that component only, the others carry on.
 *
 * The mirror image, evidence that the rate is *above* a limit (alternatives f·q with f > 1), is
 * the SLO guardrail's test: slo.ts, `rateAboveLogE`.
 */

/** Alternatives as fractions of the null rate q, mixed with equal weights. */
export const FRACTIONS: readonly number[] = [0, 0.25, 0.5, 0.75];

/** ln E_n(q): evidence that the error rate is below q, from e errors in n requests. */
export function rateBelowLogE(errors: number, requests: number, q: number): number {
  if (!(q > 0)) return -Infinity;
  if (q >= 1) return requests > errors ? Infinity : 0; // "every request fails": one success refutes it
  const successes = requests - errors;
  const terms = FRACTIONS.map((f) => {
    if (errors > 0 && f === 0) return -Infinity;
    return (errors > 0 ? errors * Math.log(f) : 0) + successes * (Math.log1p(-f * q) - Math.log1p(-q));
  });
  const max = Math.max(...terms);
  if (max === -Infinity) return -Infinity;
  return max + Math.log(terms.reduce((s, t) => s + Math.exp(t - max), 0) / FRACTIONS.length);
}

/**
 * The smallest rate q (to 0.1% relative precision) that is not rejected at level α: the upper
 * end of the (1 − α) confidence sequence. 1 when even a rate near 1 cannot be ruled out.
 */
export function rateUpperBound(errors: number, requests: number, alpha: number): number {
  const threshold = Math.log(1 / alpha);
  if (requests <= 0 || errors >= requests) return 1;
  let lo = errors / requests; // at the observed rate every component is ≤ 1: never rejected there
  let hi = 1;
  if (rateBelowLogE(errors, requests, 1 - 1e-12) < threshold) return 1;
  while (hi - lo > 1e-3 * hi) {
    const mid = (lo + hi) / 2;
    if (rateBelowLogE(errors, requests, mid) >= threshold) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * How many more requests until `rateUpperBound` is at or below `limit`, if further requests fail
 * at `futureRate` (the baseline's, for the healthy case readiness is for); undefined when they
 * never would (that rate at or above the limit), 0 when the bound is already there.
 */
export function requestsUntilRateBound(errors: number, requests: number, limit: number, alpha: number, futureRate: number): number | undefined {
  if (!(limit > 0) || limit >= 1 || !(futureRate >= 0) || futureRate >= limit) return undefined;
  const boundAfter = (more: number) => rateUpperBound(errors + futureRate * more, requests + more, alpha);
  if (requests > 0 && boundAfter(0) <= limit) return 0;
  let lo = 0;
  let hi = Math.max(requests, 100);
  while (boundAfter(hi) > limit) {
    lo = hi;
    hi *= 2;
    if (hi > 1e10) return undefined;
  }
  while (hi - lo > Math.max(1, 0.01 * lo)) {
    const mid = (lo + hi) / 2;
    if (boundAfter(mid) <= limit) hi = mid;
    else lo = mid;
  }
  return hi;
}
