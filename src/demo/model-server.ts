/**
 * DEMO ONLY — a fake OpenAI-compatible model server with fault knobs, for `npm start`, demos and
 * tests. Never a production path.
 *
 * - `POST /v1/chat/completions`: a JSON completion after a lognormal delay; with `stream: true`,
 *   SSE chunks (`data: {...}\n\n`, ending `data: [DONE]`), the first after `ttftMs`, then one
 *   content chunk per token every `interTokenMs` (lognormal, sigma `latencySpread`). A token is a
 *   word plus a space (the last word has none), so a content's tokens are its words.
 * - Answer length: `answerTokens` when set (cut by the request's `max_tokens`, or an explicit
 *   `maxTokens`, with finish_reason "length"); unset, as before: min(`maxTokens`, max_tokens),
 *   finish_reason "stop". `truncationRate` of answers stop early (a quarter to three quarters
 *   through) with finish_reason "length".
 * - JSON mode: a request with `response_format: {type: "json_object" | "json_schema"}` gets a
 *   JSON content, `{"answer": "<words>"}` (json_schema: its schema's first property name instead
 *   of `answer`); `invalidJsonRate` of them are broken (no closing brace), as is any truncated one.
 * - `usage` ({prompt_tokens, completion_tokens, total_tokens}; prompt tokens = the words of the
 *   request's messages): always in a JSON answer; streamed, in a last chunk with `choices: []`
 *   when the request sets `stream_options: {include_usage: true}` (as OpenAI does).
 * - `GET /v1/models`, `GET /healthz`, `GET /stats` (its own CPU and memory use).
 * - `GET /metrics`: Prometheus text, named as vLLM names its metrics and labelled
 *   `model_name=<version>` (modelServerMetrics), for the Prometheus metric source's `vllm` preset.
 * - `errorRate` of chat requests fail with 500.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS_S } from '../gateway/metrics';

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
  /**
   * Streamed tokens per second: the same knob as `interTokenMs` (gap = 1000 / tokensPerSecond;
   * 0 = no gap). Used when `interTokenMs` is not given (default 100/s, a 10 ms gap).
   */
  tokensPerSecond?: number;
  /** Median gap between streamed content chunks, ms (lognormal, sigma latencySpread); wins over tokensPerSecond. */
  interTokenMs?: number;
  /**
   * Most tokens in one completion (a request's max_tokens may lower it). Without `answerTokens`
   * it is also the answer's length (default 32, finish_reason "stop").
   */
  maxTokens?: number;
  /**
   * The answer's natural length in tokens (e.g. 2× the baseline's for a costlier candidate).
   * A request's max_tokens (or an explicitly given maxTokens) below it cuts the answer there
   * with finish_reason "length", as a real model does.
   */
  answerTokens?: number;
  /** Probability (0..1) that an answer stops early with finish_reason "length". */
  truncationRate?: number;
  /** Probability (0..1) that a JSON-mode answer (response_format json_object/json_schema) is broken JSON. */
  invalidJsonRate?: number;
  /**
   * CPU time each chat request spends computing (busy, in ms), as inference would: without it a
   * demo server's CPU is its idle overhead, which per request looks many times larger on a
   * candidate that serves a tenth of the traffic.
   */
  cpuMsPerRequest?: number;
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

