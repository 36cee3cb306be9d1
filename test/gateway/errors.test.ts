/**
 * How the gateway answers what it refuses (issue 8): an early 413 closes the connection instead
 * of leaving a keep-alive client hanging (item 2); an unknown field is named with the path of
 * the object holding it (item 4); malformed HTTP, oversized headers, CONNECT, an unsupported
 * Expect and a missing Host get a JSON error with the right status, content-length and
 * `connection: close` (item 5).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { Pool } from 'undici';
import { parseRoute } from '../../src/gateway/routes';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { eventually } from '../helpers/http';
import { rawConnect, rawRequest, type RawReply } from '../helpers/raw-http';
import { adminClient, echoServer, listen, seriesValue, type TestServer } from './helpers';

jest.setTimeout(60_000);

let dataDir: string;
let gateway: Gateway;
let v1: TestServer;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-errors-'));
  v1 = await echoServer('v1');
  gateway = await startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) });
  expect((await adminClient(gateway.url).put('chat', { versions: [{ name: 'v1', url: v1.url, weight: 100 }] })).status).toBe(200);
});

afterAll(async () => {
  await gateway?.close(100);
  await v1?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const FIVE_MIB = Buffer.alloc(5 * 1024 * 1024, 0x20);

/** The same 5 MiB as a stream of chunks, so that undici sends it chunked (no content-length). */
function chunked(): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < FIVE_MIB.length; at += 64 * 1024) yield FIVE_MIB.subarray(at, at + 64 * 1024);
    })(),
  );
}

/** A JSON error answer written by the gateway: status, JSON body of the shared shape, exact length, closed. */
function expectJsonError(reply: RawReply, status: number, code: string): { code: string; message: string } {
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(reply.headers.connection).toBe('close');
  expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.body));
  expect(reply.closed).toBe(true);
  const body = JSON.parse(reply.body) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}

