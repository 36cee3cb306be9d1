/**
 * Fuzzing the gateway (issue 8, "no input wedges a rollout"), with fast-check, against a real
 * gateway on 127.0.0.1 (temp DATA_DIR) in front of real upstreams over HTTP (an echo server and
 * the demo model server): the admin API with arbitrary bodies and targets, the proxy with
 * arbitrary paths, methods, headers, keys, queries and bodies, and malformed HTTP on raw
 * sockets. Properties: never a 5xx (the upstreams are healthy, so not even an honest 502/504),
 * never a connection reset or a hang, every 4xx of the gateway's own is JSON naming the field at
 * fault, a rejected PUT changes nothing (GET and routes.json alike), and afterwards the gateway
 * is healthy and proxies a normal request.
 *
 * Bounded: a fixed seed (GATEWAY_FUZZ_SEED overrides it; a failure prints seed and path to
 * replay); each property runs at most its numRuns cases and stops after TIME_LIMIT_MS (only on a
 * starved machine; the runs done are reported and had to pass), so the file takes well under a
 * minute. GATEWAY_FUZZ_SCALE=20 multiplies both, for a deeper run by hand.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { Pool } from 'undici';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { echoServer, type TestServer } from '../gateway/helpers';
import { rawRequest } from '../helpers/raw-http';

const TOKEN = 'fuzz-token';
const SEED = Number(process.env.GATEWAY_FUZZ_SEED ?? 8_2026);
const SCALE = Number(process.env.GATEWAY_FUZZ_SCALE ?? 1);
const TIME_LIMIT_MS = 7_000 * SCALE;
const runsDone: Record<string, number> = {};

jest.setTimeout(20_000 * SCALE);

let dataDir: string;
let gateway: Gateway;
let echo: TestServer;
let model: ModelServer;
let client: Pool;
let baseRoute: unknown;

const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-fuzz-'));
  echo = await echoServer('echo');
  model = await startModelServer({ version: 'model', latencyMs: 1, latencySpread: 0, ttftMs: 1, tokensPerSecond: 0, maxTokens: 4 });
  // Short client timeouts, so that an incomplete raw request is answered (408) within the case.
  gateway = await startGateway({
    port: 0,
    dataDir,
    adminToken: TOKEN,
    logger: pino({ level: 'silent' }),
    upstreamTimeoutMs: 10_000,
    headersTimeoutMs: 1_000,
    requestTimeoutMs: 2_000,
    bodyIdleTimeoutMs: 500,
  });
  client = new Pool(gateway.url, { connections: 8 });
  for (const target of ['base', 'fuzz']) {
    const res = await client.request({
      path: `/admin/routes/${target}`,
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ versions: [{ name: 'echo', url: echo.url, weight: 50 }, { name: 'model', url: model.url, weight: 50 }] }),
    });
    expect(res.statusCode).toBe(200);
    baseRoute ??= await res.body.json();
  }
});

afterAll(async () => {
  console.log(`gateway fuzz: seed ${SEED}; runs: ${JSON.stringify(runsDone)}`);
  await client?.destroy();
  await gateway?.close(100);
  await Promise.all([echo?.close(), model?.close()]);
  await rm(dataDir, { recursive: true, force: true });
});

/** Runs a property for at most `numRuns` cases or TIME_LIMIT_MS; records how many ran. */
async function check<T>(name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>, numRuns: number): Promise<void> {
  const details = await fc.check(fc.asyncProperty(arbitrary, predicate), {
    numRuns: numRuns * SCALE,
    seed: SEED,
    interruptAfterTimeLimit: TIME_LIMIT_MS,
    markInterruptAsFailure: false,
  });
  runsDone[name] = details.numRuns;
  if (details.failed) {
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${fc.defaultReportMessage(details) ?? `${name} failed`}\n${cause}`);
  }
  expect(details.numRuns).toBeGreaterThan(Math.min(numRuns, 20)); // it really ran
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function send(method: string, pathname: string, headers: Record<string, string>, body?: string | Buffer): Promise<Answer> {
  const res = await client.request({ path: pathname, method: method as 'GET', headers, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** A 4xx of the gateway's own: the shared JSON error shape, with a message. */
function gatewayError(answer: Answer): { code: string; message: string; issues?: Array<{ path: unknown; message: unknown }> } {
  expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  const body = JSON.parse(answer.text) as { error: { code: string; message: string; issues?: Array<{ path: unknown; message: unknown }> } };
  expect(typeof body.error.code).toBe('string');
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}

const routesFile = () => readFile(path.join(dataDir, 'routes.json'), 'utf8');
const routeTable = async () => (await send('GET', '/admin/routes', auth)).text;

// ---- arbitraries ----

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const anyJson = fc.jsonValue({ maxDepth: 3 });
const oddNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, 50, 100, 100.0000001, 33.333333, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 5e-324),
);
const extraKeys = fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 12 })), anyJson, { maxKeys: 3 });
const versionLike = fc
  .tuple(
    fc.record(
      {
        name: fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,8}$/), anyJson),
        url: fc.oneof(fc.constantFrom('http://127.0.0.1:1', 'ftp://x', 'http://u:p@h/', 'http://h/?q=1', 'http://h/#f', 'not a url', ''), anyJson),
        weight: fc.oneof(oddNumber, anyJson),
      },
      { requiredKeys: [] },
    ),
    fc.option(extraKeys, { nil: undefined }),
  )
  .map(([version, extra]) => ({ ...extra, ...version }));
const routeLike = fc
  .tuple(
    fc.record({ versions: fc.oneof(fc.array(versionLike, { maxLength: 6 }), anyJson), salt: fc.oneof(fc.string(), anyJson) }, { requiredKeys: [] }),
    fc.option(extraKeys, { nil: undefined }),
  )
  .map(([route, extra]) => ({ ...extra, ...route }));
const rawBodies = fc.oneof(
  fc.constantFrom(
    '',
    '1e400',
    '-0',
    'null',
    '[]',
    '"versions"',
    '{"versions":',
    '\uFEFF{"versions":[]}',
    '{"versions":[{"name":"a","url":"http://127.0.0.1:1","weight":1e400}]}',
    '{"versions":[{"name":"a","url":"http://127.0.0.1:1","weight":123456789012345678901234567890}]}',
    '{"__proto__":{"versions":[]},"versions":[]}',
    `{"versions":${'['.repeat(5000)}${']'.repeat(5000)}}`,
  ),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
);
const adminBody = fc.oneof(
  { weight: 3, arbitrary: routeLike.map((value) => ({ text: JSON.stringify(value) as string | Buffer, value: value as unknown })) },
  { weight: 1, arbitrary: anyJson.map((value) => ({ text: JSON.stringify(value) as string | Buffer, value })) },
  { weight: 2, arbitrary: rawBodies.map((text) => ({ text, value: undefined as unknown })) },
);
/** Path segments for targets: valid and reserved names, malformed escapes, over-long, odd. */
const targetSegment = fc.oneof(
  fc.constantFrom('fuzz', 'base', 'admin', 'metrics', 'healthz', '%zz', '%E0%A4%A', '%', 'a%2Fb', '%2e%2e', 'ADMIN', '-x', 'x-', 'caf%C3%A9', '%00', 'a'.repeat(64), 'a'.repeat(3000)),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  fc.webSegment(),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
);
const contentEncoding = fc.option(fc.constantFrom('gzip', 'br', 'identity', 'x-unknown'), { nil: undefined });

/** Keys the admin's strict objects do not know, as its message lists them (first 10, quoted). */
function unknownKeys(value: unknown, known: readonly string[]): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.keys(value).filter((key) => !known.includes(key));
}

// ---- properties ----

describe('admin API', () => {
  it('PUT with arbitrary bodies, targets, content types: never 5xx; every 4xx JSON, naming the field; a rejected PUT changes nothing', async () => {
    await check(
      'admin PUT',
      fc.record({ target: targetSegment, body: adminBody, type: contentType, encoding: contentEncoding, utf16: fc.boolean() }),
      async ({ target, body, type, encoding, utf16 }) => {
        const beforeTable = await routeTable();
        const beforeFile = await routesFile();
        const headers: Record<string, string> = { ...auth, 'content-type': type };
        if (encoding) headers['content-encoding'] = encoding;
        const payload = utf16 && typeof body.text === 'string' ? Buffer.from(body.text, 'utf16le') : body.text;
        const answer = await send('PUT', `/admin/routes/${target}`, headers, payload);
        expect([200, 400, 404, 405, 413]).toContain(answer.status);
        if (answer.status === 200) return; // a valid route: stored (and kept for the next cases)
        const error = gatewayError(answer);
        if (error.code === 'invalid_route') {
          expect(Array.isArray(error.issues) && error.issues.length > 0).toBe(true);
          for (const issue of error.issues!) {
            expect(typeof issue.path).toBe('string');
            expect(typeof issue.message).toBe('string');
            if (issue.path !== '') expect(error.message).toContain(`${issue.path as string}: `);
          }
          // Unknown fields are named, with the path of their object.
          if (!utf16) {
            const named = (keys: string[], where: string) => {
              const issue = error.issues!.find((i) => i.path === where && String(i.message).startsWith('unknown field(s): '));
              expect(issue).toBeDefined();
              for (const key of keys.slice(0, 10)) if (key.length <= 100) expect(issue!.message).toContain(JSON.stringify(key));
            };
            const top = unknownKeys(body.value, ['versions', 'salt']);
            if (top.length > 0) named(top, '');
            const versions = (body.value as { versions?: unknown } | undefined)?.versions;
            if (Array.isArray(versions) && versions.length <= 4) {
              versions.forEach((version, i) => {
                const extra = unknownKeys(version, ['name', 'url', 'weight']);
                if (extra.length > 0) named(extra, `versions.${i}`);
              });
            }
          }
        }
        expect(await routeTable()).toBe(beforeTable);
        expect(await routesFile()).toBe(beforeFile);
      },
      300,
    );
  });

  it('GET, DELETE and metrics of arbitrary targets: never 5xx, every 4xx JSON', async () => {
    await check(
      'admin GET/DELETE',
      fc.record({
        method: fc.constantFrom('GET', 'DELETE', 'POST', 'PATCH', 'OPTIONS'),
        collection: fc.constantFrom('routes', 'metrics', 'nope', ''),
        target: targetSegment.filter((t) => t !== 'base' && t !== 'fuzz'),
        extra: fc.option(fc.webSegment(), { nil: undefined }),
        query: fc.option(fc.webQueryParameters(), { nil: undefined }),
        token: fc.constantFrom(TOKEN, 'wrong', ''),
      }),
      async ({ method, collection, target, extra, query, token }) => {
        const pathname = `/admin/${collection}/${target}${extra !== undefined ? `/${extra}` : ''}${query ? `?${query}` : ''}`;
        const answer = await send(method, pathname, token ? { authorization: `Bearer ${token}` } : {});
        expect(answer.status).toBeLessThan(500);
        if (answer.status >= 400) gatewayError(answer);
        if (token !== TOKEN) expect(answer.status).toBe(401);
      },
      300,
    );
    // The routes every case left alone are still there.
    expect(JSON.parse(await routeTable()).routes.base).toEqual(baseRoute);
  });
});

const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection']);
const headerName = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}$/).filter((name) => !RESERVED_HEADERS.has(name.toLowerCase()));
/** Visible ASCII and obs-text (latin1), no leading or trailing space: what a header value may hold. */
const headerValue = fc.stringMatching(/^[\x21-\x7e\xa0-\xff]([\x20-\x7e\xa0-\xff]{0,30}[\x21-\x7e\xa0-\xff])?$/);

describe('proxy', () => {
  it('arbitrary paths, methods, headers, keys, queries and bodies: always the upstream\'s answer, never 5xx or a reset', async () => {
    await check(
      'proxy',
      fc.record({
        method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
        pathname: fc.webPath(),
        query: fc.option(fc.webQueryParameters(), { nil: undefined }),
        headers: fc.dictionary(headerName, headerValue, { maxKeys: 6 }),
        key: fc.option(fc.oneof(headerValue, fc.constant('')), { nil: undefined }),
        body: fc.option(
          fc.oneof(fc.string({ maxLength: 300 }), fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)), fc.constant(Buffer.alloc(200_000, 120))),
          { nil: undefined },
        ),
      }),
      async ({ method, pathname, query, headers, key, body }) => {
        const all: Record<string, string> = { ...headers };
        if (key !== undefined) all['x-canary-key'] = key;
        const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
        const answer = await send(method, `/base${pathname}${query ? `?${query}` : ''}`, all, withBody ? body : undefined);
        expect(answer.status).toBeLessThan(500);
        expect(['echo', 'model']).toContain(answer.headers['x-canary-version']);
        if (answer.status >= 400 && method !== 'HEAD') expect(() => JSON.parse(answer.text)).not.toThrow();
      },
      300,
    );
  });
});

/** Request lines and headers as they may come off the wire: valid, odd, oversized, garbage. */
const rawHttp = fc
  .record({
    method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'), fc.stringMatching(/^[A-Z]{1,8}$/), fc.string({ maxLength: 8 })),
    target: fc.oneof(
      fc.constantFrom('/healthz', '/base/x', '/admin/routes', '/admin/routes/base', '*', 'http://gw/base/y', '/%zz', '', '/base/../admin'),
      fc.webPath().map((p) => `/base${p}`),
      fc.string({ maxLength: 30 }),
    ),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/x', '', 'http/1.1'),
    headers: fc.array(
      fc.oneof(
        fc.tuple(headerName, headerValue).map(([n, v]) => `${n}: ${v}`),
        fc.constantFrom(
          'Host: gw',
          'Host: gw',
          'content-length: 5',
          'content-length: -1',
          'content-length: abc',
          'content-length: 1, 2',
          'transfer-encoding: chunked',
          'transfer-encoding: gzip',
          'Expect: 100-continue',
          'Expect: nope',
          'connection: upgrade',
          'upgrade: websocket',
          ' leading-space: x',
          'x-canary-key: \u00e9\u00ff',
          `authorization: Bearer ${TOKEN}`,
        ),
        fc.string({ maxLength: 40 }),
        fc.integer({ min: 1, max: 40_000 }).map((n) => `x-big: ${'a'.repeat(n)}`),
      ),
      { maxLength: 6 },
    ),
    newline: fc.constantFrom('\r\n', '\r\n', '\n'),
    body: fc.string({ maxLength: 60 }),
  })
  // node drops "PRI" (an HTTP/2 preface) without an answer, before any handler can see it.
  .filter(({ method }) => !method.startsWith('PRI'));

describe('malformed HTTP on raw sockets', () => {
  it('is answered (JSON 4xx of the gateway, or the upstream\'s answer), then closed: never a 5xx, a reset or a hang', async () => {
    await check(
      'raw HTTP',
      rawHttp,
      async ({ method, target, version, headers, newline, body }) => {
        // Connection: close, so that a well-formed request's answer ends the exchange; the client
        // does not half-close (node takes a client's FIN as it going away, and drops the request).
        const lines = [`${method} ${target} ${version}`, ...headers, 'Connection: close'];
        const text = `${lines.join(newline)}${newline}${newline}${body}`;
        const reply = await rawRequest(gateway.port, text, 10_000);
        expect(reply.closed).toBe(true);
        expect(reply.error).toBeUndefined();
        expect(reply.status).toBeDefined();
        expect(reply.status!).toBeLessThan(500);
        const proxied = reply.headers['x-canary-version'] !== undefined;
        if (reply.status! >= 400 && !proxied && method !== 'HEAD') {
          expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
          const length = Number(reply.headers['content-length']);
          const json = JSON.parse(reply.body.slice(0, length)) as { error: { code: string; message: string } };
          expect(typeof json.error.code).toBe('string');
          expect(json.error.message.length).toBeGreaterThan(0);
        }
      },
      300,
    );
  });

  it('answers oversized headers with a 431 JSON error', async () => {
    const reply = await rawRequest(gateway.port, `GET /base/x HTTP/1.1\r\nHost: gw\r\nx-big: ${'b'.repeat(64 * 1024)}\r\n\r\n`);
    expect(reply.status).toBe(431);
    expect(JSON.parse(reply.body).error.code).toBe('headers_too_large');
  });
});

describe('afterwards', () => {
  it('the gateway is healthy, its routes are intact, and a normal request is proxied', async () => {
    expect((await send('GET', '/healthz', {})).status).toBe(200);
    expect(JSON.parse(await routeTable()).routes.base).toEqual(baseRoute);
    const chat = await send('POST', '/base/v1/chat/completions', { 'content-type': 'application/json', 'x-canary-key': 'user-1' }, '{"messages":[]}');
    expect(chat.status).toBe(200);
    expect(['echo', 'model']).toContain(chat.headers['x-canary-version']);
    const metrics = await send('GET', '/admin/metrics/base', auth);
    const versions = JSON.parse(metrics.text).versions as Record<string, { errors: number }>;
    expect(versions.echo!.errors + versions.model!.errors).toBe(0); // nothing the fuzz sent was an upstream's fault
  });
});
