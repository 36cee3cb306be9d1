/**
 * REST API fuzz suite (issue 8: every client error is a 4xx with a JSON body naming the field;
 * 500 only for our bugs). Random and hostile requests go to every route of the API as main.ts
 * serves it (createApp behind createApiServer), on a real Temporal dev server with a test worker.
 *
 * Properties, for every request: never a 5xx, never a connection reset, every 4xx is the
 * envelope `{"error": {"code", "message", "issues"?}}` and, for invalid specs, queries and
 * bodies, `issues[]` names the field. After the run: nothing was created by a bad request (no
 * workflow but the two this suite means to start), Object.prototype is untouched, and the API
 * still serves: /healthz 200, a valid spec starts and can be aborted.
 *
 * Bounded: a fixed seed (API_FUZZ_SEED overrides it; a failure prints seed and path to replay),
 * runs per property below (~900 requests in all) and a time limit per property.
 */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import zlib from 'node:zlib';
import fc from 'fast-check';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { BODY_LIMIT } from '../../src/api/app';
import { MAX_ISSUES } from '../../src/api/errors';
import { ACTIONS, PHASES } from '../../src/api/rollout-service';
import type { ApiServer } from '../../src/api/server';
import { parseRolloutSpec, type RolloutSpecInput } from '../../src/spec';
import { TARGET_PATTERN } from '../../src/spec/patterns';
import { startDevServer, startTestWorker, type TestWorker } from '../helpers/dev-server';
import { eventually } from '../helpers/http';
import { rawResponse } from '../helpers/raw-http';
import { expectEnvelope, serveApi } from '../api/support';

const SEED = Number(process.env.API_FUZZ_SEED ?? 20_261_201);
/** Every target this suite names starts with this, unique to the run. */
const PREFIX = `fz${process.pid}-${Date.now().toString(36)}`;
const LIVE = `rollout-${PREFIX}-live`;
const AFTER = `rollout-${PREFIX}-after`;
/** A well-formed id of no rollout. */
const MISSING = `rollout-${PREFIX}-missing`;
const LIMIT = Number(/^(\d+)mb$/.exec(BODY_LIMIT)![1]) * 1024 * 1024;
const ENCODINGS = ['identity', 'gzip', 'deflate', 'br', ...('createZstdDecompress' in zlib ? ['zstd'] : [])];

let env: TestWorkflowEnvironment;
let worker: TestWorker;
let api: ApiServer;
let liveRunId: string;
const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
const stats: Array<{ property: string; runs: number; ms: number; interrupted: boolean }> = [];
let requests = 0;
const startedAt = Date.now();

beforeAll(async () => {
  env = await startDevServer();
  worker = await startTestWorker(env);
  api = await serveApi({ client: env.client, config: { namespace: env.namespace ?? 'default', taskQueue: worker.taskQueue, temporalUiUrl: 'http://ui.test' }, routerFor: () => worker.router });
  const live = await hit({ method: 'POST', path: '/v1/rollouts', json: validSpec(`${PREFIX}-live`, { steps: [{ weight: 10, bake: '30m' }, { weight: 100 }] }) });
  expect(live.status).toBe(201);
  liveRunId = (live.json.links.temporalUi as string).split('/').at(-2)!;
});

