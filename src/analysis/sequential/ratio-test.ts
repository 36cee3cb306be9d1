/**
 * The anytime-valid rate-ratio test shared by every metric of the sequential judge (errors,
 * latency exceedances): a mixture e-process in the style of Lindon & Malek, conditioning on
 * each interval's totals.
 *
 * Model. In interval k the baseline serves n_A requests with e_A "events" (errors, or requests
 * slower than a boundary), the candidate n_B requests with e_B events. With event rates λ_A,k
 * and λ_B,k = r·λ_A,k, conditional on the interval's total m = e_A + e_B the candidate's events
 * are Binomial(m, θ_k(r)) with
 *
 *     θ_k(r) = r·n_B / (r·n_B + n_A).
 *
 * The baseline's own rate λ_A,k cancels: daily drift, shared shocks and step changes of the
 * weights (which move n_A, n_B) do not enter. The log-likelihood of the split at ratio r is
 *
 *     ℓ_k(r) = e_B·ln θ_k(r) + e_A·ln(1 − θ_k(r)),
 *
 * and ℓ(r) = Σ_k ℓ_k(r) is all the test needs: the likelihood ratio of r against r' over all
 * intervals so far is exp(ℓ(r) − ℓ(r')). The state keeps ℓ on a fixed grid of ratios (a few
 * hundred bytes of JSON), so any pair of grid points can be compared at any time.
 *
 * Regression e-process (roll back). H0: r ≤ r₀ (candidate rate at most r₀ × baseline's).
 *
 *     E_t = Σ_j w_j · exp(ℓ(r_j) − ℓ(r₀)),   alternatives r_j > r₀, w_j = 1/J
 *
 * (the full-history part; the judge's e-value mixes it with restarted copies: RESTART_SHARE).
 *
 * Why it is a supermartingale under the whole composite null, not just at r = r₀: for one
 * interval and one alternative write a = θ(r_j)/θ(r₀) > 1 and b = (1 − θ(r_j))/(1 − θ(r₀)) < 1;
 * the factor is a^{e_B}·b^{e_A}. If events are Poisson (or independent Bernoulli, with any
 * per-request probabilities) with candidate rate r*·λ_A, then (using 1 + x ≤ eˣ for Bernoulli)
 *
 *     E[a^{e_B} b^{e_A} | past, n_A, n_B] ≤ exp(λ_A·(r*·n_B·(a − 1) + n_A·(b − 1))).
 *
 * At r* = r₀ the exponent is exactly 0 (substitute θ(r₀)/(1 − θ(r₀)) = r₀·n_B/n_A), and it is
 * increasing in r* because a > 1, so for every r* ≤ r₀ the factor has conditional mean ≤ 1:
 * r₀ is the least-favourable point of the null. (Equivalently, conditional on m under the
 * Poisson model: E_θ[a^X·b^{m−X}] = (θa + (1 − θ)b)^m grows with θ since a > b, equals 1 at
 * θ(r₀), and θ(r*) ≤ θ(r₀) for r* ≤ r₀; requests drawn without replacement only shrink it, by
 * Hoeffding's convex-order comparison.) Products of
 * such factors are supermartingales, a fixed-weight mixture of supermartingales is one, and
 * Ville's inequality gives P(sup_t E_t ≥ 1/α) ≤ α for any stopping rule, any number of looks,
 * and any interval sizes chosen from the past (n_A, n_B and which intervals are used may
 * depend on traffic and on earlier intervals, not on the events being tested).
 *
 * Readiness (an anytime-valid upper confidence bound). H0': r ≥ r₁, alternatives r < r₁ on the
 * grid (r₁·ρ^{-m}); the mirror-image argument (a < 1, exponent decreasing in r*) makes
 *
 *     R_t(r₁) = Σ_m w_m · exp(ℓ(r₁ρ^{-m}) − ℓ(r₁))
 *
 * an e-process for "r ≥ r₁". R_t(r₀) ≥ 1/α_ready rejects "regression ≥ tolerance" at level
 * α_ready; inverting over the grid gives a confidence sequence whose upper end is reported as
 * `upperBound` (the smallest grid ratio above which every grid ratio is rejected).
 */
import type { Passage } from './first-passage';

