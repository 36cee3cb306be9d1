/**
 * The adapters the worker uses by default, against the real gateway and a real webhook
 * receiver over HTTP on 127.0.0.1.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { gatewayMetricSource } from '../../src/activities/metric-sources/gateway';
import { gatewayTrafficRouter } from '../../src/activities/routers/gateway';
import type { MetricQuery, MetricSource, RolloutEvent } from '../../src/activities/types';
import type { MetricsSample } from '../../src/analysis/metrics';
import { webhookNotifier } from '../../src/activities/webhook-notifier';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { startModelServer } from '../../src/demo/model-server';
import { listen, type Listening } from '../helpers/http';

const TOKEN = 'admin-secret';
let gateway: Gateway;
let dataDir: string;
let model: Awaited<ReturnType<typeof startModelServer>>;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'model-canary-adapters-'));
  gateway = await startGateway({ port: 0, dataDir, adminToken: TOKEN, logger: pino({ level: 'silent' }) });
  model = await startModelServer({ version: 'v1', port: 0, latencyMs: 1 });
});

afterAll(async () => {
  await gateway?.close();
  await model?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const versions = (candidateWeight: number) => [
  { version: 'v1', url: model.url, weight: 100 - candidateWeight },
  { version: 'v2', url: model.url, weight: candidateWeight },
];

const change = { rolloutId: 'rollout-adapters' };
const window = { startMs: 0, endMs: 0 };

/** The gateway's counters are cumulative: the workflow diffs two readings. */
async function cumulative(source: MetricSource, query: MetricQuery): Promise<MetricsSample> {
  const reading = await source.read(query);
  expect(reading.kind).toBe('cumulative');
  return reading.sample;
}

describe('gateway traffic router', () => {
  test("sets the route with names, urls, weights, salted by the rollout's id", async () => {
    const router = gatewayTrafficRouter({ url: gateway.url, adminToken: TOKEN });
    await router.setWeights({ target: 'adapters', versions: versions(25) }, { rolloutId: 'rollout-adapters' });
    const res = await fetch(`${gateway.url}/admin/routes`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as { routes: Record<string, unknown> };
    expect(body.routes.adapters).toEqual({
      salt: 'rollout-adapters',
      versions: [
        { name: 'v1', url: model.url, weight: 75 },
        { name: 'v2', url: model.url, weight: 25 },
      ],
    });
  });

  test('a rejected route (4xx) fails for good: retrying cannot fix it', async () => {
    const router = gatewayTrafficRouter({ url: gateway.url, adminToken: TOKEN });
    const err = await router.setWeights({ target: 'adapters', versions: versions(150) }, change).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toMatch(/answered 400/);
  });

  test('a wrong token fails for good too', async () => {
    const router = gatewayTrafficRouter({ url: gateway.url, adminToken: 'wrong' });
    const err = await router.setWeights({ target: 'adapters', versions: versions(10) }, change).catch((e: unknown) => e);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toMatch(/answered 401/);
  });

  test('an unreachable gateway is a retryable failure', async () => {
    const router = gatewayTrafficRouter({ url: 'http://127.0.0.1:1' });
    const err = await router.setWeights({ target: 'adapters', versions: versions(10) }, change).catch((e: unknown) => e);
    // a plain connection error (not a non-retryable ApplicationFailure): Temporal retries it
    expect(err).toBeDefined();
    expect(err instanceof ApplicationFailure).toBe(false);
    expect(String((err as { code?: string }).code ?? err)).toMatch(/ECONNREFUSED/);
  });
});

describe('gateway traffic router: reading a route back', () => {
  test('reads the route a target serves, salt included (router state), as setWeights wrote it', async () => {
    const router = gatewayTrafficRouter({ url: gateway.url, adminToken: TOKEN });
    await router.setWeights({ target: 'readable', versions: versions(40) }, { rolloutId: 'salt-of-its-own' });
    const read = await router.readRoute('readable');
    expect(read).toEqual({ target: 'readable', routerState: { salt: 'salt-of-its-own' }, versions: versions(40) });
    // Restoring a captured route keeps its salt, whoever restores it.
    await router.setWeights({ ...read!, versions: versions(10) }, { rolloutId: 'another-rollout' });
    expect((await router.readRoute('readable'))?.routerState).toEqual({ salt: 'salt-of-its-own' });
  });

  test('a target without a route reads as undefined', async () => {
    const router = gatewayTrafficRouter({ url: gateway.url, adminToken: TOKEN });
    expect(await router.readRoute('never-routed')).toBeUndefined();
  });

  test('a 404 that is not the gateway saying "no route" is an error, never "no route"', async () => {
    // Something else at the URL (here: the model server) answers 404 for /admin/routes/...
    const router = gatewayTrafficRouter({ url: model.url });
    const err = await router.readRoute('never-routed').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).message).toMatch(/answered 404/);
  });

  test('a wrong token fails for good; an unreachable gateway is retryable', async () => {
    const wrong = await gatewayTrafficRouter({ url: gateway.url, adminToken: 'wrong' }).readRoute('readable').catch((e: unknown) => e);
    expect((wrong as ApplicationFailure).nonRetryable).toBe(true);
    expect((wrong as ApplicationFailure).message).toMatch(/answered 401/);
    const down = await gatewayTrafficRouter({ url: 'http://127.0.0.1:1' }).readRoute('readable').catch((e: unknown) => e);
    expect(down instanceof ApplicationFailure).toBe(false);
    expect(String((down as { code?: string }).code ?? down)).toMatch(/ECONNREFUSED/);
  });
});

