/**
 * Bench upstream: the smallest useful model stand-in — a node:http server answering a small JSON
 * body, or, for a request whose JSON body sets `"stream": true`, an OpenAI-style SSE stream: the
 * first content chunk after BENCH_STREAM_FIRST_MS (default 20), then BENCH_STREAM_CHUNKS - 1 more
 * (default 20 in all) every BENCH_STREAM_GAP_MS (default 5), a finish chunk and `data: [DONE]`.
 * Listens on 127.0.0.1:PORT (0 = a free port) and prints its port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const FIRST_MS = Number(process.env.BENCH_STREAM_FIRST_MS ?? 20);
const CHUNKS = Math.max(1, Number(process.env.BENCH_STREAM_CHUNKS ?? 20));
const GAP_MS = Number(process.env.BENCH_STREAM_GAP_MS ?? 5);

const body = Buffer.from(JSON.stringify({ id: 'bench', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' } }] }));
const event = (delta: Record<string, string>, finish: string | null) =>
  Buffer.from(`data: ${JSON.stringify({ id: 'bench', object: 'chat.completion.chunk', created: 0, model: 'bench', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
const firstEvent = event({ role: 'assistant', content: 'tok ' }, null);
const nextEvent = event({ content: 'tok ' }, null);
const lastEvent = Buffer.concat([event({}, 'stop'), Buffer.from('data: [DONE]\n\n')]);

function stream(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let sent = 0;
  let closed = false;
  res.on('close', () => (closed = true));
  const next = () => {
    if (closed) return;
    res.write(sent === 0 ? firstEvent : nextEvent);
    if (++sent < CHUNKS) setTimeout(next, GAP_MS);
    else res.end(lastEvent);
  };
  setTimeout(next, FIRST_MS);
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    // A cheap test, not a parse: the bench's streamed requests send `"stream":true` verbatim.
    if (chunks.length && Buffer.concat(chunks).includes('"stream":true')) return stream(res);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'upstream listening', port: (server.address() as AddressInfo).port }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
