/**
 * Fault suite, workers: the worker process is SIGKILLed mid-bake and a new one takes over; and two workers
 * on one task queue (the way a production deployment scales), the one that ran the rollout's last
 * workflow task — the one whose sticky cache holds it — SIGKILLed mid-bake, the other finishing.
 * Each rollout finishes `promoted`, and no step's weights reached the gateway twice — counted as
 * the HTTP PUTs that actually arrive (a recording proxy in front of the gateway admin API), and
 * cross-checked with the workflow history's setTrafficWeights activities. The two-worker takeover
 * waits out the dead worker's sticky queue: its pending workflow task goes to the shared queue
 * after the sticky schedule-to-start timeout (the SDK's default, 10 s), measured below.
 *
 * Real Temporal dev server, real worker processes (`node --import tsx src/worker.ts`), the real
 * gateway (in-process) and demo model servers, traffic from random user keys, the REST API.
 */
import type { temporal } from '@temporalio/proto';
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
import { FINAL_PHASES, expectEnded } from '../helpers/control-plane';
import { startDevServer, uniqueTaskQueue } from '../helpers/dev-server';
import { e2eSpec, getRoute, processSettings, putRoute, recordingProxy, spawnTs, splitOf, waitForOutput, weightsOf, type Proc, type RecordingProxy } from '../helpers/e2e';
import { eventually, listen, request, type Listening } from '../helpers/http';
import { expectHistoryHoldsDecisions } from '../helpers/faults';
import { uniqueTarget } from '../helpers/specs';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let env: TestWorkflowEnvironment;
let gateway: Gateway;
let proxy: RecordingProxy;
let api: Listening;
let traffic: TrafficRun | undefined;
const models: ModelServer[] = [];
const workers: Proc[] = [];
const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-faults-workers-'));
const taskQueue = uniqueTaskQueue('faults-workers');

function startWorkerProcess(n: number): Proc {
  const proc = spawnTs(`worker ${n}`, 'src/worker.ts', processSettings({ temporalAddress: env.address, namespace: env.namespace, taskQueue, gatewayUrl: proxy.url }));
  workers.push(proc);
  return proc;
}

async function status(id: string): Promise<RolloutStatus> {
  const res = await request<RolloutStatus>(api.url, 'GET', `/v1/rollouts/${id}`);
  if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The worker (by pid) behind a task event's identity: the SDK's default identity is `<pid>@<host>`. */
function pidOf(identity: string | null | undefined): number | undefined {
  const m = /^(\d+)@/.exec(identity ?? '');
  return m ? Number(m[1]) : undefined;
}

const identityOf = (e: HistoryEvent) =>
  e.workflowTaskStartedEventAttributes?.identity ?? e.workflowTaskCompletedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
const at = (e: HistoryEvent) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);

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

// Each test's workers are its own: none is left polling for the next.
afterEach(async () => {
  traffic?.stop();
  await traffic?.done;
  await Promise.all(workers.splice(0).map((w) => w.kill9()));
});

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
  const putsAtKill = proxy.requests.filter((r) => r.method === 'PUT' && r.url === `/admin/routes/${target}`).length;

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
  await expectHistoryHoldsDecisions(env.client.workflow.getHandle(id), [before.decisions, final.decisions]);
  // The second worker did the rest: the first one is gone for good.
  expect(first.alive()).toBe(false);
  expect(second.alive()).toBe(true);
}, 240_000);

