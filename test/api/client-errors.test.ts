/**
 * Issue 8: every client error is a 4xx in the JSON envelope naming what to fix. The app and the
 * server are the ones main.ts runs; Temporal is a lazy connection to a port nobody listens on,
 * so a bad request that slipped past validation would answer 503 here, never the 4xx expected.
 */
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { Client, Connection } from '@temporalio/client';
import type { ApiServer } from '../../src/api/server';
import { ACTIONS } from '../../src/api/rollout-service';
import { gatewayTrafficRouter } from '../../src/activities/routers/gateway';
import { rawResponse, type RawReply } from '../helpers/raw-http';
import { expectEnvelope, issuePaths, send, serveApi, type Reply } from './support';

let connection: Connection;
let api: ApiServer;

beforeAll(async () => {
  connection = Connection.lazy({ address: '127.0.0.1:1' });
  api = await serveApi(
    // The router, too, is a port nobody listens on (a valid spec would answer 503 router_unavailable).
    { client: new Client({ connection }), config: { namespace: 'default', taskQueue: 'nobody', temporalUiUrl: 'http://ui.test' }, routerFor: () => gatewayTrafficRouter({ url: 'http://127.0.0.1:1' }) },
    // Short timeouts (checked every 100 ms) so the 408 test need not wait for the defaults.
    { headersTimeout: 1_000, requestTimeout: 1_500, connectionsCheckingInterval: 100 },
  );
});

afterAll(async () => {
  await api?.close();
  await connection?.close();
});

const ID = 'rollout-chat';
const json = { 'content-type': 'application/json' };

/** A 4xx with this status and code, in the envelope; returns the issue paths. */
function expectClientError(reply: Reply, status: number, code: string): string[] {
  if (reply.status !== status) throw new Error(`expected ${status}, got ${reply.status}: ${reply.text.slice(0, 300)}`);
  expect(expectEnvelope(reply).code).toBe(code);
  return issuePaths(reply);
}

describe('path parameters', () => {
  it.each(['%E0%A4%A', '%zz', '%', 'rollout-%C0%AF', '%E0%A4%A/pause', '%zz/abort'])('a malformed escape in :id (%s) is 400 naming id', async (segment) => {
    const method = segment.includes('/') ? 'POST' : 'GET';
    const reply = await send(api.url, method, `/v1/rollouts/${segment}`);
    expect(expectClientError(reply, 400, 'invalid_request')).toEqual(['id']);
    expect(reply.json.error.message).toContain('percent-escape');
  });

  it('a malformed escape in the action is 400 naming action', async () => {
    const reply = await send(api.url, 'POST', `/v1/rollouts/${ID}/pa%zzuse`);
    expect(expectClientError(reply, 400, 'invalid_request')).toEqual(['action']);
  });

  it.each(['Chat', 'chat', 'rollout-', 'rollout-a%2Fb', 'rollout-a%00', 'rollout-%E2%9C%93', `rollout-${'a'.repeat(64)}`, 'rollout-a.b'])(
    'an id that cannot name a rollout (%s) is 400 naming id, on GET and every action',
    async (id) => {
      expect(expectClientError(await send(api.url, 'GET', `/v1/rollouts/${id}`), 400, 'invalid_request')).toEqual(['id']);
      for (const action of ACTIONS) {
        expect(expectClientError(await send(api.url, 'POST', `/v1/rollouts/${id}/${action}`), 400, 'invalid_request')).toEqual(['id']);
      }
    },
  );
});

