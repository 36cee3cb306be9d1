/**
 * The LLM gates end to end, all real and over HTTP on 127.0.0.1: a Temporal dev server, a worker
 * and the REST API (one control plane for the file), the embedded gateway, demo model servers
 * with LLM fault knobs (slow first token, longer answers, broken JSON, truncation), the demo
 * evaluator, and streamed / structured traffic through the gateway. Each test rolls a candidate
 * out to a target of its own and checks how the sequential judge, holding it to the metrics the
 * spec lists, ends the rollout, and what the users' requests got meanwhile.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEvaluator, type Evaluator } from '../../src/demo/evaluator';
import { startModelServer, type ModelServer, type ModelServerOptions } from '../../src/demo/model-server';
import { startTraffic, type TrafficOptions, type TrafficResponse, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import type { RolloutSpecInput } from '../../src/spec';
import type { RolloutStatus } from '../../src/workflows/status';
import { startDevServer, workflowBundle } from '../helpers/dev-server';
import { expectEnded, rolloutEnded, startControlPlane, startRollout, waitForRollout, type ControlPlane } from '../helpers/control-plane';
import { getRoute, putRoute, weightsOf } from '../helpers/e2e';
import { eventually, request } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';

jest.setTimeout(90_000);

let env: TestWorkflowEnvironment;
let gateway: Gateway;
let control: ControlPlane;
let evaluator: Evaluator;
let dataDir: string;
/** Per test: traffic, model servers; run (in reverse) after each test, pass or fail. */
let cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'model-canary-llm-e2e-'));
  const [devServer, gw, ev] = await Promise.all([
    startDevServer(),
    startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) }),
    startEvaluator(),
    workflowBundle(),
  ]);
  env = devServer;
  gateway = gw;
  evaluator = ev;
  control = await startControlPlane(env, { gatewayUrl: gateway.url });
}, 120_000);

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const cleanup of pending) await cleanup().catch(() => undefined);
});

