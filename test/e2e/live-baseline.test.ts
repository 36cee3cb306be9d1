/**
 * The live baseline end to end (issue 10), all real and over HTTP on 127.0.0.1: a Temporal dev
 * server, a worker with the production adapters, the REST API (reading live routes from the
 * gateway, as main.ts wires it), the gateway and demo model servers. A start is checked against
 * what the gateway serves; a baseline left out is taken from it; compensation restores exactly
 * the route captured before the rollout's first change.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayTrafficRouter } from '../../src/activities/routers/gateway';
import { createApp } from '../../src/api/app';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { RolloutRequestInput } from '../../src/spec';
import type { RolloutStatus } from '../../src/workflows/status';
import { startControlPlane } from '../helpers/control-plane';
import { startDevServer, workflowBundle } from '../helpers/dev-server';
import { e2eSpec, getRoute, putRoute, weightsOf, type RouteView } from '../helpers/e2e';
import { eventually, freePorts, listen, request, type Listening } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';

let env: TestWorkflowEnvironment;
let gateway: Gateway;
let api: Listening;
/** An API whose router is a port nobody listens on. */
let blindApi: Listening;
const models = {} as Record<'v1' | 'v2' | 'v3', ModelServer>;
const cleanups: Array<() => Promise<unknown>> = [];
const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-live-baseline-'));