afterAll(async () => {
  for (const id of [LIVE, AFTER]) await env?.client.workflow.getHandle(id).terminate('fuzz cleanup').catch(() => undefined);
  await api?.close();
  await worker?.shutdown();
  await env?.teardown();
  const runs = stats.map((s) => `${s.property} ${s.runs} in ${s.ms} ms${s.interrupted ? ' (time limit)' : ''}`).join(', ');
  console.log(`API fuzz: seed ${SEED}; runs: ${runs}; ${requests} requests in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
});

// ---- requests ----

interface Req {
  method: string;
  /** Sent as is (no normalization, no re-encoding). */
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: Buffer | string;
  /** Serialized as the body, with content-type application/json unless headers say otherwise. */
  json?: unknown;
}

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
}

/** One request on a connection of its own (no keep-alive race can pass for a reset). */
function hit(req: Req): Promise<Res> {
  requests += 1;
  const body = req.json !== undefined ? Buffer.from(JSON.stringify(req.json)) : typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
  const headers: OutgoingHttpHeaders = { ...(req.json !== undefined ? { 'content-type': 'application/json' } : {}), ...req.headers };
  if (body) headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: '127.0.0.1', port: api.port, method: req.method, path: req.path, headers, agent: false, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(new Error(`response error ${err.message} for ${show(req)}`)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          // checked by expectAnswer when it matters
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    outgoing.on('timeout', () => outgoing.destroy(new Error('no answer within 60 s')));
    outgoing.on('error', (err: NodeJS.ErrnoException) => reject(new Error(`connection error ${err.code ?? err.message} for ${show(req)}`)));
    outgoing.end(body);
  });
}

function show(req: Req): string {
  return `${req.method} ${req.path.slice(0, 200)}${req.path.length > 200 ? `… (${req.path.length} chars)` : ''} ${JSON.stringify(req.headers ?? {})}`;
}

/** The properties every answer has; returns the envelope of a 4xx. */
function expectAnswer(req: Req, res: Res): ReturnType<typeof expectEnvelope> | undefined {
  if (res.status >= 500) throw new Error(`${res.status} for ${show(req)}: ${res.text.slice(0, 500)}`);
  if (res.status < 400 || req.method === 'HEAD') return undefined;
  try {
    return expectEnvelope({ contentType: res.headers['content-type'], text: res.text, json: res.json });
  } catch (err) {
    throw new Error(`${res.status} without the envelope for ${show(req)}: ${(err as Error).message}`);
  }
}

function expectStatus(req: Req, res: Res, allowed: readonly number[]): void {
  if (!allowed.includes(res.status)) throw new Error(`expected ${allowed.join('/')}, got ${res.status} for ${show(req)}: ${res.text.slice(0, 500)}`);
}

function paths(res: Res): string[] {
  return ((res.json?.error?.issues ?? []) as Array<{ path: string }>).map((i) => i.path);
}

/**
 * Runs a bounded property; failures report the seed and the shrunk counterexample. The time
 * limits (4 s each, 8 s for the heavy ones; well under 90 s in all) only bite on a starved
 * machine: the runs done are then reported, and the property still had to hold for them.
 */
async function fuzz<T>(property: string, arbitrary: fc.Arbitrary<T>, numRuns: number, predicate: (value: T) => Promise<void>, timeLimitMs = 4_000): Promise<void> {
  const started = Date.now();
  const details = await fc.check(fc.asyncProperty(arbitrary, predicate), {
    numRuns,
    seed: SEED,
    interruptAfterTimeLimit: timeLimitMs,
    markInterruptAsFailure: false,
  });
  stats.push({ property, runs: details.numRuns, ms: Date.now() - started, interrupted: details.interrupted });
  if (details.failed) {
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${fc.defaultReportMessage(details) ?? `${property} failed`}\n${cause}`);
  }
}

// ---- specs ----

function validSpec(target: string, overrides: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
    steps: [{ weight: 10, bake: '5m' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '30s', minRequests: 50, failureLimit: 2, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 800 } },
    ...overrides,
  };
}

/** Valid specs of every shape the schema allows, all for one target of this suite. */
const specArb: fc.Arbitrary<RolloutSpecInput> = fc
  .record({
    weights: fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 4 }),
    bake: fc.constantFrom('1m', '5m', '10m', '1h'),
    gate: fc.constantFrom(undefined, 'auto', 'manual'),
    interval: fc.constantFrom('10s', '30s', '1m'),
    judge: fc.constantFrom('threshold', 'sequential'),
    minRequests: fc.integer({ min: 1, max: 10_000 }),
    maxErrorRate: fc.double({ min: 0, max: 1, noNaN: true }),
    webhook: fc.boolean(),
  })
  .map(({ weights, bake, gate, interval, judge, minRequests, maxErrorRate, webhook }) =>
    validSpec(`${PREFIX}-m`, {
      steps: [...[...weights].sort((a, b) => a - b), 100].map((weight) => ({ weight, bake, ...(gate ? { gate } : {}) })),
      analysis: { judge, interval, minRequests, ...(judge === 'threshold' ? { failureLimit: 2 } : {}), thresholds: { maxErrorRate, maxLatencyP95Ms: 800 } },
      ...(webhook ? { notify: { webhook: 'http://127.0.0.1:9/hook' } } : {}),
    }),
  );

const DELETE = Symbol('delete');
type Kind = 'string' | 'number' | 'object' | 'array';

/** JSON values of every kind but `kind`. */
function notA(kind: Kind): fc.Arbitrary<unknown> {
  return fc.oneof(
    ...(kind === 'string' ? [] : [fc.string({ maxLength: 12 })]),
    ...(kind === 'number' ? [] : [fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })]),
    fc.boolean(),
    fc.constant(null),
    ...(kind === 'array' ? [] : [fc.array(fc.integer(), { maxLength: 3 })]),
    ...(kind === 'object' ? [] : [fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 })]),
  );
}

interface Mutation {
  /** Where the value goes; 'last' is the last step. */
  at: Array<string | number>;
  values: fc.Arbitrary<unknown>;
  /** The issue path the API must report (default: `at`, dotted). */
  reported?: string;
}

const bad = (kind: Kind, invalid: unknown[], required = false): fc.Arbitrary<unknown> =>
  fc.oneof(notA(kind), ...(invalid.length ? [fc.constantFrom(...invalid)] : []), ...(required ? [fc.constant(DELETE)] : []));

