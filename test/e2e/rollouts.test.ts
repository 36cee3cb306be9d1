/**
 * Rollouts end to end, all real and over HTTP on 127.0.0.1: a Temporal dev server, a worker
 * (in-process, with the production adapters pointing at the gateway), the REST API, the gateway
 * and demo model servers, with traffic from random user keys. Each test drives a rollout through
 * the REST API and checks what the gateway ends up routing.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { RolloutSpecInput } from '../../src/spec';
import type { RolloutStatus } from '../../src/workflows/status';
import { startDevServer, workflowBundle } from '../helpers/dev-server';
import { expectEnded, rolloutEnded, rolloutStatus, startControlPlane, startRollout, waitForRollout, type ControlPlane } from '../helpers/control-plane';
import { e2eSpec, expectRolledBackOnErrorRate, freePort, getRoute, putRoute, spawnTs, waitForHealthy, weightsOf, type Proc } from '../helpers/e2e';
import { eventually, listen, request, type Listening } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';

let env: TestWorkflowEnvironment;
let gateway: Gateway;
let control: ControlPlane;
const models = {} as Record<'v1' | 'v2' | 'faulty' | 'slow', ModelServer>;
const cleanups: Array<() => Promise<unknown>> = [];
const dataDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'model-canary-e2e-'));
  dataDirs.push(dir);
  return dir;
}

async function controlPlane(gatewayUrl: string): Promise<ControlPlane> {
  const plane = await startControlPlane(env, { gatewayUrl });
  cleanups.push(() => plane.stop());
  return plane;
}

function traffic(gatewayUrl: string, target: string, rate = 50): TrafficRun {
  const run = startTraffic({ gatewayUrl, target, rate, durationMs: Number.POSITIVE_INFINITY, users: 1000 });
  cleanups.push(async () => {
    run.stop();
    await run.done;
  });
  return run;
}

async function stopTraffic(run: TrafficRun): Promise<void> {
  run.stop();
  await run.done;
}

const status = rolloutStatus;
const waitFor = waitForRollout;
const ended = rolloutEnded;

/** The target exists before the rollout: 100% on the baseline, with traffic flowing. */
async function prepareTarget(gatewayUrl: string, rate?: number): Promise<{ target: string; run: TrafficRun }> {
  const target = uniqueTarget('e2e');
  await putRoute(gatewayUrl, target, [{ name: 'v1', url: models.v1.url, weight: 100 }]);
  return { target, run: traffic(gatewayUrl, target, rate) };
}

beforeAll(async () => {
  const [devServer, v1, v2, faulty, slow, gw] = await Promise.all([
    startDevServer(),
    startModelServer({ version: 'v1', latencyMs: 50, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 50, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 50, latencySpread: 0.1, errorRate: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 150, latencySpread: 0.1 }),
    startGateway({ port: 0, dataDir: tempDir(), logger: pino({ level: 'silent' }) }),
    workflowBundle(),
  ]);
  env = devServer;
  Object.assign(models, { v1, v2, faulty, slow });
  gateway = gw;
  control = await controlPlane(gateway.url);
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await gateway?.close(1_000);
  await Promise.all(Object.values(models).map((m) => m.close()));
  await env?.teardown();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

it('promotes a healthy candidate: the gateway ends at 0/100', async () => {
  const { target, run } = await prepareTarget(gateway.url);
  const started = await startRollout(control.api, e2eSpec(target, models.v1.url, models.v2.url));
  const final = await ended(control.api, started.id);
  await stopTraffic(run);

  expectEnded(final, 'promoted');
  expect(final).toMatchObject({ phase: 'promoted', weights: { baseline: 0, candidate: 100 }, outcome: { result: 'promoted' } });
  expect(final.decisions.length).toBeGreaterThanOrEqual(2);
  expect(final.decisions.some((d) => d.verdict === 'fail')).toBe(false);
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });
  // Real traffic reached the candidate through the gateway, as the checks saw it.
  expect(final.decisions.filter((d) => d.weight === 60).some((d) => d.metrics.candidate.requests > 0)).toBe(true);
});

it('rolls back a candidate with 10% errors, citing the error rate; the gateway is back at 100% baseline', async () => {
  const { target, run } = await prepareTarget(gateway.url);
  const started = await startRollout(control.api, e2eSpec(target, models.v1.url, models.faulty.url));
  const final = await ended(control.api, started.id);
  await stopTraffic(run);

  expectEnded(final, 'rolled_back');
  await expectRolledBackOnErrorRate(final, gateway.url, target);
});

