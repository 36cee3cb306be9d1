/**
 * The API process killed (kill -9) between accepting a start and answering it: Temporal has
 * started the rollout, the caller never heard. A retried start with the same Idempotency-Key
 * header, to a new API process, returns that rollout (200, `Idempotent-Replayed`), never a second
 * run; the rollout goes on to its promotion with each split applied once and every decision in
 * its history.
 *
 * The moment is made exact, not raced: the API reaches Temporal through a TCP proxy that passes
 * the StartWorkflowExecution request on and holds back the server's answer, so the run exists
 * while the API still waits; then the API is killed.
 *
 * Real Temporal dev server, the API as a process (`node --import tsx src/api/main.ts`), the
 * production worker (in this process), the real gateway and demo model servers, live traffic.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { Decision, RolloutStatus } from '../../src/workflows/status';
import { expectEnded, startControlPlane, waitForRollout, type ControlPlane } from '../helpers/control-plane';
import { startDevServer } from '../helpers/dev-server';
import { e2eSpec, freePort, getRoute, putRoute, recordingProxy, spawnTs, weightsOf, type Proc, type RecordingProxy } from '../helpers/e2e';
import { expectHistoryHoldsDecisions, expectSplits, holdingTcpProxy, type HoldingTcpProxy } from '../helpers/faults';
import { eventually, request, type Listening } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';

let env: TestWorkflowEnvironment;
let gateway: Gateway;
let proxy: RecordingProxy;
let temporalProxy: HoldingTcpProxy;
let control: ControlPlane;
let traffic: TrafficRun | undefined;
const apis: Proc[] = [];
const models = {} as Record<'v1' | 'v2', ModelServer>;
const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-api-crash-'));

beforeAll(async () => {
  const [devServer, gw, v1, v2] = await Promise.all([
    startDevServer(),
    startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) }),
    startModelServer({ version: 'v1', latencyMs: 30, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 30, latencySpread: 0.1 }),
  ]);
  env = devServer;
  gateway = gw;
  Object.assign(models, { v1, v2 });
  proxy = await recordingProxy(gateway.url);
  temporalProxy = await holdingTcpProxy(env.address);
  control = await startControlPlane(env, { gatewayUrl: proxy.url });
}, 120_000);

afterAll(async () => {
  traffic?.stop();
  await traffic?.done;
  await Promise.all(apis.map((a) => a.kill9()));
  await control?.stop();
  await temporalProxy?.close();
  await proxy?.close();
  await gateway?.close(1_000);
  await Promise.all(Object.values(models).map((m) => m.close()));
  await env?.teardown();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

/** The API as its own process, on the worker's task queue, reaching Temporal at `temporalAddress`. */
async function startApiProcess(temporalAddress: string): Promise<{ proc: Proc; api: Listening }> {
  const port = await freePort();
  const proc = spawnTs(`api ${apis.length + 1}`, 'src/api/main.ts', {
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: env.namespace ?? 'default',
    TEMPORAL_TLS: '', TEMPORAL_TLS_CA: '', TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '', TEMPORAL_TLS_SERVER_NAME: '', TEMPORAL_API_KEY: '',
    API_TOKEN: '', API_TOKENS: '', API_TOKENS_FILE: '',
    API_HOST: '127.0.0.1',
    API_PORT: String(port),
    TASK_QUEUE: control.config.taskQueue,
    GATEWAY_URL: gateway.url,
    GATEWAY_ADMIN_TOKEN: '',
    LOG_LEVEL: 'warn',
  });
  apis.push(proc);
  await eventually(async () => {
    if (!proc.alive()) throw new Error(`the API exited:\n${proc.output.join('').slice(-3000)}`);
    return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ? true : undefined;
  }, 90_000, 'the API process to answer /healthz');
  const url = `http://127.0.0.1:${port}`;
  return { proc, api: { url, port, close: () => proc.stop() } };
}

it('a start retried with its Idempotency-Key after the API died mid-start returns the same rollout, never a second', async () => {
  const target = uniqueTarget('api-crash');
  await putRoute(gateway.url, target, [{ name: 'v1', url: models.v1.url, weight: 100 }]);
  traffic = startTraffic({ gatewayUrl: gateway.url, target, rate: 40, durationMs: Number.POSITIVE_INFINITY, users: 1000 });
  const spec = e2eSpec(target, models.v1.url, models.v2.url);
  const key = `fault-suite-${target}`;
  const workflowId = `rollout-${target}`;

  const first = await startApiProcess(temporalProxy.address);
  // The start request names the task queue in plain bytes: from then on, Temporal's answers wait.
  temporalProxy.holdAfter(control.config.taskQueue);
  const lost = request<RolloutStatus>(first.api.url, 'POST', '/v1/rollouts', { body: spec, headers: { 'idempotency-key': key } }).then(
    (res) => ({ answered: res.status }),
    (err: Error) => ({ failed: err.message }),
  );
  // Temporal has the run; the API has not heard back.
  const started = await eventually(async () => env.client.workflow.getHandle(workflowId).describe().catch(() => undefined), 30_000, 'the run to exist in Temporal');
  await first.proc.kill9();
  temporalProxy.release();
  expect(await lost).toMatchObject({ failed: expect.any(String) });

  const second = await startApiProcess(env.address);
  const retried = await request<RolloutStatus>(second.api.url, 'POST', '/v1/rollouts', { body: spec, headers: { 'idempotency-key': key } });
  expect(retried.status).toBe(200);
  expect(retried.headers.get('idempotent-replayed')).toBe('true');
  expect(retried.body.id).toBe(workflowId);
  expect(retried.body.links!.temporalUi).toContain(started.runId);
  // A start without the key is refused as before (the target is rolling out), and starts nothing.
  expect((await request(second.api.url, 'POST', '/v1/rollouts', { body: spec })).status).toBe(409);

  const seen: Decision[][] = [];
  const final = await waitForRollout(second.api, workflowId, (s) => {
    seen.push(s.decisions);
    return ['promoted', 'rolled_back', 'aborted', 'failed'].includes(s.phase);
  }, 'the end', 60_000);
  traffic.stop();
  expectEnded(final, 'promoted');
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });
  // One run of the rollout, ever.
  await eventually(async () => ((await env.client.workflow.count(`WorkflowId = '${workflowId}' AND ExecutionStatus = 'Completed'`)).count === 1 ? true : undefined), 10_000, 'visibility');
  expect((await env.client.workflow.count(`WorkflowId = '${workflowId}'`)).count).toBe(1);
  expectSplits(proxy, target, ['v1=100 v2=0', 'v1=75 v2=25', 'v1=40 v2=60', 'v1=0 v2=100']);
  await expectHistoryHoldsDecisions(env.client.workflow.getHandle(workflowId), seen);
  expect(second.proc.alive()).toBe(true);
}, 180_000);
