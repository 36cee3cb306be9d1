/**
 * The latency boundary on the standard bucket edges: where it lands for typical latency and
 * time-to-first-byte distributions (analytically, from the lognormal CDF), and a seeded A/A Monte
 * Carlo of the whole sequential judge on those edges (validity, and that latency and TTFB do
 * become ready; run in a worker thread, see test/helpers/aa-monte-carlo.ts).
 */
import { LATENCY_BUCKETS_MS } from '../../src/analysis/metrics';
import { chooseBoundaryIndex } from '../../src/analysis/sequential/boundary';
import { lognormalBuckets, lognormalExceedance, runAaMonteCarlo } from '../helpers/aa-monte-carlo';

/** The edges before the log-linear scheme, to show what the finer edges fix. */
const COARSE_EDGES_MS = [1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000];

/** The boundary the judge would pick from `n` baseline observations at their expected counts, and its true exceedance fraction. */
function boundaryOf(bounds: readonly number[], medianMs: number, sigma: number, n = 1_000_000): { boundaryMs: number; fraction: number } {
  const counts = lognormalBuckets(bounds, medianMs, sigma).map((p) => Math.round(p * n));
  const j = chooseBoundaryIndex(bounds, counts, 0.95);
  if (j === undefined) throw new Error('no boundary');
  return { boundaryMs: bounds[j]!, fraction: lognormalExceedance(bounds[j]!, medianMs, sigma) };
}

describe('latency boundary on the standard edges', () => {
  it.each([
    ['TTFB', 20, 0.4],
    ['latency', 300, 0.45],
  ])('sits near the p95 for %s with median %s ms, σ %s', (_name, medianMs, sigma) => {
    const { fraction } = boundaryOf(LATENCY_BUCKETS_MS, medianMs, sigma);
    expect(fraction).toBeGreaterThanOrEqual(0.035);
    expect(fraction).toBeLessThanOrEqual(0.07);
  });

  it('lands where the coarse edges missed: 40 ms (4.2%) for that TTFB, 600 ms (6.2%) for that latency', () => {
    const ttfb = boundaryOf(LATENCY_BUCKETS_MS, 20, 0.4);
    const latency = boundaryOf(LATENCY_BUCKETS_MS, 300, 0.45);
    expect(ttfb.boundaryMs).toBe(40);
    expect(latency.boundaryMs).toBe(600);
    // The coarse edges: 30 ms with 15.5% above it, 750 ms with 2.1% (outside the band).
    expect(boundaryOf(COARSE_EDGES_MS, 20, 0.4)).toEqual({ boundaryMs: 30, fraction: expect.closeTo(0.155, 3) });
    expect(boundaryOf(COARSE_EDGES_MS, 300, 0.45)).toEqual({ boundaryMs: 750, fraction: expect.closeTo(0.021, 3) });
    // And just above 20 ms the coarse edges jumped to 50 ms, with 1.4% above it.
    expect(boundaryOf(COARSE_EDGES_MS, 20.8, 0.4).fraction).toBeLessThan(0.015);
  });

  it('stays within 2.5%–10% above the boundary for any median from 2 ms to 10 s (σ 0.4 to 1)', () => {
    for (const sigma of [0.4, 0.45, 0.6, 1]) {
      let lo = 1;
      let hi = 0;
      for (let k = 0; k <= 300; k++) {
        const medianMs = 2 * Math.pow(5000, k / 300);
        const { fraction } = boundaryOf(LATENCY_BUCKETS_MS, medianMs, sigma);
        lo = Math.min(lo, fraction);
        hi = Math.max(hi, fraction);
      }
      expect(lo).toBeGreaterThanOrEqual(0.025);
      expect(hi).toBeLessThanOrEqual(0.1);
    }
  });
});

describe('sequential judge on the standard edges: A/A Monte Carlo', () => {
  // 5% weight, ~3,000 requests per 30 s interval, 60 intervals (half an hour) per rollout.
  const options = { boundsMs: LATENCY_BUCKETS_MS, intervals: 60, weight: 5, requests: 3000 };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const share = <T>(xs: T[], f: (x: T) => boolean) => xs.filter(f).length / xs.length;

  it('rejects identical versions at most at α (+ sampling slack), and latency and TTFB become ready', async () => {
    const { fails, readyAt, firstBoundaryMs } = await runAaMonteCarlo({ ...options, rollouts: 300, ttfbMedianMs: 20, seed: 0xaa01 });
    expect(fails / 300).toBeLessThanOrEqual(0.02); // α = 0.01
    expect(share(firstBoundaryMs.ttfb, (b) => b === 40)).toBeGreaterThan(0.9);
    expect(share(firstBoundaryMs.latency, (b) => b === 600)).toBeGreaterThan(0.9);
    for (const m of ['latency', 'ttfb'] as const) {
      expect(share(readyAt[m], (x) => x <= options.intervals)).toBeGreaterThanOrEqual(0.95);
      // Ready within a few 30 s checks (a median of 5 at the time of writing).
      expect(median(readyAt[m])).toBeLessThanOrEqual(8);
    }
  }, 60_000);

  it('TTFB readiness does not starve where the coarse edges put the boundary at 2% (median 22 ms)', async () => {
    // With the coarse edges the boundary sat on 50 ms (2.0% above it) and TTFB took a median of
    // 10 checks to be ready; on the finer edges it sits on 40 ms (6.8%).
    expect(boundaryOf(COARSE_EDGES_MS, 22, 0.4).boundaryMs).toBe(50);
    expect(boundaryOf(LATENCY_BUCKETS_MS, 22, 0.4).boundaryMs).toBe(40);
    const { fails, readyAt } = await runAaMonteCarlo({ ...options, rollouts: 100, ttfbMedianMs: 22, seed: 0xaa02 });
    expect(fails).toBeLessThanOrEqual(3);
    expect(share(readyAt.ttfb, (x) => x <= options.intervals)).toBeGreaterThanOrEqual(0.95);
    expect(median(readyAt.ttfb)).toBeLessThanOrEqual(8);
  }, 60_000);
});