describe('gateway metric source', () => {
  test('reads cumulative per-version counters, growing with traffic', async () => {
    const router = gatewayTrafficRouter({ url: gateway.url, adminToken: TOKEN });
    await router.setWeights({ target: 'metered', versions: versions(50) }, { rolloutId: 's' });
    const source = gatewayMetricSource({ url: gateway.url, adminToken: TOKEN });
    const query = { target: 'metered', baseline: { version: 'v1', url: model.url }, candidate: { version: 'v2', url: model.url }, window };
    const before = await cumulative(source, query);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gateway.url}/metered/v1/models`, { headers: { 'x-canary-key': `user-${i}` } });
      await res.arrayBuffer();
    }
    const after = await cumulative(source, query);
    expect(after.baseline.requests + after.candidate.requests - before.baseline.requests - before.candidate.requests).toBe(20);
    expect(after.candidate.requests).toBeGreaterThan(0);
    expect(after.baseline.latency.counts.reduce((a, b) => a + b, 0)).toBe(after.baseline.requests);
  });

  test('a version the gateway has not seen yet reads as zeros', async () => {
    const source = gatewayMetricSource({ url: gateway.url, adminToken: TOKEN });
    const sample = await cumulative(source, { target: 'metered', baseline: { version: 'v1', url: model.url }, candidate: { version: 'v9', url: model.url }, window });
    expect(sample.candidate).toMatchObject({ requests: 0, errors: 0 });
  });
});

describe('webhook notifier', () => {
  let receiver: Listening;
  const received: Array<{ headers: IncomingMessage['headers']; body: RolloutEvent }> = [];

  beforeAll(async () => {
    receiver = await listen((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        if (req.url === '/down') {
          res.statusCode = 503;
          res.end('busy');
          return;
        }
        received.push({ headers: req.headers, body: JSON.parse(text) as RolloutEvent });
        res.statusCode = 204;
        res.end();
      });
    });
  });

  afterAll(() => receiver.close());

  const event: RolloutEvent = { kind: 'phase', rolloutId: 'rollout-chat', target: 'chat', phase: 'rolled_back', at: '2026-11-30T00:00:00.000Z', message: 'rolled back' };

  test('POSTs the event as JSON', async () => {
    await webhookNotifier().notify(`${receiver.url}/hook`, event);
    expect(received).toHaveLength(1);
    expect(received[0]!.headers['content-type']).toBe('application/json');
    expect(received[0]!.body).toEqual(event);
  });

  test('a receiver that is down is a retryable failure', async () => {
    const err = await webhookNotifier().notify(`${receiver.url}/down`, event).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(false);
  });
});