beforeAll(async () => {
  const [gatewayPort, deadPort] = await freePorts(2);
  const [devServer, v1, v2, v3, gw] = await Promise.all([
    startDevServer(),
    startModelServer({ version: 'v1', latencyMs: 20, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 20, latencySpread: 0.1 }),
    startModelServer({ version: 'v3', latencyMs: 20, latencySpread: 0.1 }),
    startGateway({ port: gatewayPort!, dataDir, logger: pino({ level: 'silent' }) }),
    workflowBundle(),
  ]);
  env = devServer;
  Object.assign(models, { v1, v2, v3 });
  gateway = gw;

  const control = await startControlPlane(env, { gatewayUrl: gateway.url });
  cleanups.push(() => control.stop());
  api = control.api;
  // The same control plane, but an API whose router cannot be read.
  blindApi = await listen(createApp({ client: env.client, config: control.config, routerFor: () => gatewayTrafficRouter({ url: `http://127.0.0.1:${deadPort}` }) }));
  cleanups.push(() => blindApi.close());
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await gateway?.close(1_000);
  await Promise.all(Object.values(models).map((m) => m.close()));
  await env?.teardown();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

function traffic(target: string): TrafficRun {
  const run = startTraffic({ gatewayUrl: gateway.url, target, rate: 50, durationMs: Number.POSITIVE_INFINITY, users: 1000 });
  const stop = async () => {
    run.stop();
    await run.done;
  };
  cleanups.push(stop);
  return run;
}

/** A rollout of v1 → v2 that holds its first step (25%) for a while. */
const holding = (target: string, overrides: Partial<RolloutRequestInput> = {}): RolloutRequestInput =>
  e2eSpec(target, models.v1.url, models.v2.url, { steps: [{ weight: 25, bake: '2m' }, { weight: 100 }], ...overrides });

/** The spec without its baseline: the API takes it from the live route. */
function withoutBaseline(spec: RolloutRequestInput): RolloutRequestInput {
  const { baseline: _baseline, ...rest } = spec;
  return rest;
}

const post = (path: string, body?: unknown, base = api.url) => request(base, 'POST', path, { body });

async function status(id: string): Promise<RolloutStatus> {
  const res = await request<RolloutStatus>(api.url, 'GET', `/v1/rollouts/${id}`);
  if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

const waitFor = (id: string, done: (s: RolloutStatus) => boolean, what: string, timeoutMs = 45_000) =>
  eventually(async () => {
    const s = await status(id);
    return done(s) ? s : undefined;
  }, timeoutMs, `${id}: ${what}`);

const FINAL = ['promoted', 'rolled_back', 'aborted', 'failed'];

async function abortAndWait(id: string): Promise<RolloutStatus> {
  expect((await post(`/v1/rollouts/${id}/abort`, { reason: 'e2e abort' })).status).toBe(202);
  return waitFor(id, (s) => FINAL.includes(s.phase), 'the end');
}

/** PUT a route as an operator would, salt included when given. */
async function putRouteWithSalt(target: string, route: RouteView): Promise<void> {
  const res = await request(gateway.url, 'PUT', `/admin/routes/${target}`, { body: route });
  if (res.status !== 200) throw new Error(`PUT route ${target}: ${res.status} ${JSON.stringify(res.body)}`);
}

/** No rollout (workflow) exists for the target. */
async function expectNoRollout(target: string): Promise<void> {
  const res = await request(api.url, 'GET', `/v1/rollouts/rollout-${target}`);
  expect(res.status).toBe(404);
}

describe('a start is checked against what the gateway serves', () => {
  it('after a promotion of v2, the old spec (baseline v1) is 409 baseline_mismatch naming v2; nothing changes', async () => {
    const target = uniqueTarget('live');
    await putRoute(gateway.url, target, [{ name: 'v1', url: models.v1.url, weight: 100 }]);
    const first = await post('/v1/rollouts', holding(target));
    expect(first.status).toBe(201);
    expect((await post(`/v1/rollouts/${first.body.id}/promote`)).status).toBe(202);
    const promoted = await waitFor(first.body.id, (s) => FINAL.includes(s.phase), 'the promotion');
    expect(promoted.phase).toBe('promoted');
    const before = await getRoute(gateway.url, target);
    expect(weightsOf(before)).toEqual({ v1: 0, v2: 100 });

    // The README's example again (baseline v1, candidate v2), as the issue tried it.
    const res = await post('/v1/rollouts', holding(target));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('baseline_mismatch');
    expect(res.body.error.message).toContain(`target ${target} serves v2 100% (${models.v2.url}), not the baseline v1 at 100% (${models.v1.url})`);
    expect(res.body.error.live).toEqual({
      target,
      routerState: { salt: `rollout-${target}` },
      versions: [
        { version: 'v1', url: models.v1.url, weight: 0 },
        { version: 'v2', url: models.v2.url, weight: 100 },
      ],
    });
    expect(await getRoute(gateway.url, target)).toEqual(before);
    // No new run: the rollout is still the promoted one.
    expect(await status(first.body.id)).toMatchObject({ phase: 'promoted', links: { temporalUi: promoted.links!.temporalUi } });
  });

  it.each([
    ['another version', (): RouteView['versions'] => [{ name: 'v3', url: models.v3.url, weight: 100 }], /serves v3 100%/],
    ['the baseline under another URL', (): RouteView['versions'] => [{ name: 'v1', url: models.v3.url, weight: 100 }], /serves v1 100% \(http:\/\/127\.0\.0\.1:\d+\), not the baseline v1/],
    [
      'a split',
      (): RouteView['versions'] => [
        { name: 'v1', url: models.v1.url, weight: 90 },
        { name: 'v3', url: models.v3.url, weight: 10 },
      ],
      /serves v1 90% \(.*\), v3 10% \(.*\)/,
    ],
  ])('a live route serving %s is 409 baseline_mismatch; no workflow, the route untouched', async (_what, versions, message) => {
    const target = uniqueTarget('live');
    await putRoute(gateway.url, target, versions());
    const before = await getRoute(gateway.url, target);
    const res = await post('/v1/rollouts', holding(target));
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'baseline_mismatch', live: { target, routerState: { salt: target } } });
    expect(res.body.error.message).toMatch(message);
    expect(await getRoute(gateway.url, target)).toEqual(before);
    await expectNoRollout(target);
  });

  it('a router that cannot be read is 503 router_unavailable: never a blind start', async () => {
    const target = uniqueTarget('live');
    await putRoute(gateway.url, target, [{ name: 'v1', url: models.v1.url, weight: 100 }]);
    const before = await getRoute(gateway.url, target);
    const res = await post('/v1/rollouts', holding(target), blindApi.url);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('router_unavailable');
    expect(res.body.error.message).toMatch(new RegExp(`could not say what target ${target} serves now .*ECONNREFUSED.*the rollout was not started`));
    expect(await getRoute(gateway.url, target)).toEqual(before);
    await expectNoRollout(target);
  });
});

describe('a baseline left out', () => {
  it('is taken from the live route: the status shows the live version and URL as baseline', async () => {
    const target = uniqueTarget('live');
    await putRoute(gateway.url, target, [{ name: 'v2', url: models.v2.url, weight: 100 }]);
    const res = await post('/v1/rollouts', withoutBaseline(holding(target, { candidate: { version: 'v3', url: models.v3.url } })));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ baseline: { version: 'v2', url: models.v2.url }, spec: { baseline: { version: 'v2', url: models.v2.url } } });
    const attached = await waitFor(res.body.id, (s) => s.weights.candidate === 25, 'the first step');
    expect(attached.baseline).toEqual({ version: 'v2', url: models.v2.url });
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v2: 75, v3: 25 });
    expect((await abortAndWait(res.body.id)).phase).toBe('aborted');
  });

  it('with no live route is 400 naming baseline; with a split, 400 saying so; nothing started', async () => {
    const target = uniqueTarget('live');
    const none = await post('/v1/rollouts', withoutBaseline(holding(target)));
    expect(none.status).toBe(400);
    expect(none.body.error).toMatchObject({ code: 'invalid_spec', issues: [{ path: 'baseline', message: expect.stringMatching(/has no live route/) }] });
    expect(await getRoute(gateway.url, target)).toBeUndefined();
    await expectNoRollout(target);

    await putRoute(gateway.url, target, [
      { name: 'v1', url: models.v1.url, weight: 50 },
      { name: 'v3', url: models.v3.url, weight: 50 },
    ]);
    const split = await post('/v1/rollouts', withoutBaseline(holding(target)));
    expect(split.status).toBe(400);
    expect(split.body.error).toMatchObject({ code: 'invalid_spec', issues: [{ path: 'baseline', message: expect.stringMatching(/a split of several versions \(v1 50% .*, v3 50% .*\)/) }] });
    await expectNoRollout(target);
  });
});

describe('compensation', () => {
  it('restores exactly the route captured before the rollout: its own salt, URL and a version at 0%', async () => {
    const target = uniqueTarget('live');
    const before: RouteView = {
      salt: `operator-salt-${target}`,
      versions: [
        { name: 'v0', url: models.v3.url, weight: 0 },
        { name: 'v1', url: `${models.v1.url}/`, weight: 100 },
      ],
    };
    await putRouteWithSalt(target, before);
    expect(await getRoute(gateway.url, target)).toEqual(before);
    const run = traffic(target);

    const started = await post('/v1/rollouts', holding(target));
    expect(started.status).toBe(201);
    await waitFor(started.body.id, (s) => s.weights.candidate === 25 && s.decisions.length >= 1, 'baking at 25% with a check done');
    expect(await getRoute(gateway.url, target)).toMatchObject({ salt: `rollout-${target}` });
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 75, v2: 25 });

    const final = await abortAndWait(started.body.id);
    run.stop();
    await run.done;
    expect(final).toMatchObject({ phase: 'aborted', weights: { baseline: 100, candidate: 0 }, outcome: { result: 'aborted', reason: 'e2e abort' } });
    expect(await getRoute(gateway.url, target)).toEqual(before);
  });
});
