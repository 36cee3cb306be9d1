import {
  LATENCY_BUCKETS_MS,
  emptyHistogram,
  emptyVersionMetrics,
  histogramQuantile,
  intervalBetween,
  observe,
  summarize,
  type VersionMetrics,
} from '../../src/analysis/metrics';
import { LATENCY_BUCKETS_S, msToSeconds } from '../../src/gateway/metrics';

function metricsWith(requests: number, errors: number, latencies: number[]): VersionMetrics {
  const m = emptyVersionMetrics();
  m.requests = requests;
  m.errors = errors;
  latencies.forEach((ms) => observe(m.latency, ms));
  return m;
}

describe('histograms', () => {
  test('observe puts a value in the first bucket whose edge is at or above it', () => {
    const h = emptyHistogram([10, 100]);
    [5, 10, 11, 100, 101, 5000].forEach((v) => observe(h, v));
    expect(h.counts).toEqual([2, 2, 2]);
  });

  test('quantiles interpolate inside the bucket like histogram_quantile', () => {
    const h = emptyHistogram([100, 200]);
    for (let i = 0; i < 100; i++) observe(h, 150); // all in (100, 200]
    expect(histogramQuantile(h, 0.5)).toBe(150);
    expect(histogramQuantile(h, 0.95)).toBe(195);
    expect(histogramQuantile(emptyHistogram([100]), 0.5)).toBeUndefined();
  });

  test('a quantile in the +Inf bucket is the last finite edge', () => {
    const h = emptyHistogram([100, 200]);
    observe(h, 1_000);
    expect(histogramQuantile(h, 0.99)).toBe(200);
  });

  test('the standard buckets span 1 ms to 60 s', () => {
    expect(LATENCY_BUCKETS_MS[0]).toBe(1);
    expect(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]).toBe(60_000);
  });

  test('the standard buckets are log-linear: round edges at most 1.25× apart', () => {
    for (let i = 1; i < LATENCY_BUCKETS_MS.length; i++) {
      const ratio = LATENCY_BUCKETS_MS[i]! / LATENCY_BUCKETS_MS[i - 1]!;
      expect(ratio).toBeGreaterThan(1);
      expect(ratio).toBeLessThanOrEqual(1.25);
    }
    for (const edge of LATENCY_BUCKETS_MS) {
      // At most three significant digits, written exactly (no binary noise): 1.25, 17.5, 3500.
      expect(String(edge)).toMatch(/^\d+(\.\d+)?$/);
      expect(String(edge).replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length).toBeLessThanOrEqual(3);
    }
  });

  test("the gateway's `le` labels (seconds) are the edges as clean decimals", () => {
    expect(LATENCY_BUCKETS_S.map(String).slice(0, 6)).toEqual(['0.001', '0.00125', '0.0015', '0.00175', '0.002', '0.0025']);
    expect(LATENCY_BUCKETS_S.map(String).slice(-4)).toEqual(['35', '40', '50', '60']);
    LATENCY_BUCKETS_S.forEach((s, i) => expect(s * 1000).toBeCloseTo(LATENCY_BUCKETS_MS[i]!, 9));
    for (const s of LATENCY_BUCKETS_S) expect(String(s)).toMatch(/^\d+(\.\d{1,6})?$/);
    // Binary noise in an edge does not reach the label.
    expect(String(msToSeconds(0.1 * 3))).toBe('0.0003');
    expect(String(msToSeconds(17.5))).toBe('0.0175');
  });
});

describe('interval between two cumulative readings', () => {
  test('subtracts counters and buckets', () => {
    const before = metricsWith(100, 2, [50, 50]);
    const after = metricsWith(250, 5, [50, 50, 50, 400]);
    const interval = intervalBetween(before, after);
    expect(interval.requests).toBe(150);
    expect(interval.errors).toBe(3);
    expect(interval.latency.counts.reduce((a, b) => a + b, 0)).toBe(2);
  });

  test('a counter that went down means a restart: the new reading is the interval', () => {
    const before = metricsWith(1_000, 10, [50, 50, 50]);
    const after = metricsWith(40, 1, [80]);
    expect(intervalBetween(before, after)).toEqual(after);
  });

  test('a bucket that went down alone is also a restart', () => {
    const before = metricsWith(10, 0, [50, 50]);
    const after = metricsWith(12, 0, [400, 400, 400]);
    expect(intervalBetween(before, after)).toEqual(after);
  });

  test('a new counting start is a restart even when the counters climbed past the old reading', () => {
    const before = { ...metricsWith(10, 0, [50]), countingSince: '2026-11-30T01:00:00.000Z' };
    const after = { ...metricsWith(500, 3, [50, 50, 80]), countingSince: '2026-11-30T01:05:00.000Z' };
    expect(intervalBetween(before, after)).toEqual(after);
    const same = { ...after, countingSince: before.countingSince };
    expect(intervalBetween(before, same).requests).toBe(490);
  });

  test('without an earlier reading the reading is the interval', () => {
    const only = metricsWith(5, 0, [10]);
    expect(intervalBetween(undefined, only)).toEqual(only);
  });
});

test('summaries give error rate and latency quantiles', () => {
  const s = summarize(metricsWith(200, 10, Array.from({ length: 200 }, () => 120)));
  expect(s).toMatchObject({ requests: 200, errors: 10, errorRate: 0.05 });
  expect(s.latencyP95Ms).toBeGreaterThan(100);
  expect(s.latencyP95Ms).toBeLessThanOrEqual(150);
  expect(summarize(emptyVersionMetrics())).toEqual({ requests: 0, errors: 0, errorRate: 0 });
});
