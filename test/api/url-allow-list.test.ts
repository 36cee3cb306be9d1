/**
 * URL_ALLOW_LIST at the API: a start (POST /v1/rollouts; the CLI's `start` goes through it) whose
 * spec has a URL outside the list is a 400 naming each field and the setting, and nothing starts:
 * no workflow, no route read or changed. Unset, any URL is taken (as before). Real HTTP, a real
 * Temporal dev server and a real worker (recording adapters).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { ApiServer } from '../../src/api/server';
import { loadConfig } from '../../src/config';
import type { RolloutSpecInput } from '../../src/spec';
import { rolloutWorkflowId } from '../../src/workflows/messages';
import { startDevServer, startTestWorker, type TestWorker } from '../helpers/dev-server';
import { request } from '../helpers/http';
import { serveApi } from './support';

let env: TestWorkflowEnvironment;
let worker: TestWorker;
let strict: ApiServer;
let open: ApiServer;
let reads = 0;

const ALLOW = 'http://127.0.0.1:*, https://hooks.example.com/canary';

function spec(target: string, overrides: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
    steps: [{ weight: 10, bake: '30s' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 50 },
    ...overrides,
  };
}

beforeAll(async () => {
  env = await startDevServer();
  worker = await startTestWorker(env);
  const base = { namespace: env.namespace ?? 'default', taskQueue: worker.taskQueue, temporalUiUrl: 'http://temporal-ui.test:8233' };
  const routerFor = () => {
    reads += 1;
    return worker.router;
  };
  // The setting as the API's main.ts reads it.
  strict = await serveApi({ client: env.client, config: { ...base, urlAllowList: loadConfig({ URL_ALLOW_LIST: ALLOW }).urlAllowList }, routerFor });
  open = await serveApi({ client: env.client, config: base, routerFor });
});

afterAll(async () => {
  await strict?.close();
  await open?.close();
  await worker?.shutdown();
  await env?.teardown();
});

async function started(target: string): Promise<boolean> {
  try {
    await env.client.workflow.getHandle(rolloutWorkflowId(target)).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

test('a URL outside URL_ALLOW_LIST is a 400 naming the field and the setting; nothing is started', async () => {
  const target = `allow-${process.pid}-1`;
  const readsBefore = reads;
  const res = await request(strict.url, 'POST', '/v1/rollouts', { body: spec(target, { candidate: { version: 'v2', url: 'http://169.254.169.254/latest/meta-data' } }) });
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('invalid_spec');
  expect(res.body.error.message).toContain('URL_ALLOW_LIST');
  expect(res.body.error.issues).toEqual([
    {
      path: 'candidate.url',
      message: `candidate.url "http://169.254.169.254/latest/meta-data" is not allowed by URL_ALLOW_LIST (${ALLOW}): the control plane calls only URLs that match one of its patterns`,
    },
  ]);
  expect(await started(target)).toBe(false);
  expect(reads).toBe(readsBefore); // refused before the live route was even read
  expect(worker.router.routes.filter((r) => r.target === target)).toEqual([]);
});

test('every URL field is checked, each its own issue (userinfo is not the host)', async () => {
  const target = `allow-${process.pid}-2`;
  const res = await request(strict.url, 'POST', '/v1/rollouts', {
    body: spec(target, {
      baseline: { version: 'v1', url: 'http://10.0.0.7:8000' },
      steps: [{ shadow: 10, bake: '30s' }, { weight: 100 }],
      analysis: { interval: '1s', evaluator: { url: 'http://127.0.0.1@169.254.169.254/judge' } },
      notify: { webhook: 'https://hooks.example.com/canary-other' },
    }),
  });
  expect(res.status).toBe(400);
  expect((res.body.error.issues as Array<{ path: string }>).map((i) => i.path)).toEqual(['baseline.url', 'analysis.evaluator.url', 'notify.webhook']);
  expect(await started(target)).toBe(false);
});

test('URLs inside the list start as usual; without the setting any URL is taken', async () => {
  const inside = `allow-${process.pid}-3`;
  const ok = await request(strict.url, 'POST', '/v1/rollouts', { body: spec(inside, { notify: { webhook: 'https://hooks.example.com/canary/rollouts' } }) });
  expect(ok.status).toBe(201);
  expect(await started(inside)).toBe(true);
  const anywhere = `allow-${process.pid}-4`;
  const taken = await request(open.url, 'POST', '/v1/rollouts', { body: spec(anywhere, { notify: { webhook: 'http://127.0.0.2:1/hook' } }) });
  expect(taken.status).toBe(201);
  for (const target of [inside, anywhere]) await env.client.workflow.getHandle(rolloutWorkflowId(target)).terminate('test over');
});