afterAll(async () => {
  await control?.stop();
  await gateway?.close(1_000);
  await evaluator?.close();
  await env?.teardown();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

// ---- helpers ----

async function model(options: ModelServerOptions): Promise<ModelServer> {
  const server = await startModelServer({ latencySpread: 0.05, ...options });
  cleanups.push(() => server.close());
  return server;
}

interface Recorded extends TrafficResponse {
  /** Date.now() when the response had been read whole. */
  at: number;
}

interface Recorder {
  run: TrafficRun;
  responses: Recorded[];
  stop(): Promise<void>;
}

/** Traffic through the gateway to `target`, every response recorded (which version answered, how fast, when). */
function traffic(target: string, options: Partial<TrafficOptions> = {}): Recorder {
  const responses: Recorded[] = [];
  const run = startTraffic({
    gatewayUrl: gateway.url,
    target,
    rate: 50,
    durationMs: Number.POSITIVE_INFINITY,
    users: 1000,
    ...options,
    onResponse: (r) => responses.push({ ...r, at: Date.now() }),
  });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= (async () => {
    run.stop();
    await run.done;
  })());
  cleanups.push(stop);
  return { run, responses, stop };
}

/** A target of its own on the baseline alone. */
async function target(baseline: ModelServer): Promise<string> {
  const name = uniqueTarget('llm');
  await putRoute(gateway.url, name, [{ name: 'v1', url: baseline.url, weight: 100 }]);
  return name;
}

/** Aborts the rollout if it is still running when the test ends (a failed assertion, a timeout). */
function abortAtCleanup(id: string): void {
  // Pushed after the models and the traffic: run before they stop.
  cleanups.push(async () => {
    await request(control.api.url, 'POST', `/v1/rollouts/${id}/abort`, { body: { reason: 'test cleanup' } });
    await rolloutEnded(control.api, id, 20_000);
  });
}

async function rollout(spec: RolloutSpecInput): Promise<RolloutStatus> {
  const started = await startRollout(control.api, spec);
  abortAtCleanup(started.id);
  return started;
}

/**
 * The sequential judge's readiness scaled to a test's traffic (tens of requests per second for
 * seconds instead of hours): a looser gate to advance, never a looser rollback test (α stays 0.01).
 */
const RELAXED = { readyAlpha: 0.2, readyMinRequests: 100, readyErrorRateSlack: 0.05, boundaryMinBaseline: 100, meanMinBaseline: 50 };

/** A rollout that only rolls back or holds: 50% for up to a minute, then 100% once ready (never, for a bad candidate). */
function rollbackSpec(name: string, baseline: ModelServer, candidate: ModelServer, analysis: NonNullable<RolloutSpecInput['analysis']>, extra: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
  return {
    target: name,
    baseline: { version: 'v1', url: baseline.url },
    candidate: { version: 'v2', url: candidate.url },
    steps: [{ weight: 50, bake: '60s' }, { weight: 100 }],
    analysis: { interval: '1s', minRequests: 8, maxExtensionChecks: 90, sequential: RELAXED, ...analysis },
    ...extra,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const hasMirror = async (name: string) => ((await getRoute(gateway.url, name)) as { mirror?: unknown } | undefined)?.mirror !== undefined;
const hasMatch = async (name: string) => ((await getRoute(gateway.url, name)) as { match?: unknown } | undefined)?.match !== undefined;

/** Where the time went, for the report. */
function took(label: string, t0: number, final: RolloutStatus): void {
  console.log(`${label}: ${final.phase} after ${((performance.now() - t0) / 1000).toFixed(1)} s, ${final.decisions.length} checks — ${final.outcome?.reason ?? ''}`);
}

const PRICING = { inputPer1M: 1, outputPer1M: 4 };

// ---- the gates ----

it('rolls back a candidate with 2.5× the time to first token (and the same end-to-end latency), naming time to first token', async () => {
  // 16 tokens: baseline 40 + 15 × 8 = 160 ms, candidate 100 + 15 × 3.5 ≈ 152 ms.
  const v1 = await model({ version: 'v1', ttftMs: 40, interTokenMs: 8 });
  const v2 = await model({ version: 'v2', ttftMs: 100, interTokenMs: 3.5 });
  const name = await target(v1);
  const live = traffic(name, { stream: true, includeUsage: true });
  const t0 = performance.now();
  const started = await rollout(rollbackSpec(name, v1, v2, { metrics: { errors: {}, latency: {}, ttft: {} } }));
  const final = await rolloutEnded(control.api, started.id, 60_000);
  await live.stop();
  took('slow TTFT', t0, final);

  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/time to first token:/);
  expect(final.outcome!.reason).not.toMatch(/(^|[^-])latency:/);
  expect(weightsOf(await getRoute(gateway.url, name))).toEqual({ v1: 100 });
  // The gateway measured both versions' answers end to end as about the same.
  const failed = final.decisions.find((d) => d.verdict === 'fail')!;
  expect(failed.metrics.candidate.latencyP50Ms!).toBeLessThan(1.25 * failed.metrics.baseline.latencyP50Ms!);
});

it('rolls back a candidate whose answers are twice as long, naming output tokens or cost per request', async () => {
  const v1 = await model({ version: 'v1', ttftMs: 20, interTokenMs: 3, answerTokens: 12 });
  const v2 = await model({ version: 'v2', ttftMs: 20, interTokenMs: 3, answerTokens: 24 });
  const name = await target(v1);
  const live = traffic(name, { stream: true, includeUsage: true, maxTokens: 64 });
  const t0 = performance.now();
  const started = await rollout(
    rollbackSpec(name, v1, v2, { metrics: { errors: {}, outputTokens: {}, cost: {} } }, {
      baseline: { version: 'v1', url: v1.url, pricing: PRICING },
      candidate: { version: 'v2', url: v2.url, pricing: PRICING },
    }),
  );
  const final = await rolloutEnded(control.api, started.id, 60_000);
  await live.stop();
  took('2× tokens', t0, final);

  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/output tokens per request:|cost per request:/);
  expect(weightsOf(await getRoute(gateway.url, name))).toEqual({ v1: 100 });
});

it('rolls back a candidate that breaks 30% of its JSON answers, naming invalid structured output', async () => {
  const v1 = await model({ version: 'v1', latencyMs: 30 });
  const v2 = await model({ version: 'v2', latencyMs: 30, invalidJsonRate: 0.3 });
  const name = await target(v1);
  const live = traffic(name, { structuredShare: 0.5 });
  const t0 = performance.now();
  const started = await rollout(rollbackSpec(name, v1, v2, { metrics: { errors: {}, invalidOutput: {} } }));
  const final = await rolloutEnded(control.api, started.id, 60_000);
  await live.stop();
  took('invalid JSON', t0, final);

  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/invalid structured output/);
  expect(weightsOf(await getRoute(gateway.url, name))).toEqual({ v1: 100 });
  // Both kinds of request went through: structured and plain.
  expect(live.responses.some((r) => r.structured)).toBe(true);
  expect(live.responses.some((r) => !r.structured)).toBe(true);
});