/** Geometric grid spacing: 2^(1/8) ≈ 1.09. */
export const GRID_STEP = Math.pow(2, 1 / 8);
/** Grid points r₀·ρ^i for i in [GRID_LOW, GRID_HIGH]: r₀/16 … 16·r₀. */
export const GRID_LOW = -32;
export const GRID_HIGH = 32;
/**
 * Alternatives below r₁ used by the readiness e-process, as grid steps down (0.92 … 0.65 × r₁):
 * readiness is about candidates close to the baseline (true ratio ≈ 1 against a tolerance r₁ of
 * 1.2–1.3), so the mixture's weight sits there; a candidate much better than the baseline
 * still gives the near alternatives a growing likelihood ratio.
 */
export const LOWER_STEPS: readonly number[] = [1, 2, 3, 4, 5];
/**
 * Alternatives above the tolerance, mixed with equal weights. An alternative within 10% of r₀
 * is dropped (MIN_SEPARATION): its likelihood ratio against r₀ cannot reach 1/α with the data a
 * rollout has, so its weight would be wasted; ratios above the largest are still caught through
 * it (the likelihood ratio at 5 grows fast when the truth is 10) and by the catastrophic path.
 */
export const DEFAULT_ALTERNATIVES: readonly number[] = [1.5, 2, 3, 5];
export const MIN_SEPARATION = 1.1;

/**
 * Restarts (a change-point e-detector with a per-rollout guarantee). The e-process above
 * multiplies every interval since the rollout started, so a regression that begins late must
 * first climb out of the evidence *for* the null that the healthy intervals piled up (with a
 * true ratio of 1 against a tolerance of 1.2, ln E drifts down by ~0.4 nats per interval at a
 * 5% weight and 1% errors for the alternative 2, by several nats for 5). So E_t mixes, besides
 * the full-history process (weight 1 − RESTART_SHARE), the same process started afresh after
 * every contributing interval s = 1, 2, … with the weights
 *
 *     π_s = RESTART_SHARE · (s^{-1/2} − (s+1)^{-1/2})        (Σ_{s≥1} π_s = RESTART_SHARE),
 *
 *     E_t = Σ_j w_j [ (1 − ρ)·Π_{k≤t} f_jk + Σ_{1≤s≤t} π_s·Π_{s<k≤t} f_jk ] + RESTART_SHARE·(t+1)^{-1/2},
 *
 * where f_jk is interval k's likelihood-ratio factor for alternative j and the last term is the
 * mass of the starts still to come (each such component is 1 until it starts). Every component
 * is a nonnegative supermartingale under H0 that starts at 1 (a component that has not started
 * is the constant 1), and the weights are fixed in advance and sum to 1, so E_t is a
 * supermartingale with E_0 = 1 and Ville's inequality gives the same per-rollout guarantee
 * P(sup_t E_t ≥ 1/α) ≤ α as before: this is a weighted (Bonferroni-like) split of α over the
 * start points, not the Shiryaev–Roberts sum, whose guarantee would only be on the average run
 * length. The price: the from-the-start process needs (1 − ρ)^{-1}× more evidence (ln 1.11 ≈ 0.1
 * nats at ρ = 0.1), a start after interval s needs ≈ 2 s^{3/2}/ρ×. The start index counts
 * contributing intervals (both versions served requests), which depends on traffic only.
 * The state keeps ln of the bracket's second sum per alternative (`restarts`, empty before the
 * first interval): one number per alternative, updated as restarts_j ← restarts_j + ln f_jt,
 * then ⊕ ln π_t.
 */
export const RESTART_SHARE = 0.1;

/** Weight π_s of the start after contributing interval s ≥ 1 (see RESTART_SHARE). */
export function restartWeight(s: number): number {
  return RESTART_SHARE * (1 / Math.sqrt(s) - 1 / Math.sqrt(s + 1));
}

