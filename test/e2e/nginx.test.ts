/**
 * Rollouts end to end through the user's own data plane: a real NGINX (Debian) serving traffic
 * between demo model servers (processes of their own) through the config the NGINX router
 * renders, and a real Prometheus scraping the model servers' vLLM-named metrics. The worker, the
 * REST API and a Temporal dev server are the product's; the embedded gateway is not involved.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nginxTrafficRouter } from '../../src/activities/routers/nginx';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import type { RolloutSpecInput } from '../../src/spec';
import { expectEnded, rolloutEnded, startControlPlane, startRollout, type ControlPlane } from '../helpers/control-plane';
import { startDevServer, workflowBundle } from '../helpers/dev-server';
import { startModelProcesses, stopModelProcesses, type ModelProcess } from '../helpers/model-processes';
import { versionsServing } from '../helpers/http';
import { startNginx, type NginxInstance } from '../helpers/nginx';
import { startPrometheus, type RunningPrometheus } from '../helpers/prometheus';
import { uniqueTarget } from '../helpers/specs';

let env: TestWorkflowEnvironment;
let nginx: NginxInstance;
let prometheus: RunningPrometheus;
let control: ControlPlane;
let models: Record<string, ModelProcess>;
let configDir: string;
const runs: TrafficRun[] = [];

// Compute per request, so that CPU per request compares like with like at 10% (src/demo/model-server.ts).
const MODEL = { MODEL_LATENCY_MS: '30', MODEL_LATENCY_SPREAD: '0.1', MODEL_CPU_MS_PER_REQUEST: '3' };

beforeAll(async () => {
  configDir = mkdtempSync(join(tmpdir(), 'model-canary-nginx-routes-'));
  const [devServer, started, proxy] = await Promise.all([
    startDevServer(),
    // The faulty candidate serves under a model name of its own, as a real vLLM deployment would.
    startModelProcesses({ v1: MODEL, v2: MODEL, 'v2-faulty': { ...MODEL, MODEL_ERROR_RATE: '0.3' } }),
    startNginx({ configDir }),
    workflowBundle(),
  ]);
  env = devServer;
  models = started;
  nginx = proxy;
  [prometheus, control] = await Promise.all([startPrometheus({ targets: Object.values(models).map((m) => m.host) }), startControlPlane(env)]);
}, 180_000);

afterAll(async () => {
  for (const run of runs) run.stop();
  await Promise.all(runs.map((r) => r.done));
  await control?.stop();
  await prometheus?.stop();
  await nginx?.stop();
  await stopModelProcesses(models);
  await env?.teardown();
  rmSync(configDir, { recursive: true, force: true });
}, 60_000);

afterEach(async () => {
  for (const run of runs) run.stop();
  await Promise.all(runs.splice(0).map((r) => r.done));
});

/** A target NGINX serves 100% from v1 (as an operator set it up), with 40 requests/s through NGINX. */
async function prepareTarget(): Promise<string> {
  const target = uniqueTarget('nginx');
  await nginxTrafficRouter(nginx.routing).setWeights({ target, versions: [{ version: 'v1', url: models.v1!.url, weight: 100 }] }, { rolloutId: `operator-${target}` });
  runs.push(startTraffic({ gatewayUrl: nginx.url, target, rate: 40, durationMs: Number.POSITIVE_INFINITY, users: 1000 }));
  return target;
}

function spec(target: string, candidate: ModelProcess, versionLabels: Record<string, string> = {}): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: models.v1!.url },
    candidate: { version: 'v2', url: candidate.url },
    steps: [{ weight: 10, bake: '8s' }, { weight: 50, bake: '8s' }, { weight: 100 }],
    analysis: { interval: '4s', minRequests: 5, readiness: 'advisory' },
    routing: nginx.routing,
    metrics: { kind: 'prometheus', url: prometheus.url, preset: 'vllm', versionLabels },
  };
}

/** What NGINX serves for the target now, as its status location answers (the live config, not the file). */
async function served(target: string): Promise<Record<string, number>> {
  const res = await fetch(`${nginx.url}/_model_canary/${target}`);
  const body = (await res.json()) as { versions: Array<{ version: string; weight: number }> };
  return Object.fromEntries(body.versions.map((v) => [v.version, v.weight]));
}

it('promotes a healthy candidate through NGINX, judged on its vLLM metrics in Prometheus: NGINX ends serving v2', async () => {
  const target = await prepareTarget();
  const started = await startRollout(control.api, spec(target, models.v2!));
  const final = await rolloutEnded(control.api, started.id, 90_000);

  expectEnded(final, 'promoted');
  expect(await served(target)).toEqual({ v1: 0, v2: 100 });
  const passed = final.decisions.filter((d) => d.verdict === 'pass');
  expect(passed.some((d) => d.weight === 10)).toBe(true);
  // The checks measured NGINX's split: about half of the traffic at 50%, as the model servers counted it.
  for (const d of passed.filter((d) => d.weight === 50)) {
    const share = d.metrics.candidate.requests / (d.metrics.candidate.requests + d.metrics.baseline.requests);
    expect(share).toBeGreaterThan(0.3);
    expect(share).toBeLessThan(0.7);
  }
}, 120_000);

it('rolls back a candidate with 30% errors; NGINX is back at 100% baseline', async () => {
  const target = await prepareTarget();
  const started = await startRollout(control.api, spec(target, models['v2-faulty']!, { v2: 'v2-faulty' }));
  const final = await rolloutEnded(control.api, started.id, 90_000);

  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/error/); // "errors" or "error rate", as the judge words it
  expect(await served(target)).toMatchObject({ v1: 100 });
  expect(Object.values(await served(target)).reduce((a, b) => a + b)).toBe(100);
  const failed = final.decisions.find((d) => d.verdict === 'fail')!;
  expect(failed.metrics.candidate.errors).toBeGreaterThan(0);
}, 120_000);

it('a header match at 100%: requests with x-canary-user: internal all reach v2, every other request v1', async () => {
  const target = uniqueTarget('nginx');
  const match = { header: 'x-canary-user', values: ['internal'], others: 'v1' };
  const router = nginxTrafficRouter(nginx.routing);
  await router.setWeights(
    { target, versions: [{ version: 'v1', url: models.v1!.url, weight: 0 }, { version: 'v2', url: models.v2!.url, weight: 100 }], match },
    { rolloutId: `operator-${target}` },
  );
  // The model server that answered (x-model-version), for 60 requests, half of them with a user key.
  const servedBy = (headers: Record<string, string>) =>
    versionsServing(`${nginx.url}/${target}/healthz`, 60, (i) => ({ ...headers, ...(i % 2 ? { 'x-canary-key': `user-${i}` } : {}) }));
  expect(await servedBy({ 'x-canary-user': 'internal' })).toEqual(['v2']);
  expect(await servedBy({})).toEqual(['v1']);
  expect(await servedBy({ 'x-canary-user': 'external' })).toEqual(['v1']);
  await expect(router.readRoute(target)).resolves.toMatchObject({ match });
}, 30_000);
