/**
 * DEMO ONLY — a traffic generator: `rate` chat requests per second through the gateway to a
 * target, each from a random user key (`x-canary-key`) out of `users`, until `durationMs` or
 * `count` is reached or `stop()` is called. Every response body (a stream too) is read to its end.
 *
 * Options for LLM traffic: `stream` (SSE), `includeUsage` (`stream_options.include_usage`, so a
 * stream ends with its usage chunk), `responseFormat` / `structuredShare` (that share of the
 * requests asks for `response_format: {type: "json_object"}`), `maxTokens` (the requests'
 * `max_tokens`, default 16) and `headers` (added to every request, e.g. `x-canary-user`).
 * `onResponse` reports which version answered: the gateway's `x-canary-version` and the model's
 * own `x-model-version`.
 *
 * CLI: `npm run demo:traffic -- --gateway http://127.0.0.1:8080 --target chat --rate 20 --duration 60s`
 * (also `--stream --include-usage --structured-share 0.5 --max-tokens 64 --header 'x-canary-user: internal'`)
 */
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

export interface TrafficOptions {
  gatewayUrl: string;
  target: string;
  /** Requests per second. */
  rate: number;
  durationMs?: number;
  count?: number;
  /** How many distinct user keys to draw from (default 1000). */
  users?: number;
  /** Ask for streamed (SSE) completions. */
  stream?: boolean;
  /** With `stream`: ask for the usage chunk at the stream's end (`stream_options: {include_usage: true}`). */
  includeUsage?: boolean;
  /** Structured output asked for by `structuredShare` of the requests (default all of them when given). */
  responseFormat?: 'json_object';
  /** Share (0..1) of the requests that ask for `responseFormat` (json_object when only this is given). */
  structuredShare?: number;
  /** The requests' `max_tokens` (default 16). */
  maxTokens?: number;
  /** Extra headers on every request (e.g. `x-canary-user: internal`). */
  headers?: Record<string, string>;
  path?: string;
  /** Called after every response, once its body (a stream: to its end) has been read. */
  onResponse?: (result: TrafficResponse) => void;
}

export interface TrafficResponse {
  /** 0 when the request failed before a response. */
  status: number;
  /** The version the gateway routed it to (`x-canary-version`). */
  version?: string;
  /** The version the model server says it is (`x-model-version`), when it sets it. */
  modelVersion?: string;
  /** Request sent → whole body read, ms. */
  latencyMs: number;
  /** Whether the request asked for structured output. */
  structured: boolean;
  /** The user key it was sent with. */
  key: string;
}

export interface TrafficSummary {
  sent: number;
  ok: number;
  failed: number;
  byVersion: Record<string, { requests: number; failed: number }>;
  elapsedMs: number;
}

export interface TrafficRun {
  done: Promise<TrafficSummary>;
  stop(): void;
}