/** Spends `ms` of CPU time on this thread. */
function busy(ms: number): void {
  if (ms <= 0) return;
  const until = process.cpuUsage();
  const budget = ms * 1000;
  let spent = 0;
  while (spent < budget) {
    const now = process.cpuUsage(until);
    spent = now.user + now.system;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How a chat request ended, as vLLM's `finished_reason` says it. */
export type FinishedReason = 'stop' | 'length' | 'abort' | 'error';
const FINISHED_REASONS: readonly FinishedReason[] = ['stop', 'length', 'abort', 'error'];

/** Edges of `vllm:inter_token_latency_seconds`: vLLM's, with 1–5 ms below (demo gaps are a few ms). */
export const INTER_TOKEN_BUCKETS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** The KV-cache stand-in: requests in flight over this many slots (a demo has no KV cache). */
const DEMO_KV_SLOTS = 16;

export interface ModelServerMetrics {
  registry: Registry;
  /** A chat request that reached the model ended (`latencyMs` from its arrival). */
  finished(reason: FinishedReason, latencyMs: number): void;
  /** A streamed request's first token went out. */
  firstToken(ttftMs: number): void;
  /** A streamed request's next token went out, `gapMs` after the one before. */
  interToken(gapMs: number): void;
  /** An answer went out whole: its prompt and generated tokens. */
  tokens(prompt: number, generation: number): void;
  inFlight: number;
}

/**
 * The server's `GET /metrics`, in vLLM's names, every series labelled `model_name=<version>`
 * and present (at 0) from the start, so that a window's `increase` counts the first requests:
 *  - `vllm:e2e_request_latency_seconds` (histogram): every chat request the model answered or
 *    failed, arrival to the response's end (a request refused as malformed is not counted);
 *  - `vllm:time_to_first_token_seconds` (histogram): streamed requests, arrival to first token;
 *  - `vllm:inter_token_latency_seconds` (histogram): streamed requests, the gap between one
 *    content chunk and the next (edges INTER_TOKEN_BUCKETS_S, finer than the latency ones);
 *  - `vllm:prompt_tokens_total`, `vllm:generation_tokens_total` (counters): the answered requests' usage;
 *  - `vllm:request_success_total{finished_reason}` (counter): `stop` for a whole answer, `length`
 *    for one cut short (max_tokens, truncationRate), `error`
 *    for a failure answered 500 (the injected faults: the `vllm` preset's errors), `abort` when
 *    the client went away first;
 *  - `vllm:kv_cache_usage_perc` (gauge): a stand-in, requests in flight / 16, at most 1;
 *  - `process_cpu_seconds_total`, `process_resident_memory_bytes`: the process's (demo servers
 *    sharing a process report the same figures).
 * Histogram edges are LATENCY_BUCKETS_MS in seconds, as the gateway's.
 */
export function modelServerMetrics(version: string): ModelServerMetrics {
  const registry = new Registry();
  const labels = { model_name: version };
  const latency = new Histogram({
    name: 'vllm:e2e_request_latency_seconds',
    help: 'End-to-end request latency in seconds (demo model server)',
    labelNames: ['model_name'] as const,
    buckets: [...LATENCY_BUCKETS_S],
    registers: [registry],
  });
  const ttft = new Histogram({
    name: 'vllm:time_to_first_token_seconds',
    help: 'Time to first token in seconds, streamed requests (demo model server)',
    labelNames: ['model_name'] as const,
    buckets: [...LATENCY_BUCKETS_S],
    registers: [registry],
  });
  const finishedTotal = new Counter({
    name: 'vllm:request_success_total',
    help: 'Finished requests by finished_reason (demo model server: error = answered 500)',
    labelNames: ['model_name', 'finished_reason'] as const,
    registers: [registry],
  });
  const interToken = new Histogram({
    name: 'vllm:inter_token_latency_seconds',
    help: 'Time between successive output tokens in seconds, streamed requests (demo model server)',
    labelNames: ['model_name'] as const,
    buckets: [...INTER_TOKEN_BUCKETS_S],
    registers: [registry],
  });
  const promptTokens = new Counter({
    name: 'vllm:prompt_tokens_total',
    help: 'Prompt tokens of the answered requests (demo model server: words of the messages)',
    labelNames: ['model_name'] as const,
    registers: [registry],
  });
  const generationTokens = new Counter({
    name: 'vllm:generation_tokens_total',
    help: 'Generated tokens of the answered requests (demo model server)',
    labelNames: ['model_name'] as const,
    registers: [registry],
  });
  latency.zero(labels);
  ttft.zero(labels);
  interToken.zero(labels);
  promptTokens.labels(labels).inc(0);
  generationTokens.labels(labels).inc(0);
  for (const reason of FINISHED_REASONS) finishedTotal.labels({ ...labels, finished_reason: reason }).inc(0);
  const state: ModelServerMetrics = {
    registry,
    inFlight: 0,
    finished(reason, latencyMs) {
      finishedTotal.inc({ ...labels, finished_reason: reason });
      latency.observe(labels, latencyMs / 1000);
    },
    firstToken(ttftMs) {
      ttft.observe(labels, ttftMs / 1000);
    },
    interToken(gapMs) {
      interToken.observe(labels, gapMs / 1000);
    },
    tokens(prompt, generation) {
      promptTokens.inc(labels, prompt);
      generationTokens.inc(labels, generation);
    },
  };
  new Gauge({
    name: 'vllm:kv_cache_usage_perc',
    help: 'KV-cache usage, 0..1 (demo model server: a stand-in, requests in flight / 16)',
    labelNames: ['model_name'] as const,
    registers: [registry],
    collect() {
      this.set(labels, Math.min(1, state.inFlight / DEMO_KV_SLOTS));
    },
  });
  const cpuSeconds = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  };
  let reportedCpu = 0;
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'User and system CPU time of the process, seconds',
    labelNames: ['model_name'] as const,
    registers: [registry],
    collect() {
      const now = cpuSeconds();
      if (now > reportedCpu) this.inc(labels, now - reportedCpu);
      reportedCpu = Math.max(reportedCpu, now);
    },
  });
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory of the process, bytes',
    labelNames: ['model_name'] as const,
    registers: [registry],
    collect() {
      this.set(labels, process.memoryUsage.rss());
    },
  });
  return state;
}

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

