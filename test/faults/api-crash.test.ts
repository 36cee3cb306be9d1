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
import type { Decision, RolloutStatus } from '../../src/workflows/status';
import { expectEnded, startControlPlane, waitForRollout, type ControlPlane } from '../helpers/control-plane';
import { startDevServer } from '../helpers/dev-server';
import { e2eSpec, freePort, getRoute, processSettings, spawnTs, weightsOf, type Proc } from '../helpers/e2e';
import { expectHistoryHoldsDecisions, expectSplits, holdingTcpProxy, startDataPlane, type DataPlane, type HoldingTcpProxy } from '../helpers/faults';
import { eventually, request, type Listening } from '../helpers/http';

let env: TestWorkflowEnvironment;
let plane: DataPlane;
let temporalProxy: HoldingTcpProxy;
let control: ControlPlane;
const apis: Proc[] = [];

beforeAll(async () => {
  [env, plane] = await Promise.all([startDevServer(), startDataPlane('faults-api-crash')]);
  temporalProxy = await holdingTcpProxy(env.address);
  control = await startControlPlane(env, { gatewayUrl: plane.proxy.url });
}, 120_000);

afterAll(async () => {
  await Promise.all(apis.map((a) => a.kill9()));
  await control?.stop();
  await temporalProxy?.close();
  await plane?.stop();
  await env?.teardown();
}, 60_000);

/** The API as its own process, on the worker's task queue, reaching Temporal at `temporalAddress`. */
async function startApiProcess(temporalAddress: string): Promise<{ proc: Proc; api: Listening }> {
  const port = await freePort();
  const proc = spawnTs(
    `api ${apis.length + 1}`,
    'src/api/main.ts',
    processSettings(
      { temporalAddress, namespace: env.namespace, taskQueue: control.config.taskQueue, gatewayUrl: plane.gateway.url },
      { API_HOST: '127.0.0.1', API_PORT: String(port), LOG_LEVEL: 'warn' },
    ),
  );
  apis.push(proc);
  await eventually(async () => {
    if (!proc.alive()) throw new Error(`the API exited:\n${proc.output.join('').slice(-3000)}`);
    return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ? true : undefined;
  }, 90_000, 'the API process to answer /healthz');
  const url = `http://127.0.0.1:${port}`;
  return { proc, api: { url, port, close: () => proc.stop() } };
}

it('a start retried with its Idempotency-Key after the API died mid-start returns the same rollout, never a second', async () => {
  const { target, traffic } = await plane.target('api-crash');
  const spec = e2eSpec(target, plane.v1.url, plane.v2.url);
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
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 0, v2: 100 });
  // One run of the rollout, ever.
  await eventually(async () => ((await env.client.workflow.count(`WorkflowId = '${workflowId}' AND ExecutionStatus = 'Completed'`)).count === 1 ? true : undefined), 10_000, 'visibility');
  expect((await env.client.workflow.count(`WorkflowId = '${workflowId}'`)).count).toBe(1);
  expectSplits(plane.proxy, target, ['v1=100 v2=0', 'v1=75 v2=25', 'v1=40 v2=60', 'v1=0 v2=100']);
  await expectHistoryHoldsDecisions(env.client.workflow.getHandle(workflowId), seen);
  expect(second.proc.alive()).toBe(true);
}, 180_000);
