/**
 * Sample-ratio mismatch: is the candidate's observed share of requests compatible with its
 * configured weight? A two-sided binomial test whose p-value is the Chernoff bound
 * 2·exp(−N·KL(p̂ ‖ p)), which is never smaller than the exact binomial tail probability: the
 * test is conservative at any N and any weight (the normal approximation is not, for a 1%
 * weight and a few thousand requests, where the binomial is skewed).
 */

/** KL divergence between Bernoulli(q) and Bernoulli(p), nats. */
export function bernoulliKL(q: number, p: number): number {
  const term = (x: number, y: number) => (x === 0 ? 0 : x * Math.log(x / y));
  return term(q, p) + term(1 - q, 1 - p);
}

export interface SrmResult {
  /** Observed candidate share of the two versions' requests. */
  observedShare: number;
  expectedShare: number;
  /** Upper bound of the two-sided p-value (capped at 1). */
  pValue: number;
  mismatch: boolean;
}

/**
 * @param weightPercent the configured candidate weight, 0–100.
 * @param alpha significance of the mismatch test (tiny: 1e-6 by default in the judge).
 */
export function sampleRatioTest(candidateRequests: number, baselineRequests: number, weightPercent: number, alpha: number): SrmResult {
  const total = candidateRequests + baselineRequests;
  const expectedShare = weightPercent / 100;
  const observedShare = total > 0 ? candidateRequests / total : 0;
  if (total === 0) return { observedShare, expectedShare, pValue: 1, mismatch: false };
  if (expectedShare <= 0 || expectedShare >= 1) {
    // A 0% or 100% weight leaves no room for chance: any request on the other side is a mismatch.
    const wrong = expectedShare <= 0 ? candidateRequests > 0 : baselineRequests > 0;
    return { observedShare, expectedShare, pValue: wrong ? 0 : 1, mismatch: wrong };
  }
  const pValue = Math.min(1, 2 * Math.exp(-total * bernoulliKL(observedShare, expectedShare)));
  return { observedShare, expectedShare, pValue, mismatch: pValue < alpha };
}
