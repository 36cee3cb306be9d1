/**
 * A seeded simulator of what a metric source reports per interval (MetricsSample: counts and
 * histogram buckets per version) during a canary rollout:
 *  - Poisson arrivals with a daily cycle (random phase) and bursts;
 *  - each request goes to the candidate with the configured weight, then to one of the
 *    version's pods uniformly (several canary pods, ten baseline pods), pods differing by a
 *    fixed lognormal factor on error rate and on latency (pod-to-pod spread);
 *  - a shared, time-correlated latency shock (AR(1) on log latency) hitting both versions;
 *  - error rates drifting with the daily cycle, identically for both versions;
 *  - lognormal latency with a slow mode (3% of requests ~5× slower); lognormal TTFB;
 *  - missing scrapes: an interval reports nothing and the next one reports both intervals
 *    (the source's cumulative counters are read one interval late).
 * Regressions (A/B) multiply the candidate's error rate, or all of its latencies (so its p95
 * by the same factor), from an onset interval on.
 *
 * LLM traffic (worlds with `llm`, the 'llm' scenarios; see simulateLlm): time to first token and
 * inter-token latency histograms and the token/answer counts (VersionMetrics.llm), drawn from a
 * separate random stream so that the fields above get the very same draws with or without it.
 *
 * One interval's draws depend only on (rollout seed, interval, weight), so judges that hold the
 * same weight see identical data, and the latent processes (cycle, bursts, shocks, pods,
 * missing scrapes) are fixed per rollout for every judge.
 */
import { LATENCY_BUCKETS_MS, type Histogram, type LlmCounts, type MetricsSample, type VersionMetrics } from '../../src/analysis/metrics';
import type { Pricing } from '../../src/analysis/gate-metrics';
import { binomial, hashSeed, multinomial, normal, normalCdf, poisson, rng, type Random } from './random';

export const INTERVAL_SECONDS = 30;

export interface Nuisance {
  /** Canary pods. */
  candidatePods: number;
  /** Pod-to-pod spread: lognormal σ of the per-pod error-rate and latency factors. */
  podErrorSpread: number;
  podLatencySpread: number;
  /** Shared latency shock: stationary σ of log latency, AR(1) coefficient 0.9. */
  shock: number;
  /** Probability that an interval's scrape is missing. */
  missing: number;
}

export interface World {
  /** Mean total requests per second (both versions), before the daily cycle and bursts. */
  rps: number;
  /** Nominal error rate of the baseline. */
  baseErrorRate: number;
  nuisance: Nuisance;
  /** Candidate regressions from `onset` (interval index) on. */
  errorFactor: number;
  latencyFactor: number;
  onset: number;
  /** LLM answers measured (TTFT, inter-token latency, tokens, truncation, structured output); absent = none (VersionMetrics without them). */
  llm?: LlmWorld;
}

/**
 * The LLM side of a world: candidate factors from `onset` on (default 1: like the baseline), and
 * the versions' token prices (the spec's `versions.*.pricing`, passed to the judge for cost).
 */
export interface LlmWorld {
  /** Multiplies every request's time to first token (so its p95 by the same factor). */
  ttftFactor?: number;
  /** Multiplies every request's mean gap between tokens. */
  itlFactor?: number;
  /** Multiplies the mean output tokens per request (the lognormal's median; same shape). */
  outputTokensFactor?: number;
  /** Multiply the probability of a truncated answer, and of an invalid structured answer. */
  truncationFactor?: number;
  invalidFactor?: number;
  pricing?: { baseline: Pricing; candidate: Pricing };
}

