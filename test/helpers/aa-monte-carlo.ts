/**
 * A seeded A/A Monte Carlo of the sequential judge on given bucket edges: identical versions,
 * per interval Poisson traffic split binomially at the candidate's weight, 1% errors, latency
 * lognormal(300 ms, σ 0.45) and TTFB lognormal(`ttfbMedianMs`, σ 0.4), histograms drawn
 * multinomially from the same bucket probabilities for both versions.
 *
 * `runAaMonteCarlo` runs it in a worker thread: inside jest's vm context every global lookup
 * (`Math.log`, ...) is an interceptor call, ~20× slower, which turns a 300 × 60 run of ~5 s
 * into more than a minute. The worker is plain Node with tsx's require hook.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Histogram, VersionMetrics } from '../../src/analysis/metrics';
import { createSequentialJudge } from '../../src/analysis/sequential';
import { analysisSchema } from '../../src/spec/schema';
import { binomial, hashSeed, multinomial, normalCdf, poisson, rng } from '../../bench/judge/random';

export interface AaOptions {
  boundsMs: readonly number[];
  rollouts: number;
  intervals: number;
  /** Candidate weight, percent. */
  weight: number;
  /** Expected requests per interval, both versions. */
  requests: number;
  ttfbMedianMs: number;
  seed: number;
}

export interface AaResult {
  /** Rollouts the judge failed. */
  fails: number;
  /** Per rollout, the check (1-based) at which the metric was first ready; Infinity = never. */
  readyAt: { latency: number[]; ttfb: number[] };
  /** Per rollout, the first boundary chosen (ms). */
  firstBoundaryMs: { latency: Array<number | null>; ttfb: Array<number | null> };
}

/** P(X > x) for a lognormal with the given median and σ. */
export function lognormalExceedance(xMs: number, medianMs: number, sigma: number): number {
  return 1 - normalCdf(Math.log(xMs / medianMs) / sigma);
}

/** Per-bucket probabilities of a lognormal on the given edges (the last entry is +Inf). */
export function lognormalBuckets(boundsMs: readonly number[], medianMs: number, sigma: number): number[] {
  const cdf = boundsMs.map((b) => 1 - lognormalExceedance(b, medianMs, sigma));
  return [...cdf.map((c, i) => c - (i === 0 ? 0 : cdf[i - 1]!)), 1 - cdf[cdf.length - 1]!];
}

export function aaMonteCarlo(o: AaOptions): AaResult {
  const analysis = analysisSchema.parse({ judge: 'sequential' });
  const latencyP = lognormalBuckets(o.boundsMs, 300, 0.45);
  const ttfbP = lognormalBuckets(o.boundsMs, o.ttfbMedianMs, 0.4);
  const histogram = (counts: number[]): Histogram => ({ boundsMs: [...o.boundsMs], counts });
  const judge = createSequentialJudge();
  const result: AaResult = { fails: 0, readyAt: { latency: [], ttfb: [] }, firstBoundaryMs: { latency: [], ttfb: [] } };
  for (let rollout = 0; rollout < o.rollouts; rollout++) {
    const r = rng(hashSeed(o.seed, rollout));
    const version = (n: number): VersionMetrics => ({
      requests: n,
      errors: binomial(r, n, 0.01),
      latency: histogram(multinomial(r, n, latencyP)),
      timeToFirstByte: histogram(multinomial(r, n, ttfbP)),
    });
    let state = judge.initialState();
    const ready = { latency: Infinity, ttfb: Infinity };
    const boundary: { latency: number | null; ttfb: number | null } = { latency: null, ttfb: null };
    for (let k = 0; k < o.intervals; k++) {
      const total = poisson(r, o.requests);
      const candidate = binomial(r, total, o.weight / 100);
      const j = judge.judge({ analysis, candidateWeight: o.weight, interval: { baseline: version(total - candidate), candidate: version(candidate) } }, state);
      state = j.state;
      const evidence = j.evidence as Record<'latency' | 'ttfb', { ready: boolean; boundaryMs?: number | null }>;
      for (const m of ['latency', 'ttfb'] as const) {
        if (evidence[m].ready && ready[m] === Infinity) ready[m] = k + 1;
        boundary[m] ??= evidence[m].boundaryMs ?? null;
      }
      if (j.verdict === 'fail') {
        result.fails += 1;
        break;
      }
    }
    for (const m of ['latency', 'ttfb'] as const) {
      result.readyAt[m].push(ready[m]);
      result.firstBoundaryMs[m].push(boundary[m]);
    }
  }
  return result;
}

/** `aaMonteCarlo` in a worker thread (see the header). */
export function runAaMonteCarlo(options: AaOptions): Promise<AaResult> {
  const tsx = require.resolve('tsx/cjs/api');
  const code = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(__filename)});`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { kind: 'aa-monte-carlo', options: { ...options, boundsMs: [...options.boundsMs] } } });
    let settled = false;
    worker.once('message', (result: AaResult) => {
      settled = true;
      resolve(result);
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the A/A worker exited with code ${code} before answering`));
    });
  });
}

if (!isMainThread && (workerData as { kind?: string } | undefined)?.kind === 'aa-monte-carlo') {
  parentPort!.postMessage(aaMonteCarlo((workerData as { options: AaOptions }).options));
}
