/**
 * DEMO ONLY — a traffic generator: `rate` chat requests per second through the gateway to a
 * target, each from a random user key (`x-canary-key`) out of `users`, until `durationMs` or
 * `count` is reached or `stop()` is called.
 *
 * CLI: `npm run demo:traffic -- --gateway http://127.0.0.1:8080 --target chat --rate 20 --duration 60s`
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
  path?: string;
  /** Called after every response. */
  onResponse?: (result: { status: number; version?: string; latencyMs: number }) => void;
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

  const body = JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hello' }], stream: options.stream === true, max_tokens: 16 });

  const one = async () => {
    const key = `user-${Math.floor(Math.random() * users)}`;
    const t0 = performance.now();
    let status = 0;
    let version: string | undefined;
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json', 'x-canary-key': key },
        body,
      });
      status = res.statusCode;
      const header = res.headers['x-canary-version'];
      version = typeof header === 'string' ? header : undefined;
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
    options.onResponse?.({ status, version, latencyMs: performance.now() - t0 });
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
    },
  });
  const options: TrafficOptions = {
    gatewayUrl: values.gateway!,
    target: values.target!,
    rate: Number(values.rate),
    users: Number(values.users),
    stream: values.stream === true,
  };
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
