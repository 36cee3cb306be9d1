/**
 * The gateway's limits against slow and greedy clients (issue 8, item 1), over real HTTP on
 * 127.0.0.1: slow uploads do not starve a version's ordinary users and are cut after the
 * body-idle timeout; stalled headers and requests that take too long get a 408; an origin with a
 * full queue, or full upload slots, answers 503 at once, counted as a rejection and not as the
 * version's error; a long SSE response is not cut by the request timeout.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { Agent, request } from 'undici';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/server';
import { eventually } from '../helpers/http';
import { rawConnect, rawRequest, type RawConnection } from '../helpers/raw-http';
import { adminClient, echoServer, listen, seriesValue, type TestServer } from './helpers';

jest.setTimeout(60_000);

const cleanups: Array<() => Promise<unknown> | unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function gatewayWith(options: Partial<GatewayOptions>): Promise<Gateway> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'gateway-limits-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const gateway = await startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }), ...options });
  cleanups.push(() => gateway.close(100));
  return gateway;
}

async function upstream(server: Promise<TestServer>): Promise<TestServer> {
  const s = await server;
  cleanups.push(() => s.close());
  return s;
}

async function route(gateway: Gateway, target: string, name: string, url: string): Promise<void> {
  const put = await adminClient(gateway.url).put(target, { versions: [{ name, url, weight: 100 }] });
  expect(put.status).toBe(200);
}

async function metricsText(gateway: Gateway): Promise<string> {
  return (await fetch(`${gateway.url}/metrics`)).text();
}

/** An upstream that holds its answers until released (then answers everything at once). */
async function holdingServer(): Promise<TestServer & { held: () => number; release: () => void }> {
  const waiting: Array<() => void> = [];
  let released = false;
  const server = await upstream(
    listen((req: IncomingMessage, res) => {
      req.resume();
      if (released) res.end('done');
      else waiting.push(() => res.end('done'));
    }),
  );
  return {
    ...server,
    held: () => waiting.length,
    release: () => {
      released = true;
      for (const answer of waiting.splice(0)) answer();
    },
  };
}

function postHead(target: string, contentLength: number): string {
  return `POST /${target}/v1/chat/completions HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\ncontent-length: ${contentLength}\r\n\r\n`;
}