export function startTraffic(options: TrafficOptions): TrafficRun {
  if (!(options.rate > 0)) throw new Error('rate must be above 0');
  if (options.durationMs === undefined && options.count === undefined) throw new Error('give durationMs or count (or both)');
  const users = options.users ?? 1000;
  const url = new URL(`/${options.target}${options.path ?? '/v1/chat/completions'}`, options.gatewayUrl).toString();
  const dispatcher = new Agent({ connections: 64 });
  const summary: TrafficSummary = { sent: 0, ok: 0, failed: 0, byVersion: {}, elapsedMs: 0 };
  const startedAt = Date.now();
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let finish: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (finish = resolve));

  const structuredShare = options.structuredShare ?? (options.responseFormat !== undefined ? 1 : 0);
  if (!(structuredShare >= 0 && structuredShare <= 1)) throw new Error('structuredShare must be within 0..1');
  const responseFormat = options.responseFormat ?? 'json_object';
  const chatBody = (structured: boolean) => {
    const fields: Record<string, unknown> = { model: 'demo', messages: [{ role: 'user', content: 'hello' }], stream: options.stream === true, max_tokens: options.maxTokens ?? 16 };
    if (options.stream === true && options.includeUsage === true) fields.stream_options = { include_usage: true };
    if (structured) fields.response_format = { type: responseFormat };
    return JSON.stringify(fields);
  };
  const plainBody = chatBody(false);
  const structuredBody = chatBody(true);
  const headerOf = (value: string | string[] | undefined) => (typeof value === 'string' ? value : undefined);

  const one = async () => {
    const key = `user-${Math.floor(Math.random() * users)}`;
    const structured = structuredShare > 0 && Math.random() < structuredShare;
    const t0 = performance.now();
    let status = 0;
    let version: string | undefined;
    let modelVersion: string | undefined;
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher,
        headers: { ...options.headers, 'content-type': 'application/json', 'x-canary-key': key },
        body: structured ? structuredBody : plainBody,
      });
      status = res.statusCode;
      version = headerOf(res.headers['x-canary-version']);
      modelVersion = headerOf(res.headers['x-model-version']);
      await res.body.dump({ limit: Infinity });
    } catch {
      status = 0;
    }
    const bad = status === 0 || status >= 500;
    if (bad) summary.failed++;
    else summary.ok++;
    const name = version ?? '(none)';
    const entry = (summary.byVersion[name] ??= { requests: 0, failed: 0 });
    entry.requests++;
    if (bad) entry.failed++;
    options.onResponse?.({ status, ...(version !== undefined ? { version } : {}), ...(modelVersion !== undefined ? { modelVersion } : {}), latencyMs: performance.now() - t0, structured, key });
  };

  const tick = () => {
    if (stopped) return;
    const elapsed = Date.now() - startedAt;
    const due = Math.floor((elapsed / 1000) * options.rate) + 1;
    const limit = options.count ?? Infinity;
    while (summary.sent < Math.min(due, limit)) {
      summary.sent++;
      const p = one().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (summary.sent >= limit || (options.durationMs !== undefined && elapsed >= options.durationMs)) {
      stopped = true;
      finish();
      return;
    }
    timer = setTimeout(tick, Math.max(1, Math.min(50, 1000 / options.rate)));
  };

  const done = (async () => {
    tick();
    await ended;
    await Promise.allSettled([...inFlight]);
    summary.elapsedMs = Date.now() - startedAt;
    await dispatcher.close();
    return summary;
  })();

  return {
    done,
    stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      finish();
    },
  };
}

function parseDurationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration such as 500ms, 30s or 2m`);
  const n = Number(match[1]);
  return match[2] === 'ms' ? n : match[2] === 'm' ? n * 60_000 : n * 1000;
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      gateway: { type: 'string', default: process.env.GATEWAY_URL ?? `http://127.0.0.1:${process.env.GATEWAY_PORT ?? 8080}` },
      target: { type: 'string', default: 'chat' },
      rate: { type: 'string', default: '10' },
      duration: { type: 'string' },
      count: { type: 'string' },
      users: { type: 'string', default: '1000' },
      stream: { type: 'boolean', default: false },
      'include-usage': { type: 'boolean', default: false },
      'structured-share': { type: 'string' },
      'max-tokens': { type: 'string' },
      header: { type: 'string', multiple: true },
    },
  });
  const options: TrafficOptions = {
    gatewayUrl: values.gateway!,
    target: values.target!,
    rate: Number(values.rate),
    users: Number(values.users),
    stream: values.stream === true,
    includeUsage: values['include-usage'] === true,
  };
  if (values['structured-share'] !== undefined) options.structuredShare = Number(values['structured-share']);
  if (values['max-tokens'] !== undefined) options.maxTokens = Number(values['max-tokens']);
  if (values.header !== undefined) {
    options.headers = {};
    for (const h of values.header) {
      const at = h.indexOf(':');
      if (at <= 0) throw new Error(`--header "${h}" is not "name: value"`);
      options.headers[h.slice(0, at).trim().toLowerCase()] = h.slice(at + 1).trim();
    }
  }
  if (values.duration !== undefined) options.durationMs = parseDurationMs(values.duration);
  if (values.count !== undefined) options.count = Number(values.count);
  if (options.durationMs === undefined && options.count === undefined) options.durationMs = 60_000;
  const startedAt = Date.now();
  let seen = 0;
  let failed = 0;
  options.onResponse = (r) => {
    seen++;
    if (r.status === 0 || r.status >= 500) failed++;
  };
  const run = startTraffic(options);
  process.on('SIGINT', () => run.stop());
  process.on('SIGTERM', () => run.stop());
  const progress = setInterval(() => console.error(`${Math.round((Date.now() - startedAt) / 1000)}s: ${seen} responses, ${failed} failed`), 5000);
  const summary = await run.done;
  clearInterval(progress);
  console.log(JSON.stringify(summary, null, 2));
}

if (require.main === module) {
  cli().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
