/**
 * The Prometheus metric source's options as the spec validates them (the API answers these
 * issues with 400), its presets and templates, and how `le` buckets become a Histogram.
 */
import { ApplicationFailure } from '@temporalio/common';
import {
  PROMETHEUS_PRESETS,
  histogramFromBuckets,
  promDuration,
  resolveTemplates,
  templateProblems,
  type Series,
} from '../../src/activities/metric-sources/prometheus';
import { LATENCY_BUCKETS_MS } from '../../src/analysis/metrics';
import { LATENCY_BUCKETS_S } from '../../src/gateway/metrics';
import { parseRolloutSpec, type SpecIssue } from '../../src/spec';
import { specInput } from '../helpers/specs';

function issuesOf(metrics: unknown): SpecIssue[] {
  const result = parseRolloutSpec(specInput({ metrics: metrics as never }));
  if (result.ok) throw new Error(`accepted: ${JSON.stringify(result.spec.metrics)}`);
  return result.issues;
}

const URL = 'http://127.0.0.1:9090';

describe('the spec', () => {
  test('a preset alone is a complete source', () => {
    for (const preset of ['gateway', 'vllm', 'istio']) {
      const result = parseRolloutSpec(specInput({ metrics: { kind: 'prometheus', url: URL, preset } as never }));
      expect(result.ok).toBe(true);
    }
  });

  test('without a preset, each missing required template is named', () => {
    expect(issuesOf({ kind: 'prometheus', url: URL, queries: { errors: 'sum(increase(e{v="$version"}[$interval]))' } })).toEqual([
      { path: 'metrics.queries.requests', message: 'metrics.queries.requests is required without metrics.preset (one of "gateway", "vllm", "istio")' },
      { path: 'metrics.queries.latency', message: 'metrics.queries.latency is required without metrics.preset (one of "gateway", "vllm", "istio")' },
    ]);
  });

  test('a full set of templates needs no preset', () => {
    const result = parseRolloutSpec(
      specInput({
        metrics: {
          kind: 'prometheus',
          url: `${URL}/prometheus/`,
          queries: {
            requests: 'sum(increase(http_requests_total{app="$target",version="$version"}[$interval]))',
            errors: 'sum(increase(http_requests_total{app="$target",version="$version",code=~"5.."}[$interval]))',
            latency: { query: 'sum by (le) (increase(http_duration_ms_bucket{version="$version"}[$interval]))', le: 'milliseconds' },
          },
          versionLabels: { v2: 'llama-3.1-8b' },
        } as never,
      }),
    );
    expect(result.ok).toBe(true);
  });

  test.each([
    ['requests', 'sum(increase(x{version="$version"}[$interval])', 'metrics.queries.requests has an unclosed "(" (character 4)'],
    ['errors', 'sum(increase(x{version="$version}[$interval]))', 'metrics.queries.errors has an unclosed quote " (character 24)'],
    ['cpuSeconds', 'sum(increase(x{version="$version"}[$interval])))', 'metrics.queries.cpuSeconds has an unbalanced ")" (character 48) that closes nothing'],
    ['memoryBytes', 'max(x{version="$version")}', 'metrics.queries.memoryBytes has ")" (character 25) where "{" (character 6) is still open'],
    ['requests', 'sum(increase(x{version="$version"}[$window]))', 'metrics.queries.requests uses an unknown placeholder $window (known: $target, $version, $interval)'],
    ['requests', '   ', 'metrics.queries.requests is empty'],
    ['kvCacheUsage', 'avg(vllm:kv_cache_usage_perc)', 'metrics.queries.kvCacheUsage does not use $version: both versions would read the same series'],
  ])('a malformed %s template is refused at start, naming the field: %s', (figure, query, message) => {
    const issues = issuesOf({ kind: 'prometheus', url: URL, preset: 'vllm', queries: { [figure]: query } });
    expect(issues).toEqual([{ path: `metrics.queries.${figure}`, message }]);
  });

  test('a histogram template in object form is checked too', () => {
    expect(issuesOf({ kind: 'prometheus', url: URL, preset: 'istio', queries: { latency: { query: 'sum by (le) (x{v="$version"}' } } })).toEqual([
      { path: 'metrics.queries.latency.query', message: 'metrics.queries.latency has an unclosed "(" (character 13)' },
    ]);
    expect(issuesOf({ kind: 'prometheus', url: URL, preset: 'istio', queries: { latency: { query: 'x{v="$version"}', le: 'hours' } } })[0]).toMatchObject({
      path: 'metrics.queries.latency',
      message: expect.stringMatching(/"le": "seconds" \| "milliseconds"/),
    });
  });

  test.each([
    [{ url: 'ftp://prometheus:9090' }, 'metrics.url', /absolute http\(s\) URL/],
    [{ url: 'prometheus:9090' }, 'metrics.url', /absolute http\(s\) URL/],
    [{ url: 'http://user:pw@prometheus:9090' }, 'metrics.url', /credentials/],
    [{ url: 'http://prometheus:9090/?x=1' }, 'metrics.url', /query or fragment/],
    [{ url: URL, preset: 'linkerd' }, 'metrics.preset', /one of "gateway", "vllm", "istio"/],
    [{ url: URL, queries: { p99: 'x' } }, 'metrics.queries', /unknown field\(s\): p99/],
    [{ url: URL, versionLabels: { v2: 'a"b' } }, 'metrics.versionLabels.v2', /quotes, backslashes or line breaks/],
    [{ url: URL, targetLabel: '' }, 'metrics.targetLabel', /not be empty/],
  ])('options %j: an issue at %s', (options, path, message) => {
    const issues = issuesOf({ kind: 'prometheus', preset: 'gateway', ...options });
    expect(issues).toEqual([{ path, message: expect.stringMatching(message) }]);
  });

  test('every preset template is well-formed', () => {
    for (const [name, preset] of Object.entries(PROMETHEUS_PRESETS)) {
      for (const [figure, template] of Object.entries(preset)) {
        expect([name, figure, templateProblems(typeof template === 'string' ? template : template.query)]).toEqual([name, figure, []]);
      }
    }
  });
});