/** The evidence of one metric: plain JSON, carried across the whole rollout. */
export interface RatioEvidence {
  /** Tolerance: H0 is "candidate rate ≤ r0 × baseline rate". */
  r0: number;
  /** Alternatives above r0 mixed with equal weights (the grid's tail, see `ratioGrid`). */
  alternatives: number[];
  /** ℓ(r) at each point of `ratioGrid(r0, alternatives)`. */
  logLik: number[];
  /**
   * Per alternative, ln Σ_{1≤s≤t} π_s·Π_{s<k≤t} f_jk: the restarted processes (RESTART_SHARE).
   * Empty before the first contributing interval (and in states from before restarts existed,
   * which then start restarting at their next interval: unused start weight only lowers E).
   */
  restarts?: number[];
  /** Intervals that contributed (both versions served requests). */
  intervals: number;
  candidateEvents: number;
  baselineEvents: number;
  candidateTrials: number;
  baselineTrials: number;
}

/** The grid: r₀·ρ^i for i = GRID_LOW..GRID_HIGH (r₀ at index -GRID_LOW), then the alternatives. */
export function ratioGrid(r0: number, alternatives: readonly number[]): number[] {
  const key = `${r0}|${alternatives.join(',')}`;
  const cached = gridCache.get(key);
  if (cached) return cached;
  const grid = buildGrid(r0, alternatives);
  if (gridCache.size < 64) gridCache.set(key, grid);
  return grid;
}

/** A memo of pure values (never observable): the grid only depends on its arguments. */
const gridCache = new Map<string, number[]>();

function buildGrid(r0: number, alternatives: readonly number[]): number[] {
  const grid: number[] = [];
  for (let i = GRID_LOW; i <= GRID_HIGH; i++) grid.push(r0 * Math.pow(GRID_STEP, i));
  for (const alt of alternatives) grid.push(alt);
  return grid;
}

const R0_INDEX = -GRID_LOW;
const GEOMETRIC_POINTS = GRID_HIGH - GRID_LOW + 1;

export function newRatioEvidence(r0: number, alternatives: readonly number[] = DEFAULT_ALTERNATIVES): RatioEvidence {
  if (!(r0 > 0) || !Number.isFinite(r0)) throw new RangeError(`tolerance r0 must be a positive number, got ${r0}`);
  const above = alternatives.filter((r) => r >= r0 * MIN_SEPARATION && Number.isFinite(r));
  // Keep the mixture meaningful when a tolerance is at or above every listed alternative.
  const alts = above.length > 0 ? [...above] : [1.5, 2, 3, 5].map((f) => f * r0);
  return {
    r0,
    alternatives: alts,
    logLik: new Array(GEOMETRIC_POINTS + alts.length).fill(0),
    restarts: [],
    intervals: 0,
    candidateEvents: 0,
    baselineEvents: 0,
    candidateTrials: 0,
    baselineTrials: 0,
  };
}

/** ℓ_k(r) for one interval: e_B ln θ + e_A ln(1 − θ), θ = r n_B/(r n_B + n_A). */
export function intervalLogLik(r: number, candidateTrials: number, baselineTrials: number, candidateEvents: number, baselineEvents: number): number {
  const denom = Math.log(r * candidateTrials + baselineTrials);
  let ll = 0;
  if (candidateEvents > 0) ll += candidateEvents * (Math.log(r * candidateTrials) - denom);
  if (baselineEvents > 0) ll += baselineEvents * (Math.log(baselineTrials) - denom);
  return ll;
}

/**
 * Adds one interval (returns a new object; the input is not modified). Intervals where either
 * version served nothing carry no information about the ratio and are skipped.
 */
export function addInterval(
  evidence: RatioEvidence,
  counts: { candidateTrials: number; baselineTrials: number; candidateEvents: number; baselineEvents: number },
): RatioEvidence {
  const { candidateTrials: nB, baselineTrials: nA, candidateEvents: eB, baselineEvents: eA } = counts;
  if (!(nA > 0) || !(nB > 0)) return evidence;
  const grid = ratioGrid(evidence.r0, evidence.alternatives); // shared, read only
  const logLik = eA + eB > 0 ? evidence.logLik.map((ll, i) => ll + intervalLogLik(grid[i]!, nB, nA, eB, eA)) : [...evidence.logLik];
  const t = evidence.intervals + 1;
  const logStart = Math.log(restartWeight(t));
  const previous = evidence.restarts ?? [];
  const restarts = evidence.alternatives.map((_, j) => {
    const before = previous[j];
    if (typeof before !== 'number' || !Number.isFinite(before)) return logStart;
    const i = GEOMETRIC_POINTS + j;
    const factor = logLik[i]! - evidence.logLik[i]! - (logLik[R0_INDEX]! - evidence.logLik[R0_INDEX]!);
    return logAddExp(before + factor, logStart);
  });
  return {
    ...evidence,
    alternatives: [...evidence.alternatives],
    logLik,
    restarts,
    intervals: t,
    candidateEvents: evidence.candidateEvents + eB,
    baselineEvents: evidence.baselineEvents + eA,
    candidateTrials: evidence.candidateTrials + nB,
    baselineTrials: evidence.baselineTrials + nA,
  };
}

