/**
 * API tokens with roles (src/api/auth.ts, src/config.ts) and the audit of who did what, over real
 * HTTP against a real Temporal dev server and worker: 401 without a token or with an unknown one,
 * 403 for a viewer that acts, the token's name as `startedBy` and as each event's `by`, in the
 * update's payload in the workflow history, and in the webhook events; a raw signal without `by`
 * recorded as "temporal"; API_TOKEN still an operator ("api-token").
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { hashApiToken, type ApiTokenEntry } from '../../src/config';
import type { ApiServer } from '../../src/api/server';
import type { RolloutSpecInput } from '../../src/spec';
import { OPERATOR_SIGNALS } from '../../src/workflows/messages';
import type { RolloutStatus } from '../../src/workflows/status';
import { startDevServer, startTestWorker, type TestWorker } from '../helpers/dev-server';
import { eventually, request } from '../helpers/http';
import { expectEnvelope, serveApi } from './support';

const ALICE = 'mct_alice-operator-token';
const VICTOR = 'mct_victor-viewer-token';
const LEGACY = 'legacy-s3cret';
const TOKENS: ApiTokenEntry[] = [
  { name: 'alice', role: 'operator', sha256: hashApiToken(ALICE) },
  { name: 'victor', role: 'viewer', sha256: hashApiToken(VICTOR) },
];
const WEBHOOK = 'http://127.0.0.1:9/rollouts-audit';

let env: TestWorkflowEnvironment;
let worker: TestWorker;
let api: ApiServer;
let legacy: ApiServer;
let counter = 0;
const uniqueTarget = () => `auth-${process.pid}-${++counter}-${Math.floor(Math.random() * 1e5)}`;

function spec(target: string): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
    steps: [{ weight: 10, bake: '1m' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 50, failureLimit: 2 },
    notify: { webhook: WEBHOOK },
  };
}

const as = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  env = await startDevServer();
  worker = await startTestWorker(env);
  const config = { namespace: env.namespace ?? 'default', taskQueue: worker.taskQueue, temporalUiUrl: 'http://temporal-ui.test:8233' };
  api = await serveApi({ client: env.client, routerFor: () => worker.router, config: { ...config, apiTokens: TOKENS } });
  legacy = await serveApi({ client: env.client, routerFor: () => worker.router, config: { ...config, apiToken: LEGACY } });
});

afterAll(async () => {
  await api?.close();
  await legacy?.close();
  await worker?.shutdown();
  await env?.teardown();
});

describe('401 and 403', () => {
  it('401 without a token or with an unknown one, in the error envelope, with WWW-Authenticate: Bearer', async () => {
    const none = await request(api.url, 'GET', '/v1/rollouts');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(expectEnvelope({ contentType: none.headers.get('content-type') ?? undefined, json: none.body, text: JSON.stringify(none.body) })).toEqual({
      code: 'unauthorized',
      message: 'missing bearer token: send Authorization: Bearer <token> (a token with role viewer or above)',
    });
    const noneOnAction = await request(api.url, 'POST', '/v1/rollouts/rollout-x/pause');
    expect(noneOnAction.body.error.message).toContain('a token with role operator');

    const unknown = await request(api.url, 'GET', '/v1/rollouts', { headers: as('mct_nobody') });
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(unknown.body).toEqual({ error: { code: 'unauthorized', message: 'invalid bearer token' } });
    // Not a bearer token at all.
    const basic = await request(api.url, 'GET', '/v1/rollouts', { headers: { authorization: 'Basic YWxpY2U6eA==' } });
    expect(basic.status).toBe(401);
  });

  it('a viewer reads but cannot act: 403 naming the role needed; nothing is started', async () => {
    const list = await request(api.url, 'GET', '/v1/rollouts', { headers: as(VICTOR) });
    expect(list.status).toBe(200);

    const target = uniqueTarget();
    const start = await request(api.url, 'POST', '/v1/rollouts', { body: spec(target), headers: as(VICTOR) });
    expect(start.status).toBe(403);
    expect(start.headers.get('www-authenticate')).toBeNull();
    expect(start.body).toEqual({
      error: { code: 'forbidden', message: 'token "victor" has role viewer; POST /v1/rollouts needs role operator (viewer: reads only; operator: start and actions)' },
    });
    const missing = await request(api.url, 'GET', `/v1/rollouts/rollout-${target}`, { headers: as(ALICE) });
    expect(missing.status).toBe(404);

    // Started by the operator, read by the viewer, not paused by them.
    const started = await request(api.url, 'POST', '/v1/rollouts', { body: spec(target), headers: as(ALICE) });
    expect(started.status).toBe(201);
    const read = await request(api.url, 'GET', `/v1/rollouts/${started.body.id}`, { headers: as(VICTOR) });
    expect(read.status).toBe(200);
    const pause = await request(api.url, 'POST', `/v1/rollouts/${started.body.id}/pause`, { headers: as(VICTOR) });
    expect(pause.status).toBe(403);
    expect(pause.body.error).toEqual({
      code: 'forbidden',
      message: `token "victor" has role viewer; POST /v1/rollouts/${started.body.id}/pause needs role operator (viewer: reads only; operator: start and actions)`,
    });
    const after = await request(api.url, 'GET', `/v1/rollouts/${started.body.id}`, { headers: as(VICTOR) });
    expect(after.body.phase).toBe('progressing');
    expect(after.body.events).toEqual([]);
    await request(api.url, 'POST', `/v1/rollouts/${started.body.id}/abort`, { headers: as(ALICE) });
  });
});

describe('the audit: who did it', () => {
  it("records the token's name: startedBy, each event's by, the update payload in the history, the webhook events", async () => {
    const target = uniqueTarget();
    const started = await request(api.url, 'POST', '/v1/rollouts', { body: spec(target), headers: as(ALICE) });
    expect(started.status).toBe(201);
    const id = started.body.id as string;
    expect(started.body.startedBy).toBe('alice');

    const paused = await request(api.url, 'POST', `/v1/rollouts/${id}/pause`, { headers: as(ALICE) });
    expect(paused.status).toBe(202);
    expect((paused.body as RolloutStatus).events.at(-1)).toMatchObject({ action: 'pause', via: 'update', by: 'alice', applied: true, note: expect.any(String) });
    const resumed = await request(api.url, 'POST', `/v1/rollouts/${id}/resume`, { body: {}, headers: as(ALICE) });
    expect(resumed.status).toBe(202);

    // A raw Temporal signal without `by` (temporal workflow signal, the UI): recorded as "temporal".
    await env.client.workflow.getHandle(id).signal(OPERATOR_SIGNALS.pause);
    const bySignal = await eventually(async () => {
      const res = await request(api.url, 'GET', `/v1/rollouts/${id}`, { headers: as(VICTOR) });
      return (res.body as RolloutStatus).events.length >= 3 ? (res.body as RolloutStatus) : undefined;
    });
    expect(bySignal.events.at(-1)).toMatchObject({ action: 'pause', via: 'signal', by: 'temporal', applied: true });
    expect(bySignal.startedBy).toBe('alice');

    const aborted = await request(api.url, 'POST', `/v1/rollouts/${id}/abort`, { body: { reason: 'bad answers' }, headers: as(ALICE) });
    expect(aborted.status).toBe(202);
    const final = await eventually(async () => {
      const res = await request(api.url, 'GET', `/v1/rollouts/${id}`, { headers: as(VICTOR) });
      return res.body.phase === 'aborted' ? (res.body as RolloutStatus) : undefined;
    });
    expect(final.events.map((e) => [e.action, e.via, e.by])).toEqual([
      ['pause', 'update', 'alice'],
      ['resume', 'update', 'alice'],
      ['pause', 'signal', 'temporal'],
      ['abort', 'update', 'alice'],
    ]);
    expect(final.startedBy).toBe('alice');

    // The workflow history: the start's input and each update's payload name who.
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    const { defaultPayloadConverter } = await import('@temporalio/common');
    const input = defaultPayloadConverter.fromPayload<{ startedBy?: string }>(history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
    expect(input.startedBy).toBe('alice');
    const updates = history.events!.flatMap((e) => {
      const accepted = e.workflowExecutionUpdateAcceptedEventAttributes;
      const request = accepted?.acceptedRequest?.input;
      if (!request) return [];
      const payload = request.args?.payloads?.[0];
      return [[request.name, payload ? defaultPayloadConverter.fromPayload<{ by?: string; reason?: string }>(payload) : undefined]];
    });
    expect(updates).toEqual([
      ['pause', { by: 'alice' }],
      ['resume', { by: 'alice' }],
      ['abort', { by: 'alice', reason: 'bad answers' }],
    ]);

    // The webhook events: the start, each phase an operator caused, with who in data and message.
    const events = await eventually(async () => {
      const mine = worker.notifier.events.filter((e) => e.destination === WEBHOOK && e.event.rolloutId === id && e.event.kind === 'phase').map((e) => e.event);
      return mine.some((e) => e.phase === 'aborted') ? mine : undefined;
    });
    const byMessage = (pattern: RegExp) => events.find((e) => pattern.test(e.message));
    expect(byMessage(/started by alice$/)).toMatchObject({ data: { action: 'start', by: 'alice' } });
    expect(byMessage(/^paused: paused by alice$/)).toMatchObject({ phase: 'paused', data: { action: 'pause', by: 'alice', via: 'update' } });
    expect(byMessage(/^progressing: resumed by alice$/)).toMatchObject({ data: { action: 'resume', by: 'alice', via: 'update' } });
    expect(byMessage(/^paused: paused by operator$/)).toMatchObject({ data: { action: 'pause', by: 'temporal', via: 'signal' } });
    expect(byMessage(/^rolling_back: aborted by alice: bad answers$/)).toMatchObject({ data: { action: 'abort', by: 'alice', via: 'update', reason: 'bad answers' } });
  });

  it('a client cannot claim to be someone else: `by` in a body is an unknown field', async () => {
    const res = await request(api.url, 'POST', '/v1/rollouts/rollout-nobody/pause', { body: { by: 'mallory' }, headers: as(ALICE) });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([{ path: 'by', message: expect.stringContaining('unknown field "by"') }]);
  });

  it('API_TOKEN keeps working: an operator recorded as "api-token"', async () => {
    const target = uniqueTarget();
    const started = await request(legacy.url, 'POST', '/v1/rollouts', { body: spec(target), headers: as(LEGACY) });
    expect(started.status).toBe(201);
    expect(started.body.startedBy).toBe('api-token');
    const promoted = await request(legacy.url, 'POST', `/v1/rollouts/${started.body.id}/promote`, { headers: as(LEGACY) });
    expect(promoted.status).toBe(202);
    expect((promoted.body as RolloutStatus).events.at(-1)).toMatchObject({ action: 'promote', by: 'api-token' });
    const final = await eventually(async () => {
      const res = await request(legacy.url, 'GET', `/v1/rollouts/${started.body.id}`, { headers: as(LEGACY) });
      return res.body.phase === 'promoted' ? (res.body as RolloutStatus) : undefined;
    });
    expect(final.outcome?.reason).toBe('promoted by api-token');
    const promotedEvent = await eventually(async () =>
      worker.notifier.events.find((e) => e.event.rolloutId === started.body.id && e.event.phase === 'promoted')?.event,
    );
    expect(promotedEvent).toMatchObject({ message: 'promoted: promoted by api-token', data: { action: 'promote', by: 'api-token' } });
  });
});
