/**
 * The OpenAPI document (GET /v1/openapi.json, src/api/openapi.ts) against the API itself: served
 * without auth, covering every route of the README's table, its schemas compiling under Ajv
 * (JSON Schema 2020-12, strict), and the requests and responses of a real API (Temporal dev
 * server, test worker) validating against the operations they go to. support.ts checks every
 * other API test's responses against it too; the last test here shows that check catching one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { z } from 'zod';
import { DURATION_PATTERN, buildOpenApiDocument, jsonSchemaOf, openApiDocument } from '../../src/api/openapi';
import type { ApiServer } from '../../src/api/server';
import { parseDuration, type RolloutSpecInput } from '../../src/spec';
import type { RolloutStatus } from '../../src/workflows/status';
import { startDevServer, startTestWorker, type TestWorker } from '../helpers/dev-server';
import { eventually, listen, request, type JsonResponse } from '../helpers/http';
import { contractOf, type Contract } from './openapi-contract';
import { checkedAgainstDocument, contractViolations, serveApi } from './support';

let env: TestWorkflowEnvironment;
let worker: TestWorker;
let api: ApiServer;
let securedApi: ApiServer;
const contract: Contract = contractOf(openApiDocument());

let counter = 0;
const uniqueTarget = () => `oas-${process.pid}-${++counter}-${Math.floor(Math.random() * 1e5)}`;

function spec(target: string, overrides: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
    // Held in its first step for a while, checked every second.
    steps: [{ weight: 10, bake: '1m' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 50, failureLimit: 2 },
    ...overrides,
  };
}

/**
 * A request to the API, checked against the document: the response always, the request as
 * `request` says (`valid`: the document accepts it; `invalid`: it refuses it, as the API does).
 */
async function call(method: string, url: string, body?: unknown, expectRequest: 'valid' | 'invalid' = 'valid'): Promise<JsonResponse> {
  const requestProblems = contract.checkRequest(method, url, body);
  if (expectRequest === 'valid') expect(requestProblems).toEqual([]);
  else expect(requestProblems).not.toEqual([]);
  const res = await request(api.url, method, url, body === undefined ? {} : { body });
  expect(contract.checkResponse(method, url, res.status, res.headers.get('content-type') ?? undefined, res.body)).toEqual([]);
  return res;
}

beforeAll(async () => {
  env = await startDevServer();
  worker = await startTestWorker(env);
  const options = { client: env.client, routerFor: () => worker.router, config: { namespace: env.namespace ?? 'default', taskQueue: worker.taskQueue, temporalUiUrl: 'http://temporal-ui.test:8233' } };
  api = await serveApi(options);
  securedApi = await serveApi({ ...options, config: { ...options.config, apiToken: 's3cret' } });
});

afterAll(async () => {
  await api?.close();
  await securedApi?.close();
  await worker?.shutdown();
  await env?.teardown();
});