const BASELINE_PODS = 10;
const LAT_MEDIAN_MS = 300;
const LAT_SIGMA = 0.45;
const SLOW_SHARE = 0.03;
const SLOW_MEDIAN_MS = 1500;
const SLOW_SIGMA = 0.5;
const TTFB_MEDIAN_MS = 80;
const TTFB_SIGMA = 0.4;
/**
 * LLM answers. TTFT lognormal (median 250 ms, σ 0.5; prefill queueing), a request's mean gap
 * between tokens lognormal (median 30 ms, σ 0.3; batch load): both scaled by the pod's latency
 * factor and the shared shock like latency (a slow pod or a loaded cluster is slow on every
 * phase). Tokens per request lognormal, rounded, at least 1: output median 145, σ 0.8 (mean
 * ~200, sd ~190), capped at MAX_TOKENS; input median 250, σ 0.6 (mean ~300), independent. A
 * truncated answer (finish_reason "length", 2%) and a structured request (30%, of which 1%
 * invalid JSON) are independent Bernoullis. No pod spread on tokens, truncation or validity:
 * they are the model's, not the pod's.
 */
const TTFT_MEDIAN_MS = 250;
const TTFT_SIGMA = 0.5;
const ITL_MEDIAN_MS = 30;
const ITL_SIGMA = 0.3;
const OUT_TOKENS_MEDIAN = 145;
const OUT_TOKENS_SIGMA = 0.8;
const IN_TOKENS_MEDIAN = 250;
const IN_TOKENS_SIGMA = 0.6;
const MAX_TOKENS = 8192;
const TRUNCATED_RATE = 0.02;
const STRUCTURED_SHARE = 0.3;
const INVALID_RATE = 0.01;
/** One simulated day is compressed to 4 hours, so a 1–3 h rollout sees most of a cycle. */
const DAY_INTERVALS = (4 * 3600) / INTERVAL_SECONDS;

/** The latent, judge-independent course of one rollout. */
export interface Rollout {
  seed: number;
  world: World;
  horizon: number;
  traffic: number[]; // expected total requests per interval
  errorDrift: number[];
  shock: number[]; // log-latency shift per interval
  missing: boolean[];
  pods: { candidate: Pod[]; baseline: Pod[] };
}

interface Pod {
  error: number;
  latency: number;
}

export function newRollout(world: World, seed: number, horizon: number): Rollout {
  const r = rng(hashSeed(seed, 0x5eed));
  const phase = r();
  const traffic: number[] = [];
  const errorDrift: number[] = [];
  const shock: number[] = [];
  const missing: boolean[] = [];
  let burstLeft = 0;
  let burstFactor = 1;
  let s = normal(r) * world.nuisance.shock;
  const innovation = world.nuisance.shock * Math.sqrt(1 - 0.81);
  for (let k = 0; k < horizon; k++) {
    const cycle = Math.sin(2 * Math.PI * (k / DAY_INTERVALS + phase));
    if (burstLeft === 0 && r() < 0.02) {
      burstLeft = 1 + Math.floor(r() * 4);
      burstFactor = 2 + r();
    }
    const burst = burstLeft > 0 ? burstFactor : 1;
    if (burstLeft > 0) burstLeft--;
    traffic.push(world.rps * INTERVAL_SECONDS * (1 + 0.5 * cycle) * burst);
    errorDrift.push(1 + 0.3 * cycle);
    s = 0.9 * s + innovation * normal(r);
    shock.push(s);
    missing.push(r() < world.nuisance.missing);
  }
  const pod = (): Pod => ({
    error: Math.exp(world.nuisance.podErrorSpread * normal(r) - world.nuisance.podErrorSpread ** 2 / 2),
    latency: Math.exp(world.nuisance.podLatencySpread * normal(r)),
  });
  const candidate = Array.from({ length: world.nuisance.candidatePods }, pod);
  const baseline = Array.from({ length: BASELINE_PODS }, pod);
  return { seed, world, horizon, traffic, errorDrift, shock, missing, pods: { candidate, baseline } };
}