/** A chat request's body, as far as the demo reads it. */
export interface ChatRequestBody {
  stream?: unknown;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  messages?: unknown;
  response_format?: unknown;
  stream_options?: unknown;
}

/** The demo's prompt_tokens: the words of the request's messages (string contents and text parts). */
export function countPromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let words = 0;
  const count = (text: unknown) => {
    if (typeof text === 'string') words += text.split(/\s+/).filter(Boolean).length;
  };
  for (const message of messages as unknown[]) {
    const content = (message as { content?: unknown } | null)?.content;
    if (Array.isArray(content)) for (const part of content as unknown[]) count((part as { text?: unknown } | null)?.text);
    else count(content);
  }
  return words;
}

/** The JSON key of a JSON-mode answer, or undefined when the request does not ask for JSON. */
export function jsonAnswerKey(responseFormat: unknown): string | undefined {
  const format = responseFormat as { type?: unknown; json_schema?: { schema?: { properties?: unknown } } } | null | undefined;
  if (format?.type === 'json_object') return 'answer';
  if (format?.type !== 'json_schema') return undefined;
  const properties = format.json_schema?.schema?.properties;
  const first = properties && typeof properties === 'object' ? Object.keys(properties)[0] : undefined;
  return first ?? 'answer';
}

export interface PlannedAnswer {
  /** The content chunks sent (one token each); joined, the answer's content. */
  tokens: string[];
  finishReason: 'stop' | 'length';
}

interface AnswerKnobs {
  maxTokens: number;
  /** maxTokens as given by the caller (a cap on answerTokens), not the default. */
  explicitMaxTokens?: number;
  answerTokens?: number;
  truncationRate: number;
  invalidJsonRate: number;
}

const positiveInt = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) && x >= 1 ? Math.floor(x) : undefined);