describe('GET /v1/openapi.json', () => {
  it('serves the OpenAPI 3.1 document, without the token even when the API has one', async () => {
    const res = await request(securedApi.url, 'GET', '/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    // ...while the routes it describes do need it, and answer 401 as documented.
    const denied = await request(securedApi.url, 'GET', '/v1/rollouts');
    expect(denied.status).toBe(401);
    expect(contract.checkResponse('GET', '/v1/rollouts', denied.status, denied.headers.get('content-type') ?? undefined, denied.body)).toEqual([]);
    expect(res.body.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(res.body.security).toEqual([{ bearerAuth: [] }]);
    expect(res.body.paths['/healthz'].get.security).toEqual([]);
    expect(res.body.paths['/v1/openapi.json'].get.security).toEqual([]);
  });

  it('refuses query parameters as every route does', async () => {
    const res = await call('GET', '/v1/openapi.json?x=1', undefined, 'invalid');
    expect(res.status).toBe(400);
  });

  it("has every route of the README's REST API table", () => {
    const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### REST API'));
    const rows = [...section.matchAll(/^\|\s*(GET|POST|PUT|PATCH|DELETE)\s*\|\s*`([^`]+)`/gm)];
    expect(rows.length).toBeGreaterThanOrEqual(5);
    const routes = rows.flatMap(([, method, route]) => expand(route!).map((p) => `${method} ${p.replace(/:(\w+)/g, '{$1}')}`));
    const documented = Object.entries(openApiDocument().paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
    expect(routes.length).toBeGreaterThanOrEqual(9);
    expect(documented).toEqual(expect.arrayContaining(routes));
  });

  it('is built the same every time, and every schema in it compiles (strict Ajv, JSON Schema 2020-12)', () => {
    expect(buildOpenApiDocument()).toEqual(openApiDocument());
    const document = openApiDocument();
    for (const name of Object.keys(document.components.schemas)) expect(() => contract.validator(`/components/schemas/${name}`)).not.toThrow();
    const operationIds = Object.values(document.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(new Set(operationIds).size).toBe(operationIds.length);
    for (const [p, item] of Object.entries(document.paths)) {
      for (const op of Object.values(item)) {
        const declared = ((op.parameters ?? []) as Array<{ $ref?: string; in?: string; name?: string }>).map((param) =>
          param.$ref ? (document.components.parameters as Record<string, { name: string }>)[param.$ref.split('/').at(-1)!]!.name : param.name,
        );
        for (const [, name] of p.matchAll(/\{(\w+)\}/g)) expect(declared).toContain(name);
      }
    }
  });

  it('describes the spec as the client sends it (durations as strings) and as the status shows it (milliseconds)', () => {
    const { RolloutRequest, RolloutSpec } = openApiDocument().components.schemas as Record<string, any>;
    expect(RolloutRequest.properties.steps.items.properties.bake).toMatchObject({ type: 'string', pattern: DURATION_PATTERN });
    expect(RolloutRequest.properties.analysis.properties.interval).toMatchObject({ type: 'string', default: '30s' });
    expect(RolloutRequest.required).not.toContain('analysis');
    expect(RolloutSpec.properties.steps.items.properties.bake).toMatchObject({ type: 'integer' });
    expect(RolloutSpec.properties.analysis.properties.interval).toMatchObject({ type: 'integer', default: 30_000 });
    expect(RolloutSpec.required).toEqual(expect.arrayContaining(['target', 'baseline', 'candidate', 'steps', 'analysis']));
    // The live baseline: a request may leave it out, a running rollout has one.
    expect(RolloutRequest.required).not.toContain('baseline');
  });

  it('refuses to describe a transform it was not told about, naming where, instead of saying "anything"', () => {
    const undeclared = z.object({ timeout: z.string().transform((s) => s.length) });
    expect(jsonSchemaOf(undeclared, 'input')).toMatchObject({ properties: { timeout: { type: 'string' } } });
    expect(() => jsonSchemaOf(undeclared, 'output')).toThrow(/Transforms cannot be represented.*properties\/timeout.*TRANSFORMS/);
    expect(() => jsonSchemaOf(z.object({ at: z.date() }), 'output')).toThrow(/Date cannot be represented/);
  });

  it('has the duration pattern accept exactly what parseDuration reads', () => {
    const pattern = new RegExp(DURATION_PATTERN, 'u');
    const text = fc.string({ unit: fc.constantFrom(...'0123456789.msdh \t'.split('')), maxLength: 12 });
    fc.assert(fc.property(text, (t) => pattern.test(t) === (parseDuration(t) !== undefined)), { numRuns: 3_000, seed: 20_261_210 });
    for (const t of ['30s', '1h30m', ' 5m ', '1.5s', '500ms', '2d']) expect(pattern.test(t)).toBe(true);
    for (const t of ['', 's', '30', '1h 30m', '-1s', '1w']) expect(pattern.test(t)).toBe(false);
  });
});

describe('requests and responses of the API against the document', () => {
  it('GET /healthz', async () => {
    expect((await call('GET', '/healthz')).status).toBe(200);
  });

  it('a start (201), a second one for the target (409), list, get and paging, actions (202, 409), 404', async () => {
    const target = uniqueTarget();
    const started = await call('POST', '/v1/rollouts', spec(target));
    expect(started.status).toBe(201);
    const id = (started.body as RolloutStatus).id;

    const again = await call('POST', '/v1/rollouts', spec(target));
    expect(again.status).toBe(409);

    const listed = await call('GET', `/v1/rollouts?target=${target}&limit=5`);
    expect(listed.status).toBe(200);
    expect(listed.body.rollouts.map((r: { id: string }) => r.id)).toContain(id);
    expect((await call('GET', '/v1/rollouts?phase=progressing')).status).toBe(200);

    // Decisions come once a second: page them.
    const status = await eventually(async () => {
      const res = await call('GET', `/v1/rollouts/${id}`);
      return res.body.decisions?.length >= 3 ? (res.body as RolloutStatus) : undefined;
    }, 30_000, 'three decisions');
    expect(status.decisions.length).toBeGreaterThanOrEqual(3);
    const page = await call('GET', `/v1/rollouts/${id}?decisions=1`);
    expect(page.status).toBe(200);
    expect(page.body.decisions).toHaveLength(1);
    const before = page.body.decisionPage.nextBefore;
    expect(before).toEqual(expect.any(Number));
    const older = await call('GET', `/v1/rollouts/${id}?decisions=2&before=${before}`);
    expect(older.status).toBe(200);
    expect(older.body.decisions.at(-1).seq).toBeLessThan(before);

    const notApplicable = await call('POST', `/v1/rollouts/${id}/approve`);
    expect(notApplicable.status).toBe(409);
    const paused = await call('POST', `/v1/rollouts/${id}/pause`, {});
    expect(paused.status).toBe(202);
    expect(paused.body.phase).toBe('paused');
    const resumed = await call('POST', `/v1/rollouts/${id}/resume`);
    expect(resumed.status).toBe(202);
    const aborted = await call('POST', `/v1/rollouts/${id}/abort`, { reason: 'openapi test' });
    expect(aborted.status).toBe(202);

    // Once ended: the final status, and actions are 409.
    const final = await eventually(async () => {
      const res = await call('GET', `/v1/rollouts/${id}`);
      return res.body.phase === 'aborted' ? res : undefined;
    }, 30_000, 'aborted');
    expect(final.body.outcome).toMatchObject({ result: 'aborted' });
    expect((await call('POST', `/v1/rollouts/${id}/promote`)).status).toBe(409);

    expect((await call('GET', `/v1/rollouts/rollout-${uniqueTarget()}`)).status).toBe(404);
    expect((await call('POST', `/v1/rollouts/rollout-${uniqueTarget()}/pause`)).status).toBe(404);
  });

  it('an invalid spec: 400 with issues, and the document refuses it too', async () => {
    const res = await call('POST', '/v1/rollouts', { ...spec(uniqueTarget()), steps: [{ weight: 150, bake: 'soon' }], colour: 'blue' }, 'invalid');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_spec');
    expect(res.body.error.issues.length).toBeGreaterThan(0);
  });

  it('bodies and queries the document refuses, the API refuses (400)', async () => {
    const target = uniqueTarget();
    const id = (await call('POST', '/v1/rollouts', spec(target))).body.id as string;
    // The REST actions take {reason} (abort) or nothing; `by` is for the signals.
    expect((await call('POST', `/v1/rollouts/${id}/pause`, { by: 'alice' }, 'invalid')).status).toBe(400);
    expect((await call('POST', `/v1/rollouts/${id}/abort`, { reason: 7 }, 'invalid')).status).toBe(400);
    expect((await call('GET', '/v1/rollouts?limit=ten', undefined, 'invalid')).status).toBe(400);
    expect((await call('GET', '/v1/rollouts?phase=done', undefined, 'invalid')).status).toBe(400);
    expect((await call('GET', '/v1/rollouts?colour=blue', undefined, 'invalid')).status).toBe(400);
    expect((await call('GET', `/v1/rollouts/${id}?decisions=x`, undefined, 'invalid')).status).toBe(400);
    expect((await call('GET', '/v1/rollouts/Not_An_Id', undefined, 'invalid')).status).toBe(400);
    expect((await call('POST', `/v1/rollouts/${id}/abort`, {})).status).toBe(202);
  });
});

describe("support.ts's check of every response", () => {
  it('catches a response the document does not allow', async () => {
    const wrong = await listen(
      checkedAgainstDocument((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ rollouts: [{ id: 'rollout-x' }] }));
      }),
    );
    try {
      const before = contractViolations.length;
      await request(wrong.url, 'GET', '/v1/rollouts');
      await eventually(async () => (contractViolations.length > before ? true : undefined), 2_000, 'the violation');
      const caught = contractViolations.splice(before);
      expect(caught.join('\n')).toMatch(/GET \/v1\/rollouts → 200: response body does not match .*rollouts/);
    } finally {
      await wrong.close();
    }
  });
});

/** `a/{x,y}` → `a/x`, `a/y`. */
function expand(route: string): string[] {
  const match = /\{([^}]*,[^}]*)\}/.exec(route);
  if (!match) return [route];
  return match[1]!.split(',').flatMap((part) => expand(route.replace(match[0], part.trim())));
}