describe('an early 413 (item 2)', () => {
  it.each([
    ['with content-length', (): Buffer | Readable => FIVE_MIB],
    ['chunked', chunked],
  ])('a 5 MiB PUT %s gets its 413 at once with connection: close; the keep-alive client goes on without a hang', async (_, body) => {
    const pool = new Pool(gateway.url, { connections: 1 });
    try {
      const started = Date.now();
      const res = await pool.request({ path: '/admin/routes/chat', method: 'PUT', headers: { 'content-type': 'application/json' }, body: body(), headersTimeout: 5_000 });
      expect(res.statusCode).toBe(413);
      expect(res.headers.connection).toBe('close');
      expect(((await res.body.json()) as any).error.code).toBe('body_too_large');
      expect(Date.now() - started).toBeLessThan(3_000);

      const next = Date.now();
      const health = await pool.request({ path: '/healthz', method: 'GET', headersTimeout: 5_000, bodyTimeout: 5_000 });
      expect(health.statusCode).toBe(200);
      await health.body.text();
      expect(Date.now() - next).toBeLessThan(3_000);
    } finally {
      await pool.destroy();
    }
    expect((await adminClient(gateway.url).get('/admin/routes/chat')).body.versions[0].name).toBe('v1'); // unchanged
  });

  it('fetch (keep-alive) gets the 413 and its next request is served', async () => {
    const res = await fetch(`${gateway.url}/admin/routes/chat`, { method: 'PUT', body: FIVE_MIB, signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error.code).toBe('body_too_large');
    expect((await fetch(`${gateway.url}/healthz`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
  });
});

describe('unknown fields are named (item 4)', () => {
  it('names an unknown top-level field, with the path of the object holding it', async () => {
    const res = await adminClient(gateway.url).put('named', { versions: [{ name: 'v1', url: v1.url, weight: 100 }], foo: 1, weights: [] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_route');
    expect(res.body.error.message).toContain('unknown field(s): "foo", "weights"');
    expect(res.body.error.issues).toEqual([{ path: '', message: 'unknown field(s): "foo", "weights"' }]);
  });

  it('names an unknown field of a version, prototype keys included, with the version\'s path', async () => {
    const text = `{"versions":[{"name":"v1","url":"${v1.url}","weight":100,"__proto__":{"x":1},"constructor":2}]}`;
    const res = await fetch(`${gateway.url}/admin/routes/named`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: text });
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.error.issues).toEqual([{ path: 'versions.0', message: 'unknown field(s): "__proto__", "constructor"' }]);
    expect(body.error.message).toContain('versions.0: unknown field(s): "__proto__", "constructor"');
    expect((await adminClient(gateway.url).get('/admin/routes/named')).status).toBe(404);
  });

  it('parseRoute: the issue names the key, bounded for many or long keys', () => {
    const body: Record<string, unknown> = { versions: [{ name: 'v1', url: 'http://127.0.0.1:1', weight: 100 }] };
    for (let i = 0; i < 12; i++) body[`k${i}`] = i;
    body['x'.repeat(300)] = 1;
    const result = parseRoute('chat', body);
    expect(result.ok).toBe(false);
    const [issue] = (result as { issues: Array<{ path: string; message: string }> }).issues;
    expect(issue!.path).toBe('');
    expect(issue!.message).toMatch(/^unknown field\(s\): "k0", "k1", .*"k9" and 3 more$/);
    const long = parseRoute('chat', { versions: [{ name: 'v1', url: 'http://127.0.0.1:1', weight: 100 }], ['y'.repeat(300)]: 1 });
    expect((long as { issues: Array<{ message: string }> }).issues[0]!.message).toBe(`unknown field(s): "${'y'.repeat(100)}…"`);
  });
});

describe('a client that goes away', () => {
  it.each([
    ['closes the connection', 'gone-a', (socket: Socket) => socket.destroy()],
    ['half-closes it (node takes that as gone)', 'gone-b', (socket: Socket) => socket.end()],
  ])('%s while the upstream works: the upstream request is stopped, and it is not the version\'s error', async (_, target, leave) => {
    let upstreamSaw = 0;
    let upstreamStopped = 0;
    const never = await listen((req, res) => {
      upstreamSaw++;
      res.on('close', () => upstreamStopped++);
      req.resume();
    });
    try {
      await adminClient(gateway.url).put(target, { versions: [{ name: 'g1', url: never.url, weight: 100 }] });
      const connection = await rawConnect(gateway.port, `GET /${target}/x HTTP/1.1\r\nHost: gw\r\n\r\n`);
      await eventually(async () => (upstreamSaw === 1 ? true : undefined), 10_000, 'the request at the upstream');
      leave(connection.socket);
      await eventually(async () => (upstreamStopped === 1 ? true : undefined), 10_000, 'the upstream request stopped');
      const versions = (await adminClient(gateway.url).get(`/admin/metrics/${target}`)).body.versions;
      expect(versions.g1).toMatchObject({ requests: 1, errors: 0 });
      expect(seriesValue(await (await fetch(`${gateway.url}/metrics`)).text(), `gateway_requests_total{target="${target}",version="g1",code="4xx"}`)).toBe(1); // 499
    } finally {
      await adminClient(gateway.url).del(target);
      await never.close();
    }
  });
});

describe('malformed requests get JSON errors (item 5)', () => {
  it('431 headers_too_large for oversized headers', async () => {
    const reply = await rawRequest(gateway.port, `GET /chat/x HTTP/1.1\r\nHost: gw\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(expectJsonError(reply, 431, 'headers_too_large').message).toContain('headers');
  });

  it.each([
    ['a bad request line', 'GARBAGE\r\n\r\n'],
    ['an unknown method', 'FROB /chat/x HTTP/1.1\r\nHost: gw\r\n\r\n'],
    ['content-length and transfer-encoding together', 'POST /chat/x HTTP/1.1\r\nHost: gw\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost: gw\r\nbroken header\r\n\r\n'],
    ['a bad chunk in a proxied body', 'POST /chat/x HTTP/1.1\r\nHost: gw\r\ntransfer-encoding: chunked\r\n\r\nZZ\r\nhello\r\n'],
  ])('400 bad_request for %s', async (_, text) => {
    const before = (await adminClient(gateway.url).get('/admin/metrics/chat')).body.versions.v1.requests;
    expectJsonError(await rawRequest(gateway.port, text), 400, 'bad_request');
    // A malformed request is the client's failure: never its version's request.
    expect((await adminClient(gateway.url).get('/admin/metrics/chat')).body.versions.v1.requests).toBe(before);
  });

  it('400 bad_request for an HTTP/1.1 request without Host, proxied or not', async () => {
    expectJsonError(await rawRequest(gateway.port, 'GET /chat/x HTTP/1.1\r\n\r\n'), 400, 'bad_request');
    expectJsonError(await rawRequest(gateway.port, 'GET /healthz HTTP/1.1\r\n\r\n'), 400, 'bad_request');
    // HTTP/1.0 needs none.
    const old = await rawRequest(gateway.port, 'GET /healthz HTTP/1.0\r\n\r\n');
    expect(old.status).toBe(200);
  });

  it('405 for CONNECT, 417 for an Expect other than 100-continue', async () => {
    expectJsonError(await rawRequest(gateway.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'), 405, 'method_not_allowed');
    const expectation = await rawRequest(gateway.port, 'GET /chat/x HTTP/1.1\r\nHost: gw\r\nExpect: teapot\r\nconnection: close\r\n\r\n');
    expect(expectation.status).toBe(417);
    expect(JSON.parse(expectation.body).error.code).toBe('expectation_failed');
  });

  it('counts them, and stays healthy', async () => {
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(seriesValue(text, 'gateway_client_errors_total{reason="headers_too_large"}')).toBeGreaterThanOrEqual(1);
    expect(seriesValue(text, 'gateway_client_errors_total{reason="bad_request"}')).toBeGreaterThanOrEqual(5);
    const res = await fetch(`${gateway.url}/chat/v1/models`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-canary-version')).toBe('v1');
  });
});