/** Logs of the bucket edges and medians, computed once (the per-interval bucket CDFs are the simulator's hot loop). */
const LOG_BOUNDS = LATENCY_BUCKETS_MS.map((b) => Math.log(b));
const LOG_LAT_MEDIAN = Math.log(LAT_MEDIAN_MS);
const LOG_SLOW_MEDIAN = Math.log(SLOW_MEDIAN_MS);
const LOG_TTFB_MEDIAN = Math.log(TTFB_MEDIAN_MS);
const LOG_TTFT_MEDIAN = Math.log(TTFT_MEDIAN_MS);
const LOG_ITL_MEDIAN = Math.log(ITL_MEDIAN_MS);

/** Per-bucket probabilities of the latency mixture, averaged over pods, with extra log shift. */
function latencyBuckets(pods: Pod[], shift: number, factor: number): number[] {
  const cdf = new Array(LOG_BOUNDS.length).fill(0) as number[];
  for (const pod of pods) {
    const m = Math.log(pod.latency * factor) + shift;
    for (let j = 0; j < LOG_BOUNDS.length; j++) {
      const lb = LOG_BOUNDS[j]!;
      cdf[j] = cdf[j]! +
        ((1 - SLOW_SHARE) * normalCdf((lb - LOG_LAT_MEDIAN - m) / LAT_SIGMA) + SLOW_SHARE * normalCdf((lb - LOG_SLOW_MEDIAN - m) / SLOW_SIGMA)) /
        pods.length;
    }
  }
  return toBuckets(cdf);
}

function ttfbBuckets(pods: Pod[], shift: number): number[] {
  return lognormalBuckets(pods, shift, 1, LOG_TTFB_MEDIAN, TTFB_SIGMA);
}

/** Per-bucket probabilities of a lognormal (log median, σ) scaled by each pod's latency factor × `factor`, averaged over pods. */
function lognormalBuckets(pods: Pod[], shift: number, factor: number, logMedian: number, sigma: number): number[] {
  const cdf = new Array(LOG_BOUNDS.length).fill(0) as number[];
  for (const pod of pods) {
    const m = Math.log(pod.latency * factor) + shift;
    for (let j = 0; j < LOG_BOUNDS.length; j++) cdf[j] = cdf[j]! + normalCdf((LOG_BOUNDS[j]! - logMedian - m) / sigma) / pods.length;
  }
  return toBuckets(cdf);
}

function toBuckets(cdf: number[]): number[] {
  const p = cdf.map((c, j) => Math.max(0, c - (j === 0 ? 0 : cdf[j - 1]!)));
  p.push(Math.max(0, 1 - cdf[cdf.length - 1]!));
  return p;
}

/** P(latency > x ms) for a version in an interval (for harmed-request accounting). */
export function exceedProbability(pods: Pod[], shift: number, factor: number, xMs: number): number {
  let sum = 0;
  const lx = Math.log(xMs);
  for (const pod of pods) {
    const m = Math.log(pod.latency * factor) + shift;
    sum += (1 - SLOW_SHARE) * (1 - normalCdf((lx - Math.log(LAT_MEDIAN_MS) - m) / LAT_SIGMA)) + SLOW_SHARE * (1 - normalCdf((lx - Math.log(SLOW_MEDIAN_MS) - m) / SLOW_SIGMA));
  }
  return sum / pods.length;
}

/** The nominal baseline p95 (no shock, no pod spread): where "harm" from latency is counted. */
export const NOMINAL_P95_MS = (() => {
  let lo = 1;
  let hi = 60000;
  for (let i = 0; i < 60; i++) {
    const mid = Math.sqrt(lo * hi);
    if (exceedProbability([{ error: 1, latency: 1 }], 0, 1, mid) > 0.05) lo = mid;
    else hi = mid;
  }
  return lo;
})();

export interface IntervalTruth {
  /** True per-request probabilities in the interval. */
  candidateErrorRate: number;
  baselineErrorRate: number;
  candidateSlow: number;
  baselineSlow: number;
  regressed: boolean;
}