it('rolls back a candidate with 3x the latency (threshold between the two)', async () => {
  const { target, run } = await prepareTarget(gateway.url);
  const spec = e2eSpec(target, models.v1.url, models.slow.url, {
    analysis: { judge: 'threshold', interval: '1s', minRequests: 8, failureLimit: 2, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 100 } },
  });
  const started = await startRollout(control.api, spec);
  const final = await ended(control.api, started.id);
  await stopTraffic(run);

  expectEnded(final, 'rolled_back');
  expect(final).toMatchObject({ phase: 'rolled_back', weights: { baseline: 100, candidate: 0 } });
  expect(final.outcome!.reason).toMatch(/candidate p95 latency [\d.]+ ms is above maxLatencyP95Ms 100 ms/);
  const failed = final.decisions.filter((d) => d.verdict === 'fail');
  expect(failed).toHaveLength(2);
  // The gateway measured the candidate slower than the baseline in the same intervals.
  for (const d of failed) {
    expect(d.metrics.candidate.latencyP95Ms!).toBeGreaterThan(100);
    expect(d.metrics.candidate.latencyP50Ms!).toBeGreaterThan(2 * d.metrics.baseline.latencyP50Ms!);
  }
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 100 });
});

describe('the default (sequential) judge', () => {
  /**
   * No `judge` in the spec. The readiness settings are scaled to a test's traffic (100 req/s for
   * half a minute instead of hours): a looser gate than the defaults, never a looser rollback test.
   */
  const sequentialSpec = (target: string, candidateUrl: string): RolloutSpecInput =>
    e2eSpec(target, models.v1.url, candidateUrl, {
      steps: [{ weight: 25, bake: '3s' }, { weight: 60, bake: '2s' }, { weight: 100 }],
      analysis: {
        interval: '1s',
        minRequests: 8,
        maxExtensionChecks: 90,
        sequential: { readyAlpha: 0.2, readyMinRequests: 100, readyErrorRateSlack: 0.05, boundaryMinBaseline: 100, tolerances: { latency: 3, ttfb: 3 } },
      },
    });

  it('promotes a healthy candidate once every metric is bounded below its tolerance at 25%', async () => {
    const { target, run } = await prepareTarget(gateway.url, 100);
    const started = await startRollout(control.api, sequentialSpec(target, models.v2.url));
    expect(started.spec.analysis.judge).toBe('sequential');
    const details = await (await env.client.workflow.getHandle(started.id).describe()).staticDetails();
    expect(details).toMatch(/sequential judge vs the baseline: α = 0\.01 for the whole rollout; gates \(tolerance candidate\/baseline\): error rate 1\.2×, latency 3×, time to first byte \d[\d.]*×/);
    const final = await ended(control.api, started.id, 90_000);
    await stopTraffic(run);

    expectEnded(final, 'promoted');
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });
    // The 25% step ended on a check whose evidence bounded every metric (the gate beyond 25%).
    const last25 = final.decisions.filter((d) => d.weight === 25).at(-1)!;
    expect(last25.verdict).toBe('pass');
    const evidence = last25.evidence as Record<string, { ready: boolean; tested: boolean; errorRateUpperBound?: number }>;
    expect(evidence.errors!.ready).toBe(true);
    expect(evidence.errors!.errorRateUpperBound).toBeLessThanOrEqual(0.05);
    expect(evidence.latency!.ready).toBe(true);
    expect(last25.reasons.join(' ')).toMatch(/ready to advance/);
    expect(final.decisions.some((d) => d.verdict === 'fail')).toBe(false);
  });

  it('rolls back a candidate with 10% errors (baseline 0%) on the error e-value', async () => {
    const { target, run } = await prepareTarget(gateway.url, 100);
    const started = await startRollout(control.api, sequentialSpec(target, models.faulty.url));
    const final = await ended(control.api, started.id);
    await stopTraffic(run);

    expectEnded(final, 'rolled_back');
    expect(final.outcome!.reason).toMatch(/the sequential judge failed the candidate: error rate: candidate \d+\/\d+ \([\d.]+%\) vs baseline 0\/\d+ \(0\.00%\); the e-value [\d.e+]+ reached [\d.]+/);
    // Sequential: the first failing check rolls back (no failureLimit counting).
    expect(final.decisions.filter((d) => d.verdict === 'fail')).toHaveLength(1);
    expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 100 });
  });
});