it('promotes a healthy candidate held to every LLM metric', async () => {
  const same: Omit<ModelServerOptions, 'version'> = { ttftMs: 30, interTokenMs: 4 };
  const v1 = await model({ version: 'v1', ...same });
  const v2 = await model({ version: 'v2', ...same });
  const name = await target(v1);
  const live = traffic(name, { stream: true, includeUsage: true, structuredShare: 0.5 });
  const t0 = performance.now();
  const started = await rollout({
    target: name,
    baseline: { version: 'v1', url: v1.url, pricing: PRICING },
    candidate: { version: 'v2', url: v2.url, pricing: PRICING },
    steps: [{ weight: 25, bake: '3s' }, { weight: 60, bake: '2s' }, { weight: 100 }],
    analysis: {
      interval: '1s',
      minRequests: 8,
      maxExtensionChecks: 90,
      sequential: RELAXED,
      // Readiness bounds the timing metrics within 3× (as the other e2e tests do); the rest at their defaults.
      metrics: { errors: {}, latency: { tolerance: 3 }, ttft: { tolerance: 3 }, interTokenLatency: { tolerance: 3 }, outputTokens: {}, cost: {}, truncation: {}, invalidOutput: {} },
    },
  });
  const final = await rolloutEnded(control.api, started.id, 75_000);
  await live.stop();
  took('healthy', t0, final);

  expectEnded(final, 'promoted');
  expect(weightsOf(await getRoute(gateway.url, name))).toEqual({ v1: 0, v2: 100 });
  expect(final.decisions.some((d) => d.verdict === 'fail')).toBe(false);
  // Every listed metric was tested, and bounded at the 25% step's last check.
  const last25 = final.decisions.filter((d) => d.weight === 25).at(-1)!;
  const evidence = last25.evidence as Record<string, { tested?: boolean; ready?: boolean } | undefined>;
  for (const metric of ['errors', 'latency', 'ttft', 'interTokenLatency', 'outputTokens', 'cost', 'truncation', 'invalidOutput']) {
    expect({ metric, ...evidence[metric] }).toMatchObject({ metric, tested: true, ready: true });
  }
});