describe('query strings', () => {
  it.each(['abc', '123', 'a-b-c', '', '01a230ae-8dc7-76f2-882e-faad2f3b9dbz', '01a230ae8dc776f2882efaad2f3b9dbd', '%zz'])('runId=%s (not a UUID) is 400 naming runId', async (runId) => {
    const reply = await send(api.url, 'GET', `/v1/rollouts/${ID}?runId=${runId}`);
    expect(expectClientError(reply, 400, 'invalid_request')).toEqual(['runId']);
    expect(reply.json.error.message).toContain('UUID');
  });

  it('a repeated runId is 400 naming runId', async () => {
    const reply = await send(api.url, 'GET', `/v1/rollouts/${ID}?runId=a&runId=b`);
    expect(expectClientError(reply, 400, 'invalid_request')).toEqual(['runId']);
    expect(reply.json.error.issues[0].message).toBe('runId must be given once, as a single value');
  });

  it('repeated and bracketed list parameters are 400 naming each', async () => {
    const reply = await send(api.url, 'GET', '/v1/rollouts?limit=1&limit=2&phase=paused&phase=aborted&target[x]=1&limit[]=3');
    expect(expectClientError(reply, 400, 'invalid_request').sort()).toEqual(['limit', 'limit[]', 'phase', 'target[x]']);
  });

  const routes: Array<[string, string]> = [
    ['GET', '/healthz'],
    ['GET', '/v1/rollouts'],
    ['POST', '/v1/rollouts'],
    ['GET', `/v1/rollouts/${ID}`],
    ...ACTIONS.map((a): [string, string] => ['POST', `/v1/rollouts/${ID}/${a}`]),
  ];
  it.each(routes)('unknown parameters on %s %s are 400 naming each', async (method, path) => {
    const reply = await send(api.url, method, `${path}?colour=blue&__proto__=x&run_id=1`);
    expect(expectClientError(reply, 400, 'invalid_request').sort()).toEqual(['__proto__', 'colour', 'run_id']);
    expect(reply.json.error.issues[0].message).toMatch(/^unknown query parameter "/);
  });
});

describe('bodies', () => {
  const spec = JSON.stringify({ target: 'chat', steps: 'none' });

  it.each<[string, (b: Buffer) => Buffer]>([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ])('a valid %s body is decoded (an invalid spec inside is 400 invalid_spec)', async (encoding, compress) => {
    const reply = await send(api.url, 'POST', '/v1/rollouts', { body: compress(Buffer.from(spec)), headers: { ...json, 'content-encoding': encoding } });
    expect(expectClientError(reply, 400, 'invalid_spec')).toContain('steps');
  });

  it.each<[string, Buffer]>([
    ['gzip', Buffer.from('not gzip at all')],
    ['gzip', gzipSync(Buffer.from(spec)).subarray(0, 12)],
    ['deflate', Buffer.from('not deflate')],
    ['br', Buffer.from('not brotli, not at all')],
    ['GZIP', Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])],
  ])('a corrupt or truncated %s body is 400 invalid_request naming the encoding', async (encoding, body) => {
    const reply = await send(api.url, 'POST', '/v1/rollouts', { body, headers: { ...json, 'content-encoding': encoding } });
    expectClientError(reply, 400, 'invalid_request');
    expect(reply.json.error.message).toContain(`not valid ${encoding.toLowerCase()} data`);
  });

  it.each(['compress', 'x-unknown', 'gzip, br', 'zstd-ish'])('content-encoding %s is 415 naming it', async (encoding) => {
    const reply = await send(api.url, 'POST', '/v1/rollouts', { body: spec, headers: { ...json, 'content-encoding': encoding } });
    expectClientError(reply, 415, 'unsupported_media_type');
    expect(reply.json.error.message).toContain(`"${encoding}"`);
  });

  it('a body inflating beyond 1 MiB is 413', async () => {
    const body = gzipSync(Buffer.from(JSON.stringify({ target: 'x'.repeat(2 * 1024 * 1024) })));
    expectClientError(await send(api.url, 'POST', '/v1/rollouts', { body, headers: { ...json, 'content-encoding': 'gzip' } }), 413, 'payload_too_large');
  });

  it.each(['text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'application/json-patch', 'image/png'])(
    'content-type %s is 415 on every POST route',
    async (type) => {
      for (const path of ['/v1/rollouts', `/v1/rollouts/${ID}/abort`]) {
        const reply = await send(api.url, 'POST', path, { body: spec, headers: { 'content-type': type } });
        expectClientError(reply, 415, 'unsupported_media_type');
        expect(reply.json.error.message).toContain('application/json');
      }
    },
  );

  it.each(['latin9', 'iso-8859-1', 'utf-16x'])('charset %s is 415 naming the charset', async (charset) => {
    const reply = await send(api.url, 'POST', '/v1/rollouts', { body: spec, headers: { 'content-type': `application/json; charset=${charset}` } });
    expectClientError(reply, 415, 'unsupported_media_type');
    expect(reply.json.error.message).toContain(`"${charset}"`);
  });

  it('action bodies: unknown fields and non-objects are 400 naming the field', async () => {
    const unknown = await send(api.url, 'POST', `/v1/rollouts/${ID}/pause`, { body: '{"force": true}', headers: json });
    expect(expectClientError(unknown, 400, 'invalid_request')).toEqual(['force']);
    const abort = await send(api.url, 'POST', `/v1/rollouts/${ID}/abort`, { body: '{"reason": "x", "why": 1}', headers: json });
    expect(expectClientError(abort, 400, 'invalid_request')).toEqual(['why']);
    const list = await send(api.url, 'POST', `/v1/rollouts/${ID}/abort`, { body: '["reason"]', headers: json });
    expect(expectClientError(list, 400, 'invalid_request')).toEqual(['(root)']);
  });

  it('a spec with thousands of wrong steps lists a bounded number of issues', async () => {
    const reply = await send(api.url, 'POST', '/v1/rollouts', { body: JSON.stringify({ steps: Array(100_000).fill('x') }), headers: json });
    const paths = expectClientError(reply, 400, 'invalid_spec');
    expect(paths.length).toBeLessThanOrEqual(50);
    expect(reply.text.length).toBeLessThan(64 * 1024);
  });
});