it('aborts mid-bake: 100% baseline at the gateway within 1 s of the API call', async () => {
  const { target, run } = await prepareTarget(gateway.url);
  const spec = e2eSpec(target, models.v1.url, models.v2.url, { steps: [{ weight: 25, bake: '2m' }, { weight: 100 }] });
  const started = await startRollout(control.api, spec);
  await waitFor(control.api, started.id, (s) => s.weights.candidate === 25 && s.decisions.length >= 1, 'baking at 25% with a check done');
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 75, v2: 25 });

  const t0 = performance.now();
  const abort = request<RolloutStatus>(control.api.url, 'POST', `/v1/rollouts/${started.id}/abort`, { body: { reason: 'e2e abort' } });
  let restoredMs: number | undefined;
  while (performance.now() - t0 < 10_000) {
    const weights = weightsOf(await getRoute(gateway.url, target));
    if (weights.v1 === 100) {
      restoredMs = performance.now() - t0;
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const answered = await abort;
  expect(answered.status).toBe(202);
  expect(['rolling_back', 'aborted']).toContain(answered.body.phase);

  const final = await ended(control.api, started.id);
  await stopTraffic(run);
  expectEnded(final, 'aborted');
  console.log(`abort → 100% baseline at the gateway: ${restoredMs?.toFixed(0)} ms after the API call`);
  expect(restoredMs).toBeDefined();
  expect(restoredMs!).toBeLessThan(1_000);
  expect(final).toMatchObject({ phase: 'aborted', weights: { baseline: 100, candidate: 0 }, outcome: { result: 'aborted', reason: 'e2e abort' } });
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 100 });
});

describe('a gateway process SIGKILLed and restarted mid-rollout', () => {
  let gatewayProc: Proc | undefined;

  afterAll(async () => {
    await gatewayProc?.kill9();
  });

  it('still finishes the rollout correctly (counter resets are read as resets)', async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const gatewayEnv = { GATEWAY_PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', GATEWAY_ADMIN_TOKEN: '' };
    const url = `http://127.0.0.1:${port}`;
    gatewayProc = spawnTs('gateway', 'src/gateway/main.ts', gatewayEnv);
    await waitForHealthy(url);
    const plane = await controlPlane(url);

    const { target, run } = await prepareTarget(url, 50);
    const spec = e2eSpec(target, models.v1.url, models.v2.url, { steps: [{ weight: 25, bake: '5s' }, { weight: 60, bake: '4s' }, { weight: 100 }] });
    const started = await startRollout(plane.api, spec);
    const before = await waitFor(plane.api, started.id, (s) => s.weights.candidate === 25 && s.decisions.length >= 2, 'two checks at 25%');
    const counters = await (await fetch(`${url}/admin/metrics/${target}`)).json() as { versions: Record<string, { requests: number }> };

    await gatewayProc.kill9();
    gatewayProc = spawnTs('gateway', 'src/gateway/main.ts', gatewayEnv);
    await waitForHealthy(url);
    // The route survived (DATA_DIR); the counters started again from zero.
    expect(weightsOf(await getRoute(url, target)).v2).toBeGreaterThanOrEqual(25);
    const after = await (await fetch(`${url}/admin/metrics/${target}`)).json() as { versions?: Record<string, { requests: number }> };
    expect(after.versions?.v1?.requests ?? 0).toBeLessThan(counters.versions.v1!.requests);

    const final = await ended(plane.api, started.id);
    await stopTraffic(run);
    expectEnded(final, 'promoted');
    expect(final).toMatchObject({ phase: 'promoted', weights: { baseline: 0, candidate: 100 } });
    expect(final.decisions.length).toBeGreaterThan(before.decisions.length);
    for (const d of final.decisions) {
      for (const v of [d.metrics.baseline, d.metrics.candidate]) {
        expect(v.requests).toBeGreaterThanOrEqual(0);
        expect(v.errors).toBeGreaterThanOrEqual(0);
      }
      expect(d.verdict).not.toBe('fail');
    }
    expect(weightsOf(await getRoute(url, target))).toEqual({ v1: 0, v2: 100 });
  });
});
