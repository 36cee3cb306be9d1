/**
 * The Temporal dev server itself killed (kill -9) mid-bake and started again on the same SQLite
 * file, as `npm run serve` runs it: the rollout keeps its place and promotes; each split reached
 * the router once, and the history holds every decision — those made before the crash included.
 * The worker and the API stay up through it and reconnect on their own.
 *
 * Real dev server process (`temporal server start-dev --db-filename`), a real worker process,
 * the REST API (in this process), the real gateway behind a recording proxy, demo model servers,
 * live traffic.
 */
import { Client, Connection } from '@temporalio/client';
import { join } from 'node:path';
import { gatewayTrafficRouter } from '../../src/activities/routers/gateway';
import { createApp } from '../../src/api/app';
import type { Decision, RolloutStatus } from '../../src/workflows/status';
import { expectEnded, waitForRollout } from '../helpers/control-plane';
import { uniqueTaskQueue } from '../helpers/dev-server';
import { e2eSpec, getRoute, processSettings, spawnTs, waitForOutput, weightsOf, type Proc } from '../helpers/e2e';
import { expectHistoryHoldsDecisions, expectSplits, splitsReceived, startDataPlane, startDevServerProcess, type DataPlane, type DevServerProcess } from '../helpers/faults';
import { listen, request, type Listening } from '../helpers/http';

let temporal: DevServerProcess;
let plane: DataPlane;
let connection: Connection;
let client: Client;
let api: Listening;
let worker: Proc;
const taskQueue = uniqueTaskQueue('dev-server-restart');

beforeAll(async () => {
  plane = await startDataPlane('faults-dev-server-restart');
  temporal = await startDevServerProcess(join(plane.dataDir, 'temporal.sqlite'));
  connection = await Connection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: 'default' });
  api = await listen(createApp({ client, config: { namespace: 'default', taskQueue, temporalUiUrl: 'http://127.0.0.1:8233' }, routerFor: () => gatewayTrafficRouter({ url: plane.gateway.url }) }));
  worker = spawnTs('worker', 'src/worker.ts', processSettings({ temporalAddress: temporal.address, taskQueue, gatewayUrl: plane.proxy.url }, { LOG_LEVEL: 'warn' }));
  await waitForOutput(worker, 'worker polling task queue', 120_000);
}, 180_000);

afterAll(async () => {
  await worker?.stop(10_000);
  await api?.close();
  await connection?.close();
  await temporal?.stop();
  await plane?.stop();
}, 60_000);

it('the dev server killed -9 mid-bake and restarted on its SQLite file: the rollout promotes, each split once, every decision kept', async () => {
  const { target, traffic } = await plane.target('dev-restart');
  const res = await request<RolloutStatus>(api.url, 'POST', '/v1/rollouts', {
    body: e2eSpec(target, plane.v1.url, plane.v2.url, { steps: [{ weight: 25, bake: '8s' }, { weight: 60, bake: '3s' }, { weight: 100 }] }),
  });
  expect(res.status).toBe(201);
  const id = res.body.id;
  const seen: Decision[][] = [];
  const before = await waitForRollout(api, id, (s) => {
    seen.push(s.decisions);
    return s.weights.candidate === 25 && s.decisions.length >= 2 && s.step.bakedMs < s.step.bakeMs;
  }, 'baking at 25% with two checks done');

  await temporal.kill9();
  const killedAt = Date.now();
  const splitsAtKill = splitsReceived(plane.proxy, target);
  // Down for as long as a start takes: the worker's polls and the API's calls fail meanwhile.
  await temporal.start();
  const backAfterMs = Date.now() - killedAt;

  const final = await waitForRollout(api, id, (s) => {
    seen.push(s.decisions);
    return ['promoted', 'rolled_back', 'aborted', 'failed'].includes(s.phase);
  }, 'the end', 120_000);
  traffic.stop();

  expectEnded(final, 'promoted');
  expect(final.weights).toEqual({ baseline: 0, candidate: 100 });
  expect(final.decisions.length).toBeGreaterThan(before.decisions.length);
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 0, v2: 100 });
  expect(splitsAtKill).toEqual(['v1=100 v2=0', 'v1=75 v2=25']);
  expectSplits(plane.proxy, target, ['v1=100 v2=0', 'v1=75 v2=25', 'v1=40 v2=60', 'v1=0 v2=100']);
  await expectHistoryHoldsDecisions(client.workflow.getHandle(id), seen);
  expect(worker.alive()).toBe(true);
  console.log(`dev server killed with ${before.decisions.length} checks done, serving again after ${(backAfterMs / 1000).toFixed(1)} s; promoted ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
}, 240_000);
