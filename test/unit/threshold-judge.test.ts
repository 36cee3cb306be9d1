import { emptyVersionMetrics, observe, type VersionMetrics } from '../../src/analysis/metrics';
import { thresholdJudge } from '../../src/analysis/threshold-judge';
import { makeSpec } from '../helpers/specs';

const analysis = makeSpec({ analysis: { judge: 'threshold', interval: '5s', minRequests: 50, failureLimit: 2, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } } }).analysis;

function version(requests: number, errors: number, latencyMs: number): VersionMetrics {
  const m = emptyVersionMetrics();
  m.requests = requests;
  m.errors = errors;
  for (let i = 0; i < requests; i++) observe(m.latency, latencyMs);
  return m;
}

const judge = (candidate: VersionMetrics) =>
  thresholdJudge.judge({ analysis, candidateWeight: 10, interval: { baseline: version(900, 0, 100), candidate } }, null);

describe('threshold judge (v0)', () => {
  test('a healthy candidate passes, with the numbers', () => {
    const j = judge(version(100, 1, 100));
    expect(j.verdict).toBe('pass');
    expect(j.reasons[0]).toMatch(/error rate 1\.00% ≤ 5\.00%.*over 100 requests/);
    expect(j.metrics.candidate).toMatchObject({ requests: 100, errors: 1, errorRate: 0.01 });
    expect(j.metrics.baseline.requests).toBe(900);
  });

  test('fewer than minRequests candidate requests is inconclusive, even when failing', () => {
    const j = judge(version(49, 49, 5_000));
    expect(j.verdict).toBe('inconclusive');
    expect(j.reasons).toEqual(['candidate served 49 requests, fewer than minRequests 50']);
  });

  test('exactly minRequests is judged', () => {
    expect(judge(version(50, 0, 100)).verdict).toBe('pass');
  });

  test('an error rate above the threshold fails, citing it', () => {
    const j = judge(version(100, 6, 100));
    expect(j.verdict).toBe('fail');
    expect(j.reasons).toEqual(['candidate error rate 6.00% (6/100) is above maxErrorRate 5.00%']);
  });

  test('an error rate at the threshold passes', () => {
    expect(judge(version(100, 5, 100)).verdict).toBe('pass');
  });

  test('a p95 above the threshold fails, citing it', () => {
    const j = judge(version(100, 0, 1_200));
    expect(j.verdict).toBe('fail');
    expect(j.reasons[0]).toMatch(/candidate p95 latency \d+(\.\d+)? ms is above maxLatencyP95Ms 800 ms/);
  });

  test('both failing give both reasons', () => {
    expect(judge(version(100, 50, 2_000)).reasons).toHaveLength(2);
  });
});
