/**
 * Judge v0: fixed thresholds on the candidate alone, per check (as Flagger and Argo Rollouts
 * do). Too few candidate requests → inconclusive, never a pass.
 */
import type { Judge, Judgement } from './judge';
import { summarize } from './metrics';
import { sampleRatioTest } from './sequential/srm';

/** The sample-ratio test's level (as the sequential judge's default): a mismatch is beyond doubt. */
const SRM_ALPHA = 1e-6;

/** The threshold judge's limits where the spec's `analysis.thresholds` gives none. */
export const THRESHOLD_DEFAULTS = { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } as const;

export const thresholdJudge: Judge<null> = {
  name: 'threshold',
  initialState: () => null,
  judge({ analysis, candidateWeight, interval }): Judgement<null> {
    const metrics = { baseline: summarize(interval.baseline), candidate: summarize(interval.candidate) };
    const { candidate } = metrics;
    if (candidate.requests < analysis.minRequests) {
      // Few candidate requests among many at its weight: the split is off (not a wait for traffic).
      const srm = sampleRatioTest(candidate.requests, metrics.baseline.requests, candidateWeight, SRM_ALPHA);
      const wait = srm.mismatch
        ? {
            reason: 'srm' as const,
            message: `sample-ratio mismatch: the candidate got ${candidate.requests} of ${candidate.requests + metrics.baseline.requests} requests against a configured ${candidateWeight}%`,
          }
        : {
            reason: 'thin_traffic' as const,
            message: `the candidate served ${candidate.requests} requests in the interval, fewer than minRequests ${analysis.minRequests}`,
            candidateRequests: analysis.minRequests - candidate.requests,
          };
      return {
        verdict: 'inconclusive',
        reasons: [`candidate served ${candidate.requests} requests, fewer than minRequests ${analysis.minRequests}`],
        metrics,
        wait,
        state: null,
      };
    }
    const { maxErrorRate, maxLatencyP95Ms } = { ...THRESHOLD_DEFAULTS, ...analysis.thresholds };
    const failures: string[] = [];
    if (candidate.errorRate > maxErrorRate) {
      failures.push(`candidate error rate ${pct(candidate.errorRate)} (${candidate.errors}/${candidate.requests}) is above maxErrorRate ${pct(maxErrorRate)}`);
    }
    if (candidate.latencyP95Ms !== undefined && candidate.latencyP95Ms > maxLatencyP95Ms) {
      failures.push(`candidate p95 latency ${candidate.latencyP95Ms} ms is above maxLatencyP95Ms ${maxLatencyP95Ms} ms`);
    }
    if (failures.length > 0) return { verdict: 'fail', reasons: failures, metrics, state: null };
    return {
      verdict: 'pass',
      reasons: [
        `candidate error rate ${pct(candidate.errorRate)} ≤ ${pct(maxErrorRate)} and p95 latency ${candidate.latencyP95Ms ?? 'n/a'} ms ≤ ${maxLatencyP95Ms} ms over ${candidate.requests} requests`,
      ],
      metrics,
      state: null,
    };
  },
};

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