describe('malformed HTTP (raw sockets), answered by the server main.ts runs', () => {
  /** A JSON envelope with this status, an exact content-length and connection: close; no reset. */
  function expectRawError(reply: RawReply, status: number, code: string): void {
    expect(reply.error).toBeUndefined();
    expect(reply.status).toBe(status);
    expect(reply.headers.connection).toBe('close');
    expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.body));
    expect(expectEnvelope({ contentType: reply.headers['content-type'], text: reply.body, json: JSON.parse(reply.body) }).code).toBe(code);
  }

  it.each([
    ['a bad method', 'G@T / HTTP/1.1\r\nhost: x\r\n\r\n'],
    ['a bad version', 'GET / HTTP/9.9\r\nhost: x\r\n\r\n'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nhost: x\r\nbroken header\r\n\r\n'],
    ['a NUL in the URL', 'GET /v1/roll\0outs HTTP/1.1\r\nhost: x\r\n\r\n'],
    ['two different content-lengths', 'POST /v1/rollouts HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}'],
    ['content-length with chunked', 'POST /v1/rollouts HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['a bad chunk size', 'POST /v1/rollouts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'],
  ])('%s is 400 invalid_request in the envelope', async (_what, payload) => {
    expectRawError(await rawResponse(api.port, payload), 400, 'invalid_request');
  });

  it('oversized headers are 431 headers_too_large in the envelope', async () => {
    expectRawError(await rawResponse(api.port, `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`), 431, 'headers_too_large');
    expectRawError(await rawResponse(api.port, `GET /v1/rollouts/rollout-${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`), 431, 'headers_too_large');
  });

  it('a request that stalls mid-headers is 408 timeout in the envelope', async () => {
    expectRawError(await rawResponse(api.port, 'GET /healthz HTTP/1.1\r\nhost: x\r\n'), 408, 'timeout');
  });

  it('CONNECT is 405 and an unknown Expect is 417, in the envelope', async () => {
    expectRawError(await rawResponse(api.port, 'CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n'), 405, 'method_not_allowed');
    expectRawError(await rawResponse(api.port, 'POST /v1/rollouts HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\ncontent-length: 0\r\n\r\n'), 417, 'expectation_failed');
  });

  it('keeps serving after malformed requests', async () => {
    const reply = await rawResponse(api.port, 'GET /v1/nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    expect(reply.status).toBe(404);
    expect(JSON.parse(reply.body).error.code).toBe('not_found');
  });
});