export function truthAt(rollout: Rollout, k: number): IntervalTruth {
  const { world } = rollout;
  const regressed = k >= world.onset;
  const mean = (pods: Pod[]) => pods.reduce((s, p) => s + p.error, 0) / pods.length;
  const base = world.baseErrorRate * rollout.errorDrift[k]!;
  return {
    candidateErrorRate: Math.min(1, base * mean(rollout.pods.candidate) * (regressed ? world.errorFactor : 1)),
    baselineErrorRate: Math.min(1, base * mean(rollout.pods.baseline)),
    candidateSlow: exceedProbability(rollout.pods.candidate, rollout.shock[k]!, regressed ? world.latencyFactor : 1, NOMINAL_P95_MS),
    baselineSlow: exceedProbability(rollout.pods.baseline, rollout.shock[k]!, 1, NOMINAL_P95_MS),
    regressed,
  };
}

/** What actually happened in interval k at the given candidate weight (percent). Memoized per rollout. */
export function intervalAt(rollout: Rollout, k: number, weight: number, cache?: Map<string, MetricsSample>): MetricsSample {
  const key = `${k}|${weight}`;
  const hit = cache?.get(key);
  if (hit) return hit;
  const r = rng(hashSeed(rollout.seed, k, Math.round(weight * 1000)));
  const truth = truthAt(rollout, k);
  const total = poisson(r, rollout.traffic[k]!);
  const nB = binomial(r, total, weight / 100);
  const nA = total - nB;
  const shift = rollout.shock[k]!;
  const version = (n: number, errorRate: number, pods: Pod[], factor: number): VersionMetrics => ({
    requests: n,
    errors: binomial(r, n, errorRate),
    latency: histogram(multinomial(r, n, latencyBuckets(pods, shift, factor))),
    timeToFirstByte: histogram(multinomial(r, n, ttfbBuckets(pods, shift))),
  });
  const sample: MetricsSample = {
    baseline: version(nA, truth.baselineErrorRate, rollout.pods.baseline, 1),
    candidate: version(nB, truth.candidateErrorRate, rollout.pods.candidate, truth.regressed ? rollout.world.latencyFactor : 1),
  };
  const llm = rollout.world.llm;
  if (llm) {
    // Its own stream: the draws above are the same as in a world without LLM answers.
    const q = rng(hashSeed(rollout.seed, k, Math.round(weight * 1000), 0x11a));
    simulateLlm(q, sample.baseline, rollout.pods.baseline, shift, {});
    simulateLlm(q, sample.candidate, rollout.pods.candidate, shift, truth.regressed ? llm : {});
  }
  cache?.set(key, sample);
  return sample;
}

/**
 * One version's LLM fields for its `v.requests` requests (every request an LLM request, all
 * completed: the errors above are not taken out, a simplification that changes no comparison).
 *
 * Inter-token latency: the gateway observes every gap between content chunks (~200 a request),
 * but gaps of one request share its batch and pod, so they are far from independent; counting
 * them as the exceedance test's trials would overstate the evidence many times over. Here each
 * request contributes one observation, its mean gap: the trials are then the independent units
 * the test assumes (what the test measures is the metric, not the gateway's per-gap counting).
 */
