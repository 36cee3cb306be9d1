/**
 * Faults around a running rollout, with live traffic through the real gateway and a recording
 * proxy between the control plane and the gateway's admin API (the router and the metric source):
 * - the metric source down: checks are inconclusive and the step holds; past
 *   analysis.maxMetricsOutage the rollout rolls back and traffic ends at 100% baseline;
 * - the router down while an abort compensates: the restore is retried until the router is back,
 *   the status says so meanwhile (`retrying`), and traffic ends at 100% baseline;
 * - the candidate's servers die (kill -9): rolled back on errors at the first check with data.
 * Each asserts the final phase, the final split, that every split reached the router exactly
 * once, and that the history holds every decision.
 *
 * Real Temporal dev server, the production worker and REST API (registries; in this process),
 * the real gateway, demo model servers (the candidate of the last test as a process of its own).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Decision, RolloutStatus } from '../../src/workflows/status';
import { expectEnded, rolloutEnded, startControlPlane, startRollout, waitForRollout, type ControlPlane } from '../helpers/control-plane';
import { startDevServer } from '../helpers/dev-server';
import { e2eSpec, getRoute, weightsOf } from '../helpers/e2e';
import { expectHistoryHoldsDecisions, expectSplits, startDataPlane, type DataPlane } from '../helpers/faults';
import { request } from '../helpers/http';
import { startModelProcesses, stopModelProcesses, type ModelProcess } from '../helpers/model-processes';

let env: TestWorkflowEnvironment;
let plane: DataPlane;
let control: ControlPlane;
let processes: Record<string, ModelProcess> | undefined;

beforeAll(async () => {
  [env, plane] = await Promise.all([startDevServer(), startDataPlane('faults-outages')]);
  // The worker reaches the gateway (router and metric source) only through the proxy.
  control = await startControlPlane(env, { gatewayUrl: plane.proxy.url });
}, 120_000);

afterAll(async () => {
  await control?.stop();
  await stopModelProcesses(processes);
  await plane?.stop();
  await env?.teardown();
}, 60_000);

afterEach(() => plane.proxy.heal());

/**
 * A rollout rolled back at its first step: attach (the candidate at 0%), the step, then
 * compensation, newest change first (back to 0%, then the route as it was: the baseline alone).
 */
const RESTORED = ['v1=100 v2=0', 'v1=75 v2=25', 'v1=100 v2=0', 'v1=100'];

/** Polls the status until `done`, keeping every decision the API showed on the way. */
async function watchUntil(id: string, seen: Decision[][], done: (s: RolloutStatus) => boolean, what: string, timeoutMs = 45_000): Promise<RolloutStatus> {
  return waitForRollout(control.api, id, (s) => {
    seen.push(s.decisions);
    return done(s);
  }, what, timeoutMs);
}

it('metric source down: checks hold (inconclusive, weights unchanged); past maxMetricsOutage rolled back to 100% baseline', async () => {
  const { target, traffic } = await plane.target('metrics-down');
  const started = await startRollout(control.api, e2eSpec(target, plane.v1.url, plane.v2.url, {
    steps: [{ weight: 25, bake: '2m' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 5, failureLimit: 2, maxMetricsOutage: '12s' },
  }));
  const seen: Decision[][] = [];
  await watchUntil(started.id, seen, (s) => s.weights.candidate === 25 && s.decisions.some((d) => d.verdict === 'pass'), 'a passed check at 25%');

  plane.proxy.fail('/admin/metrics');
  const failedAt = Date.now();
  // A failed read takes its retries (about 3 s); two of them are well inside maxMetricsOutage.
  const holding = await watchUntil(started.id, seen, (s) => (s.metricsOutage?.failedReads ?? 0) >= 2, 'two failed reads into the outage');
  expect(holding).toMatchObject({ phase: 'progressing', weights: { baseline: 75, candidate: 25 } });
  expect(holding.metricsOutage).toMatchObject({ lastError: expect.any(String), rollbackAt: expect.any(String) });
  const duringOutage = holding.decisions.filter((d) => d.at >= new Date(failedAt + 1_500).toISOString());
  expect(duringOutage.length).toBeGreaterThan(0);
  expect(duringOutage.every((d) => d.verdict === 'inconclusive')).toBe(true);
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 75, v2: 25 });

  const final = await watchUntil(started.id, seen, (s) => ['promoted', 'rolled_back', 'aborted', 'failed'].includes(s.phase), 'the end');
  const endedAfterMs = Date.now() - failedAt;
  traffic.stop();
  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/metric/i);
  // No check passed or failed on data it could not read: every one in the outage was inconclusive.
  expect(final.decisions.filter((d) => d.at >= new Date(failedAt + 1_500).toISOString()).every((d) => d.verdict === 'inconclusive')).toBe(true);
  expect(endedAfterMs).toBeGreaterThanOrEqual(12_000);
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 100 });
  expect(plane.proxy.refused.some((r) => r.url.startsWith(`/admin/metrics/${target}`))).toBe(true);
  expectSplits(plane.proxy, target, RESTORED);
  const recorded = await expectHistoryHoldsDecisions(env.client.workflow.getHandle(started.id), seen);
  expect(recorded.outcome).toEqual(final.outcome);
  console.log(`metric source down: ${duringOutage.length}+ inconclusive checks held the step; rolled back ${(endedAfterMs / 1000).toFixed(1)} s into the outage (maxMetricsOutage 12 s): ${final.outcome!.reason}`);
});