export function logSumExp(values: readonly number[]): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

function logAddExp(a: number, b: number): number {
  const max = Math.max(a, b);
  if (max === -Infinity) return -Infinity;
  return max + Math.log(Math.exp(a - max) + Math.exp(b - max));
}

/**
 * ln E_t: the regression e-process against H0 r ≤ r0, with restarts (RESTART_SHARE): the
 * full-history mixture, the restarted ones, and the weight of the starts still to come.
 */
export function regressionLogE(evidence: RatioEvidence): number {
  const base = evidence.logLik[R0_INDEX]!;
  const J = evidence.alternatives.length;
  const restarts = evidence.restarts ?? [];
  const terms: number[] = [];
  evidence.alternatives.forEach((_, j) => {
    terms.push(evidence.logLik[GEOMETRIC_POINTS + j]! - base + Math.log((1 - RESTART_SHARE) / J));
    const r = restarts[j];
    if (typeof r === 'number' && Number.isFinite(r)) terms.push(r - Math.log(J));
  });
  // Starts still to come; for a state from before restarts, count the ones it skipped too
  // (their components sit at 1 as well: never started is the same as started and idle).
  const started = restarts.length > 0 ? evidence.intervals : 0;
  terms.push(Math.log(RESTART_SHARE / Math.sqrt(started + 1)));
  return logSumExp(terms);
}

/** ln R_t(r₁) for the grid point r₁ = r₀·ρ^i (i relative to r₀): evidence that r < r₁. */
export function lowerLogE(evidence: RatioEvidence, i = 0): number {
  const index = R0_INDEX + i;
  const ll = evidence.logLik;
  const base = ll[index]!;
  let max = -Infinity;
  for (const m of LOWER_STEPS) if (index - m >= 0 && ll[index - m]! > max) max = ll[index - m]!;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const m of LOWER_STEPS) if (index - m >= 0) sum += Math.exp(ll[index - m]! - max);
  return max - base + Math.log(sum / LOWER_STEPS.length);
}

/**
 * Upper end of the (1 − α) confidence sequence for r, rounded up to the grid: the smallest grid
 * ratio above which every grid ratio is rejected by R_t. `undefined` when even 16·r₀ is not.
 */
export function upperConfidenceBound(evidence: RatioEvidence, alpha: number): number | undefined {
  const threshold = Math.log(1 / alpha);
  for (let i = GRID_HIGH; i >= GRID_LOW; i--) {
    if (lowerLogE(evidence, i) < threshold) {
      return i === GRID_HIGH ? undefined : evidence.r0 * Math.pow(GRID_STEP, i + 1);
    }
  }
  return evidence.r0 * Math.pow(GRID_STEP, GRID_LOW);
}

/** The observed ratio of rates over all contributing intervals (pooled), for reading. */
export function observedRatio(evidence: RatioEvidence): number | undefined {
  const { candidateEvents, baselineEvents, candidateTrials, baselineTrials } = evidence;
  if (candidateTrials === 0 || baselineTrials === 0 || baselineEvents === 0) return undefined;
  return candidateEvents / candidateTrials / (baselineEvents / baselineTrials);
}

/** The grid ratio with the largest likelihood (interval-conditional MLE, to grid precision). */
export function maximumLikelihoodRatio(evidence: RatioEvidence): number | undefined {
  if (evidence.candidateEvents + evidence.baselineEvents === 0) return undefined;
  let best = 0;
  for (let i = 1; i < GEOMETRIC_POINTS; i++) if (evidence.logLik[i]! > evidence.logLik[best]!) best = i;
  return evidence.r0 * Math.pow(GRID_STEP, best + GRID_LOW);
}

