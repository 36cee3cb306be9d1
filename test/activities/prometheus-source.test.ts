/**
 * The Prometheus metric source against a real Prometheus (1 s scrapes) scraping the embedded
 * gateway (preset `gateway`), demo model servers directly (preset `vllm`) and a static
 * exposition of Istio, cAdvisor, kube-state-metrics and DCGM series (preset `istio`), with real
 * traffic through the gateway. Windows are compared with what the client saw complete in them.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { prometheusMetricSource, type PresetName } from '../../src/activities/metric-sources/prometheus';
import type { MetricWindow, ModelVersion } from '../../src/activities/types';
import { histogramTotal, type MetricsSample } from '../../src/analysis/metrics';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { putRoute } from '../helpers/e2e';
import { freePorts, listen, type Listening } from '../helpers/http';
import { scrapedSince, startPrometheus, type RunningPrometheus } from '../helpers/prometheus';

const TARGET = 'chat';
let prometheus: RunningPrometheus;
/** When Prometheus had scraped every target once: windows must start after it to hold whole data. */
let scrapingSince: number;
let gateway: Gateway;
let dataDir: string;
let istio: Listening;
const models: Record<'v1' | 'v2', ModelServer> = {} as never;
let ports: { v1: number; v2: number };
/** When each response the client got completed, by version. */
const completed: Record<string, number[]> = { v1: [], v2: [] };
const streamed: Record<string, number[]> = { v1: [], v2: [] };
const runs: TrafficRun[] = [];