/** What the model answers to `body`: its tokens and how it ends (module doc: answer length, JSON mode). */
export function planAnswer(body: ChatRequestBody, knobs: AnswerKnobs, random: () => number = Math.random): PlannedAnswer {
  const requested = positiveInt(body.max_tokens) ?? positiveInt(body.max_completion_tokens);
  let natural: number;
  let cap = Infinity;
  if (knobs.answerTokens !== undefined) {
    natural = Math.max(1, Math.floor(knobs.answerTokens));
    cap = Math.min(requested ?? Infinity, knobs.explicitMaxTokens ?? Infinity);
  } else {
    natural = Math.max(1, Math.min(knobs.maxTokens, requested ?? knobs.maxTokens));
  }
  let n = Math.max(1, Math.min(natural, cap));
  let finishReason: PlannedAnswer['finishReason'] = n < natural ? 'length' : 'stop';
  if (knobs.truncationRate > 0 && random() < knobs.truncationRate) {
    n = Math.max(1, Math.floor(n * (0.25 + 0.5 * random())));
    finishReason = 'length';
  }
  const words = Array.from({ length: natural }, (_, i) => WORDS[i % WORDS.length]!);
  const tokens = words.map((word, i) => (i < natural - 1 ? `${word} ` : word));
  const key = jsonAnswerKey(body.response_format);
  if (key !== undefined) {
    const broken = knobs.invalidJsonRate > 0 && random() < knobs.invalidJsonRate;
    tokens[0] = `{${JSON.stringify(key)}: "${tokens[0]!}`;
    tokens[natural - 1] = `${tokens[natural - 1]!}"${broken ? '' : '}'}`;
  }
  return { tokens: tokens.slice(0, n), finishReason };
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
    cpuMsPerRequest: 0,
    truncationRate: 0,
    invalidJsonRate: 0,
    ...options,
  };
  const interTokenMs = o.interTokenMs ?? (o.tokensPerSecond > 0 ? 1000 / o.tokensPerSecond : 0);
  const knobs: AnswerKnobs = {
    maxTokens: o.maxTokens,
    explicitMaxTokens: options.maxTokens,
    answerTokens: o.answerTokens,
    truncationRate: o.truncationRate,
    invalidJsonRate: o.invalidJsonRate,
  };
  /** Answers cut short: counted as finished_reason "length". */
  const cutShort = new WeakSet<http.ServerResponse>();
  const startedAt = Date.now();
  let requests = 0;
  let errors = 0;
  const sockets = new Set<Socket>();
  const metrics = modelServerMetrics(o.version);

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
    if (req.method === 'GET' && path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
        () => json(res, 500, { error: { message: 'metrics unavailable', type: 'server_error' } }, o.version),
      );
      return;
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      requests++;
      const arrivedAt = measure(res);
      void chat(req, res, arrivedAt).catch(() => res.destroy());
      return;
    }
    json(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } }, o.version);
  });

  /** Counts a chat request in /metrics once it ends, by how it ended (a malformed one is not counted); returns its arrival. */
  function measure(res: http.ServerResponse): number {
    const t0 = performance.now();
    let settled = false;
    metrics.inFlight++;
    const settle = (reason: FinishedReason | undefined) => {
      if (settled) return;
      settled = true;
      metrics.inFlight--;
      if (reason) metrics.finished(reason, performance.now() - t0);
    };
    res.once('finish', () => settle(res.statusCode >= 500 ? 'error' : res.statusCode < 400 ? (cutShort.has(res) ? 'length' : 'stop') : undefined));
    res.once('close', () => settle(res.statusCode >= 500 ? 'error' : 'abort'));
    return t0;
  }

  async function chat(req: http.IncomingMessage, res: http.ServerResponse, arrivedAt: number): Promise<void> {
    let body: ChatRequestBody;
    try {
      body = JSON.parse((await readBody(req)) || '{}') as ChatRequestBody;
      if (body === null || typeof body !== 'object') throw new Error('not an object');
    } catch {
      return json(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } }, o.version);
    }
    const answer = planAnswer(body, knobs);
    const promptTokens = countPromptTokens(body.messages);
    const completionTokens = answer.tokens.length;
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    if (answer.finishReason === 'length') cutShort.add(res);
    const id = `chatcmpl-${Math.random().toString(36).slice(2, 12)}`;
    const created = Math.floor(Date.now() / 1000);
    const fail = Math.random() < o.errorRate;
    busy(o.cpuMsPerRequest);

    if (body.stream !== true) {
      await sleep(lognormal(o.latencyMs, o.latencySpread));
      if (fail) {
        errors++;
        return json(res, 500, { error: { message: `demo fault injected by ${o.version}`, type: 'server_error' } }, o.version);
      }
      metrics.tokens(promptTokens, completionTokens);
      return json(
        res,
        200,
        {
          id,
          object: 'chat.completion',
          created,
          model: o.version,
          choices: [{ index: 0, message: { role: 'assistant', content: answer.tokens.join('') }, finish_reason: answer.finishReason }],
          usage,
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
    let lastAt = 0;
    for (let i = 0; i < answer.tokens.length && !closed; i++) {
      if (i > 0) {
        const gap = lognormal(interTokenMs, o.latencySpread);
        if (gap > 0) await sleep(gap);
        if (closed) break;
      }
      const chunk = {
        id,
        object: 'chat.completion.chunk',
        created,
        model: o.version,
        choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: answer.tokens[i] } : { content: answer.tokens[i] }, finish_reason: null }],
      };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      const now = performance.now();
      if (i === 0) metrics.firstToken(now - arrivedAt);
      else metrics.interToken(now - lastAt);
      lastAt = now;
    }
    if (closed) return;
    const last = { id, object: 'chat.completion.chunk', created, model: o.version, choices: [{ index: 0, delta: {}, finish_reason: answer.finishReason }] };
    res.write(`data: ${JSON.stringify(last)}\n\n`);
    const streamOptions = body.stream_options as { include_usage?: unknown } | null | undefined;
    if (streamOptions?.include_usage === true) {
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: o.version, choices: [], usage })}\n\n`);
    }
    metrics.tokens(promptTokens, completionTokens);
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

/**
 * CLI: `npm run demo:model -- --name v2 --port 9002 --latency-ms 120 --error-rate 0.05`; every
 * flag also as an env variable (model-main.ts lists them). Rates are probabilities, 0..1.
 */
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
      'cpu-ms-per-request': { type: 'string' },
      'inter-token-ms': { type: 'string' },
      'answer-tokens': { type: 'string' },
      'truncation-rate': { type: 'string' },
      'invalid-json-rate': { type: 'string' },
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
  const rate = (flag: string | undefined, envName: string): number | undefined => {
    const value = num(flag, envName);
    if (value !== undefined && value > 1) throw new Error(`${envName} / flag must be a probability (0..1), got "${value}"`);
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
  set('cpuMsPerRequest', num(values['cpu-ms-per-request'], 'MODEL_CPU_MS_PER_REQUEST'));
  set('interTokenMs', num(values['inter-token-ms'], 'MODEL_INTER_TOKEN_MS'));
  set('answerTokens', num(values['answer-tokens'], 'MODEL_ANSWER_TOKENS'));
  set('truncationRate', rate(values['truncation-rate'], 'MODEL_TRUNCATION_RATE'));
  set('invalidJsonRate', rate(values['invalid-json-rate'], 'MODEL_INVALID_JSON_RATE'));
  return out;
}