describe('slow uploads', () => {
  it('300 slow uploads to one version leave its ordinary requests served; the slow ones are cut after the timeouts', async () => {
    const BODY_IDLE_MS = 4_000;
    const REQUEST_MS = 6_000;
    const v1 = await upstream(echoServer('v1')); // answers once the whole body is in
    const gateway = await gatewayWith({ bodyIdleTimeoutMs: BODY_IDLE_MS, requestTimeoutMs: REQUEST_MS, headersTimeoutMs: 2_000 });
    await route(gateway, 'chat', 'v1', v1.url);

    // 280 send their headers and a few bytes, then nothing; 20 trickle a byte every 250 ms.
    const stalled: RawConnection[] = [];
    const trickling: RawConnection[] = [];
    for (let batch = 0; batch < 300; batch += 50) {
      const opened = await Promise.all(Array.from({ length: 50 }, () => rawConnect(gateway.port, `${postHead('chat', 100_000)}{"messages":`)));
      for (const connection of opened) (stalled.length < 280 ? stalled : trickling).push(connection);
    }
    cleanups.push(() => [...stalled, ...trickling].forEach((c) => c.socket.destroy()));
    for (const connection of trickling) {
      const timer = setInterval(() => connection.socket.write(' '), 250);
      connection.socket.once('close', () => clearInterval(timer));
      cleanups.push(() => clearInterval(timer));
    }
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200); // the gateway has read what came before

    // 26 ordinary requests to the same version, each within 2 s.
    const agent = new Agent({ connections: 26 });
    cleanups.push(() => agent.close());
    const timings = await Promise.all(
      Array.from({ length: 26 }, async (_, i) => {
        const started = Date.now();
        const res = await request(`${gateway.url}/chat/v1/chat/completions`, {
          dispatcher: agent,
          method: i % 2 === 0 ? 'POST' : 'GET',
          body: i % 2 === 0 ? JSON.stringify({ messages: [{ role: 'user', content: `hello ${i}` }] }) : undefined,
          headers: { 'content-type': 'application/json', 'x-canary-key': `user-${i}` },
          headersTimeout: 10_000,
        });
        await res.body.text();
        return { status: res.statusCode, ms: Date.now() - started };
      }),
    );
    expect(timings.map((t) => t.status)).toEqual(Array(26).fill(200));
    expect(Math.max(...timings.map((t) => t.ms))).toBeLessThan(2_000);
    // ...while every slow upload was still open.
    expect([...stalled, ...trickling].filter((c) => c.socket.closed)).toHaveLength(0);

    const stalledReplies = await Promise.all(stalled.map((c) => c.reply(BODY_IDLE_MS + 15_000)));
    for (const reply of stalledReplies) {
      expect(reply).toMatchObject({ status: 408, closed: true, headers: { connection: 'close', 'x-canary-version': 'v1' } });
      expect(JSON.parse(reply.body)).toEqual({ error: { code: 'body_timeout', message: expect.stringContaining(`${BODY_IDLE_MS} ms`) } });
      expect(reply.elapsedMs).toBeGreaterThanOrEqual(BODY_IDLE_MS - 500);
    }
    const tricklingReplies = await Promise.all(trickling.map((c) => c.reply(REQUEST_MS + 15_000)));
    for (const reply of tricklingReplies) {
      expect(reply).toMatchObject({ status: 408, closed: true, headers: { connection: 'close' } });
      expect(JSON.parse(reply.body).error.code).toBe('request_timeout');
      expect(reply.elapsedMs).toBeGreaterThanOrEqual(REQUEST_MS - 500);
    }

    const text = await metricsText(gateway);
    expect(seriesValue(text, 'gateway_client_errors_total{reason="body_idle_timeout"}')).toBe(280);
    expect(seriesValue(text, 'gateway_client_errors_total{reason="request_timeout"}')).toBe(20);
    // The version served the 26; the cut uploads are the clients' failures, not its requests or errors.
    const snapshot = (await adminClient(gateway.url).get('/admin/metrics/chat')).body;
    expect(snapshot.versions.v1).toMatchObject({ requests: 26, errors: 0 });
  });

  it('a large upload that keeps sending passes, streamed, though it lasts longer than the body-idle timeout', async () => {
    const v1 = await upstream(echoServer('v1'));
    const gateway = await gatewayWith({ bodyIdleTimeoutMs: 600, bodyBufferBytes: 16 * 1024 });
    await route(gateway, 'up', 'v1', v1.url);
    const chunk = Buffer.alloc(10 * 1024, 97);
    const res = await request(`${gateway.url}/up/v1/embed`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Readable.from(
        (async function* () {
          for (let i = 0; i < 20; i++) {
            yield chunk;
            await new Promise((resolve) => setTimeout(resolve, 100)); // 2 s in all, 100 ms apart
          }
        })(),
      ),
    });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { bytes: number }).bytes).toBe(20 * chunk.length);
  });

  it('a body that stalls after the response has started: the connection is closed', async () => {
    // Answers at once, and keeps its response open until the request body ends.
    const early = await upstream(
      listen((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('started\n');
        req.on('end', () => res.end('done\n'));
        req.resume();
      }),
    );
    const gateway = await gatewayWith({ bodyIdleTimeoutMs: 500, bodyBufferBytes: 1024 });
    await route(gateway, 'early', 'e1', early.url);
    const connection = await rawConnect(gateway.port, Buffer.concat([Buffer.from(postHead('early', 100_000)), Buffer.alloc(4096, 97)]));
    cleanups.push(() => connection.socket.destroy());
    const reply = await connection.reply(10_000);
    expect(reply.closed).toBe(true);
    expect(reply.status).toBe(200);
    expect(reply.text).toContain('started');
    expect(reply.text).not.toContain('done');
    expect(reply.text.endsWith('0\r\n\r\n')).toBe(false); // the chunked body never ended
    expect(seriesValue(await metricsText(gateway), 'gateway_client_errors_total{reason="body_idle_timeout"}')).toBe(1);
  });

  it('an admin PUT whose body stalls gets a 408 and the connection is closed', async () => {
    const gateway = await gatewayWith({ bodyIdleTimeoutMs: 300 });
    const reply = await rawRequest(
      gateway.port,
      'PUT /admin/routes/chat HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"versions":',
    );
    expect(reply).toMatchObject({ status: 408, closed: true, headers: { connection: 'close', 'content-type': 'application/json; charset=utf-8' } });
    expect(JSON.parse(reply.body).error.code).toBe('body_timeout');
    expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.body));
    expect((await adminClient(gateway.url).get('/admin/routes')).body).toEqual({ routes: {} });
  });
});