/** One field, a value no schema version accepts there (wrong type, out of range, or missing). */
const MUTATIONS: Mutation[] = [
  { at: ['target'], values: bad('string', ['', 'Chat', '-x', 'x-', 'a'.repeat(64), 'admin', 'a b', 'ä'], true) },
  { at: ['baseline'], values: bad('object', [], true) },
  { at: ['candidate'], values: bad('object', [], true) },
  { at: ['baseline', 'version'], values: bad('string', ['', 'a b', '../v', 'x'.repeat(64)], true) },
  { at: ['candidate', 'version'], values: bad('string', ['', 'v1', 'a/b'], true) },
  { at: ['baseline', 'url'], values: bad('string', ['', 'ftp://h', 'not a url', 'http://u:p@h', 'http://h/?q=1', 'http://h/#f'], true) },
  { at: ['candidate', 'url'], values: bad('string', ['//h', 'file:///etc/passwd'], true) },
  { at: ['steps'], values: bad('array', [[]], true) },
  { at: ['steps', 0], values: bad('object', []) },
  { at: ['steps', 0, 'weight'], values: bad('number', [0, -1, 100.5, 101, 1e9], true) },
  { at: ['steps', 'last', 'weight'], values: fc.constantFrom(99.5, 100.5, -100, '100') },
  { at: ['steps', 0, 'bake'], values: bad('string', ['', 'soon', '5', '-1s', '1x', '1s']) },
  { at: ['steps', 0, 'gate'], values: bad('string', ['maybe', 'MANUAL', '']) },
  { at: ['steps', 0, 'colour'], values: fc.jsonValue({ maxDepth: 1 }), reported: 'steps.0' },
  { at: ['analysis'], values: bad('object', []) },
  { at: ['analysis', 'judge'], values: bad('string', ['foo', 'THRESHOLD', '']) },
  { at: ['analysis', 'interval'], values: bad('string', ['', 'soon', 'x1s', '-5m']) },
  { at: ['analysis', 'minRequests'], values: bad('number', [0, -1, 1.5]) },
  { at: ['analysis', 'failureLimit'], values: bad('number', [0, -3, 2.5]) },
  { at: ['analysis', 'inconclusiveLimit'], values: bad('number', [-1, 0.5]) },
  { at: ['analysis', 'maxExtensionChecks'], values: bad('number', [-1, 1.5]) },
  { at: ['analysis', 'thresholds'], values: bad('object', []) },
  { at: ['analysis', 'thresholds', 'maxErrorRate'], values: bad('number', [-0.1, 1.5]) },
  { at: ['analysis', 'thresholds', 'maxLatencyP95Ms'], values: bad('number', [0, -100]) },
  { at: ['notify'], values: bad('object', []) },
  { at: ['notify', 'webhook'], values: bad('string', ['', 'nope', 'ftp://x'], true) },
  { at: ['colour'], values: fc.jsonValue({ maxDepth: 1 }), reported: '(root)' },
];

/** A deep copy of `spec` with `value` at `at` (objects created on the way, 'last' resolved). */
function mutate(spec: RolloutSpecInput, at: Mutation['at'], value: unknown): { body: unknown; path: string } {
  const copy = structuredClone(spec) as Record<string | number, unknown>;
  const steps = (copy.steps as unknown[]).length;
  const resolved = at.map((key) => (key === 'last' ? steps - 1 : key));
  let node = copy;
  for (const key of resolved.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string | number, unknown>;
  }
  const leaf = resolved.at(-1)!;
  if (value === DELETE) delete node[leaf];
  else node[leaf] = value;
  return { body: copy, path: resolved.join('.') };
}

/** Gives `obj` an own, enumerable `key` (so `__proto__` is a key in the JSON, not a prototype). */
function withOwnKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function ownKeyed(key: string, value: unknown): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  withOwnKey(obj, key, value);
  return obj;
}

// ---- ids, queries ----

const ROLLOUT_ID = new RegExp(`^rollout-${TARGET_PATTERN.source.slice(1, -1)}$`);

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** encodeURIComponent, or undefined for a string with a lone surrogate (not encodable). */
function encode(text: string): string | undefined {
  try {
    return encodeURIComponent(text);
  } catch {
    return undefined;
  }
}

const ESCAPES = ['%', '%z', '%zz', '%E0%A4%A', '%C0%AF', '%FF', '%2F', '%00', '%25', '%F0%9F%98%80', '%u0041', '%%'];
const rawToken = fc.constantFrom(...ESCAPES, 'a', 'rollout-', '-', '.', '~', '_', 'Z', '9', '!', "'", '(', '*', ':', '@', '$', ',', ';');