const v1: ModelVersion = { version: 'v1' };
const v2: ModelVersion = { version: 'v2' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function source(preset: PresetName, extra: { versionLabels?: Record<string, string> } = {}) {
  return prometheusMetricSource({ url: prometheus.url, preset, ...extra });
}

async function read(preset: PresetName, window: MetricWindow, versions: [ModelVersion, ModelVersion] = [v1, v2]): Promise<MetricsSample> {
  const reading = await source(preset).read({ target: TARGET, baseline: versions[0], candidate: versions[1], window });
  expect(reading.kind).toBe('interval');
  return reading.sample;
}

const within = (times: number[], { startMs, endMs }: MetricWindow) => times.filter((t) => t > startMs && t <= endMs).length;

/**
 * `increase` counts between the first and last samples inside the window and extrapolates that
 * rate to the window's edges: what completed in the (up to one scrape interval long) gap at each
 * edge is estimated, not counted. With Poisson-like traffic the estimate is off by about the
 * square root of those requests; allowed: 3 of those standard deviations, plus rounding.
 */
async function expectAbout(actual: number, expected: number, window: MetricWindow, what: string): Promise<void> {
  const atEdges = (expected * 2 * SCRAPE_MS) / span(window);
  const tolerance = 3 + 3 * Math.sqrt(atEdges);
  if (Math.abs(actual - expected) <= tolerance) return;
  // A scrape that came late or failed (an overloaded machine) leaves a longer gap to estimate: say so.
  throw new Error(`${what}: ${actual}, expected ${expected} ± ${tolerance.toFixed(1)}; scrapes in the window by target: ${await scrapesIn(window)}`);
}

async function scrapesIn(window: MetricWindow): Promise<string> {
  const query = new URLSearchParams({ query: `count_over_time(up[${span(window)}ms])`, time: String(window.endMs / 1000) });
  const body = (await (await fetch(`${prometheus.url}/api/v1/query?${query}`)).json()) as { data: { result: Array<{ metric: { instance: string }; value: [number, string] }> } };
  return body.data.result.map((r) => `${r.metric.instance} ${r.value[1]}`).join(', ');
}

const SCRAPE_MS = 1_000;
const span = (w: MetricWindow) => w.endMs - w.startMs;

/** Waits until every scrape target has been scraped after `ms`, so that a window ending at `ms` is complete. */
async function settled(ms: number): Promise<void> {
  await Promise.all([
    scrapedSince(prometheus.url, `gateway_requests_total{target="${TARGET}"}`, ms),
    scrapedSince(prometheus.url, 'vllm:request_success_total{finished_reason="stop"}', ms),
  ]);
}

/**
 * The static exposition's clock starts here: its counters grow linearly with the samples' own
 * timestamps (given, so that no scrape's latency bends the line), and `increase` is exact.
 */
const istioStart = Date.now();

function istioExposition(): string {
  const now = Date.now();
  const t = (now - istioStart) / 1000;
  const lines: string[] = [];
  const requests = (reporter: string, version: string, code: string, perSecond: number) =>
    lines.push(`istio_requests_total{reporter="${reporter}",destination_canonical_service="${TARGET}",destination_version="${version}",response_code="${code}"} ${perSecond * t}`);
  requests('destination', 'v1', '200', 10);
  requests('destination', 'v1', '503', 1);
  requests('destination', 'v2', '200', 5); // no 5xx series at all: errors are 0
  requests('source', 'v1', '200', 1000); // the calling side's report of the same requests: not counted
  const buckets = (version: string, perSecond: Record<string, number>) => {
    for (const [le, n] of Object.entries(perSecond)) {
      lines.push(`istio_request_duration_milliseconds_bucket{reporter="destination",destination_canonical_service="${TARGET}",destination_version="${version}",le="${le}"} ${n * t}`);
    }
  };
  buckets('v1', { '25': 4, '50': 8, '100': 10, '+Inf': 11 });
  buckets('v2', { '25': 1, '50': 4, '100': 5, '+Inf': 5 });
  for (const [version, cpu, memory, gpu] of [['v1', 0.5, 1e9, 40], ['v2', 0.25, 2e9, 60]] as const) {
    const pod = `namespace="ml",pod="${TARGET}-${version}-7d9f"`;
    lines.push(`kube_pod_labels{${pod},label_app="${TARGET}",label_version="${version}"} 1`);
    lines.push(`container_cpu_usage_seconds_total{${pod},container="model"} ${cpu * t}`);
    lines.push(`container_cpu_usage_seconds_total{${pod},container="POD"} ${100 * t}`);
    lines.push(`container_memory_working_set_bytes{${pod},container="model"} ${memory}`);
    lines.push(`DCGM_FI_DEV_GPU_UTIL{${pod},gpu="0"} ${gpu}`);
  }
  return lines.map((line) => `${line} ${now}\n`).join('');
}

function traffic(stream: boolean, rate: number): void {
  const times = stream ? streamed : completed;
  runs.push(
    startTraffic({
      gatewayUrl: gateway.url,
      target: TARGET,
      rate,
      durationMs: Number.POSITIVE_INFINITY,
      stream,
      onResponse: ({ status, version }) => {
        if (version && status === 200) times[version]?.push(Date.now());
      },
    }),
  );
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'model-canary-prom-'));
  const [p1, p2] = await freePorts(2);
  ports = { v1: p1!, v2: p2! };
  [models.v1, models.v2, gateway, istio] = await Promise.all([
    startModelServer({ version: 'v1', port: ports.v1, latencyMs: 10, ttftMs: 10, maxTokens: 4 }),
    startModelServer({ version: 'v2', port: ports.v2, latencyMs: 60, ttftMs: 10, maxTokens: 4 }),
    startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) }),
    listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(istioExposition());
    }),
  ]);
  await putRoute(gateway.url, TARGET, [
    { name: 'v1', url: models.v1.url, weight: 50 },
    { name: 'v2', url: models.v2.url, weight: 50 },
  ]);
  const host = (url: string) => new URL(url).host;
  prometheus = await startPrometheus({ targets: [host(gateway.url), host(models.v1.url), host(models.v2.url), host(istio.url)], scrapeIntervalSeconds: SCRAPE_MS / 1000 });
  scrapingSince = Date.now();
  traffic(false, 40);
  traffic(true, 10);
  await sleep(2_000); // steady traffic before the first window
}, 90_000);

afterAll(async () => {
  for (const run of runs) run.stop();
  await Promise.all(runs.map((r) => r.done));
  await prometheus?.stop();
  await gateway?.close(1_000);
  await Promise.all([models.v1?.close(), models.v2?.close(), istio?.close()]);
  await rm(dataDir, { recursive: true, force: true });
}, 30_000);

