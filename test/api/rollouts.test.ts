/**
 * The REST API contract (design.md, "REST API (contract, v1)") over real HTTP, against a real
 * Temporal dev server and a real worker running the rollout workflow (recording adapters).
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { RolloutSpecInput } from '../../src/spec';
import { ACTIONS } from '../../src/api/rollout-service';
import type { ApiServer } from '../../src/api/server';
import type { RolloutStatus, RolloutSummary } from '../../src/workflows/status';
import { CanaryWeight, RolloutPhase, RolloutTarget } from '../../src/workflows/search-attributes';
import { ScriptedMetrics, failing, startDevServer, startTestWorker, uniqueTaskQueue, type TestWorker } from '../helpers/dev-server';
import { eventually, request } from '../helpers/http';
import { serveApi } from './support';

const UI = 'http://temporal-ui.test:8233';
const RUN_ID = '[0-9a-f-]{36}';

let env: TestWorkflowEnvironment;
let worker: TestWorker;
let api: ApiServer;
const cleanups: Array<() => Promise<void>> = [];

let counter = 0;
function uniqueTarget(prefix = 'api'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.floor(Math.random() * 1e5)}`;
}

/** A valid spec with short durations; `hold` keeps the rollout in its first step for a while. */
function spec(target: string, overrides: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
    steps: [{ weight: 10, bake: '2s' }, { weight: 50, bake: '2s' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 50, failureLimit: 2 },
    ...overrides,
  };
}
const hold = { steps: [{ weight: 10, bake: '30s' }, { weight: 100 }] };

/** The app behind the server main.ts runs, on 127.0.0.1:0. */
async function appOn(taskQueue: string, extra: { apiToken?: string; queryTimeoutMs?: number; updateTimeoutMs?: number } = {}): Promise<ApiServer> {
  const { apiToken, ...timeouts } = extra;
  const server = await serveApi({
    client: env.client,
    config: { namespace: env.namespace ?? 'default', taskQueue, temporalUiUrl: UI, ...(apiToken ? { apiToken } : {}) },
    // The test worker's router: what its rollouts applied is what a start reads as live.
    routerFor: () => worker.router,
    ...timeouts,
  });
  cleanups.push(() => server.close());
  return server;
}

/**
 * A worker on its own task queue whose every `rollout` workflow task fails
 * (test/api/fixtures/broken-workflow.ts), as a bug in a deployed worker would.
 */
async function startBrokenWorker(): Promise<string> {
  const taskQueue = uniqueTaskQueue('broken');
  const noop = () => undefined;
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('./fixtures/broken-workflow'),
    logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error },
  });
  const broken = await Worker.create({ connection: env.nativeConnection, namespace: env.namespace ?? 'default', taskQueue, workflowBundle });
  const running = broken.run();
  cleanups.push(async () => {
    broken.shutdown();
    await running;
  });
  return taskQueue;
}

const get = (path: string, base = api.url) => request(base, 'GET', path);
const post = (path: string, body?: unknown, base = api.url) => request(base, 'POST', path, { body });

async function startRollout(input: RolloutSpecInput, base = api.url): Promise<RolloutStatus> {
  const res = await post('/v1/rollouts', input, base);
  expect(res.status).toBe(201);
  return res.body as RolloutStatus;
}

async function waitForPhase(id: string, phases: string[], base = api.url, timeoutMs = 20_000): Promise<RolloutStatus> {
  return eventually(
    async () => {
      const res = await get(`/v1/rollouts/${id}`, base);
      return phases.includes(res.body.phase) ? (res.body as RolloutStatus) : undefined;
    },
    timeoutMs,
    `${id} to reach ${phases.join('/')}`,
  );
}

beforeAll(async () => {
  env = await startDevServer();
  worker = await startTestWorker(env);
  api = await appOn(worker.taskQueue);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await worker?.shutdown();
  await env?.teardown();
});

describe('GET /healthz', () => {
  it('answers 200 with Temporal reachable', async () => {
    const res = await get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, temporal: { ok: true } });
  });
});

