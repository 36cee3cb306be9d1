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
 * One interval's draws depend only on (rollout seed, interval, weight), so judges that hold the
 * same weight see identical data, and the latent processes (cycle, bursts, shocks, pods,
 * missing scrapes) are fixed per rollout for every judge.
 */
import { LATENCY_BUCKETS_MS, type Histogram, type MetricsSample, type VersionMetrics } from '../../src/analysis/metrics';
import { binomial, hashSeed, multinomial, normal, normalCdf, poisson, rng } from './random';

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
}

const BASELINE_PODS = 10;
const LAT_MEDIAN_MS = 300;
const LAT_SIGMA = 0.45;
const SLOW_SHARE = 0.03;
const SLOW_MEDIAN_MS = 1500;
const SLOW_SIGMA = 0.5;
const TTFB_MEDIAN_MS = 80;
const TTFB_SIGMA = 0.4;
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
  const cdf = new Array(LOG_BOUNDS.length).fill(0) as number[];
  for (const pod of pods) {
    const m = Math.log(pod.latency) + shift;
    for (let j = 0; j < LOG_BOUNDS.length; j++) cdf[j] = cdf[j]! + normalCdf((LOG_BOUNDS[j]! - LOG_TTFB_MEDIAN - m) / TTFB_SIGMA) / pods.length;
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
  cache?.set(key, sample);
  return sample;
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
  const add = (x: VersionMetrics, y: VersionMetrics): VersionMetrics => ({
    requests: x.requests + y.requests,
    errors: x.errors + y.errors,
    latency: histogram(x.latency.counts.map((n, i) => n + (y.latency.counts[i] ?? 0))),
    timeToFirstByte: histogram(x.timeToFirstByte!.counts.map((n, i) => n + (y.timeToFirstByte!.counts[i] ?? 0))),
  });
  return { baseline: add(a.baseline, b.baseline), candidate: add(a.candidate, b.candidate) };
}