describe('steady traffic through the gateway', () => {
  let first: MetricWindow;
  let second: MetricWindow;
  let whole: MetricWindow;

  beforeAll(async () => {
    const start = Date.now();
    await sleep(5_000);
    const middle = Date.now();
    await sleep(5_000);
    const end = Date.now();
    first = { startMs: start, endMs: middle };
    second = { startMs: middle, endMs: end };
    whole = { startMs: start, endMs: end };
    await settled(end);
  }, 30_000);

  test.each(['gateway', 'vllm'] as const)('preset %s: the figures of a window are what completed in it', async (preset) => {
    const sample = await read(preset, whole);
    for (const [role, version] of [['baseline', 'v1'], ['candidate', 'v2']] as const) {
      const m = sample[role];
      const sent = within(completed[version]!, whole) + within(streamed[version]!, whole);
      await expectAbout(m.requests, sent, whole, `${preset} ${version} requests`);
      expect(m.errors).toBe(0);
      // Every request is in the latency histogram (the same scrapes of the same counts).
      expect(histogramTotal(m.latency)).toBe(m.requests);
      // Bucket edges come back as the ms edges the judge's boundary logic uses.
      expect(m.latency.boundsMs).toContain(17.5);
      expect(m.latency.counts).toHaveLength(m.latency.boundsMs.length + 1);
      const ttfbExpected = preset === 'gateway' ? m.requests : within(streamed[version]!, whole);
      await expectAbout(histogramTotal(m.timeToFirstByte!), ttfbExpected, whole, `${preset} ${version} time to first byte`);
      // The gateway meters every LLM answer's first token (a JSON answer's: its whole body); vLLM only streams'.
      await expectAbout(histogramTotal(m.timeToFirstToken!), ttfbExpected, whole, `${preset} ${version} time to first token`);
      expect(m.timeToFirstToken!.boundsMs).toContain(17.5);
      // Streams of 4 tokens: gaps between them.
      expect(histogramTotal(m.interTokenLatency!)).toBeGreaterThan(0);
    }
    // v2 is slower (60 ms vs 10 ms median): the histograms say so.
    const median = (h: MetricsSample['baseline']['latency']) => {
      let seen = 0;
      const total = histogramTotal(h);
      for (let i = 0; i < h.counts.length; i++) if ((seen += h.counts[i]!) >= total / 2) return h.boundsMs[i]!;
      return Infinity;
    };
    expect(median(sample.candidate.latency)).toBeGreaterThan(median(sample.baseline.latency));
    if (preset === 'vllm') {
      for (const m of [sample.baseline, sample.candidate]) {
        expect(m.cpuSeconds).toBeGreaterThan(0);
        expect(m.memoryBytes).toBeGreaterThan(10 * 2 ** 20);
        expect(m.kvCacheUsage).toBeGreaterThanOrEqual(0);
        expect(m.kvCacheUsage).toBeLessThanOrEqual(1);
      }
    } else {
      expect(sample.baseline.cpuSeconds).toBeUndefined(); // the gateway does not know the model's resources
    }
  });

  test.each(['gateway', 'vllm'] as const)('preset %s: two adjacent windows add up to the window over both', async (preset) => {
    const [a, b, all] = await Promise.all([read(preset, first), read(preset, second), read(preset, whole)]);
    for (const role of ['baseline', 'candidate'] as const) {
      // Each window estimates its own edges: the middle one twice (once in each), never counted twice.
      await expectAbout(a[role].requests + b[role].requests, all[role].requests, first, `${preset} ${role}: ${a[role].requests} + ${b[role].requests}`);
      await expectAbout(histogramTotal(a[role].latency) + histogramTotal(b[role].latency), histogramTotal(all[role].latency), first, `${preset} ${role} latency`);
    }
  });

  test('versionLabels maps a version to the label its series carry', async () => {
    const mapped = await prometheusMetricSource({ url: prometheus.url, preset: 'vllm', versionLabels: { candidate: 'v2' } }).read({
      target: TARGET,
      baseline: v1,
      candidate: { version: 'candidate' },
      window: whole,
    });
    const plain = await read('vllm', whole);
    expect(mapped.sample.candidate.requests).toBe(plain.candidate.requests);
  });
});

test('a version with no series: the read throws, naming the version and the query', async () => {
  const end = Date.now();
  const err = await read('vllm', { startMs: end - 4_000, endMs: end }, [v1, { version: 'v9' }]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).nonRetryable).toBe(false);
  expect((err as Error).message).toMatch(/no series for requests for version v9 .*metrics\.queries\.requests \(preset "vllm"\) = .*model_name="v9"/);
});