const segmentArb: fc.Arbitrary<string> = fc.oneof(
  fc.nat(999).map((n) => `rollout-${PREFIX}-id-${n}`),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map(encode).filter((s): s is string => s !== undefined && s !== ''),
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }).map((s) => encodeURIComponent(s)),
  fc.array(rawToken, { minLength: 1, maxLength: 8 }).map((t) => t.join('')),
  fc.integer({ min: 50, max: 20_000 }).map((n) => `rollout-${'a'.repeat(n)}`),
);

interface RouteQuery {
  method: 'GET' | 'POST';
  path: string;
  known: readonly string[];
}

const QUERY_ROUTES: readonly RouteQuery[] = [
  { method: 'GET', path: '/healthz', known: [] },
  { method: 'GET', path: '/v1/rollouts', known: ['target', 'phase', 'limit'] },
  { method: 'POST', path: '/v1/rollouts', known: [] },
  { method: 'GET', path: `/v1/rollouts/${MISSING}`, known: ['runId', 'decisions', 'before'] },
  ...ACTIONS.map((a): RouteQuery => ({ method: 'POST', path: `/v1/rollouts/${MISSING}/${a}`, known: [] })),
];

const queryKey = fc.oneof(
  fc.constantFrom('target', 'phase', 'limit', 'runId', 'decisions', 'before', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'RUNID', 'run_id'),
  fc.tuple(fc.constantFrom('target', 'runId', 'limit', 'x'), fc.constantFrom('[]', '[x]', '[0]', '[__proto__]', '.a')).map(([k, s]) => k + s),
  fc.string({ unit: 'grapheme-ascii', maxLength: 8 }),
  fc.constantFrom(...ESCAPES),
);
const queryValue = fc.oneof(
  fc.constantFrom(`${PREFIX}-q`, ...PHASES, '1', '100', '1000', '0', '1001', '-1', '1e3', ' 5', '', 'abc', 'deadbeef', '0-0-0'),
  fc.uuid(),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom(...ESCAPES),
);
/** Pairs rendered encoded (any text) or raw (tokens the HTTP client can put in a path as they are). */
const queryArb = fc
  .array(fc.tuple(queryKey, queryValue, fc.boolean()), { maxLength: 6 })
  .map((pairs) =>
    pairs
      .map(([k, v, raw]) => (raw && /^[!-~]*$/.test(k + v) && !/[#&=?]/.test(k + v) ? `${k}=${v}` : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`))
      .join('&'),
  );

/** What Express's "simple" query parser (node:querystring) makes of `qs`. */
function queryKeys(qs: string): Array<{ key: string; repeated: boolean }> {
  const parsed = parseQuery(qs);
  return Object.keys(parsed).map((key) => ({ key, repeated: Array.isArray(parsed[key]) }));
}

// ---- the properties ----

const jsonText = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null');

describe('POST /v1/rollouts bodies', () => {
  it('answers random JSON and text 400 invalid_json or invalid_spec naming fields', async () => {
    const arb = fc.record({
      body: fc.oneof(jsonText, fc.string({ unit: 'binary', maxLength: 200 }).filter((s) => encode(s) !== undefined)),
      type: fc.constantFrom(undefined, 'application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded'),
    });
    await fuzz('random bodies', arb, 100, async ({ body, type }) => {
      const req: Req = { method: 'POST', path: '/v1/rollouts', body, headers: type ? { 'content-type': type } : {} };
      const res = await hit(req);
      expectStatus(req, res, [400]);
      const error = expectAnswer(req, res)!;
      expect(['invalid_json', 'invalid_spec']).toContain(error.code);
      if (error.code === 'invalid_spec') expect(error.issues?.length).toBeGreaterThan(0);
    });
  });

  it('the valid specs it mutates are valid, and each mutation makes them invalid at its path', () => {
    // Offline check of the generators, so the HTTP property below is not vacuous.
    fc.assert(fc.property(specArb, (spec) => parseRolloutSpec(spec).ok), { numRuns: 300, seed: SEED });
    fc.assert(
      fc.property(specArb, fc.constantFrom(...MUTATIONS).chain((m) => m.values.map((v) => ({ m, v }))), (spec, { m, v }) => {
        const { body, path } = mutate(spec, m.at, v);
        const result = parseRolloutSpec(body);
        return !result.ok && result.issues.some((i) => i.path === (m.reported ?? path));
      }),
      { numRuns: 1_000, seed: SEED },
    );
  });

  it('answers a valid spec with one field mutated 400 invalid_spec, the mutated path among the issues', async () => {
    const arb = fc.tuple(specArb, fc.constantFrom(...MUTATIONS).chain((m) => m.values.map((v) => ({ m, v }))));
    await fuzz('mutated specs', arb, 150, async ([spec, { m, v }]) => {
      const { body, path } = mutate(spec, m.at, v);
      const req: Req = { method: 'POST', path: '/v1/rollouts', json: body };
      const res = await hit(req);
      expectStatus(req, res, [400]);
      expect(expectAnswer(req, res)!.code).toBe('invalid_spec');
      expect(paths(res)).toContain(m.reported ?? path);
    });
  });

  it('answers __proto__, constructor and prototype keys at any level 400 naming the object; nothing polluted', async () => {
    const levels: Array<Array<string | number>> = [[], ['baseline'], ['candidate'], ['steps', 0], ['analysis'], ['analysis', 'thresholds']];
    const arb = fc.record({
      spec: specArb,
      level: fc.constantFrom(...levels),
      key: fc.constantFrom('__proto__', 'constructor', 'prototype'),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant({ polluted: true }), fc.constant(null).map(() => ownKeyed('__proto__', { polluted: true }))),
    });
    await fuzz('prototype keys', arb, 50, async ({ spec, level, key, value }) => {
      const body = structuredClone(spec) as Record<string, unknown>;
      const node = level.reduce<Record<string | number, unknown>>((n, k) => n[k] as Record<string | number, unknown>, body);
      withOwnKey(node as Record<string, unknown>, key, value);
      const req: Req = { method: 'POST', path: '/v1/rollouts', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
      const res = await hit(req);
      expectStatus(req, res, [400]);
      expect(expectAnswer(req, res)!.code).toBe('invalid_spec');
      expect(paths(res)).toContain(level.join('.') || '(root)');
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  it('answers deep nesting, huge strings and arrays 400 (bounded issues) up to 1 MiB and 413 beyond', async () => {
    const arb = fc.oneof(
      // Exactly around the limit: a body of LIMIT + delta bytes.
      fc.integer({ min: -64, max: 64 }).map((delta) => {
        const frame = '{"target":""}';
        return { kind: 'near limit', body: `{"target":"${'x'.repeat(LIMIT + delta - frame.length)}"}` };
      }),
      fc.record({ n: fc.integer({ min: 1_000, max: 400_000 }), element: fc.constantFrom('1', '"x"', '{}', '[]', 'null') }).map(({ n, element }) => ({
        kind: 'huge array',
        body: `{"target":"${PREFIX}-h","steps":[${Array(n).fill(element).join(',')}]}`,
      })),
      fc.record({ depth: fc.integer({ min: 10, max: 200_000 }), at: fc.constantFrom('target', 'colour', 'analysis') }).map(({ depth, at }) => ({
        kind: 'deep nesting',
        body: `{"${at}":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      })),
      fc.record({ depth: fc.integer({ min: 10, max: 100_000 }) }).map(({ depth }) => ({
        kind: 'deep objects',
        body: `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
      })),
      fc.integer({ min: 1_000, max: 1_100_000 }).map((n) => ({
        kind: 'huge quoted value',
        body: JSON.stringify({ ...validSpec(`${PREFIX}-h`), steps: [{ weight: 100, bake: 'x'.repeat(n) }] }),
      })),
    );
    await fuzz(
      'deep and huge',
      arb,
      30,
      async ({ kind, body }) => {
        const req: Req = { method: 'POST', path: '/v1/rollouts', body, headers: { 'content-type': 'application/json' } };
        const res = await hit(req);
        const size = Buffer.byteLength(body);
        expectStatus(req, res, [size > LIMIT ? 413 : 400]);
        const error = expectAnswer(req, res)!;
        if (size > LIMIT) return expect(error.code).toBe('payload_too_large');
        expect({ kind, code: error.code }).toEqual({ kind, code: expect.stringMatching(/^invalid_(spec|json)$/) });
        expect(error.issues?.length ?? 0).toBeLessThanOrEqual(MAX_ISSUES);
        expect(res.text.length).toBeLessThan(100_000);
      },
      8_000,
    );
  });
});

describe('content types and encodings', () => {
  const TYPES: Array<{ type: string | undefined; kind: 'json' | 'other' | 'charset' }> = [
    { type: undefined, kind: 'json' },
    { type: 'application/json', kind: 'json' },
    { type: 'Application/JSON; charset=UTF-8', kind: 'json' },
    { type: 'application/x-www-form-urlencoded', kind: 'json' },
    { type: 'application/json; charset=latin9', kind: 'charset' },
    { type: 'application/json; charset=iso-8859-1', kind: 'charset' },
    { type: 'text/plain', kind: 'other' },
    { type: 'text/plain; charset=utf-8', kind: 'other' },
    { type: 'multipart/form-data; boundary=xyz', kind: 'other' },
    { type: 'application/xml', kind: 'other' },
    { type: 'application/octet-stream', kind: 'other' },
  ];
  const COMPRESS: Record<string, (b: Buffer) => Buffer> = { gzip: zlib.gzipSync, deflate: zlib.deflateSync, br: zlib.brotliCompressSync };

  it('decodes valid gzip/deflate/br, answers corrupt ones 400 and unknown encodings and types 415', async () => {
    const arb = fc.record({
      path: fc.constantFrom('/v1/rollouts', `/v1/rollouts/${MISSING}/abort`),
      type: fc.constantFrom(...TYPES),
      encoding: fc.constantFrom(undefined, 'identity', 'gzip', 'deflate', 'br', 'GZIP', 'Deflate', 'gzip, br', 'compress', 'x-gzip', 'lz4', 'identity, gzip'),
      payload: fc.oneof(fc.constantFrom('{"target":"x"}', '{"reason":"ok"}', '{}', '[]'), jsonText, fc.string({ minLength: 1, maxLength: 50 })),
      corrupt: fc.constantFrom('none', 'none', 'truncate', 'flip', 'garbage'),
    });
    await fuzz('encodings', arb, 100, async ({ path, type, encoding, payload, corrupt }) => {
      const name = encoding?.trim().toLowerCase() || 'identity';
      const compress = COMPRESS[name];
      let body: Buffer = Buffer.from(payload);
      if (compress) {
        body = compress(body);
        if (corrupt === 'truncate') body = body.subarray(0, Math.max(1, body.length >> 1));
        if (corrupt === 'flip') body = Buffer.from(body.map((b, i) => (i >= 2 && i % 3 === 0 ? b ^ 0x5a : b)));
        if (corrupt === 'garbage') body = Buffer.from('definitely not compressed');
      }
      const headers: OutgoingHttpHeaders = { ...(type.type ? { 'content-type': type.type } : {}), ...(encoding !== undefined ? { 'content-encoding': encoding } : {}) };
      const req: Req = { method: 'POST', path, body, headers };
      const res = await hit(req);
      const error = expectAnswer(req, res);
      if (type.kind !== 'json' || !ENCODINGS.includes(name)) {
        expectStatus(req, res, [415]);
        if (type.kind === 'json' && !ENCODINGS.includes(name)) expect(error!.message.toLowerCase()).toContain(`"${name}"`);
        return;
      }
      if (compress && corrupt !== 'none') {
        expectStatus(req, res, [400]);
        return expect(['invalid_request', 'invalid_json', 'invalid_spec']).toContain(error!.code);
      }
      // Decoded: the payload itself is judged (a missing rollout for a valid abort body).
      expectStatus(req, res, path === '/v1/rollouts' ? [400] : [400, 404]);
    });
  });
});

describe('ids and query strings', () => {
  it('answers any :id and action 400 naming id or action, 404, or 431 for an over-long URL', async () => {
    const arb = fc.record({
      segment: segmentArb,
      action: fc.option(fc.oneof(fc.constantFrom(...ACTIONS), fc.constantFrom('explode', 'p%61use', 'PAUSE', '%zz', 'abort%'), fc.array(rawToken, { minLength: 1, maxLength: 4 }).map((t) => t.join(''))), { nil: undefined }),
    });
    await fuzz('ids', arb, 120, async ({ segment, action }) => {
      const req: Req = action === undefined ? { method: 'GET', path: `/v1/rollouts/${segment}` } : { method: 'POST', path: `/v1/rollouts/${segment}/${action}` };
      const res = await hit(req);
      expectAnswer(req, res);
      if (req.path.length > 15_000) return expectStatus(req, res, req.path.length > 16 * 1024 ? [431] : [400, 404, 431]);
      const id = decode(segment);
      const name = action === undefined ? undefined : decode(action);
      const malformed = [...(id === undefined ? ['id'] : []), ...(action !== undefined && name === undefined ? ['action'] : [])];
      if (malformed.length > 0) {
        expectStatus(req, res, [400]);
        return expect(paths(res)).toEqual(malformed);
      }
      if (name !== undefined && !(ACTIONS as readonly string[]).includes(name)) return expectStatus(req, res, [404]);
      if (!ROLLOUT_ID.test(id!)) {
        expectStatus(req, res, [400]);
        return expect(paths(res)).toEqual(['id']);
      }
      expectStatus(req, res, [404]);
    });
  });

  it('answers unknown, repeated and bracketed query keys on every route 400 naming each', async () => {
    const arb = fc.record({ route: fc.constantFrom(...QUERY_ROUTES), qs: queryArb });
    await fuzz('queries', arb, 120, async ({ route, qs }) => {
      const req: Req = { method: route.method, path: `${route.path}?${qs}` };
      const res = await hit(req);
      expectAnswer(req, res);
      const wrong = queryKeys(qs).filter(({ key, repeated }) => repeated || !route.known.includes(key));
      if (wrong.length > 0) {
        expectStatus(req, res, [400]);
        expect(res.json.error.code).toBe('invalid_request');
        for (const { key } of wrong) expect(paths(res)).toContain(key === '' ? '(root)' : key);
        return;
      }
      // Known keys only: a bad value is 400 naming it; otherwise what the route answers.
      if (res.status === 400 && res.json.error.code === 'invalid_request') {
        return expect(paths(res).every((p) => route.known.includes(p))).toBe(true);
      }
      const expected: Record<string, number[]> = { '/healthz': [200], '/v1/rollouts': route.method === 'GET' ? [200] : [400] };
      expectStatus(req, res, expected[route.path] ?? [404]);
    });
  });
});

describe('methods and routes', () => {
  const ROUTES = [
    '/healthz',
    '/v1/rollouts',
    `/v1/rollouts/${MISSING}`,
    ...ACTIONS.map((a) => `/v1/rollouts/${MISSING}/${a}`),
    '/v1/openapi.json',
    '/',
    '/v1',
    '/v2/rollouts',
    `/v1/rollouts/${MISSING}/pause/now`,
    '/healthz/deep',
    '/v1/rollouts/',
    '//v1/rollouts',
  ];

  it('answers every method on every route (and unknown routes) without a 5xx, errors in the envelope', async () => {
    const arb = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
      path: fc.constantFrom(...ROUTES),
      body: fc.option(fc.oneof(jsonText, fc.constant('{}')), { nil: undefined }),
    });
    await fuzz('methods', arb, 80, async ({ method, path, body }) => {
      const req: Req = { method, path, ...(body !== undefined && method !== 'HEAD' ? { body, headers: { 'content-type': 'application/json' } } : {}) };
      const res = await hit(req);
      const error = expectAnswer(req, res);
      if (['PUT', 'PATCH', 'DELETE'].includes(method)) {
        expectStatus(req, res, [400, 404]);
        expect(['not_found', 'invalid_json']).toContain(error!.code);
      }
    });
  });
});

describe('the live rollout', () => {
  it('answers fuzzed actions and reads on a running rollout 2xx, 400 naming the field, 404 or 409', async () => {
    const body = fc.oneof(
      fc.constant(undefined),
      fc.constant({}),
      fc.record({ reason: fc.string({ unit: 'grapheme', maxLength: 1_200 }) }),
      fc.dictionary(fc.constantFrom('reason', 'force', '__proto__', 'why'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
    );
    const arb = fc.oneof(
      fc.record({
        action: fc.oneof({ arbitrary: fc.constantFrom('pause', 'resume', 'approve'), weight: 8 }, { arbitrary: fc.constantFrom('abort', 'promote'), weight: 1 }),
        body,
      }),
      fc.record({ runId: fc.oneof(fc.constant('live'), fc.uuid(), fc.constantFrom('abc', 'deadbeef-0', '-'), fc.string({ maxLength: 40 }).map(encodeURIComponent)) }),
    );
    await fuzz('live rollout', arb, 50, async (c) => {
      if ('runId' in c) {
        const runId = c.runId === 'live' ? liveRunId : c.runId;
        const req: Req = { method: 'GET', path: `/v1/rollouts/${LIVE}?runId=${runId}` };
        const res = await hit(req);
        expectAnswer(req, res);
        expectStatus(req, res, [200, 400, 404]);
        if (res.status === 400) expect(paths(res)).toEqual(['runId']);
        return;
      }
      const req: Req = { method: 'POST', path: `/v1/rollouts/${LIVE}/${c.action}`, ...(c.body !== undefined ? { body: JSON.stringify(c.body), headers: { 'content-type': 'application/json' } } : {}) };
      const res = await hit(req);
      expectAnswer(req, res);
      expectStatus(req, res, [202, 400, 409]);
      if (res.status === 400) expect(paths(res).length).toBeGreaterThan(0);
    });
  });
});

describe('malformed HTTP over raw sockets', () => {
  // Well-formed lines too, so that the headers are what is malformed (or nothing: no Host).
  const wellFormedLine = fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'OPTIONS', 'DELETE'),
      target: fc.constantFrom('/', '/healthz', '/v1/rollouts', `/v1/rollouts/${MISSING}/pause`, 'http://x/v1/rollouts', '/%zz'),
      version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0'),
    })
    .map(({ method, target, version }) => `${method} ${target} ${version}`);
  const requestLine = fc.oneof(
    wellFormedLine,
    fc
      .record({
        method: fc.constantFrom('GET', 'POST', 'OPTIONS', 'G@T', 'get', 'FOO', '', 'GET GET', 'CONNECT', 'DELETE', '\x01'),
        target: fc.constantFrom('/', '/healthz', '/v1/rollouts', `/v1/rollouts/${MISSING}`, '*', 'http://x/v1/rollouts', '/%zz', '/\x7f', '/\0', '', ' /', '/a b', `/${'x'.repeat(17_000)}`),
        version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'http/1.1', '', 'HTTP/1.1 extra', 'HTTP/01.1', 'HTTP/1.1\0'),
      })
      .map(({ method, target, version }) => `${method} ${target} ${version}`),
    // Printable junk that is not the HTTP/2 preface (which Node drops without a word, by design).
    fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 60 }).map((s) => s.replace(/[\r\n]/g, '')).filter((s) => s.trim() !== '' && !s.startsWith('PRI')),
  );
  const header = fc.constantFrom(
    'host: x',
    'x-ok: y',
    'no-colon',
    ' leading-space: x',
    'bad name: x',
    'x-nul: a\0b',
    'x-ctl: a\x01b',
    'content-length: abc',
    'content-length: -1',
    'content-length: {n}',
    'content-length: 1, 2',
    'transfer-encoding: chunked',
    'transfer-encoding: gzip',
    'expect: 200-ok',
    'expect: 100-continue',
    'upgrade: websocket',
    'connection: upgrade',
    'content-type: application/json',
    'content-encoding: gzip',
    ' obs-fold continued',
    `x-big: ${'a'.repeat(17_000)}`,
    Array(1_500).fill('x: yyyyyyyyyy').join('\r\n'),
  );
  const body = fc.constantFrom('', '{}', '{"target":', 'zz\r\n{}\r\n0\r\n\r\n', '0\r\n\r\n', '2\r\n{}\r\n0\r\n\r\n', '\0\0\0');

  it('answers malformed request lines and headers in the envelope, with content-length and no reset', async () => {
    // Every request is complete as framed ({n} is the body's length; chunked has a body): an
    // incomplete one waits for its timeout, which client-errors.test.ts covers (408).
    const arb = fc
      .record({ line: requestLine, headers: fc.array(header, { maxLength: 4 }), body })
      .filter(({ headers, body: b }) => b !== '' || !headers.includes('transfer-encoding: chunked'))
      .map(({ line, headers, body: b }) => ({ line, headers: headers.map((h) => h.replace('{n}', String(Buffer.byteLength(b)))), body: b }));
    await fuzz(
      'raw HTTP',
      arb,
      100,
      async ({ line, headers, body: payload }) => {
        const text = `${line}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${payload}`;
        requests += 1;
        const reply = await rawResponse(api.port, text, { timeoutMs: 20_000 });
        const what = `${JSON.stringify(text.slice(0, 200))} (${text.length} bytes)`;
        if (reply.error || reply.status === undefined) throw new Error(`no clean answer (${reply.error ?? 'no status line'}) to ${what}`);
        if (reply.status >= 500) throw new Error(`${reply.status} for ${what}: ${reply.body.slice(0, 300)}`);
        if (reply.status < 400) return;
        expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.body));
        expectEnvelope({ contentType: reply.headers['content-type'], text: reply.body, json: JSON.parse(reply.body) });
      },
      8_000,
    );
  });
});