describe('header and request timeouts', () => {
  it('headers that never end get a 408 JSON answer after headersTimeout, and the connection is closed', async () => {
    const gateway = await gatewayWith({ headersTimeoutMs: 500, requestTimeoutMs: 5_000 });
    const reply = await rawRequest(gateway.port, 'GET /healthz HTTP/1.1\r\nHost: gw\r\nx-slow: 1\r\n');
    expect(reply).toMatchObject({ status: 408, closed: true, headers: { connection: 'close' } });
    expect(JSON.parse(reply.body).error.code).toBe('request_timeout');
    expect(reply.elapsedMs).toBeGreaterThanOrEqual(400);
    expect(reply.elapsedMs).toBeLessThan(5_000);
    expect(seriesValue(await metricsText(gateway), 'gateway_client_errors_total{reason="request_timeout"}')).toBe(1);
  });

  it('an SSE response longer than the request timeout is streamed to its end, event by event', async () => {
    const sse = await upstream(
      listen((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        let n = 0;
        const timer = setInterval(() => {
          if (++n <= 12) res.write(`data: ${n}\n\n`);
          else {
            clearInterval(timer);
            res.end('data: [DONE]\n\n');
          }
        }, 200);
        res.on('close', () => clearInterval(timer));
      }),
    );
    const gateway = await gatewayWith({ headersTimeoutMs: 300, requestTimeoutMs: 800 });
    await route(gateway, 'stream', 's1', sse.url);
    const started = Date.now();
    const res = await request(`${gateway.url}/stream/v1/chat/completions`, { method: 'POST', body: '{"stream":true}' });
    expect(res.statusCode).toBe(200);
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of res.body) {
      arrivals.push(Date.now() - started);
      text += Buffer.from(chunk as Buffer).toString();
    }
    expect(text).toBe(`${Array.from({ length: 12 }, (_, i) => `data: ${i + 1}\n\n`).join('')}data: [DONE]\n\n`);
    expect(Date.now() - started).toBeGreaterThan(2_000); // longer than the 800 ms request timeout
    expect(arrivals.length).toBeGreaterThan(5); // unbuffered: events came as they were sent
  });
});

describe('upstream limits', () => {
  it('beyond connections + maxPending requests to an origin, answers 503 upstream_overloaded at once, counted apart from the version', async () => {
    const hold = await holdingServer();
    const gateway = await gatewayWith({ pool: { connections: 2, maxPending: 3 } });
    await route(gateway, 'queue', 'h1', hold.url);
    const agent = new Agent({ connections: 10 });
    cleanups.push(() => agent.close());
    const get = () => request(`${gateway.url}/queue/x`, { dispatcher: agent, headersTimeout: 20_000 });

    const held = Array.from({ length: 5 }, get); // 2 at the upstream, 3 waiting for a connection
    const stats = gateway.metrics.stats('queue', 'h1');
    await eventually(async () => (hold.held() === 2 && stats.inFlight === 5 ? true : undefined), 10_000, '5 requests in flight');
    const started = Date.now();
    const rejected = await get();
    expect(rejected.statusCode).toBe(503);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(rejected.headers['x-canary-version']).toBe('h1');
    expect(((await rejected.body.json()) as any).error).toEqual({ code: 'upstream_overloaded', message: expect.stringContaining('h1') });

    hold.release();
    await eventually(async () => (stats.inFlight === 0 ? true : undefined), 10_000, 'the held requests answered');
    for (const res of await Promise.all(held)) {
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    const text = await metricsText(gateway);
    expect(seriesValue(text, 'gateway_rejected_total{target="queue",version="h1",reason="upstream_overloaded"}')).toBe(1);
    expect((await adminClient(gateway.url).get('/admin/metrics/queue')).body.versions.h1).toMatchObject({ requests: 5, errors: 0 });
    expect((await get()).statusCode).toBe(200); // room again
  });

  it('beyond maxUploads bodies still arriving at an origin, a further large upload gets 503 while ordinary requests pass', async () => {
    const v1 = await upstream(echoServer('v1'));
    const gateway = await gatewayWith({ bodyIdleTimeoutMs: 20_000, bodyBufferBytes: 1024, pool: { connections: 4, maxUploads: 2 } });
    await route(gateway, 'up', 'v1', v1.url);
    const largeStart = Buffer.concat([Buffer.from(postHead('up', 1_000_000)), Buffer.alloc(4096, 97)]);
    const uploads = await Promise.all([rawConnect(gateway.port, largeStart), rawConnect(gateway.port, largeStart)]);
    cleanups.push(() => uploads.forEach((c) => c.socket.destroy()));
    const upstreamOf = gateway.metrics.stats('up', 'v1');
    await eventually(async () => (upstreamOf.inFlight === 2 ? true : undefined), 10_000, 'two uploads streaming');

    const third = await rawRequest(gateway.port, largeStart);
    expect(third).toMatchObject({ status: 503, closed: true, headers: { connection: 'close' } });
    expect(JSON.parse(third.body).error.code).toBe('upstream_overloaded');
    for (let i = 0; i < 5; i++) {
      const res = await request(`${gateway.url}/up/v1/chat/completions`, { method: 'POST', body: '{"messages":[]}' });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    expect(seriesValue(await metricsText(gateway), 'gateway_rejected_total{target="up",version="v1",reason="uploads_overloaded"}')).toBe(1);
  });
});