it('router down while an abort compensates: the restore is retried (status says so) and ends at 100% baseline once it is back', async () => {
  const { target, traffic } = await plane.target('router-down');
  const started = await startRollout(control.api, e2eSpec(target, plane.v1.url, plane.v2.url, { steps: [{ weight: 25, bake: '2m' }, { weight: 100 }] }));
  const seen: Decision[][] = [];
  await watchUntil(started.id, seen, (s) => s.weights.candidate === 25 && s.decisions.length >= 1, 'baking at 25% with a check done');

  plane.proxy.fail('/admin/routes');
  const abort = await request<RolloutStatus>(control.api.url, 'POST', `/v1/rollouts/${started.id}/abort`, { body: { reason: 'fault suite: abort with the router down' } });
  expect(abort.status).toBe(202);
  const retrying = await watchUntil(started.id, seen, (s) => (s.retrying ?? []).some((r) => r.activity === 'setTrafficWeights' && r.attempt >= 3), 'the restore retried twice');
  expect(retrying.phase).toBe('rolling_back');
  expect(retrying.weights).toEqual({ baseline: 75, candidate: 25 });
  expect(retrying.retrying![0]!.lastError).toBeTruthy();
  // Nothing got through meanwhile: the gateway still has the step's split.
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 75, v2: 25 });

  plane.proxy.heal();
  const healedAt = Date.now();
  const final = await rolloutEnded(control.api, started.id, 60_000);
  traffic.stop();
  expectEnded(final, 'aborted');
  expect(final).toMatchObject({ weights: { baseline: 100, candidate: 0 }, outcome: { result: 'aborted', reason: 'fault suite: abort with the router down' } });
  expect(final.retrying).toBeUndefined();
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 100 });
  expect(plane.proxy.refused.filter((r) => r.method === 'PUT' && r.url === `/admin/routes/${target}`).length).toBeGreaterThanOrEqual(2);
  expectSplits(plane.proxy, target, RESTORED);
  await expectHistoryHoldsDecisions(env.client.workflow.getHandle(started.id), seen);
  console.log(`router down during abort: ${plane.proxy.refused.filter((r) => r.method === 'PUT' && r.url === `/admin/routes/${target}`).length} restore attempts refused; aborted ${((Date.now() - healedAt) / 1000).toFixed(1)} s after the router came back`);
}, 120_000);

it("the candidate's servers die mid-bake: rolled back on errors at the first check with their data, 100% baseline", async () => {
  processes = await startModelProcesses({ v2: { MODEL_LATENCY_MS: '30' } });
  const candidate = processes.v2!;
  const { target, traffic } = await plane.target('candidate-dies');
  const started = await startRollout(control.api, e2eSpec(target, plane.v1.url, candidate.url, {
    steps: [{ weight: 25, bake: '2m' }, { weight: 100 }],
    analysis: { interval: '2s', minRequests: 10, thresholds: { maxErrorRate: 0.05 } },
  }));
  const seen: Decision[][] = [];
  await watchUntil(started.id, seen, (s) => s.weights.candidate === 25 && s.decisions.length >= 2, 'two checks at 25%');

  await candidate.proc.kill9();
  const killedAt = new Date().toISOString();
  const final = await watchUntil(started.id, seen, (s) => ['promoted', 'rolled_back', 'aborted', 'failed'].includes(s.phase), 'the end', 60_000);
  traffic.stop();
  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/error/i);
  expect(weightsOf(await getRoute(plane.gateway.url, target))).toEqual({ v1: 100 });
  // The check that spans the kill may hold too little of the dead servers' data; the next one does not.
  const afterKill = final.decisions.filter((d) => d.at > killedAt);
  expect(afterKill.at(-1)!.verdict).toBe('fail');
  expect(afterKill.length).toBeLessThanOrEqual(2);
  expectSplits(plane.proxy, target, RESTORED);
  await expectHistoryHoldsDecisions(env.client.workflow.getHandle(started.id), seen);
  console.log(`candidate killed: rolled back at check ${afterKill.length} after the kill (${afterKill.map((d) => d.verdict).join(', ')}): ${final.outcome!.reason}`);
}, 120_000);