it('two workers on one task queue: the one running the rollout is SIGKILLed mid-bake, the other promotes it', async () => {
  const [v1, v2] = models as [ModelServer, ModelServer];
  const target = uniqueTarget('two-workers');
  await putRoute(gateway.url, target, [{ name: 'v1', url: v1.url, weight: 100 }]);
  traffic = startTraffic({ gatewayUrl: gateway.url, target, rate: 50, durationMs: Number.POSITIVE_INFINITY, users: 1000 });

  const both = [startWorkerProcess(1), startWorkerProcess(2)];
  await Promise.all(both.map((w) => waitForOutput(w, 'worker polling task queue', 120_000)));

  const res = await request<RolloutStatus>(api.url, 'POST', '/v1/rollouts', {
    body: e2eSpec(target, v1.url, v2.url, { steps: [{ weight: 25, bake: '8s' }, { weight: 60, bake: '3s' }, { weight: 100 }] }),
  });
  expect(res.status).toBe(201);
  const id = res.body.id;
  const handle = env.client.workflow.getHandle(id);

  // Mid-bake: the first step's weight is in place and at least one check is done.
  const before = await eventually(async () => {
    const s = await status(id);
    return s.step.index === 0 && s.weights.candidate === 25 && s.decisions.length >= 1 && s.step.bakedMs < s.step.bakeMs ? s : undefined;
  }, 30_000, 'the first step baking with a check done');

  // The worker that completed the last workflow task has the rollout in its cache and its sticky queue.
  const historyAtKill = (await handle.fetchHistory()).events!;
  const lastTask = [...historyAtKill].reverse().find((e) => e.workflowTaskCompletedEventAttributes)!;
  const victimPid = pidOf(lastTask.workflowTaskCompletedEventAttributes!.identity);
  const victim = both.find((w) => w.pid === victimPid);
  if (!victim) throw new Error(`last workflow task by "${lastTask.workflowTaskCompletedEventAttributes!.identity}", not one of pids ${both.map((w) => w.pid).join(', ')}`);
  const survivor = both.find((w) => w !== victim)!;
  const killedAt = Date.now();
  await victim.kill9();
  const putsAtKill = proxy.requests.filter((r) => r.method === 'PUT' && r.url === `/admin/routes/${target}`).length;
  // Whatever is in the history now happened before the kill (or was the victim's, started before it).
  const eventsAtKill = (await handle.fetchHistory()).events!.length;

  const final = await eventually(async () => {
    const s = await status(id);
    return FINAL_PHASES.includes(s.phase) ? s : undefined;
  }, 90_000, 'the rollout to end');
  const endedAt = Date.now();
  traffic.stop();
  await traffic.done;

  expectEnded(final, 'promoted');
  expect(final.weights).toEqual({ baseline: 0, candidate: 100 });
  expect(final.decisions.length).toBeGreaterThan(before.decisions.length);
  expect(new Set(final.decisions.map((d) => d.step))).toEqual(new Set([0, 1]));
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });

  // Every weight split arrived at the gateway exactly once, in order; two before the kill.
  const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.url === `/admin/routes/${target}`);
  expect(puts.map((r) => splitOf(r.body))).toEqual(['v1=100 v2=0', 'v1=75 v2=25', 'v1=40 v2=60', 'v1=0 v2=100']);
  expect(putsAtKill).toBe(2);

  // The history agrees: one setTrafficWeights per split, each completed once.
  const history = (await handle.fetchHistory()).events!;
  const scheduled = history.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setTrafficWeights');
  const scheduledIds = new Set(scheduled.map((e) => String(e.eventId)));
  const completed = history.filter((e) => e.activityTaskCompletedEventAttributes && scheduledIds.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)));
  expect(scheduled).toHaveLength(4);
  expect(completed).toHaveLength(4);
  await expectHistoryHoldsDecisions(handle, [before.decisions, final.decisions]);

  // Before the kill both could take tasks; after it, every workflow task and every activity that
  // completed was the survivor's. (An activity's started event is written when it ends: one the
  // victim had started shows its identity later, and ends timed out, never completed.)
  const later = history.slice(eventsAtKill);
  const workflowTasks = later.filter((e) => e.workflowTaskStartedEventAttributes || e.workflowTaskCompletedEventAttributes);
  expect(workflowTasks.length).toBeGreaterThan(0);
  expect([...new Set(workflowTasks.map((e) => pidOf(identityOf(e))))]).toEqual([survivor.pid]);
  const startedBy = new Map(history.filter((e) => e.activityTaskStartedEventAttributes).map((e) => [String(e.activityTaskStartedEventAttributes!.scheduledEventId), identityOf(e)]));
  const activitiesDone = later.filter((e) => e.activityTaskCompletedEventAttributes);
  expect(activitiesDone.length).toBeGreaterThan(0);
  expect([...new Set(activitiesDone.map((e) => pidOf(startedBy.get(String(e.activityTaskCompletedEventAttributes!.scheduledEventId)))))]).toEqual([survivor.pid]);
  // A workflow task that timed out on the dead worker's sticky queue was handed to the shared one.
  const firstBySurvivor = workflowTasks.find((e) => e.workflowTaskCompletedEventAttributes)!;
  const takeoverMs = at(firstBySurvivor) - killedAt;
  const stickyTimeouts = history.slice(eventsAtKill).filter((e) => e.workflowTaskTimedOutEventAttributes).length;
  console.log(`two workers: killed pid ${victim.pid} (${before.decisions.length} checks done); ` +
    `pid ${survivor.pid} completed its first workflow task ${(takeoverMs / 1000).toFixed(1)} s later ` +
    `(${stickyTimeouts} sticky workflow task timeout(s)); promoted ${((endedAt - killedAt) / 1000).toFixed(1)} s after the kill`);
  expect(victim.alive()).toBe(false);
  expect(survivor.alive()).toBe(true);
}, 240_000);
