/**
 * SLO guardrails end to end, all real and over HTTP on 127.0.0.1: a Temporal dev server, a
 * worker (production adapters → the gateway), the REST API, the gateway and two demo model
 * servers that both fail ~4% of requests. Under the default (sequential) judge the candidate is
 * exactly as good as the baseline, so the comparison finds nothing; the given
 * `analysis.thresholds.maxErrorRate` of 1% is what rolls it back.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { SloReport } from '../../src/analysis/sequential';
import type { RolloutStatus } from '../../src/workflows/status';
import { startControlPlane } from '../helpers/control-plane';
import { startDevServer, workflowBundle } from '../helpers/dev-server';
import { e2eSpec, getRoute, putRoute, weightsOf } from '../helpers/e2e';
import { eventually, freePorts, request, type Listening } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';

let env: TestWorkflowEnvironment | undefined;
let gateway: Gateway | undefined;
let api: Listening | undefined;
let traffic: TrafficRun | undefined;
let dataDir: string | undefined;
const models: ModelServer[] = [];
const stops: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  const [gatewayPort, baselinePort, candidatePort] = await freePorts(3);
  dataDir = mkdtempSync(join(tmpdir(), 'model-canary-slo-e2e-'));
  const [devServer, baseline, candidate, gw] = await Promise.all([
    startDevServer(),
    // Both versions fail ~4% of requests: the candidate is as good as the baseline.
    startModelServer({ version: 'v1', port: baselinePort, latencyMs: 20, latencySpread: 0.1, errorRate: 0.04 }),
    startModelServer({ version: 'v2', port: candidatePort, latencyMs: 20, latencySpread: 0.1, errorRate: 0.04 }),
    startGateway({ port: gatewayPort!, dataDir, logger: pino({ level: 'silent' }) }),
    workflowBundle(),
  ]);
  env = devServer;
  models.push(baseline, candidate);
  gateway = gw;

  const control = await startControlPlane(env, { gatewayUrl: gw.url });
  stops.push(() => control.stop());
  api = control.api;
}, 120_000);

afterAll(async () => {
  if (traffic) {
    traffic.stop();
    await traffic.done.catch(() => undefined);
  }
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await gateway?.close(1_000);
  await Promise.all(models.map((m) => m.close()));
  await env?.teardown();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

async function status(id: string): Promise<RolloutStatus> {
  const res = await request<RolloutStatus>(api!.url, 'GET', `/v1/rollouts/${id}`);
  if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

const FINAL = ['promoted', 'rolled_back', 'aborted', 'failed'];

it('rolls back a candidate as good as the baseline but above analysis.thresholds.maxErrorRate, citing the SLO', async () => {
  const [baseline, candidate] = models as [ModelServer, ModelServer];
  const target = uniqueTarget('e2e-slo');
  await putRoute(gateway!.url, target, [{ name: 'v1', url: baseline.url, weight: 100 }]);
  traffic = startTraffic({ gatewayUrl: gateway!.url, target, rate: 100, durationMs: Number.POSITIVE_INFINITY, users: 1000 });

  const spec = e2eSpec(target, baseline.url, candidate.url, {
    steps: [{ weight: 50, bake: '60s' }, { weight: 100 }],
    analysis: { interval: '1s', thresholds: { maxErrorRate: 0.01 } }, // no `judge`: the sequential judge
  });
  const res = await request<RolloutStatus>(api!.url, 'POST', '/v1/rollouts', { body: spec });
  expect(res.status).toBe(201);
  const id = res.body.id;
  expect(res.body.spec.analysis.judge).toBe('sequential');

  const t0 = performance.now();
  const final = await eventually(async () => {
    const s = await status(id);
    return FINAL.includes(s.phase) ? s : undefined;
  }, 50_000, `${id} to end`);
  const seconds = (performance.now() - t0) / 1000;
  traffic.stop();
  await traffic.done;

  const story = final.decisions.map((d) => `  step ${d.step} @${d.weight}% ${d.verdict}: ${d.reasons.join('; ')}`).join('\n');
  if (final.phase !== 'rolled_back') throw new Error(`${id} ended ${final.phase}: ${final.outcome?.reason}\n${story}`);
  console.log(`SLO e2e: rolled back after ${seconds.toFixed(1)} s, ${final.decisions.length} checks: ${final.outcome?.reason}`);

  expect(final).toMatchObject({ phase: 'rolled_back', weights: { baseline: 100, candidate: 0 }, outcome: { result: 'rolled_back' } });
  expect(final.outcome!.reason).toMatch(/SLO analysis\.thresholds\.maxErrorRate 1%: the candidate's error rate is above it: \d+\/\d+ \([\d.]+%\)/);
  // The failing check: the SLO breached, not the comparison with the baseline.
  const failed = final.decisions.filter((d) => d.verdict === 'fail');
  expect(failed).toHaveLength(1);
  const evidence = failed[0]!.evidence as { slo: SloReport; errors: { eValue: number; rollbackAt: number } };
  expect(evidence.slo.errorRate).toMatchObject({ limit: 0.01, breached: true });
  expect(evidence.slo.latencyP95).toBeNull();
  expect(evidence.errors.eValue).toBeLessThan(evidence.errors.rollbackAt);
  // The baseline really failed as often as the candidate (both ~4%).
  const totals = final.decisions.reduce(
    (t, d) => ({ cr: t.cr + d.metrics.candidate.requests, ce: t.ce + d.metrics.candidate.errors, br: t.br + d.metrics.baseline.requests, be: t.be + d.metrics.baseline.errors }),
    { cr: 0, ce: 0, br: 0, be: 0 },
  );
  expect(totals.be / totals.br).toBeGreaterThan(0.015);
  expect(totals.ce / totals.cr).toBeGreaterThan(0.015);
  // The gateway is back at 100% baseline.
  expect(weightsOf(await getRoute(gateway!.url, target))).toEqual({ v1: 100 });
}, 90_000);