function simulateLlm(q: Random, v: VersionMetrics, pods: Pod[], shift: number, f: LlmWorld): void {
  const n = v.requests;
  v.timeToFirstToken = histogram(multinomial(q, n, lognormalBuckets(pods, shift, f.ttftFactor ?? 1, LOG_TTFT_MEDIAN, TTFT_SIGMA)));
  const itlFactor = f.itlFactor ?? 1;
  v.interTokenLatency = histogram(multinomial(q, n, lognormalBuckets(pods, shift, itlFactor, LOG_ITL_MEDIAN, ITL_SIGMA)));
  const logOut = Math.log(OUT_TOKENS_MEDIAN * (f.outputTokensFactor ?? 1));
  const logIn = Math.log(IN_TOKENS_MEDIAN);
  const counts: LlmCounts = {
    requests: n,
    inputTokens: { sum: 0, sumSquares: 0 },
    outputTokens: { sum: 0, sumSquares: 0 },
    inputOutputSum: 0,
    generationSeconds: 0,
    truncated: binomial(q, n, Math.min(1, TRUNCATED_RATE * (f.truncationFactor ?? 1))),
    structured: 0,
    invalidStructured: 0,
  };
  for (let i = 0; i < n; i++) {
    const out = Math.min(MAX_TOKENS, Math.max(1, Math.round(Math.exp(logOut + OUT_TOKENS_SIGMA * normal(q)))));
    const inp = Math.max(1, Math.round(Math.exp(logIn + IN_TOKENS_SIGMA * normal(q))));
    counts.outputTokens.sum += out;
    counts.outputTokens.sumSquares += out * out;
    counts.inputTokens.sum += inp;
    counts.inputTokens.sumSquares += inp * inp;
    counts.inputOutputSum += inp * out;
  }
  // Not tested: the nominal mean gap (no pod factor or shock) times the gaps.
  counts.generationSeconds = (Math.max(0, counts.outputTokens.sum - n) * ITL_MEDIAN_MS * Math.exp(ITL_SIGMA ** 2 / 2) * itlFactor) / 1000;
  counts.structured = binomial(q, n, STRUCTURED_SHARE);
  counts.invalidStructured = binomial(q, counts.structured, Math.min(1, INVALID_RATE * (f.invalidFactor ?? 1)));
  v.llm = counts;
}

function histogram(counts: number[]): Histogram {
  return { boundsMs: [...LATENCY_BUCKETS_MS], counts };
}

export function emptySample(): MetricsSample {
  const empty = (): VersionMetrics => ({
    requests: 0,
    errors: 0,
    latency: histogram(new Array(LATENCY_BUCKETS_MS.length + 1).fill(0)),
    timeToFirstByte: histogram(new Array(LATENCY_BUCKETS_MS.length + 1).fill(0)),
  });
  return { baseline: empty(), candidate: empty() };
}

export function addSamples(a: MetricsSample, b: MetricsSample): MetricsSample {
  const sum = (x: Histogram, y: Histogram) => histogram(x.counts.map((n, i) => n + (y.counts[i] ?? 0)));
  const add = (x: VersionMetrics, y: VersionMetrics): VersionMetrics => {
    const v: VersionMetrics = {
      requests: x.requests + y.requests,
      errors: x.errors + y.errors,
      latency: sum(x.latency, y.latency),
      timeToFirstByte: sum(x.timeToFirstByte!, y.timeToFirstByte!),
    };
    if (x.timeToFirstToken && y.timeToFirstToken) v.timeToFirstToken = sum(x.timeToFirstToken, y.timeToFirstToken);
    if (x.interTokenLatency && y.interTokenLatency) v.interTokenLatency = sum(x.interTokenLatency, y.interTokenLatency);
    if (x.llm && y.llm) v.llm = addLlm(x.llm, y.llm);
    return v;
  };
  return { baseline: add(a.baseline, b.baseline), candidate: add(a.candidate, b.candidate) };
}

function addLlm(x: LlmCounts, y: LlmCounts): LlmCounts {
  return {
    requests: x.requests + y.requests,
    inputTokens: { sum: x.inputTokens.sum + y.inputTokens.sum, sumSquares: x.inputTokens.sumSquares + y.inputTokens.sumSquares },
    outputTokens: { sum: x.outputTokens.sum + y.outputTokens.sum, sumSquares: x.outputTokens.sumSquares + y.outputTokens.sumSquares },
    inputOutputSum: x.inputOutputSum + y.inputOutputSum,
    generationSeconds: x.generationSeconds + y.generationSeconds,
    truncated: x.truncated + y.truncated,
    structured: x.structured + y.structured,
    invalidStructured: x.invalidStructured + y.invalidStructured,
  };
}
