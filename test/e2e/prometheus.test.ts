/**
 * Rollouts end to end with Prometheus as the metric source: a Temporal dev server, a worker with
 * the production adapters, the REST API, the embedded gateway routing real traffic to demo model
 * servers, and a real Prometheus (1 s scrapes) scraping the gateway and the model servers. The
 * judge reads only what Prometheus answers.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { RolloutSpecInput } from '../../src/spec';
import { expectEnded, rolloutEnded, startControlPlane, startRollout, type ControlPlane } from '../helpers/control-plane';
import { startDevServer, workflowBundle } from '../helpers/dev-server';
import { getRoute, putRoute, weightsOf } from '../helpers/e2e';
import { startPrometheus, type RunningPrometheus } from '../helpers/prometheus';
import { uniqueTarget } from '../helpers/specs';

let env: TestWorkflowEnvironment;
let gateway: Gateway;
let control: ControlPlane;
let prometheus: RunningPrometheus;
let dataDir: string;
const models = {} as Record<'v1' | 'v2' | 'faulty', ModelServer>;
const runs: TrafficRun[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'model-canary-e2e-prom-'));
  const [devServer, v1, v2, faulty, gw] = await Promise.all([
    startDevServer(),
    startModelServer({ version: 'v1', latencyMs: 30, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 30, latencySpread: 0.1 }),
    // Serves under its own model name, as a real vLLM would: the spec maps version v2 to it.
    startModelServer({ version: 'llama-faulty', latencyMs: 30, latencySpread: 0.1, errorRate: 0.3 }),
    startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) }),
    workflowBundle(),
  ]);
  env = devServer;
  Object.assign(models, { v1, v2, faulty });
  gateway = gw;
  const host = (url: string) => new URL(url).host;
  [prometheus, control] = await Promise.all([
    startPrometheus({ targets: [host(gateway.url), host(v1.url), host(faulty.url)] }),
    startControlPlane(env, { gatewayUrl: gateway.url }),
  ]);
}, 120_000);

afterAll(async () => {
  for (const run of runs) run.stop();
  await Promise.all(runs.map((r) => r.done));
  await control?.stop();
  await prometheus?.stop();
  await gateway?.close(1_000);
  await Promise.all(Object.values(models).map((m) => m.close()));
  await env?.teardown();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

/**
 * A target served 100% by v1, with 50 requests/s of traffic through the gateway until the test
 * ends (the model servers' own metrics count every target's traffic: one at a time).
 */
async function prepareTarget(): Promise<string> {
  const target = uniqueTarget('prom');
  await putRoute(gateway.url, target, [{ name: 'v1', url: models.v1.url, weight: 100 }]);
  runs.push(startTraffic({ gatewayUrl: gateway.url, target, rate: 50, durationMs: Number.POSITIVE_INFINITY, users: 1000 }));
  return target;
}

afterEach(async () => {
  for (const run of runs) run.stop();
  await Promise.all(runs.splice(0).map((r) => r.done));
});

function spec(target: string, candidateUrl: string, metrics: RolloutSpecInput['metrics']): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: models.v1.url },
    candidate: { version: 'v2', url: candidateUrl },
    steps: [{ weight: 10, bake: '6s' }, { weight: 50, bake: '6s' }, { weight: 100 }],
    // The model servers run in this one process, so each reports the whole process's CPU: at 10%
    // the candidate's CPU per request would look 9× the baseline's. Resource use is not what this
    // suite tests (test/unit/sequential-judge.test.ts does).
    analysis: { interval: '2s', minRequests: 5, readiness: 'advisory', sequential: { resource: { maxCpuPerRequestRatio: 1000 } } },
    routing: { kind: 'gateway' },
    metrics,
  };
}

it('promotes a healthy candidate judged on the gateway metrics Prometheus scraped', async () => {
  const target = await prepareTarget();
  const started = await startRollout(control.api, spec(target, models.v2.url, { kind: 'prometheus', url: prometheus.url, preset: 'gateway' }));
  const final = await rolloutEnded(control.api, started.id, 50_000);

  expectEnded(final, 'promoted');
  expect(final.weights).toEqual({ baseline: 0, candidate: 100 });
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 0, v2: 100 });
  expect(final.decisions.some((d) => d.verdict === 'fail')).toBe(false);
  // The checks saw the candidate's share of the traffic, as Prometheus counted it at each weight.
  const passed = final.decisions.filter((d) => d.verdict === 'pass');
  expect(passed.some((d) => d.weight === 10)).toBe(true);
  const at50 = passed.filter((d) => d.weight === 50);
  expect(at50.length).toBeGreaterThan(0);
  // Over the step's checks together: one 2 s check holds a few dozen scraped requests, whose share
  // wanders (0.74 once in CI); the step's 100+ give the split itself.
  const sum = (side: 'candidate' | 'baseline') => at50.reduce((n, d) => n + d.metrics[side].requests, 0);
  const share = sum('candidate') / (sum('candidate') + sum('baseline'));
  expect(share).toBeGreaterThan(0.3);
  expect(share).toBeLessThan(0.7);
  for (const d of at50) expect(d.metrics.candidate.latencyP95Ms).toBeGreaterThan(0);
}, 60_000);

it('rolls back a candidate with 30% errors seen in its vLLM metrics; the gateway is back at 100% baseline', async () => {
  const target = await prepareTarget();
  const metrics = { kind: 'prometheus' as const, url: prometheus.url, preset: 'vllm' as const, versionLabels: { v2: 'llama-faulty' } };
  const started = await startRollout(control.api, spec(target, models.faulty.url, metrics));
  const final = await rolloutEnded(control.api, started.id, 50_000);

  expectEnded(final, 'rolled_back');
  expect(final.weights).toEqual({ baseline: 100, candidate: 0 });
  expect(weightsOf(await getRoute(gateway.url, target))).toEqual({ v1: 100 });
  expect(final.outcome!.reason).toMatch(/^the sequential judge failed the candidate: (error rate: |catastrophic candidate: )/);
  expect(final.outcome!.reason).not.toMatch(/resource use/);
  const failed = final.decisions.find((d) => d.verdict === 'fail')!;
  expect(failed.metrics.candidate.errors).toBeGreaterThan(0);
  expect(failed.metrics.baseline.errors).toBe(0);
}, 60_000);
