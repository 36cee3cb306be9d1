/**
 * DEMO ONLY — a fake OpenAI-compatible model server with fault knobs, for `npm start`, demos and
 * tests. Never a production path.
 *
 * - `POST /v1/chat/completions`: a JSON completion after a lognormal delay; with `stream: true`,
 *   SSE chunks (`data: {...}\n\n`, ending `data: [DONE]`), the first after `ttftMs`, then
 *   `tokensPerSecond`.
 * - `GET /v1/models`, `GET /healthz`, `GET /stats` (its own CPU and memory use).
 * - `errorRate` of chat requests fail with 500.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';

export interface ModelServerOptions {
  /** The version name it reports (`model` field, `x-model-version` header). */
  version: string;
  port?: number;
  host?: string;
  /** Median response latency (non-streamed) in ms. */
  latencyMs?: number;
  /** Lognormal sigma of the latency (0 = constant). */
  latencySpread?: number;
  /** Probability (0..1) that a chat request fails with 500. */
  errorRate?: number;
  /** Time to first token (streamed), median ms; spread as latencySpread. */
  ttftMs?: number;
  tokensPerSecond?: number;
  /** Most tokens in one completion (a request's max_tokens may lower it). */
  maxTokens?: number;
}

export interface ModelServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const WORDS = 'the quick brown fox jumps over a lazy dog while models learn to answer questions with care and calm'.split(' ');

function gaussian(): number {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

/** A lognormal sample with the given median and sigma. */
export function lognormal(medianMs: number, sigma: number): number {
  if (medianMs <= 0) return 0;
  return sigma > 0 ? medianMs * Math.exp(sigma * gaussian()) : medianMs;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: http.ServerResponse, status: number, body: unknown, version: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-model-version': version });
  res.end(text);
}

export async function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  const o = {
    port: 0,
    host: '127.0.0.1',
    latencyMs: 50,
    latencySpread: 0.25,
    errorRate: 0,
    ttftMs: 30,
    tokensPerSecond: 100,
    maxTokens: 32,
    ...options,
  };
  const startedAt = Date.now();
  let requests = 0;
  let errors = 0;
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return json(res, 200, { status: 'ok', version: o.version }, o.version);
    if (req.method === 'GET' && path === '/v1/models') {
      return json(res, 200, { object: 'list', data: [{ id: o.version, object: 'model', created: Math.floor(startedAt / 1000), owned_by: 'demo' }] }, o.version);
    }
    if (req.method === 'GET' && path === '/stats') {
      const cpu = process.cpuUsage();
      const memory = process.memoryUsage();
      return json(
        res,
        200,
        {
          version: o.version,
          uptimeSeconds: (Date.now() - startedAt) / 1000,
          requests,
          errors,
          cpu,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          memory,
          memoryBytes: memory.rss,
        },
        o.version,
      );
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      requests++;
      void chat(req, res).catch(() => res.destroy());
      return;
    }
    json(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } }, o.version);
  });

  async function chat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body: { stream?: unknown; max_tokens?: unknown; messages?: unknown };
    try {
      body = JSON.parse((await readBody(req)) || '{}') as typeof body;
    } catch {
      return json(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } }, o.version);
    }
    const requested = typeof body.max_tokens === 'number' && body.max_tokens > 0 ? Math.floor(body.max_tokens) : o.maxTokens;
    const tokens = Math.max(1, Math.min(o.maxTokens, requested));
    const id = `chatcmpl-${Math.random().toString(36).slice(2, 12)}`;
    const created = Math.floor(Date.now() / 1000);
    const fail = Math.random() < o.errorRate;

    if (body.stream !== true) {
      await sleep(lognormal(o.latencyMs, o.latencySpread));
      if (fail) {
        errors++;
        return json(res, 500, { error: { message: `demo fault injected by ${o.version}`, type: 'server_error' } }, o.version);
      }
      const text = Array.from({ length: tokens }, (_, i) => WORDS[i % WORDS.length]).join(' ');
      return json(
        res,
        200,
        {
          id,
          object: 'chat.completion',
          created,
          model: o.version,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 8, completion_tokens: tokens, total_tokens: 8 + tokens },
        },
        o.version,
      );
    }

    await sleep(lognormal(o.ttftMs, o.latencySpread));
    if (fail) {
      errors++;
      return json(res, 500, { error: { message: `demo fault injected by ${o.version}`, type: 'server_error' } }, o.version);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-model-version': o.version });
    let closed = false;
    res.on('close', () => (closed = true));
    const gapMs = o.tokensPerSecond > 0 ? 1000 / o.tokensPerSecond : 0;
    for (let i = 0; i < tokens && !closed; i++) {
      if (i > 0 && gapMs > 0) await sleep(gapMs);
      const chunk = {
        id,
        object: 'chat.completion.chunk',
        created,
        model: o.version,
        choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: WORDS[0] } : { content: ` ${WORDS[i % WORDS.length]}` }, finish_reason: null }],
      };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    }
    if (closed) return;
    const last = { id, object: 'chat.completion.chunk', created, model: o.version, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] };
    res.write(`data: ${JSON.stringify(last)}\n\n`);
    res.end('data: [DONE]\n\n');
  }

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${o.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** CLI: `npm run demo:model -- --name v2 --port 9002 --latency-ms 120 --error-rate 0.05`. */
export function optionsFromArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ModelServerOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      name: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'latency-ms': { type: 'string' },
      'latency-spread': { type: 'string' },
      'error-rate': { type: 'string' },
      'ttft-ms': { type: 'string' },
      'tokens-per-second': { type: 'string' },
      'max-tokens': { type: 'string' },
    },
    strict: true,
  });
  const num = (flag: string | undefined, envName: string): number | undefined => {
    const text = flag ?? env[envName];
    if (text === undefined || text === '') return undefined;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) throw new Error(`${envName} / flag must be a non-negative number, got "${text}"`);
    return value;
  };
  const out: ModelServerOptions = { version: values.name ?? env.MODEL_VERSION ?? 'v1' };
  const set = <K extends keyof ModelServerOptions>(key: K, value: ModelServerOptions[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('port', num(values.port, 'MODEL_PORT') ?? 9001);
  set('host', values.host ?? env.MODEL_HOST);
  set('latencyMs', num(values['latency-ms'], 'MODEL_LATENCY_MS'));
  set('latencySpread', num(values['latency-spread'], 'MODEL_LATENCY_SPREAD'));
  set('errorRate', num(values['error-rate'], 'MODEL_ERROR_RATE'));
  set('ttftMs', num(values['ttft-ms'], 'MODEL_TTFT_MS'));
  set('tokensPerSecond', num(values['tokens-per-second'], 'MODEL_TOKENS_PER_SECOND'));
  set('maxTokens', num(values['max-tokens'], 'MODEL_MAX_TOKENS'));
  return out;
}
