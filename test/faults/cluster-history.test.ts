/**
 * A real Temporal cluster's history service (test/helpers/temporal-cluster.ts: PostgreSQL,
 * frontend, history, matching and worker as separate processes) SIGKILLed and restarted
 * mid-bake: the rollout keeps its place and promotes; each split reached the router once (a
 * recording proxy between the workers and the gateway), and the history holds every decision.
 * Two model-canary workers poll the task queue: one in this process (with the REST API), one a
 * process of its own.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Decision } from '../../src/workflows/status';
import { expectEnded, startControlPlane, startRollout, waitForRollout, type ControlPlane } from '../helpers/control-plane';
import { testLogLevel, uniqueTaskQueue, workflowBundle } from '../helpers/dev-server';
import { e2eSpec, getRoute, processSettings, spawnTs, waitForOutput, weightsOf, type Proc } from '../helpers/e2e';
import { expectHistoryHoldsDecisions, expectSplits, splitsReceived, startDataPlane, type DataPlane } from '../helpers/faults';
import { startTemporalCluster, type TemporalCluster } from '../helpers/temporal-cluster';

let cluster: TemporalCluster;
let env: TestWorkflowEnvironment;
let plane: DataPlane;
let control: ControlPlane;
let workerProc: Proc;
const taskQueue = uniqueTaskQueue('cluster-faults');

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger(testLogLevel()) });
  } catch {
    // already installed in this process: keep it
  }
  [cluster, plane] = await Promise.all([startTemporalCluster(), startDataPlane('faults-cluster'), workflowBundle()]);
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: cluster.address, namespace: cluster.namespace });
  workerProc = spawnTs('worker process', 'src/worker.ts', processSettings({ temporalAddress: cluster.address, namespace: cluster.namespace, taskQueue, gatewayUrl: plane.proxy.url }, { LOG_LEVEL: 'warn' }));
  control = await startControlPlane(env, { gatewayUrl: plane.proxy.url, taskQueue });
  await waitForOutput(workerProc, 'worker polling task queue', 120_000);
}, 900_000); // a first run builds the cluster from Go modules: minutes

afterAll(async () => {
  await workerProc?.stop(10_000);
  await control?.stop();
  await env?.teardown();
  await plane?.stop();
  await cluster?.stop();
}, 90_000);

it('the history service SIGKILLed and restarted mid-bake: the rollout promotes, each split once, every decision kept', async () => {
  const { target, traffic } = await plane.target('cluster-history');
  const started = await startRollout(control.api, e2eSpec(target, plane.v1.url, plane.v2.url, { steps: [{ weight: 25, bake: '6s' }, { weight: 60, bake: '3s' }, { weight: 100 }] }));
  const seen: Decision[][] = [];
  const before = await waitForRollout(control.api, started.id, (s) => {
    seen.push(s.decisions);
    return s.weights.candidate === 25 && s.decisions.length >= 1;
  }, 'baking at 25% with a check done');

  const t0 = Date.now();
  await cluster.restart('history', { kill: true });
  const restartMs = Date.now() - t0;
  const splitsAtRestart = splitsReceived(plane.proxy, target);
  const final = await waitForRollout(control.api, started.id, (s) => {
    seen.push(s.decisions);
    return ['promoted', 'rolled_back', 'aborted', 'failed'].includes(s.phase);
  }, 'the end', 90_000).catch((err: Error) => {
    const logs = (['frontend', 'history', 'matching', 'worker'] as const).map((s) => `--- ${s} (${cluster.alive(s) ? 'running' : 'exited'}) ---\n${cluster.logTail(s, 15)}`);
    err.message += `\n${logs.join('\n')}\n--- worker process ---\n${workerProc.output.join('').slice(-2000)}`;
    throw err;
  });
  traffic.stop();
  console.log(`history SIGKILLed and serving again after ${(restartMs / 1000).toFixed(1)} s; the rollout ${final.phase} ${((Date.now() - t0) / 1000).toFixed(1)} s after the kill`);

  expectEnded(final, 'promoted');
  expect(final.weights).toEqual({ baseline: 0, candidate: 100 });
  expect(final.decisions.length).toBeGreaterThan(before.decisions.length);
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 0, v2: 100 });
  expect(splitsAtRestart.slice(0, 2)).toEqual(['v1=100 v2=0', 'v1=75 v2=25']);
  expectSplits(plane.proxy, target, ['v1=100 v2=0', 'v1=75 v2=25', 'v1=40 v2=60', 'v1=0 v2=100']);
  const handle = env.client.workflow.getHandle(started.id);
  await expectHistoryHoldsDecisions(handle, seen);
  const history = (await handle.fetchHistory()).events!;
  const scheduled = history.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'setTrafficWeights');
  const ids = new Set(scheduled.map((e) => String(e.eventId)));
  expect(scheduled).toHaveLength(4);
  expect(history.filter((e) => e.activityTaskCompletedEventAttributes && ids.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)))).toHaveLength(4);
}, 180_000);