test('an empty window (the reading at attach) is empty, without a query', async () => {
  const now = Date.now();
  const sample = await prometheusMetricSource({ url: 'http://127.0.0.1:1', preset: 'gateway' }).read({ target: TARGET, baseline: v1, candidate: v2, window: { startMs: now, endMs: now } });
  expect(sample).toMatchObject({ kind: 'interval', sample: { baseline: { requests: 0 }, candidate: { requests: 0 } } });
});

test('a query Prometheus refuses fails for good, with its answer', async () => {
  const end = Date.now();
  const broken = prometheusMetricSource({ url: prometheus.url, preset: 'vllm', queries: { cpuSeconds: 'sum(rate(process_cpu_seconds_total{model_name="$version"}[$interval] offset))' } });
  const err = await broken.read({ target: TARGET, baseline: v1, candidate: v2, window: { startMs: end - 3_000, endMs: end } }).catch((e: unknown) => e);
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as Error).message).toMatch(/answered 400 to metrics\.queries\.cpuSeconds .*bad_data/);
});

test('preset istio reads destination-reported requests, 5xx errors, ms buckets and the pods resources', async () => {
  await sleep(scrapingSince + 6_000 - Date.now()); // a window of samples all through (when run alone)
  const end = Date.now();
  await scrapedSince(prometheus.url, 'istio_requests_total', end);
  const window = { startMs: end - 5_000, endMs: end };
  const { baseline, candidate } = await read('istio', window);
  expect(baseline).toMatchObject({ requests: 55, errors: 5 });
  expect(baseline.latency).toEqual({ boundsMs: [25, 50, 100], counts: [20, 20, 10, 5] });
  expect(candidate).toMatchObject({ requests: 25, errors: 0 });
  expect(candidate.latency).toEqual({ boundsMs: [25, 50, 100], counts: [5, 15, 5, 0] });
  expect(baseline.timeToFirstByte).toBeUndefined();
  expect(baseline.cpuSeconds).toBeCloseTo(2.5, 1); // the POD container is not counted
  expect(candidate.cpuSeconds).toBeCloseTo(1.25, 1);
  expect(baseline.memoryBytes).toBe(1e9);
  expect(candidate.memoryBytes).toBe(2e9);
  expect(baseline.gpuUtilization).toBeCloseTo(0.4, 5);
  expect(candidate.gpuUtilization).toBeCloseTo(0.6, 5);
});

test('a model server restarted on its port (counters reset): no negative or inflated figures', async () => {
  const before = Date.now();
  await sleep(2_500);
  await models.v2.close();
  models.v2 = await startModelServer({ version: 'v2', port: ports.v2, latencyMs: 60, ttftMs: 10, maxTokens: 4 });
  await sleep(3_500);
  const end = Date.now();
  await settled(end);
  await scrapedSince(prometheus.url, 'vllm:request_success_total{model_name="v2",finished_reason="stop"}', end);
  const window = { startMs: before, endMs: end };
  const { candidate } = await read('vllm', window);
  const sent = within(completed.v2!, window) + within(streamed.v2!, window);
  // What the old process served after its last scrape is lost with it; nothing is counted twice.
  expect(candidate.requests).toBeGreaterThan(0.5 * sent);
  expect(candidate.requests).toBeLessThanOrEqual(sent * 1.1 + 4);
  expect(candidate.latency.counts.every((n) => n >= 0)).toBe(true);
  expect(histogramTotal(candidate.latency)).toBeLessThanOrEqual(sent * 1.1 + 4);
  expect(candidate.errors).toBe(0);
}, 30_000);

test('Prometheus down: the read throws (retryable), naming Prometheus', async () => {
  await prometheus.stop();
  const end = Date.now();
  const err = await read('gateway', { startMs: end - 3_000, endMs: end }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).nonRetryable).toBe(false);
  expect((err as Error).message).toMatch(new RegExp(`Prometheus at ${prometheus.url} could not be read for metrics\\.queries\\.\\w+ \\(preset "gateway"\\): .*ECONNREFUSED`));
});