/**
 * How many more candidate trials the readiness e-process R_t(r₀) needs to reach 1/α if the
 * candidate keeps up with the baseline from now on (ratio 1, the healthy case readiness is
 * for), at the current weight: every further candidate trial adds to d_m = ℓ(r₀ρ^{-m}) − ℓ(r₀)
 * its expected increment at ratio 1, with a = n_A/n_B per interval and the baseline's observed
 * event rate p_A, p_A·[ln(r_m(r₀ + a)/(r₀(r_m + a))) + a·ln((r₀ + a)/(r_m + a))].
 * (Extrapolating the data seen so far instead overestimates: a step that waits is one whose
 * data so far happened to look worse than the candidate is.) Undefined when it cannot be told
 * (no baseline events yet, or a weight of 0 or 100%); 0 when ready already.
 */
export function trialsUntilReady(evidence: RatioEvidence, alpha: number, candidateShare: number): number | undefined {
  const threshold = Math.log(1 / alpha);
  if (!(candidateShare > 0 && candidateShare < 1) || !(evidence.baselineTrials > 0) || evidence.baselineEvents === 0) return undefined;
  const pA = evidence.baselineEvents / evidence.baselineTrials;
  const a = (1 - candidateShare) / candidateShare;
  const r0 = evidence.r0;
  const ll = evidence.logLik;
  const base = ll[R0_INDEX]!;
  const steps = LOWER_STEPS.filter((m) => R0_INDEX - m >= 0);
  const d = steps.map((m) => ll[R0_INDEX - m]! - base);
  const drift = steps.map((m) => {
    const r = r0 * Math.pow(GRID_STEP, -m);
    return pA * (Math.log((r * (r0 + a)) / (r0 * (r + a))) + a * Math.log((r0 + a) / (r + a)));
  });
  const logE = (n: number) => logSumExp(d.map((x, i) => x + n * drift[i]!)) - Math.log(d.length);
  if (logE(0) >= threshold) return 0;
  if (Math.max(...drift) <= 0) return undefined;
  let lo = 0;
  let hi = 1;
  while (logE(hi) < threshold) {
    lo = hi;
    hi *= 2;
    if (hi > 1e10) return undefined;
  }
  while (hi - lo > Math.max(1, 0.01 * lo)) {
    const mid = (lo + hi) / 2;
    if (logE(mid) >= threshold) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The readiness e-process's first passage as a distribution (first-passage.ts): trialsUntilReady
 * is its mean path's crossing; the spread comes from the alternative that dominates the mixture
 * there, whose log-likelihood gains per candidate trial at ratio 1 form a compound Poisson walk
 * (events at p_A·(1 + a) per candidate trial, each a candidate's with probability 1/(1 + a)),
 * variance p_A·(1 + a)·E[X²]. 0 when ready already; undefined when trialsUntilReady cannot tell.
 */
export function readinessPassage(evidence: RatioEvidence, alpha: number, candidateShare: number): Passage | 0 | undefined {
  const mean = trialsUntilReady(evidence, alpha, candidateShare);
  if (mean === undefined || mean === 0) return mean;
  const pA = evidence.baselineEvents / evidence.baselineTrials;
  const a = (1 - candidateShare) / candidateShare;
  const r0 = evidence.r0;
  const share = (r: number) => r / (r + a); // a trial's event is the candidate's, at ratio r
  const truth = share(1);
  const base = evidence.logLik[R0_INDEX]!;
  let best: { at: number; drift: number; variance: number } | undefined;
  for (const m of LOWER_STEPS.filter((m) => R0_INDEX - m >= 0)) {
    const r = r0 * Math.pow(GRID_STEP, -m);
    const up = Math.log(share(r) / share(r0));
    const down = Math.log((1 - share(r)) / (1 - share(r0)));
    const events = pA * (1 + a);
    const drift = events * (truth * up + (1 - truth) * down);
    const variance = events * (truth * up * up + (1 - truth) * down * down);
    const at = evidence.logLik[R0_INDEX - m]! - base + mean * drift;
    if (drift > 0 && (!best || at > best.at)) best = { at, drift, variance };
  }
  if (!best) return undefined;
  const distance = mean * best.drift;
  return { mean, shape: (distance * distance) / best.variance };
}