it('a shadow step rolls back a truncating candidate on the evaluator\'s verdicts; users only ever got the baseline, no slower', async () => {
  const v1 = await model({ version: 'v1', latencyMs: 40 });
  const v2 = await model({ version: 'v2', latencyMs: 40, truncationRate: 0.6 });
  const name = await target(v1);
  const live = traffic(name, { rate: 40 });
  // A control beside it: another target on the same baseline server, never mirrored, with the same
  // traffic at the same time, so the comparison sees the same machine (two cores, shared by every suite).
  const controlName = await target(v1);
  const controlLive = traffic(controlName, { rate: 40 });
  // The live path before any mirroring: a few seconds on the baseline alone.
  await eventually(async () => (live.responses.length >= 150 ? true : undefined), 15_000, 'traffic before the rollout');
  const beforeEnd = Date.now();
  const t0 = performance.now();
  const started = await rollout({
    target: name,
    baseline: { version: 'v1', url: v1.url },
    candidate: { version: 'v2', url: v2.url },
    steps: [{ shadow: 50, bake: '60s' }, { weight: 25, bake: '2s' }, { weight: 100 }],
    analysis: { interval: '1s', minRequests: 8, maxExtensionChecks: 90, sequential: RELAXED, metrics: { errors: {}, latency: {} }, evaluator: { url: `${evaluator.url}/evaluate`, sample: 0.3 } },
  });
  await eventually(async () => ((await hasMirror(name)) ? true : undefined), 15_000, 'the mirror at the gateway');
  const mirrorFrom = Date.now();
  const final = await rolloutEnded(control.api, started.id, 60_000);
  const mirrorUntil = Date.now();
  await live.stop();
  await controlLive.stop();
  took('shadow', t0, final);

  expectEnded(final, 'rolled_back');
  expect(final.outcome!.reason).toMatch(/the evaluator's verdicts on the same requests: the candidate did worse in \d+ and better in \d+ of \d+ mirrored pairs/);
  // It never left the shadow step: no live weight, no user answer from the candidate.
  expect(final.decisions.every((d) => d.step === 0 && d.weight === 0)).toBe(true);
  expect(await hasMirror(name)).toBe(false);
  expect(weightsOf(await getRoute(gateway.url, name))).toEqual({ v1: 100 });
  const answered = live.responses.filter((r) => r.status === 200);
  expect(answered.length).toBeGreaterThan(200);
  expect(answered.length).toBe(live.responses.length);
  expect(new Set(answered.map((r) => r.version))).toEqual(new Set(['v1']));
  expect(new Set(answered.map((r) => r.modelVersion))).toEqual(new Set(['v1']));
  // The live path's latency while the gateway mirrored half of it (and called the evaluator for a
  // third of the pairs), side by side with the unmirrored control in the same window: not visibly
  // higher. (Everything here shares one event loop: the gateway, the models, the evaluator, the
  // worker and this traffic.)
  const inWindow = (r: Recorded) => r.status === 200 && r.at >= mirrorFrom && r.at <= mirrorUntil;
  const before = answered.filter((r) => r.at <= beforeEnd).map((r) => r.latencyMs);
  const during = answered.filter(inWindow).map((r) => r.latencyMs);
  const controlDuring = controlLive.responses.filter(inWindow).map((r) => r.latencyMs);
  console.log(
    `live p50 before the shadow step ${median(before).toFixed(1)} ms (${before.length} requests); during it ${median(during).toFixed(1)} ms (${during.length}), unmirrored control ${median(controlDuring).toFixed(1)} ms (${controlDuring.length})`,
  );
  expect(during.length).toBeGreaterThan(20);
  expect(controlDuring.length).toBeGreaterThan(20);
  expect(median(during)).toBeLessThan(1.5 * median(controlDuring) + 20);
});

it('a header-matched step sends every matching request to the candidate and every other to the baseline', async () => {
  const v1 = await model({ version: 'v1', latencyMs: 30 });
  const v2 = await model({ version: 'v2', latencyMs: 30 });
  const name = await target(v1);
  const internal = traffic(name, { rate: 20, headers: { 'x-canary-user': 'internal' } });
  const others = traffic(name, { rate: 20 });
  const t0 = performance.now();
  const started = await rollout({
    target: name,
    baseline: { version: 'v1', url: v1.url },
    candidate: { version: 'v2', url: v2.url },
    steps: [{ weight: 100, bake: '5m', match: { header: 'x-canary-user', values: ['internal'] } }, { weight: 100 }],
    analysis: { interval: '1s', minRequests: 8, sequential: RELAXED },
  });
  await eventually(async () => ((await hasMatch(name)) ? true : undefined), 15_000, 'the header match at the gateway');
  const from = Date.now();
  // Requests sent once the gateway had the match, answered before the step was seen still baking.
  const sentAfter = (rs: Recorded[], t: number) => rs.filter((r) => r.at - r.latencyMs > t);
  await eventually(async () => (sentAfter(internal.responses, from).length >= 60 && sentAfter(others.responses, from).length >= 60 ? true : undefined), 20_000, '60 responses of each kind while it bakes');
  const baking = await waitForRollout(control.api, started.id, (s) => s.phase === 'progressing' && s.step.index === 0, 'still baking the matched step', 5_000);
  const until = Date.now();
  const versions = (rs: Recorded[]) => new Set(sentAfter(rs, from).filter((r) => r.at <= until).map((r) => `${r.status} ${r.version} ${r.modelVersion}`));
  expect(versions(internal.responses)).toEqual(new Set(['200 v2 v2']));
  expect(versions(others.responses)).toEqual(new Set(['200 v1 v1']));
  expect(baking.decisions.every((d) => d.verdict !== 'fail')).toBe(true);

  const aborted = await request<RolloutStatus>(control.api.url, 'POST', `/v1/rollouts/${started.id}/abort`, { body: { reason: 'e2e: matched step seen' } });
  expect(aborted.status).toBe(202);
  const final = await rolloutEnded(control.api, started.id, 20_000);
  await Promise.all([internal.stop(), others.stop()]);
  took('header match', t0, final);
  expectEnded(final, 'aborted');
  expect(weightsOf(await getRoute(gateway.url, name))).toEqual({ v1: 100 });
  expect(await hasMatch(name)).toBe(false);
});