describe('POST /v1/rollouts', () => {
  it('starts the workflow and answers 201 with the initial status and a Temporal UI link', async () => {
    const target = uniqueTarget();
    const res = await post('/v1/rollouts', spec(target));
    expect(res.status).toBe(201);
    const status = res.body as RolloutStatus;
    expect(status).toMatchObject({
      id: `rollout-${target}`,
      target,
      phase: 'progressing',
      weights: { baseline: 100, candidate: 0 },
      step: { index: 0, total: 3, weight: 10, bakeMs: 2000, bakedMs: 0 },
      decisions: [],
      failedChecks: 0,
      baseline: { version: 'v1' },
      candidate: { version: 'v2' },
    });
    expect(status.links?.temporalUi).toMatch(new RegExp(`^${UI}/namespaces/default/workflows/rollout-${target}/${RUN_ID}/history$`));

    // The workflow really started, with the summary and search attributes the UI shows.
    const description = await env.client.workflow.getHandle(`rollout-${target}`).describe();
    expect(description.type).toBe('rollout');
    expect(description.taskQueue).toBe(worker.taskQueue);
    expect(status.links?.temporalUi).toContain(description.runId);
    expect(await description.staticSummary()).toBe(`${target}: v1 → v2 in 3 steps (10%, 50%, 100%)`);
    expect(await description.staticDetails()).toMatch(/checks every 1s, at least 50 requests; threshold judge: 2 failed check\(s\) roll back/);
    expect(description.typedSearchAttributes.get(RolloutTarget)).toBe(target);
    expect(description.typedSearchAttributes.get(RolloutPhase)).toBeDefined();
    expect(description.typedSearchAttributes.get(CanaryWeight)).toBeDefined();

    // ...and runs to promotion on healthy metrics, through the worker's router.
    const final = await waitForPhase(status.id, ['promoted']);
    expect(final.outcome).toMatchObject({ result: 'promoted' });
    expect(final.weights).toEqual({ baseline: 0, candidate: 100 });
    expect(final.decisions.length).toBeGreaterThan(0);
    expect(final.decisions[0]).toMatchObject({ verdict: 'pass', step: 0, weight: 10 });
    expect(final.links?.temporalUi).toBe(status.links?.temporalUi);
    const candidateWeights = worker.router.routes.filter((r) => r.target === target).map((r) => r.versions.find((v) => v.version === 'v2')?.weight);
    expect(candidateWeights).toEqual(expect.arrayContaining([0, 10, 50, 100]));
  });

  it('answers 400 invalid_spec listing every problem with its path', async () => {
    const res = await post('/v1/rollouts', {
      target: 'Not A Name',
      baseline: { version: 'v1', url: 'ftp://nowhere' },
      candidate: { version: 'v1', url: 'http://127.0.0.1:9002' },
      steps: [{ weight: 50, bake: 'soon' }, { weight: 20 }],
      colour: 'blue',
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_spec');
    expect(typeof res.body.error.message).toBe('string');
    const paths = (res.body.error.issues as Array<{ path: string; message: string }>).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['target', 'baseline.url', 'candidate.version', 'steps.0.bake', 'steps.1.weight', '(root)']));
    for (const issue of res.body.error.issues) expect(issue.message).toEqual(expect.any(String));
  });

  it('answers 400 invalid_spec for a JSON body that is not an object', async () => {
    const res = await post('/v1/rollouts', '[]');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_spec');
  });

  it('answers 400 invalid_json for malformed JSON', async () => {
    const res = await post('/v1/rollouts', '{"target": "chat",');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: { code: 'invalid_json', message: expect.stringContaining('not valid JSON') } });
  });

  it('answers 413 payload_too_large above 1 MiB', async () => {
    const res = await post('/v1/rollouts', { ...spec(uniqueTarget()), padding: 'x'.repeat(1024 * 1024 + 10) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect(res.body.error.message).toContain('1 MiB');
  });

  it("reads JSON sent with curl's default form content type (curl -d @spec.json)", async () => {
    const target = uniqueTarget();
    const res = await request(api.url, 'POST', '/v1/rollouts', {
      body: JSON.stringify(spec(target, hold)),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(201);
    expect(res.body.target).toBe(target);
    await post(`/v1/rollouts/${res.body.id}/abort`, {});
  });

  it('answers 415 for a body that is not JSON', async () => {
    const res = await request(api.url, 'POST', '/v1/rollouts', { body: 'target=chat', headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(415);
    expect(res.body.error).toMatchObject({ code: 'unsupported_media_type', message: expect.stringContaining('application/json') });
  });

  it('answers 409 conflict naming the running rollout when the target is already rolling out', async () => {
    const target = uniqueTarget();
    const first = await startRollout(spec(target, hold));
    const runId = first.links!.temporalUi.split('/').at(-2);
    const res = await post('/v1/rollouts', spec(target, hold));
    expect(res.status).toBe(409);
    expect(res.body).toEqual({
      error: { code: 'conflict', message: `target ${target} already has a rollout in progress: rollout-${target} (run ${runId})` },
    });
    expect((await post(`/v1/rollouts/${first.id}/abort`)).status).toBe(202);
  });

  it('lets exactly one of two concurrent starts for a target win', async () => {
    const target = uniqueTarget();
    const results = await Promise.all([post('/v1/rollouts', spec(target, hold)), post('/v1/rollouts', spec(target, hold))]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(results.find((r) => r.status === 409)!.body.error.code).toBe('conflict');
    expect((await post(`/v1/rollouts/rollout-${target}/abort`)).status).toBe(202);
  });

  describe('Idempotency-Key', () => {
    const startWithKey = (input: unknown, key: string) => request(api.url, 'POST', '/v1/rollouts', { body: input, headers: { 'idempotency-key': key } });

    it('a retried start gets the rollout the first one started (200, Idempotent-Replayed), never a second run', async () => {
      const target = uniqueTarget();
      const key = randomUUID();
      const first = await startWithKey(spec(target, hold), key);
      expect(first.status).toBe(201);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      // Key order differs: the same spec all the same.
      const { steps, ...rest } = spec(target, hold);
      const again = await startWithKey({ steps, ...rest }, key);
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body).toMatchObject({ id: first.body.id, target, links: { temporalUi: first.body.links.temporalUi } });
      // Without the key it is what it always was: a conflict.
      expect((await post('/v1/rollouts', spec(target, hold))).status).toBe(409);
      expect((await post(`/v1/rollouts/${first.body.id}/abort`)).status).toBe(202);
      await waitForPhase(first.body.id, ['aborted']);
      // Still the same rollout once it has ended: a late retry starts nothing.
      const late = await startWithKey(spec(target, hold), key);
      expect(late.status).toBe(200);
      expect(late.body).toMatchObject({ id: first.body.id, phase: 'aborted', links: { temporalUi: first.body.links.temporalUi } });
      expect((await env.client.workflow.count(`WorkflowId = 'rollout-${target}'`)).count).toBe(1);
    });

    it('two concurrent starts with one key: one rollout, both answered with it', async () => {
      const target = uniqueTarget();
      const key = randomUUID();
      const results = await Promise.all([startWithKey(spec(target, hold), key), startWithKey(spec(target, hold), key)]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 201]);
      expect(results[0]!.body.links.temporalUi).toBe(results[1]!.body.links.temporalUi);
      expect((await post(`/v1/rollouts/rollout-${target}/abort`)).status).toBe(202);
    });

    it('the same key with another spec is 422 idempotency_key_reused; a malformed key is 400 naming the header', async () => {
      const target = uniqueTarget();
      const key = randomUUID();
      expect((await startWithKey(spec(target, hold), key)).status).toBe(201);
      const other = await startWithKey(spec(target, { steps: [{ weight: 20, bake: '30s' }, { weight: 100 }] }), key);
      expect(other.status).toBe(422);
      expect(other.body.error).toMatchObject({ code: 'idempotency_key_reused', message: expect.stringContaining('different rollout spec') });
      const bad = await startWithKey(spec(uniqueTarget(), hold), 'has space');
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatchObject({ code: 'invalid_request', issues: [{ path: 'Idempotency-Key', message: expect.stringContaining('1-255 visible ASCII') }] });
      expect((await post(`/v1/rollouts/rollout-${target}/abort`)).status).toBe(202);
    });
  });

  it('starts a new rollout for a target whose previous rollout has ended', async () => {
    const target = uniqueTarget();
    const first = await startRollout(spec(target, hold));
    await post(`/v1/rollouts/${first.id}/abort`);
    await waitForPhase(first.id, ['aborted']);
    const second = await startRollout(spec(target, hold));
    expect(second.id).toBe(first.id);
    expect(second.links!.temporalUi).not.toBe(first.links!.temporalUi);
    expect((await post(`/v1/rollouts/${second.id}/abort`)).status).toBe(202);
  });
});

describe('operator actions', () => {
  it('pause, resume and abort answer 202 with the resulting phase; inapplicable ones 409', async () => {
    const target = uniqueTarget();
    const { id } = await startRollout(spec(target, hold));

    const notPaused = await post(`/v1/rollouts/${id}/resume`);
    expect(notPaused.status).toBe(409);
    expect(notPaused.body).toEqual({
      error: { code: 'not_applicable', message: 'cannot resume a rollout that is progressing; resume applies when paused' },
    });

    const paused = await post(`/v1/rollouts/${id}/pause`);
    expect(paused.status).toBe(202);
    expect(paused.body).toMatchObject({ id, phase: 'paused' });
    expect(paused.body.links.temporalUi).toMatch(new RegExp(`/workflows/${id}/${RUN_ID}/history$`));
    expect((await get(`/v1/rollouts/${id}`)).body.phase).toBe('paused');

    const again = await post(`/v1/rollouts/${id}/pause`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_applicable');
    expect(again.body.error.message).toContain('cannot pause a rollout that is paused');

    const resumed = await post(`/v1/rollouts/${id}/resume`);
    expect(resumed.status).toBe(202);
    expect(resumed.body.phase).toBe('progressing');

    const aborted = await post(`/v1/rollouts/${id}/abort`, { reason: 'latency looks off' });
    expect(aborted.status).toBe(202);
    expect(['rolling_back', 'aborted']).toContain(aborted.body.phase);

    const final = await waitForPhase(id, ['aborted']);
    expect(final.outcome).toMatchObject({ result: 'aborted', reason: 'latency looks off' });
    expect(final.weights).toEqual({ baseline: 100, candidate: 0 });
    const last = worker.router.routes.filter((r) => r.target === target).at(-1)!;
    expect(last.versions).toEqual([expect.objectContaining({ version: 'v1', weight: 100 })]);

    for (const action of ['pause', 'resume', 'abort', 'promote', 'approve']) {
      const res = await post(`/v1/rollouts/${id}/${action}`);
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('not_applicable');
      expect(res.body.error.message).toMatch(/^rollout is aborted/);
    }
  });

  it('abort without a body uses the default reason; a malformed abort body is 400', async () => {
    const { id } = await startRollout(spec(uniqueTarget(), hold));
    const bad = await post(`/v1/rollouts/${id}/abort`, { reason: 42 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', issues: [{ path: 'reason', message: 'reason must be a string' }] });
    const res = await post(`/v1/rollouts/${id}/abort`);
    expect(res.status).toBe(202);
    const final = await waitForPhase(id, ['aborted']);
    expect(final.outcome?.reason).toBe('aborted by anonymous'); // an API without tokens: nobody to name
  });

  it('approve lets a manual gate pass; promote skips the remaining steps', async () => {
    const gated = { steps: [{ weight: 10, bake: '2s', gate: 'manual' as const }, { weight: 50, bake: '2s', gate: 'manual' as const }, { weight: 100 }] };
    const { id } = await startRollout(spec(uniqueTarget(), gated));

    const early = await post(`/v1/rollouts/${id}/approve`);
    expect(early.status).toBe(409);
    expect(early.body.error.message).toContain('approve applies when awaiting_approval');

    await waitForPhase(id, ['awaiting_approval']);
    const approved = await post(`/v1/rollouts/${id}/approve`);
    expect(approved.status).toBe(202);
    expect(approved.body.phase).toBe('progressing');

    const second = await waitForPhase(id, ['awaiting_approval']);
    expect(second.step.index).toBe(1);
    const promoted = await post(`/v1/rollouts/${id}/promote`);
    expect(promoted.status).toBe(202);
    expect(['progressing', 'promoted']).toContain(promoted.body.phase);

    const final = await waitForPhase(id, ['promoted']);
    expect(final.outcome).toMatchObject({ result: 'promoted', reason: 'promoted by anonymous' });
    expect(final.weights).toEqual({ baseline: 0, candidate: 100 });

    const after = await post(`/v1/rollouts/${id}/pause`);
    expect(after.status).toBe(409);
    expect(after.body.error).toMatchObject({ code: 'not_applicable', message: expect.stringMatching(/^rollout is promoted; /) });
  });

  it('answers 404 not_found for an unknown id, on GET and on every action', async () => {
    const id = `rollout-${uniqueTarget('missing')}`;
    const res = await get(`/v1/rollouts/${id}`);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: 'not_found', message: `no rollout with id ${id}` } });
    for (const action of ['pause', 'resume', 'abort', 'promote', 'approve']) {
      const r = await post(`/v1/rollouts/${id}/${action}`);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    }
  });

  it('answers 404 for an unknown action and an unknown route, in the envelope', async () => {
    const { id } = await startRollout(spec(uniqueTarget(), hold));
    const action = await post(`/v1/rollouts/${id}/explode`);
    expect(action.status).toBe(404);
    expect(action.body.error.code).toBe('not_found');
    const route = await get('/v2/whatever');
    expect(route.status).toBe(404);
    expect(route.body).toEqual({ error: { code: 'not_found', message: 'no route for GET /v2/whatever' } });
    await post(`/v1/rollouts/${id}/abort`);
  });
});

describe('GET /v1/rollouts/:id', () => {
  it('shows a rolled-back rollout with the failing decisions (judge fails the candidate)', async () => {
    const failingWorker = await startTestWorker(env, { metrics: new ScriptedMetrics(failing) });
    cleanups.push(() => failingWorker.shutdown());
    const base = (await appOn(failingWorker.taskQueue)).url;
    const { id } = await startRollout(spec(uniqueTarget()), base);
    const final = await waitForPhase(id, ['rolled_back'], base);
    expect(final.outcome?.reason).toContain('failureLimit 2');
    expect(final.weights).toEqual({ baseline: 100, candidate: 0 });
    expect(final.failedChecks).toBe(2);
    expect(final.decisions.map((d) => d.verdict)).toEqual(['fail', 'fail']);
    expect(final.decisions[0]!.metrics.candidate.errorRate).toBe(0.5);
  });

  it('builds a terminated rollout from its search attributes: failed, compensation not run', async () => {
    const target = uniqueTarget();
    const { id } = await startRollout(spec(target, hold));
    await eventually(async () => ((await get(`/v1/rollouts/${id}`)).body.weights.candidate === 10 ? true : undefined));
    await env.client.workflow.getHandle(id).terminate('operator pulled the plug');
    const res = await get(`/v1/rollouts/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, target, phase: 'failed', weights: { baseline: 90, candidate: 10 } });
    expect(res.body.outcome.reason).toContain('terminated: operator pulled the plug');
    expect(res.body.outcome.reason).toContain('compensation did not run');
    expect(res.body.links.temporalUi).toMatch(new RegExp(`/workflows/${id}/${RUN_ID}/history$`));
    const action = await post(`/v1/rollouts/${id}/resume`);
    expect(action.status).toBe(409);
    expect(action.body.error.message).toMatch(/^rollout is failed/);
  });

  it('falls back to visibility (stale) when no worker answers, and actions time out with 504', async () => {
    const base = (await appOn(uniqueTaskQueue('nobody'), { queryTimeoutMs: 1_000, updateTimeoutMs: 1_500 })).url;
    const { id } = await startRollout(spec(uniqueTarget(), hold), base);
    const res = await get(`/v1/rollouts/${id}`, base);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, phase: 'progressing', stale: expect.any(String) });
    const paused = await post(`/v1/rollouts/${id}/pause`, undefined, base);
    expect(paused.status).toBe(504);
    expect(paused.body.error.code).toBe('timeout');
    await env.client.workflow.getHandle(id).terminate('test cleanup');
  });
});

describe('GET /v1/rollouts/:id?runId=', () => {
  it('reads the run given by runId; a run id of no run of this rollout is 404', async () => {
    const { id, links } = await startRollout(spec(uniqueTarget(), hold));
    const runId = links!.temporalUi.split('/').at(-2)!;
    const res = await get(`/v1/rollouts/${id}?runId=${runId}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, links: { temporalUi: links!.temporalUi } });
    const other = await get(`/v1/rollouts/${id}?runId=${randomUUID()}`);
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('not_found');
    expect((await post(`/v1/rollouts/${id}/abort`)).status).toBe(202);
  });
});

describe('GET /v1/rollouts/:id?decisions=&before=', () => {
  it('pages decisions, newest first, with a cursor — running and closed alike', async () => {
    const { id } = await startRollout(spec(uniqueTarget(), hold));
    await eventually(async () => (((await get(`/v1/rollouts/${id}`)).body as RolloutStatus).decisions.length >= 3 ? true : undefined), 20_000);
    const page = (await get(`/v1/rollouts/${id}?decisions=2`)).body as RolloutStatus;
    expect(page.decisions).toHaveLength(2);
    expect(page.decisionPage.nextBefore).toBe(page.decisions[0]!.seq);
    const older = (await get(`/v1/rollouts/${id}?decisions=1&before=${page.decisionPage.nextBefore}`)).body as RolloutStatus;
    expect(older.decisions.map((d) => d.seq)).toEqual([page.decisions[0]!.seq - 1]);
    const bad = await get(`/v1/rollouts/${id}?decisions=0`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues).toEqual([expect.objectContaining({ path: 'decisions' })]);

    expect((await post(`/v1/rollouts/${id}/abort`)).status).toBe(202);
    const closed = await waitForPhase(id, ['aborted']);
    const closedPage = (await get(`/v1/rollouts/${id}?decisions=1`)).body as RolloutStatus;
    expect(closedPage.decisions).toEqual([closed.decisions.at(-1)]);
    expect(closedPage.decisionPage).toMatchObject({ total: closed.decisions.length, nextBefore: closed.decisions.at(-1)!.seq });
  });
});

describe('a rollout whose workflow task keeps failing', () => {
  it('answers every action 503 workflow_task_failing and GET 200 stale saying why, never 500', async () => {
    const base = (await appOn(await startBrokenWorker(), { queryTimeoutMs: 1_000, updateTimeoutMs: 2_000 })).url;
    const { id } = await startRollout(spec(uniqueTarget('broken'), hold), base);
    const handle = env.client.workflow.getHandle(id);
    const attempt = (n: number) =>
      eventually(async () => (((await handle.describe()).raw.pendingWorkflowTask?.attempt ?? 0) >= n ? true : undefined), 60_000, `workflow task attempt ${n}`);

    // Retried once: an update waits (Temporal admits it) and times out, told apart from a silent worker.
    await attempt(2);
    const early = await post(`/v1/rollouts/${id}/pause`, undefined, base);
    expect({ status: early.status, code: early.body.error?.code }).toEqual({ status: 503, code: 'workflow_task_failing' });

    // From the third attempt Temporal refuses updates at once: FAILED_PRECONDITION.
    await attempt(3);
    for (const action of ACTIONS) {
      const res = await post(`/v1/rollouts/${id}/${action}`, action === 'abort' ? { reason: 'worker is broken' } : undefined, base);
      expect({ action, status: res.status, code: res.body.error?.code }).toEqual({ action, status: 503, code: 'workflow_task_failing' });
      expect(res.body.error.message).toContain('Workflow Task in failed state');
      expect(res.body.error.message).toContain('terminate the rollout');
    }
    const status = await get(`/v1/rollouts/${id}`, base);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ id, phase: 'progressing', stale: expect.stringContaining("the rollout's workflow task is failing") });

    // What the message advises: terminate. Then it reads as failed, and actions are 409.
    await handle.terminate('test: the worker is broken');
    const ended = await get(`/v1/rollouts/${id}`, base);
    expect(ended.body).toMatchObject({ id, phase: 'failed' });
    expect((await post(`/v1/rollouts/${id}/pause`, undefined, base)).status).toBe(409);
  });
});