describe('templates', () => {
  test('queries override single templates; a string keeps the preset\'s le unit', () => {
    const resolved = resolveTemplates({ preset: 'istio', queries: { latency: 'sum by (le) (increase(my_ms_bucket{v="$version"}[$interval]))', timeToFirstByte: { query: 'sum by (le) (t_bucket{v="$version"})', le: 'seconds' } } });
    expect(resolved.find((t) => t.figure === 'latency')).toEqual({ figure: 'latency', query: 'sum by (le) (increase(my_ms_bucket{v="$version"}[$interval]))', le: 'milliseconds' });
    expect(resolved.find((t) => t.figure === 'timeToFirstByte')).toMatchObject({ le: 'seconds' });
    expect(resolved.find((t) => t.figure === 'requests')!.query).toBe(PROMETHEUS_PRESETS.istio.requests);
    expect(resolved.map((t) => t.figure)).not.toContain('kvCacheUsage');
  });

  test('$interval is the window in whole seconds, or in ms', () => {
    expect(promDuration(37_000)).toBe('37s');
    expect(promDuration(2_500)).toBe('2500ms');
    expect(promDuration(0.2)).toBe('1ms');
  });
});

describe('le buckets to a Histogram', () => {
  const bucket = (le: string, value: number | string): Series => ({ metric: { le }, value: [0, String(value)] });

  test('cumulative seconds become per-bucket counts on the exact ms edges, +Inf last', () => {
    const series = [...LATENCY_BUCKETS_S.map((le, i) => bucket(String(le), i < 20 ? 0 : 10 + i)), bucket('+Inf', 100)].reverse();
    const h = histogramFromBuckets(series, 'seconds', 'f')!;
    expect(h.boundsMs).toEqual([...LATENCY_BUCKETS_MS]);
    expect(h.counts).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(h.counts[19]).toBe(0);
    expect(h.counts[20]).toBe(30);
    expect(h.counts[21]).toBe(1);
    expect(h.counts.reduce((s, n) => s + n, 0)).toBe(100);
  });

  test('extrapolated fractions are rounded, never negative, and several series are summed per le', () => {
    const h = histogramFromBuckets([bucket('0.1', 2.4), bucket('0.2', 2.2), bucket('0.2', 0.5), bucket('+Inf', 4.6), bucket('0.05', 'NaN')], 'seconds', 'f')!;
    // cumulative 0 (NaN), 2, 3 (2.7), 5 (4.6) → per bucket 0, 2, 1, 2
    expect(h).toEqual({ boundsMs: [50, 100, 200], counts: [0, 2, 1, 2] });
    expect(histogramFromBuckets([bucket('0.1', 5), bucket('0.2', 3)], 'seconds', 'f')).toEqual({ boundsMs: [100, 200], counts: [5, 0, 0] });
  });

  test('milliseconds stay as they are; no series is no histogram', () => {
    expect(histogramFromBuckets([bucket('25', 1), bucket('+Inf', 2)], 'milliseconds', 'f')).toEqual({ boundsMs: [25], counts: [1, 1] });
    expect(histogramFromBuckets([], 'seconds', 'f')).toBeUndefined();
  });

  test('a series without le is a template mistake, said plainly', () => {
    const err = (() => {
      try {
        histogramFromBuckets([{ metric: {}, value: [0, '3'] }], 'seconds', 'metrics.queries.latency');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as Error).message).toMatch(/metrics\.queries\.latency answered a series without a numeric le label .*sum by \(le\)/);
  });
});

describe('LLM figures of the presets', () => {
  it('vllm reads time to first token and inter-token latency from its own histograms; gateway from its own', () => {
    const of = (preset: 'vllm' | 'gateway') => Object.fromEntries(resolveTemplates({ preset }).map((t) => [t.figure, t]));
    const vllm = of('vllm');
    expect(vllm.timeToFirstToken).toMatchObject({ le: 'seconds', query: expect.stringContaining('vllm:time_to_first_token_seconds_bucket{model_name="$version"}') });
    expect(vllm.interTokenLatency).toMatchObject({ le: 'seconds', query: expect.stringContaining('vllm:inter_token_latency_seconds_bucket{model_name="$version"}') });
    const gateway = of('gateway');
    expect(gateway.timeToFirstToken!.query).toContain('gateway_time_to_first_token_seconds_bucket{target="$target",version="$version"}');
    expect(gateway.interTokenLatency!.query).toContain('gateway_inter_token_latency_seconds_bucket{target="$target",version="$version"}');
  });
});
