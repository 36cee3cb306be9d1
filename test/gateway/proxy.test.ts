/**
 * The gateway in-process, against real upstream servers on 127.0.0.1: weights, stickiness,
 * streaming, error accounting, the admin API and /metrics.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import { LATENCY_BUCKETS_MS, histogramTotal, type VersionMetrics } from '../../src/analysis/metrics';
import { bucketOf } from '../../src/gateway/bucketing';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { Pool, adminClient, closedPort, echoServer, listen, runConcurrently, type TestServer } from './helpers';

const TOKEN = 'test-token';
const TIMEOUT_MS = 300;

let dataDir: string;
let gateway: Gateway;
let v1: TestServer;
let v2: TestServer;
let v3: TestServer;
let admin: ReturnType<typeof adminClient>;
let client: Pool;
const servers: TestServer[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-test-'));
  [v1, v2, v3] = await Promise.all([echoServer('v1'), echoServer('v2'), echoServer('v3')]);
  servers.push(v1, v2, v3);
  gateway = await startGateway({ port: 0, dataDir, adminToken: TOKEN, upstreamTimeoutMs: TIMEOUT_MS, logger: pino({ level: 'silent' }) });
  admin = adminClient(gateway.url, TOKEN);
  client = new Pool(gateway.url, { connections: 50 });
});

afterAll(async () => {
  await client?.close();
  await gateway?.close(100);
  await Promise.all(servers.map((s) => s.close()));
  await rm(dataDir, { recursive: true, force: true });
});

async function get(pathname: string, headers: Record<string, string> = {}) {
  const res = await client.request({ path: pathname, method: 'GET', headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

function route(weights: [number, number], salt?: string) {
  return {
    versions: [
      { name: 'v1', url: v1.url, weight: weights[0] },
      { name: 'v2', url: v2.url, weight: weights[1] },
    ],
    ...(salt ? { salt } : {}),
  };
}

async function metricsOf(target: string): Promise<{ target: string; versions: Record<string, VersionMetrics> }> {
  const res = await admin.get(`/admin/metrics/${target}`);
  expect(res.status).toBe(200);
  return res.body;
}

describe('routing', () => {
  it('splits requests without a key by the weights (±3% over 5,000)', async () => {
    expect((await admin.put('split', route([70, 30]))).status).toBe(200);
    const counts: Record<string, number> = {};
    await runConcurrently(5000, 50, async () => {
      const res = await get('/split/anything');
      expect(res.status).toBe(200);
      const version = res.headers['x-canary-version'] as string;
      counts[version] = (counts[version] ?? 0) + 1;
    });
    expect(counts.v1! + counts.v2!).toBe(5000);
    expect(Math.abs(counts.v2! / 5000 - 0.3)).toBeLessThan(0.03);
    const metrics = await metricsOf('split');
    expect(metrics.versions.v1!.requests).toBe(counts.v1);
    expect(metrics.versions.v2!.requests).toBe(counts.v2);
  });

  it('is sticky per key, by the published bucket rule, and monotonic as the weight rises', async () => {
    expect((await admin.put('sticky', route([80, 20], 'rollout-42'))).status).toBe(200);
    const keys = Array.from({ length: 300 }, (_, i) => `user-${i}`);
    const seen = new Map<string, string>();
    await runConcurrently(keys.length * 3, 30, async (i) => {
      const key = keys[i % keys.length]!;
      const version = (await get('/sticky/x', { 'x-canary-key': key })).headers['x-canary-version'] as string;
      const before = seen.get(key);
      if (before !== undefined) expect(version).toBe(before);
      seen.set(key, version);
    });
    for (const key of keys) expect(seen.get(key)).toBe(bucketOf('rollout-42', key) < 2000 ? 'v2' : 'v1');

    // Raise the candidate to 50% without restating the salt: the candidate's keys stay put.
    expect((await admin.put('sticky', route([50, 50]))).body.salt).toBe('rollout-42');
    for (const key of keys) {
      const version = (await get('/sticky/x', { 'x-canary-key': key })).headers['x-canary-version'];
      if (seen.get(key) === 'v2') expect(version).toBe('v2');
      expect(version).toBe(bucketOf('rollout-42', key) < 5000 ? 'v2' : 'v1');
    }
  });

  it('forwards method, path, query, headers and a streamed request body; strips hop-by-hop headers', async () => {
    await admin.put('echo', { versions: [{ name: 'v3', url: `${v3.url}/base/`, weight: 100 }] });
    const size = 3 * 1024 * 1024;
    const body = Readable.from(
      (function* () {
        for (let sent = 0; sent < size; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, 97);
      })(),
    );
    const res = await request(`${gateway.url}/echo/v1/embed?x=1&y=a%20b`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/octet-stream', 'x-custom': 'kept', 'x-canary-key': 'k1', 'proxy-authorization': 'secret' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-canary-version']).toBe('v3');
    expect(res.headers['x-upstream']).toBe('v3');
    const echoed = (await res.body.json()) as { method: string; url: string; bytes: number; headers: Record<string, string> };
    expect(echoed).toMatchObject({ method: 'POST', url: '/base/v1/embed?x=1&y=a%20b', bytes: size });
    expect(echoed.headers['x-custom']).toBe('kept');
    expect(echoed.headers['proxy-authorization']).toBeUndefined();
    expect(echoed.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echoed.headers.host).toBe(`127.0.0.1:${v3.port}`);

    const bare = await get('/echo');
    expect(JSON.parse(bare.text).url).toBe('/base/');
    const query = await get('/echo?q=1');
    expect(JSON.parse(query.text).url).toBe('/base/?q=1');
  });

  it('answers an unknown target with a 404 JSON error', async () => {
    const res = await get('/nope/v1/chat/completions');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toEqual({ error: { code: 'unknown_target', message: expect.stringContaining('nope') } });
  });
});

describe('streaming', () => {
  it('passes the first SSE chunk through before the upstream has finished', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let upstreamFinished = false;
    const sse = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: {"token":"first"}\n\n');
      void released.then(() => {
        res.write('data: {"token":"second"}\n\n');
        res.end('data: [DONE]\n\n');
        upstreamFinished = true;
      });
    });
    servers.push(sse);
    await admin.put('stream', { versions: [{ name: 's1', url: sse.url, weight: 100 }] });

    const res = await request(`${gateway.url}/stream/v1/chat/completions`, { method: 'POST', body: '{"stream":true}' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(res.headers['x-canary-version']).toBe('s1');
    const chunks = res.body[Symbol.asyncIterator]();
    const first = await chunks.next();
    expect(Buffer.from(first.value as Buffer).toString()).toBe('data: {"token":"first"}\n\n');
    expect(upstreamFinished).toBe(false); // the upstream is still holding the stream open
    release();
    let rest = '';
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) rest += Buffer.from(next.value as Buffer).toString();
    expect(rest).toBe('data: {"token":"second"}\n\ndata: [DONE]\n\n');
    expect(upstreamFinished).toBe(true);

    const metrics = await metricsOf('stream');
    expect(metrics.versions.s1!.requests).toBe(1);
    expect(histogramTotal(metrics.versions.s1!.timeToFirstByte!)).toBe(1);
  });
});

describe('errors', () => {
  it('answers 502 when the upstream is down, and counts it as an error of that version', async () => {
    const port = await closedPort();
    await admin.put('down', {
      versions: [
        { name: 'live', url: v1.url, weight: 0 },
        { name: 'dead', url: `http://127.0.0.1:${port}`, weight: 100 },
      ],
    });
    const res = await get('/down/v1/chat/completions');
    expect(res.status).toBe(502);
    expect(res.headers['x-canary-version']).toBe('dead');
    expect(JSON.parse(res.text).error.code).toBe('upstream_unavailable');
    const metrics = await metricsOf('down');
    expect(metrics.versions.dead).toMatchObject({ requests: 1, errors: 1 });
    expect(metrics.versions.live).toMatchObject({ requests: 0, errors: 0 });
  });

  it('answers 504 when the upstream is slower than the timeout, and counts it as an error', async () => {
    const slow = await listen((_req, res) => {
      const timer = setTimeout(() => res.end('late'), 10_000);
      res.on('close', () => clearTimeout(timer));
    });
    servers.push(slow);
    await admin.put('slow', { versions: [{ name: 'slow1', url: slow.url, weight: 100 }] });
    const started = Date.now();
    const res = await get('/slow/x');
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(JSON.parse(res.text).error.code).toBe('upstream_timeout');
    const metrics = await metricsOf('slow');
    expect(metrics.versions.slow1).toMatchObject({ requests: 1, errors: 1 });
    expect(histogramTotal(metrics.versions.slow1!.latency)).toBe(1);
  });

  it('passes an upstream 5xx through and counts it as an error; 4xx is not an error', async () => {
    const flaky = await listen((req, res) => {
      res.writeHead(req.url === '/bad' ? 503 : 404, { 'content-type': 'text/plain' });
      res.end('no');
    });
    servers.push(flaky);
    await admin.put('flaky', { versions: [{ name: 'f1', url: flaky.url, weight: 100 }] });
    expect((await get('/flaky/bad')).status).toBe(503);
    expect((await get('/flaky/missing')).status).toBe(404);
    expect((await metricsOf('flaky')).versions.f1).toMatchObject({ requests: 2, errors: 1 });
  });
});

describe('admin API', () => {
  it('requires the bearer token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: TOKEN }] as Array<Record<string, string>>) {
      const res = await fetch(`${gateway.url}/admin/routes`, { headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe('unauthorized');
    }
    const put = await fetch(`${gateway.url}/admin/routes/chat`, { method: 'PUT', body: JSON.stringify(route([100, 0])) });
    expect(put.status).toBe(401);
    expect((await fetch(`${gateway.url}/admin/metrics/split`)).status).toBe(401);
    expect((await admin.get('/admin/routes')).status).toBe(200);
  });

  it('lists, replaces and deletes routes', async () => {
    const put = await admin.put('crud', route([90, 10]));
    expect(put).toEqual({ status: 200, body: { ...route([90, 10]), salt: 'crud' } });
    const list = await admin.get('/admin/routes');
    expect(list.body.routes.crud).toEqual({ ...route([90, 10]), salt: 'crud' });
    expect((await admin.del('crud')).status).toBe(204);
    expect((await admin.del('crud')).status).toBe(404);
    expect((await get('/crud/x')).status).toBe(404);
    expect((await admin.get('/admin/routes')).body.routes.crud).toBeUndefined();
  });

  it('rejects an invalid route with 400 naming the field', async () => {
    const res = await admin.put('chat', { versions: [{ name: 'v1', url: v1.url, weight: 90 }, { name: 'v2', url: v2.url, weight: 110 }] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_route');
    expect(res.body.error.issues).toContainEqual({ path: 'versions.1.weight', message: 'weight must be at most 100' });
    expect((await admin.put('admin', route([50, 50]))).body.error.issues).toEqual([{ path: 'target', message: 'target "admin" is reserved by the gateway (admin, metrics, healthz)' }]);
    const bad = await fetch(`${gateway.url}/admin/routes/chat`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: '{oops' });
    expect(bad.status).toBe(400);
  });

  it('reports metrics in the VersionMetrics shape, keeping versions that left the route', async () => {
    await admin.put('shape', route([50, 50]));
    await runConcurrently(40, 8, async () => void (await get('/shape/x')));
    await admin.put('shape', { versions: [{ name: 'v1', url: v1.url, weight: 100 }] });
    const metrics = await metricsOf('shape');
    expect(Object.keys(metrics)).toEqual(['target', 'versions']);
    expect(metrics.target).toBe('shape');
    expect(Object.keys(metrics.versions).sort()).toEqual(['v1', 'v2']);
    let total = 0;
    for (const m of Object.values(metrics.versions)) {
      expect(Object.keys(m).sort()).toEqual(['countingSince', 'errors', 'interTokenLatency', 'latency', 'llm', 'requests', 'timeToFirstByte', 'timeToFirstToken']);
      expect(m.llm!.requests).toBe(0); // GETs are not LLM requests: nothing metered
      expect(Number.isNaN(Date.parse(m.countingSince!))).toBe(false);
      expect(m.latency.boundsMs).toEqual(LATENCY_BUCKETS_MS);
      expect(m.latency.counts).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
      expect(histogramTotal(m.latency)).toBe(m.requests);
      expect(histogramTotal(m.timeToFirstByte!)).toBe(m.requests);
      total += m.requests;
    }
    expect(total).toBe(40);
    expect((await admin.get('/admin/metrics/unknown-target')).status).toBe(404);
  });
});

describe('/metrics and /healthz', () => {
  it('exposes Prometheus series by target, version and code class', async () => {
    const res = await fetch(`${gateway.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/gateway_requests_total\{target="split",version="v1",code="2xx"\} \d+/);
    expect(text).toMatch(/gateway_requests_total\{target="down",version="dead",code="5xx"\} 1/);
    expect(text).toMatch(/gateway_request_errors_total\{target="slow",version="slow1"\} 1/);
    expect(text).toContain('gateway_request_duration_seconds_bucket{le="0.001",target="split",version="v1"}');
    // One bucket per edge plus +Inf, each `le` the edge in seconds as a short exact decimal.
    for (const [histogram, series] of [
      ['gateway_request_duration_seconds', 'target="split",version="v1"'],
      ['gateway_time_to_first_byte_seconds', 'target="stream",version="s1"'],
    ] as const) {
      const les = [...text.matchAll(new RegExp(`^${histogram}_bucket\\{le="([^"]+)",${series}\\} \\d+$`, 'gm'))].map((m) => m[1]!);
      expect(les).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
      expect(les.at(-1)).toBe('+Inf');
      les.slice(0, -1).forEach((le, i) => {
        expect(le).toMatch(/^\d+(\.\d{1,6})?$/);
        expect(Math.abs(Number(le) * 1000 - LATENCY_BUCKETS_MS[i]!)).toBeLessThan(1e-9);
      });
    }
    expect(text).toContain('le="0.00125"');
    expect(text).toContain('le="17.5"');
    expect(text).toContain('gateway_time_to_first_byte_seconds_count{target="stream",version="s1"} 1');
    expect(text).toContain('gateway_in_flight_requests{target="split",version="v2"} 0');
    expect(text).not.toContain('user-'); // never user keys
  });

  it('answers /healthz without a token', async () => {
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
  });
});
