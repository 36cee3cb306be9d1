/**
 * Durability: the worker process is SIGKILLed mid-bake and a new one takes over. The rollout
 * finishes `promoted`, and no step's weights reached the gateway twice — counted as the HTTP PUTs
 * that actually arrive (a recording proxy in front of the gateway admin API), and cross-checked
 * with the workflow history's setTrafficWeights activities.
 *
 * Real Temporal dev server, real worker processes (`node --import tsx src/worker.ts`), the real
 * gateway (in-process) and demo model servers, traffic from random user keys, the REST API.
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
import type { RolloutStatus } from '../../src/workflows/status';
import { startDevServer, uniqueTaskQueue } from '../helpers/dev-server';
import { e2eSpec, getRoute, putRoute, recordingProxy, spawnTs, splitOf, waitForOutput, weightsOf, type Proc, type RecordingProxy } from '../helpers/e2e';
import { eventually, listen, request, type Listening } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';

let env: TestWorkflowEnvironment;
let gateway: Gateway;
let proxy: RecordingProxy;
let api: Listening;
let traffic: TrafficRun | undefined;
const models: ModelServer[] = [];
const workers: Proc[] = [];
const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-durability-'));
const taskQueue = uniqueTaskQueue('durability');

function startWorkerProcess(n: number): Proc {
  const proc = spawnTs(`worker ${n}`, 'src/worker.ts', {
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: env.namespace ?? 'default',
    TASK_QUEUE: taskQueue,
    GATEWAY_URL: proxy.url,
    GATEWAY_ADMIN_TOKEN: '',
  });
  workers.push(proc);
  return proc;
}

async function status(id: string): Promise<RolloutStatus> {
  const res = await request<RolloutStatus>(api.url, 'GET', `/v1/rollouts/${id}`);
  if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

beforeAll(async () => {
  const [devServer, gw, v1, v2] = await Promise.all([
    startDevServer(),
    startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) }),
    startModelServer({ version: 'v1', latencyMs: 30, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 30, latencySpread: 0.1 }),
  ]);
  env = devServer;
  gateway = gw;
  models.push(v1, v2);
  proxy = await recordingProxy(gateway.url);
  api = await listen(createApp({ client: env.client, config: { namespace: env.namespace ?? 'default', taskQueue, temporalUiUrl: 'http://127.0.0.1:8233' }, routerFor: () => gatewayTrafficRouter({ url: gateway.url }) }));
}, 60_000);

afterAll(async () => {
  traffic?.stop();
  await traffic?.done;
  await Promise.all(workers.map((w) => w.kill9()));
  await api?.close();
  await proxy?.close();
  await gateway?.close(1_000);
  await Promise.all(models.map((m) => m.close()));
  await env?.teardown();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

it('a worker SIGKILLed mid-bake: a new worker finishes the rollout, each split applied once', async () => {
  const [v1, v2] = models as [ModelServer, ModelServer];
  const target = uniqueTarget('durable');
  await putRoute(gateway.url, target, [{ name: 'v1', url: v1.url, weight: 100 }]);
  traffic = startTraffic({ gatewayUrl: gateway.url, target, rate: 50, durationMs: Number.POSITIVE_INFINITY, users: 1000 });

  const first = startWorkerProcess(1);
  await waitForOutput(first, 'worker polling task queue', 90_000);

  const res = await request<RolloutStatus>(api.url, 'POST', '/v1/rollouts', {
    body: e2eSpec(target, v1.url, v2.url, { steps: [{ weight: 25, bake: '6s' }, { weight: 60, bake: '3s' }, { weight: 100 }] }),
  });
  expect(res.status).toBe(201);
  const id = res.body.id;

  // Mid-bake: the first step's weight is in place and at least one check is done.
  const before = await eventually(async () => {
    const s = await status(id);
    return s.step.index === 0 && s.weights.candidate === 25 && s.decisions.length >= 1 && s.step.bakedMs < s.step.bakeMs ? s : undefined;
  }, 30_000, 'the first step baking with a check done');
  await first.kill9();
  const putsAtKill = proxy.requests.filter((r) => r.method === 'PUT').length;

  const second = startWorkerProcess(2);
  await waitForOutput(second, 'worker polling task queue', 90_000);
  const final = await eventually(async () => {
    const s = await status(id);
    return ['promoted', 'rolled_back', 'aborted', 'failed'].includes(s.phase) ? s : undefined;
  }, 90_000, 'the rollout to end');
  traffic.stop();
  await traffic.done;

  expect(final).toMatchObject({ phase: 'promoted', weights: { baseline: 0, candidate: 100 } });
  expect(final.decisions.length).toBeGreaterThan(before.decisions.length);
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });

  // Every weight split arrived at the gateway exactly once, in order; two before the crash.
  const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.url === `/admin/routes/${target}`);
  expect(puts.map((r) => splitOf(r.body))).toEqual(['v1=100 v2=0', 'v1=75 v2=25', 'v1=40 v2=60', 'v1=0 v2=100']);
  expect(putsAtKill).toBe(2);

  // The history agrees: one setTrafficWeights activity per split, each completed once.
  const history = await env.client.workflow.getHandle(id).fetchHistory();
  const scheduled = history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setTrafficWeights');
  const scheduledIds = new Set(scheduled.map((e) => String(e.eventId)));
  const completed = history.events!.filter(
    (e) => e.activityTaskCompletedEventAttributes && scheduledIds.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)),
  );
  expect(scheduled).toHaveLength(4);
  expect(completed).toHaveLength(4);
  // The second worker did the rest: the first one is gone for good.
  expect(first.alive()).toBe(false);
  expect(second.alive()).toBe(true);
}, 240_000);