describe('afterwards', () => {
  it('is healthy: /healthz 200, a valid spec starts, aborts and ends', async () => {
    const health = await hit({ method: 'GET', path: '/healthz' });
    expect(health.status).toBe(200);
    const started = await hit({ method: 'POST', path: '/v1/rollouts', json: validSpec(`${PREFIX}-after`) });
    expect(started.status).toBe(201);
    expect(started.json.id).toBe(AFTER);
    const aborted = await hit({ method: 'POST', path: `/v1/rollouts/${AFTER}/abort`, json: { reason: 'fuzz done' } });
    expect(aborted.status).toBe(202);
    await eventually(async () => ((await hit({ method: 'GET', path: `/v1/rollouts/${AFTER}` })).json?.phase === 'aborted' ? true : undefined), 30_000, `${AFTER} to end`);
  });

  it('created nothing from a bad request: only the two rollouts it meant to start exist', async () => {
    const intended = new Set([LIVE, AFTER]);
    // The last start is a barrier: once visibility lists it, it lists anything started before.
    const listed = await eventually(async () => {
      const res = await hit({ method: 'GET', path: '/v1/rollouts?limit=1000' });
      const ids = (res.json.rollouts as Array<{ id: string }>).map((r) => r.id);
      return ids.includes(AFTER) && ids.includes(LIVE) ? ids : undefined;
    }, 30_000, 'the intended rollouts in the list');
    expect(listed.filter((id) => !intended.has(id))).toEqual([]);
    const workflows: string[] = [];
    for await (const info of env.client.workflow.list()) workflows.push(info.workflowId);
    expect(workflows.filter((id) => !intended.has(id))).toEqual([]);
    expect(workflows.filter((id) => id.includes(PREFIX)).sort()).toEqual([...intended].sort());
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
  });
});