describe('GET /v1/rollouts', () => {
  it('lists running and closed rollouts, newest first, with filters', async () => {
    const target = uniqueTarget('list');
    const closed = await startRollout(spec(target, hold));
    await post(`/v1/rollouts/${closed.id}/abort`);
    await waitForPhase(closed.id, ['aborted']);
    const running = await startRollout(spec(target, hold));

    const rollouts = await eventually(async () => {
      const res = await get(`/v1/rollouts?target=${target}`);
      expect(res.status).toBe(200);
      const list = res.body.rollouts as RolloutSummary[];
      return list.length === 2 && list.some((r) => r.phase === 'aborted') ? list : undefined;
    }, 15_000, 'both rollouts in the list');
    expect(rollouts.map((r) => r.id)).toEqual([running.id, closed.id]);
    const [newest, oldest] = rollouts as [RolloutSummary, RolloutSummary];
    expect(newest).toMatchObject({ target, phase: 'progressing', runId: expect.stringMatching(new RegExp(`^${RUN_ID}$`)) });
    expect(newest.closedAt).toBeUndefined();
    expect(newest.links.temporalUi).toBe(running.links!.temporalUi);
    expect(oldest).toMatchObject({ target, phase: 'aborted', canaryWeight: 0, closedAt: expect.any(String) });
    expect(newest.runId).not.toBe(oldest.runId);

    const all = await get('/v1/rollouts');
    expect(all.status).toBe(200);
    const ids = (all.body.rollouts as RolloutSummary[]).map((r) => r.runId);
    expect(ids).toEqual(expect.arrayContaining([newest.runId, oldest.runId]));
    const starts = (all.body.rollouts as RolloutSummary[]).map((r) => r.startedAt!);
    expect([...starts].sort().reverse()).toEqual(starts);

    const byPhase = await get(`/v1/rollouts?target=${target}&phase=aborted`);
    expect((byPhase.body.rollouts as RolloutSummary[]).map((r) => r.runId)).toEqual([oldest.runId]);

    const bad = await get('/v1/rollouts?phase=exploded&limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['limit', 'phase']);

    await post(`/v1/rollouts/${running.id}/abort`);
  });
});

describe('bearer auth', () => {
  it('requires the token on /v1 when API_TOKEN is set; /healthz stays open', async () => {
    const base = (await appOn(worker.taskQueue, { apiToken: 's3cret' })).url;
    const none = await request(base, 'GET', '/v1/rollouts');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const wrong = await request(base, 'POST', '/v1/rollouts', { body: spec(uniqueTarget()), headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: { code: 'unauthorized', message: 'invalid bearer token' } });
    const right = await request(base, 'GET', '/v1/rollouts', { headers: { authorization: 'Bearer s3cret' } });
    expect(right.status).toBe(200);
    expect((await request(base, 'GET', '/healthz')).status).toBe(200);
  });
});
