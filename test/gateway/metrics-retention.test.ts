/**
 * Per-version metrics are dropped once a version has left its route (issue 8, item 3): 500 routes
 * added and deleted leave `/metrics` and the stats as they were; a version that left is still
 * readable for the retention period, then gone; if it comes back it counts from zero under a new
 * `countingSince`, which the control plane's reset detection (`intervalBetween`) recognizes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { intervalBetween, type VersionMetrics } from '../../src/analysis/metrics';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/server';
import { eventually } from '../helpers/http';
import { adminClient, echoServer, listen, runConcurrently, type TestServer } from './helpers';

jest.setTimeout(120_000);

let v1: TestServer;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  v1 = await echoServer('v1');
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await v1?.close();
});

async function gatewayWith(options: Partial<GatewayOptions>): Promise<Gateway> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-retention-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const gateway = await startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }), ...options });
  cleanups.push(() => gateway.close(100));
  return gateway;
}

const scrape = async (gateway: Gateway) => (await fetch(`${gateway.url}/metrics`)).text();

function twoVersions(i: number) {
  return {
    versions: [
      { name: `base-${i}`, url: v1.url, weight: 50 },
      { name: `cand-${i}`, url: v1.url, weight: 50 },
    ],
  };
}

it('500 routes added, used and deleted: /metrics returns to its size and the stats to their number', async () => {
  const gateway = await gatewayWith({ metricsRetentionMs: 0 });
  const admin = adminClient(gateway.url);
  expect((await admin.put('keep', twoVersions(0))).status).toBe(200);
  expect((await fetch(`${gateway.url}/keep/x`)).status).toBe(200);
  const initial = (await scrape(gateway)).length;
  const initialStats = gateway.metrics.size;

  const targets = Array.from({ length: 500 }, (_, i) => `t-${i}`);
  await runConcurrently(targets.length, 10, async (i) => {
    expect((await admin.put(targets[i]!, twoVersions(i))).status).toBe(200);
    if (i % 10 === 0) expect((await fetch(`${gateway.url}/${targets[i]}/x`)).status).toBe(200);
  });
  const grown = (await scrape(gateway)).length;
  expect(grown).toBeGreaterThan(initial * 20);
  expect(gateway.metrics.size).toBe(initialStats + 1000);

  await runConcurrently(targets.length, 10, async (i) => {
    expect((await admin.del(targets[i]!)).status).toBe(204);
  });
  const after = (await scrape(gateway)).length;
  expect(after).toBeLessThan(initial * 1.1);
  expect(gateway.metrics.size).toBe(initialStats);
  expect((await admin.get('/admin/metrics/t-0')).status).toBe(404);
  // The route that stayed still counts.
  expect((await admin.get('/admin/metrics/keep')).body.versions).toHaveProperty('base-0');
});

it('a version that left its route stays readable for the retention, then is dropped; back, it counts from a new countingSince', async () => {
  const RETENTION_MS = 400;
  const gateway = await gatewayWith({ metricsRetentionMs: RETENTION_MS });
  const admin = adminClient(gateway.url);
  const both = { versions: [{ name: 'v1', url: v1.url, weight: 0 }, { name: 'v2', url: v1.url, weight: 100 }] };
  const onlyV1 = { versions: [{ name: 'v1', url: v1.url, weight: 100 }] };
  const read = async (): Promise<Record<string, VersionMetrics>> => (await admin.get('/admin/metrics/ret')).body.versions;

  expect((await admin.put('ret', both)).status).toBe(200);
  for (let i = 0; i < 7; i++) expect((await fetch(`${gateway.url}/ret/x`)).status).toBe(200);
  const before = (await read()).v2!;
  expect(before.requests).toBe(7);

  // The candidate leaves: still readable at first (the control plane's last reading)...
  expect((await admin.put('ret', onlyV1)).status).toBe(200);
  expect((await read()).v2).toMatchObject({ requests: 7, countingSince: before.countingSince });
  // ...then gone, from the snapshot and from /metrics.
  await eventually(async () => ((await read()).v2 === undefined ? true : undefined), 10_000, 'v2 dropped');
  expect(await scrape(gateway)).not.toContain('version="v2"');
  expect(gateway.metrics.size).toBe(1);

  // Back in the route: from zero, under a new epoch; the reader sees a reset, not a negative delta.
  expect((await admin.put('ret', both)).status).toBe(200);
  for (let i = 0; i < 3; i++) expect((await fetch(`${gateway.url}/ret/x`)).status).toBe(200);
  const back = (await read()).v2!;
  expect(back.requests).toBe(3);
  expect(back.countingSince).not.toBe(before.countingSince);
  expect(Date.parse(back.countingSince!)).toBeGreaterThan(Date.parse(before.countingSince!));
  expect(intervalBetween(before, back).requests).toBe(3);
  expect(await scrape(gateway)).toContain('gateway_requests_total{target="ret",version="v2",code="2xx"} 3');
});

it('a version that comes back within the retention keeps counting under the same countingSince', async () => {
  const gateway = await gatewayWith({ metricsRetentionMs: 60_000 });
  const admin = adminClient(gateway.url);
  const both = { versions: [{ name: 'a', url: v1.url, weight: 0 }, { name: 'b', url: v1.url, weight: 100 }] };
  await admin.put('back', both);
  expect((await fetch(`${gateway.url}/back/x`)).status).toBe(200);
  const first = (await admin.get('/admin/metrics/back')).body.versions.b as VersionMetrics;
  await admin.put('back', { versions: [{ name: 'a', url: v1.url, weight: 100 }] });
  await admin.put('back', both);
  expect((await fetch(`${gateway.url}/back/x`)).status).toBe(200);
  const second = (await admin.get('/admin/metrics/back')).body.versions.b as VersionMetrics;
  expect(second).toMatchObject({ requests: 2, countingSince: first.countingSince });
  expect(intervalBetween(first, second).requests).toBe(1);
});

it('a deleted route\'s version is kept while a request to it is still in flight, and counted when it ends', async () => {
  let answer: (() => void) | undefined;
  const slow = await listen((req, res) => {
    req.resume();
    answer = () => res.end('late');
  });
  cleanups.push(() => slow.close());
  const gateway = await gatewayWith({ metricsRetentionMs: 0 });
  const admin = adminClient(gateway.url);
  await admin.put('busy', { versions: [{ name: 's1', url: slow.url, weight: 100 }] });
  const pending = fetch(`${gateway.url}/busy/x`);
  await eventually(async () => (answer ? true : undefined), 10_000, 'the request at the upstream');
  expect((await admin.del('busy')).status).toBe(204);
  expect(gateway.metrics.size).toBe(1); // in flight: not dropped yet
  answer!();
  expect((await pending).status).toBe(200);
  await eventually(async () => ((await admin.get('/admin/metrics/busy')).status === 404 ? true : undefined), 10_000, 'dropped after the request');
  expect(gateway.metrics.size).toBe(0);
});
