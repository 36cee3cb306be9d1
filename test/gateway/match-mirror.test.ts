/**
 * Header match and mirroring through the gateway over real HTTP, and the gateway adapters
 * (router, metric source) carrying them: the client only ever gets the baseline's answer, pairs
 * are compared into the target's ShadowSample, a slow candidate fills the mirror slots (copies
 * dropped, the live path unaffected), and an evaluator judges a sample of the pairs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { gatewayMetricSource } from '../../src/activities/metric-sources/gateway';
import { gatewayTrafficRouter } from '../../src/activities/routers/gateway';
import type { ShadowSample } from '../../src/analysis/metrics';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { adminClient, listen, runConcurrently, type TestServer } from './helpers';
import { chatBody, llmServer, type LlmServer } from './llm-helpers';

let dataDir: string;
const gateways: Gateway[] = [];
const servers: TestServer[] = [];
let gateway: Gateway;
let admin: ReturnType<typeof adminClient>;
let fast: LlmServer;
let slow: LlmServer;

async function newGateway(extra: { mirrorMaxInFlight?: number } = {}): Promise<Gateway> {
  const g = await startGateway({ port: 0, dataDir: await mkdtemp(path.join(dataDir, 'g-')), logger: pino({ level: 'silent' }), ...extra });
  gateways.push(g);
  return g;
}

async function server<T extends TestServer>(s: Promise<T>): Promise<T> {
  const started = await s;
  servers.push(started);
  return started;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-mirror-'));
  fast = await server(llmServer({ version: 'v1', ttftMs: 20, gapMs: 10, pieces: ['baseline', ' says', ' hi'] }));
  // About 4× slower than the baseline, whole and to its first token: clear of scheduling noise on a busy machine.
  slow = await server(llmServer({ version: 'v2', ttftMs: 90, gapMs: 40, pieces: ['candidate', ' says', ' hi'] }));
  gateway = await newGateway();
  admin = adminClient(gateway.url);
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close(100)));
  await Promise.all(servers.map((s) => s.close()));
  await rm(dataDir, { recursive: true, force: true });
});

async function post(g: Gateway, pathname: string, body: string, headers: Record<string, string> = {}) {
  const started = performance.now();
  const res = await request(`${g.url}${pathname}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.body.text();
  return { status: res.statusCode, version: res.headers['x-canary-version'], text, ms: performance.now() - started };
}

async function shadowOf(g: Gateway, target: string): Promise<ShadowSample | undefined> {
  const res = await adminClient(g.url).get(`/admin/metrics/${target}`);
  return res.body.shadow;
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const versions = (baseline: number) => [
  { name: 'v1', url: fast.url, weight: baseline },
  { name: 'v2', url: slow.url, weight: 100 - baseline },
];

describe('header match', () => {
  it('splits only requests whose header has one of the values; the others go to `others`', async () => {
    const put = await admin.put('beta', { versions: versions(0), match: { header: 'X-Tenant', values: ['beta', 'internal'], others: 'v1' } });
    expect(put.status).toBe(200);
    expect(put.body.match).toEqual({ header: 'x-tenant', values: ['beta', 'internal'], others: 'v1' });
    expect((await admin.get('/admin/routes/beta')).body.match).toEqual({ header: 'x-tenant', values: ['beta', 'internal'], others: 'v1' });
    for (const headers of [{}, { 'x-tenant': 'other' }, { 'x-tenant': 'BETA' }] as Array<Record<string, string>>) {
      expect((await post(gateway, '/beta/v1/embeddings', '{}', headers)).version).toBe('v1');
    }
    for (const value of ['beta', 'internal']) expect((await post(gateway, '/beta/v1/embeddings', '{}', { 'X-Tenant': value })).version).toBe('v2');
  });

  it('refuses a match that is not well-formed, naming the field', async () => {
    const issues = async (match: unknown) => (await admin.put('bad', { versions: versions(100), match })).body.error.issues;
    expect(await issues({ header: 'x-tenant', values: ['a'], others: 'v9' })).toEqual([
      { path: 'match.others', message: 'match.others "v9" must name one of the route\'s versions ("v1", "v2")' },
    ]);
    expect(await issues({ header: 'x tenant', values: ['a'], others: 'v1' })).toEqual([expect.objectContaining({ path: 'match.header' })]);
    expect(await issues({ header: 'x-tenant', values: [], others: 'v1' })).toEqual([{ path: 'match.values', message: 'match.values must list at least one value' }]);
    expect(await issues({ header: 'x-tenant', values: Array.from({ length: 21 }, (_, i) => `v${i}`), others: 'v1' })).toEqual([
      { path: 'match.values', message: 'match.values may list at most 20 values' },
    ]);
    expect(await issues({ header: 'x-tenant', values: ['a'], others: 'v1', extra: 1 })).toEqual([{ path: 'match', message: 'unknown field(s): "extra"' }]);
  });
});

describe('mirror', () => {
  it('refuses a mirror that is not well-formed, naming the field', async () => {
    const issues = async (mirror: unknown) => (await admin.put('bad', { versions: versions(100), mirror })).body.error.issues;
    expect(await issues({ from: 'v1', to: 'v3', percent: 10 })).toEqual([{ path: 'mirror.to', message: 'mirror.to "v3" must name one of the route\'s versions ("v1", "v2")' }]);
    expect(await issues({ from: 'v1', to: 'v1', percent: 10 })).toEqual([{ path: 'mirror.to', message: 'mirror.to must be another version than mirror.from' }]);
    expect(await issues({ from: 'v1', to: 'v2', percent: 0 })).toEqual([{ path: 'mirror.percent', message: 'mirror.percent must be more than 0' }]);
    expect(await issues({ from: 'v1', to: 'v2', percent: 5, evaluator: { url: 'ftp://x', sample: 2 } })).toEqual([
      { path: 'mirror.evaluator.url', message: 'mirror.evaluator.url must be an absolute http(s) URL' },
      { path: 'mirror.evaluator.sample', message: 'mirror.evaluator.sample must be at most 1' },
    ]);
  });

  it("the client gets only the baseline's answer; a candidate 3× slower is counted worse in the pairs, and not in its live stats", async () => {
    const put = await admin.put('shadow', { versions: versions(100), mirror: { from: 'v1', to: 'v2', percent: 100 } });
    expect(put.body.mirror).toEqual({ from: 'v1', to: 'v2', percent: 100 });
    const before = slow.received.length;
    const body = chatBody({ stream: true });
    for (let i = 0; i < 5; i++) {
      const r = await post(gateway, '/shadow/v1/chat/completions?trace=1', body, { 'x-request-id': `r${i}` });
      expect(r.version).toBe('v1');
      expect(r.text).toContain('baseline');
      expect(r.text).not.toContain('candidate');
    }
    const shadow = await until(() => shadowOf(gateway, 'shadow'), (s) => (s?.pairs ?? 0) >= 5);
    expect(shadow).toMatchObject({ mirrored: 5, dropped: 0, pairs: 5, worse: { latency: 5, timeToFirstToken: 5 }, evaluated: 0 });
    expect(shadow!.better).toEqual({});
    // The copy is the same request: method, path, headers, body.
    const copies = slow.received.slice(before);
    expect(copies).toHaveLength(5);
    expect(copies[0]).toMatchObject({ method: 'POST', url: '/v1/chat/completions?trace=1', body, headers: expect.objectContaining({ 'x-request-id': 'r0' }) });
    const metrics = (await admin.get('/admin/metrics/shadow')).body;
    expect(metrics.versions.v2.requests).toBe(0);
    expect(metrics.versions.v1.requests).toBe(5);
  });

  it('a candidate that fails is worse on errors; non-LLM traffic is mirrored too', async () => {
    const failing = await server(listen((req, res) => req.resume().on('end', () => res.writeHead(503).end('down'))));
    await admin.put('failing', { versions: [{ name: 'v1', url: fast.url, weight: 100 }, { name: 'v2', url: failing.url, weight: 0 }], mirror: { from: 'v1', to: 'v2', percent: 100 } });
    for (let i = 0; i < 3; i++) expect((await post(gateway, '/failing/v1/embeddings', '{"input": "x"}')).status).toBe(200);
    const shadow = await until(() => shadowOf(gateway, 'failing'), (s) => (s?.pairs ?? 0) >= 3);
    expect(shadow).toMatchObject({ mirrored: 3, pairs: 3, worse: { errors: 3 }, better: {} });
  });

  it('a slow candidate fills the mirror slots: copies are dropped and counted, live answers are as fast as ever', async () => {
    const hanging = await server(llmServer({ version: 'v2', ttftMs: 2_500, gapMs: 0 }));
    const small = await newGateway({ mirrorMaxInFlight: 2 });
    await adminClient(small.url).put('hang', { versions: [{ name: 'v1', url: fast.url, weight: 100 }, { name: 'v2', url: hanging.url, weight: 0 }], mirror: { from: 'v1', to: 'v2', percent: 100 } });
    const latencies: number[] = [];
    await runConcurrently(12, 3, async () => {
      const r = await post(small, '/hang/v1/chat/completions', chatBody());
      expect(r.version).toBe('v1');
      latencies.push(r.ms);
    });
    // The baseline answers in ~20 ms; the candidate takes 2.5 s: nothing of that is in the live path.
    expect(Math.max(...latencies)).toBeLessThan(500);
    const shadow = await shadowOf(small, 'hang');
    expect(shadow).toMatchObject({ mirrored: 2, dropped: 10, pairs: 0 });
    const done = await until(() => shadowOf(small, 'hang'), (s) => (s?.pairs ?? 0) >= 2, 5_000);
    expect(done).toMatchObject({ mirrored: 2, dropped: 10, pairs: 2 });
  });

  it("an evaluator judges a sample of the pairs: prompt, both answers' text; verdicts and scores counted, failures apart", async () => {
    const posted: Array<{ prompt: unknown; baseline: string; candidate: string }> = [];
    const answers = [{ verdict: 'worse' }, { score: 2 }, { verdict: 'same' }, { score: -1 }, { nonsense: true }];
    const evaluator = await server(
      listen((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          posted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answers[(posted.length - 1) % answers.length]));
        });
      }),
    );
    await admin.put('judged', { versions: versions(100), mirror: { from: 'v1', to: 'v2', percent: 100, evaluator: { url: `${evaluator.url}/judge`, sample: 1 } } });
    const body = chatBody({ stream: true });
    for (let i = 0; i < 5; i++) await post(gateway, '/judged/v1/chat/completions', body);
    const shadow = await until(() => shadowOf(gateway, 'judged'), (s) => (s?.evaluated ?? 0) >= 5 && posted.length >= 5 && s!.evaluatorErrors + (s!.worse.verdict ?? 0) + (s!.better.verdict ?? 0) >= 4);
    expect(shadow).toMatchObject({ pairs: 5, evaluated: 5, evaluatorErrors: 1, worse: { verdict: 2 }, better: { verdict: 1 } });
    expect(posted[0]).toEqual({ prompt: JSON.parse(body), baseline: 'baseline says hi', candidate: 'candidate says hi' });
  });
});

describe('the gateway adapters', () => {
  it('the router sends match and mirror, verifies them, and reads them back; the metric source passes the shadow through', async () => {
    const router = gatewayTrafficRouter({ url: gateway.url });
    const route = {
      target: 'adapted',
      versions: [
        { version: 'v1', url: fast.url, weight: 100 },
        { version: 'v2', url: slow.url, weight: 0 },
      ],
      match: { header: 'x-cohort', values: ['a'], others: 'v1' },
      mirror: { from: 'v1', to: 'v2', percent: 50, evaluator: { url: 'http://127.0.0.1:1/judge', sample: 0.1 } },
    };
    await router.setWeights(route, { rolloutId: 'r-1' });
    expect(await router.readRoute('adapted')).toEqual({ ...route, routerState: { salt: 'r-1' } });
    // A route without them clears them.
    await router.setWeights({ target: 'adapted', versions: route.versions }, { rolloutId: 'r-1' });
    expect(await router.readRoute('adapted')).toEqual({ target: 'adapted', versions: route.versions, routerState: { salt: 'r-1' } });

    const source = gatewayMetricSource({ url: gateway.url });
    const query = { target: 'shadow', baseline: { version: 'v1' }, candidate: { version: 'v2' }, window: { startMs: 0, endMs: 1 } };
    const reading = await source.read(query);
    expect(reading.sample.shadow).toMatchObject({ pairs: 5, worse: { latency: 5 } });
    expect(reading.sample.baseline.llm).toMatchObject({ requests: 5 });
    expect(reading.sample.baseline.timeToFirstToken).toBeDefined();
    expect((await source.read({ ...query, target: 'beta' })).sample.shadow).toBeUndefined();
  });
});
