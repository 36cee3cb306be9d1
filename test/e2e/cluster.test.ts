/**
 * Rollouts end to end on a real Temporal cluster, as production runs one (test/helpers/
 * temporal-cluster.ts): PostgreSQL for persistence and SQL (advanced) visibility, and frontend,
 * history, matching and worker as four separate `temporal-server` processes — not the dev server.
 * TWO model-canary workers poll one task queue: the control plane's (in this process, with the
 * REST API) and a real worker process (`node --import tsx src/worker.ts`).
 *
 * Covered, each through the REST API with real traffic through the real gateway to demo model
 * servers: promote, roll back (10% errors), abort mid-bake, pause/resume (the bake clock and the
 * checks stop while paused), the list of rollouts by target (the RolloutTarget search attribute,
 * on PostgreSQL visibility), and that both workers did the rollouts' work (the identities in the
 * histories). The history service SIGKILLed and restarted mid-bake is in the fault suite
 * (test/faults/cluster-history.test.ts).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { TestWorkflowEnvironment as Env } from '@temporalio/testing';
import type { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { RolloutStatus } from '../../src/workflows/status';
import { expectEnded, rolloutEnded, rolloutStatus, startControlPlane, startRollout, waitForRollout, type ControlPlane } from '../helpers/control-plane';
import { testLogLevel, uniqueTaskQueue, workflowBundle } from '../helpers/dev-server';
import { e2eSpec, expectRolledBackOnErrorRate, getRoute, processSettings, putRoute, spawnTs, waitForOutput, weightsOf, type Proc } from '../helpers/e2e';
import { request } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';
import { startTemporalCluster, type TemporalCluster } from '../helpers/temporal-cluster';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let cluster: TemporalCluster;
let env: TestWorkflowEnvironment;
let gateway: Gateway;
let control: ControlPlane;
let workerProc: Proc;
const models = {} as Record<'v1' | 'v2' | 'faulty', ModelServer>;
const runs: TrafficRun[] = [];
const rolloutIds: string[] = [];
const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-cluster-e2e-'));
const taskQueue = uniqueTaskQueue('cluster');

/** The target exists before the rollout: 100% on the baseline, with traffic flowing. */
async function prepareTarget(): Promise<{ target: string; run: TrafficRun }> {
  const target = uniqueTarget('cluster');
  await putRoute(gateway.url, target, [{ name: 'v1', url: models.v1.url, weight: 100 }]);
  const run = startTraffic({ gatewayUrl: gateway.url, target, rate: 50, durationMs: Number.POSITIVE_INFINITY, users: 1000 });
  runs.push(run);
  return { target, run };
}

async function stopTraffic(run: TrafficRun): Promise<void> {
  run.stop();
  await run.done;
}

async function start(spec: Parameters<typeof startRollout>[1]): Promise<RolloutStatus> {
  const started = await startRollout(control.api, spec);
  rolloutIds.push(started.id);
  return started;
}

const post = (id: string, action: string, body?: unknown) => request<RolloutStatus>(control.api.url, 'POST', `/v1/rollouts/${id}/${action}`, body === undefined ? {} : { body });

beforeAll(async () => {
  // The in-process worker logs at ERROR, as startDevServer() has it (TEMPORAL_TEST_LOG_LEVEL to see more).
  try {
    Runtime.install({ logger: new DefaultLogger(testLogLevel()) });
  } catch {
    // already installed in this process: keep it
  }
  const [c, gw, v1, v2, faulty] = await Promise.all([
    startTemporalCluster(),
    startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) }),
    startModelServer({ version: 'v1', latencyMs: 30, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 30, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 30, latencySpread: 0.1, errorRate: 0.1 }),
    workflowBundle(),
  ]);
  cluster = c;
  gateway = gw;
  Object.assign(models, { v1, v2, faulty });
  env = await Env.createFromExistingServer({ address: cluster.address, namespace: cluster.namespace });
  // Worker 2: a real worker process on the same task queue (its own identity, <pid>@<host>).
  workerProc = spawnTs('worker process', 'src/worker.ts', processSettings({ temporalAddress: cluster.address, namespace: cluster.namespace, taskQueue, gatewayUrl: gateway.url }, { LOG_LEVEL: 'warn' }));
  // Worker 1 and the REST API: the control plane, in this process.
  control = await startControlPlane(env, { gatewayUrl: gateway.url, taskQueue });
  await waitForOutput(workerProc, 'worker polling task queue', 120_000);
}, 900_000); // a first run builds the cluster from Go modules: minutes

afterAll(async () => {
  await Promise.all(runs.map((r) => stopTraffic(r)));
  await workerProc?.stop(10_000);
  await control?.stop();
  await env?.teardown();
  await gateway?.close(1_000);
  await Promise.all(Object.values(models).map((m) => m.close()));
  await cluster?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 90_000);

/** The cluster's logs, when a test fails: what each service said last. */
function withClusterLogs<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: Error) => {
    const logs = (['frontend', 'history', 'matching', 'worker'] as const).map((s) => `--- ${s} (${cluster.alive(s) ? 'running' : 'exited'}) ---\n${cluster.logTail(s, 15)}`);
    err.message += `\n${logs.join('\n')}\n--- worker process ---\n${workerProc.output.join('').slice(-2000)}`;
    throw err;
  });
}

it('promotes a healthy candidate: the gateway ends at 0/100; the rollout is listed by target (PostgreSQL visibility)', async () => {
  await withClusterLogs((async () => {
    const { target, run } = await prepareTarget();
    const started = await start(e2eSpec(target, models.v1.url, models.v2.url));
    const final = await rolloutEnded(control.api, started.id, 60_000);
    await stopTraffic(run);

    expectEnded(final, 'promoted');
    expect(final).toMatchObject({ phase: 'promoted', weights: { baseline: 0, candidate: 100 }, outcome: { result: 'promoted' } });
    expect(final.decisions.some((d) => d.verdict === 'fail')).toBe(false);
    expect(final.decisions.filter((d) => d.weight === 60).some((d) => d.metrics.candidate.requests > 0)).toBe(true);
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });

    // The list filters on the custom search attributes the workflow upserts (RolloutTarget,
    // RolloutPhase): registered on the cluster's namespace, stored in PostgreSQL's visibility.
    const listed = await request<{ rollouts: Array<{ id: string; phase: string }> }>(control.api.url, 'GET', `/v1/rollouts?target=${target}`);
    expect(listed.status).toBe(200);
    expect(listed.body.rollouts.map((r) => r.id)).toEqual([started.id]);
    const byPhase = await request<{ rollouts: Array<{ id: string }> }>(control.api.url, 'GET', `/v1/rollouts?target=${target}&phase=promoted`);
    expect(byPhase.body.rollouts.map((r) => r.id)).toEqual([started.id]);
  })());
});

it('rolls back a candidate with 10% errors, citing the error rate; the gateway is back at 100% baseline', async () => {
  await withClusterLogs((async () => {
    const { target, run } = await prepareTarget();
    const started = await start(e2eSpec(target, models.v1.url, models.faulty.url));
    const final = await rolloutEnded(control.api, started.id, 60_000);
    await stopTraffic(run);

    expectEnded(final, 'rolled_back');
    await expectRolledBackOnErrorRate(final, gateway.url, target);
  })());
});

it('aborts mid-bake: back at 100% baseline, outcome aborted with the reason', async () => {
  await withClusterLogs((async () => {
    const { target, run } = await prepareTarget();
    const started = await start(e2eSpec(target, models.v1.url, models.v2.url, { steps: [{ weight: 25, bake: '2m' }, { weight: 100 }] }));
    await waitForRollout(control.api, started.id, (s) => s.weights.candidate === 25 && s.decisions.length >= 1, 'baking at 25% with a check done');
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 75, v2: 25 });

    const aborted = await post(started.id, 'abort', { reason: 'cluster e2e abort' });
    expect(aborted.status).toBe(202);
    expect(['rolling_back', 'aborted']).toContain(aborted.body.phase);
    const final = await rolloutEnded(control.api, started.id, 30_000);
    await stopTraffic(run);

    expectEnded(final, 'aborted');
    expect(final).toMatchObject({ phase: 'aborted', weights: { baseline: 100, candidate: 0 }, outcome: { result: 'aborted', reason: 'cluster e2e abort' } });
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 100 });
  })());
});

it('pauses mid-bake (bake clock and checks stop, weights hold) and resumes to a promotion', async () => {
  await withClusterLogs((async () => {
    const { target, run } = await prepareTarget();
    const started = await start(e2eSpec(target, models.v1.url, models.v2.url, { steps: [{ weight: 25, bake: '6s' }, { weight: 100 }] }));
    await waitForRollout(control.api, started.id, (s) => s.weights.candidate === 25 && s.decisions.length >= 1 && s.step.bakedMs < s.step.bakeMs, 'baking at 25% with a check done');

    const paused = await post(started.id, 'pause');
    expect(paused.status).toBe(202);
    expect(paused.body.phase).toBe('paused');
    const atPause = await rolloutStatus(control.api, started.id);
    await new Promise((r) => setTimeout(r, 3_000));
    const later = await rolloutStatus(control.api, started.id);
    expect(later.phase).toBe('paused');
    expect(later.weights).toEqual({ baseline: 75, candidate: 25 });
    expect(later.decisions.length).toBe(atPause.decisions.length);
    expect(later.step.bakedMs).toBe(atPause.step.bakedMs);
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 75, v2: 25 });

    const again = await post(started.id, 'pause');
    expect(again.status).toBe(409);

    const resumed = await post(started.id, 'resume');
    expect(resumed.status).toBe(202);
    expect(resumed.body.phase).toBe('progressing');
    const final = await rolloutEnded(control.api, started.id, 60_000);
    await stopTraffic(run);

    expectEnded(final, 'promoted');
    expect(final.decisions.length).toBeGreaterThan(atPause.decisions.length);
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });
  })());
});

it('both workers on the task queue did the rollouts\' work (workflow tasks and activities)', async () => {
  const identities = new Set<string>();
  for (const id of rolloutIds) {
    const events: HistoryEvent[] = (await env.client.workflow.getHandle(id).fetchHistory()).events ?? [];
    for (const e of events) {
      const identity = e.workflowTaskCompletedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
      if (identity) identities.add(identity);
    }
  }
  const host = hostname();
  expect(rolloutIds.length).toBeGreaterThanOrEqual(4);
  expect([...identities].sort()).toEqual([`${process.pid}@${host}`, `${workerProc.pid}@${host}`].sort());
  expect(workerProc.alive()).toBe(true);
});
