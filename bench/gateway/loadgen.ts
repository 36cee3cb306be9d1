/**
 * The bench's load generator, run in its own process: `node --import tsx bench/gateway/loadgen.ts '<json>'`.
 *
 * Settings (JSON argv): {url, mode: 'rate'|'saturation', rate?, durationS, connections, warmupS?,
 * method? (GET), body?, headers?, stream?, raw?}.
 * Every connection is opened first, then the load runs warmupS (default 1 s, not counted) and
 * durationS (counted).
 *  - rate: open loop. Request i is due at t0 + i/rate; a 1 ms timer sends everything due, so the
 *    load is smooth at millisecond scale (autocannon's -R releases each second's budget as a
 *    burst). A request never waits for an earlier one's response; if every connection is busy it
 *    queues in the client (and that wait is part of its latency).
 *  - saturation: closed loop, `connections` requests always outstanding, each re-sent on completion.
 * Latency is measured in µs with process.hrtime from the dispatch to the last response byte
 * (`service`), and for the open loop also from the request's scheduled time (`scheduled`, which
 * includes the generator's own timer lateness and so is free of coordinated omission).
 * With `stream`, also the time from dispatch to the first content chunk (`ttft`: the first body
 * bytes holding `"content"`, i.e. an SSE event with a token), and with `raw` every counted
 * request's figures (`samples: {ttftUs, totalUs}`) for the caller to pool over runs.
 * Prints one JSON line with the result.
 */
import { Pool, type Dispatcher } from 'undici';

interface Settings {
  url: string;
  mode: 'rate' | 'saturation';
  rate?: number;
  durationS: number;
  connections: number;
  /** Uncounted load before the measured `durationS` (default 1). */
  warmupS?: number;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** Record the time to the first content chunk (SSE answers). */
  stream?: boolean;
  /** Include every counted request's times in the result. */
  raw?: boolean;
}

const nowUs = (): number => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
};

const settings = JSON.parse(process.argv[2] ?? '{}') as Settings;
const WARMUP_S = settings.warmupS ?? 1;
const target = new URL(settings.url);
const pool = new Pool(target.origin, { connections: settings.connections, pipelining: 1, keepAliveTimeout: 60_000 });
const requestHeaders = ['accept', '*/*', ...Object.entries(settings.headers ?? {}).flat()];
if (settings.body !== undefined && !settings.headers?.['content-type']) requestHeaders.push('content-type', 'application/json');
const requestOptions: Dispatcher.DispatchOptions = {
  path: target.pathname + target.search,
  method: (settings.method ?? 'GET') as Dispatcher.HttpMethod,
  headers: requestHeaders,
  ...(settings.body !== undefined ? { body: settings.body } : {}),
};
const CONTENT = Buffer.from('"content"');

const capacity = Math.ceil((settings.rate ?? 40_000) * settings.durationS * 1.5) + 1024;
const service = new Float64Array(capacity);
const scheduled = settings.mode === 'rate' ? new Float64Array(capacity) : undefined;
const ttft = settings.stream ? new Float64Array(capacity) : undefined;
/** Streamed answers with no content chunk at all (counted, but not in ttft). */
let noContent = 0;
let completed = 0;
let errors = 0;
let non2xx = 0;
let dropped = 0;
let inFlight = 0;
let stopped = false;


/** Requests sent before this time (µs) are warm-up: answered but not counted. */
let recordFromUs = Infinity;

function send(dueUs: number, then?: () => void): void {
  const sentUs = nowUs();
  const record = (dueUs || sentUs) >= recordFromUs;
  let status = 0;
  let firstContentUs = 0;
  /** The previous data chunk's tail, so that a "content" split across chunks is still seen. */
  let tail: Buffer | undefined;
  inFlight++;
  pool.dispatch(requestOptions, {
    onRequestStart() {},
    onResponseStart(_c, statusCode) {
      status = statusCode;
    },
    onResponseData(_c, chunk: Buffer) {
      if (!ttft || firstContentUs) return;
      const seen = tail ? Buffer.concat([tail, chunk]) : chunk;
      if (seen.includes(CONTENT)) firstContentUs = nowUs();
      else tail = seen.subarray(Math.max(0, seen.length - CONTENT.length));
    },
    onResponseEnd() {
      const end = nowUs();
      inFlight--;
      if (!record) {
        if (then && !stopped) then();
        return;
      }
      if (status < 200 || status >= 300) non2xx++;
      if (completed < capacity) {
        service[completed] = end - sentUs;
        if (scheduled) scheduled[completed] = end - dueUs;
        if (ttft) {
          if (firstContentUs) ttft[completed] = firstContentUs - sentUs;
          else {
            ttft[completed] = end - sentUs;
            noContent++;
          }
        }
        completed++;
      } else dropped++;
      if (then && !stopped) then();
    },
    onResponseError() {
      inFlight--;
      if (record) errors++;
      if (then && !stopped) then();
    },
  });
}

function percentiles(input: Float64Array, n: number): { p50Us: number; p90Us: number; p99Us: number; p999Us: number; maxUs: number; meanUs: number } {
  const sorted = input.slice(0, n).sort();
  const at = (q: number) => Math.round(sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return { p50Us: at(0.5), p90Us: at(0.9), p99Us: at(0.99), p999Us: at(0.999), maxUs: Math.round(sorted[n - 1] ?? 0), meanUs: Math.round(n ? sum / n : 0) };
}

async function main(): Promise<void> {
  // Open every connection first (one request each, not counted), then warm up for WARMUP_S at the
  // same load (not counted either): the new process's JIT, and connection set-up, stay out of the numbers.
  await new Promise<void>((resolve) => {
    let pending = settings.connections;
    for (let i = 0; i < settings.connections; i++) send(0, () => --pending === 0 && resolve());
  });
  const durationUs = settings.durationS * 1e6;
  const startUs = nowUs();
  recordFromUs = startUs + WARMUP_S * 1e6;
  let maxLagUs = 0;
  if (settings.mode === 'rate') {
    const rate = settings.rate!;
    const intervalUs = 1e6 / rate;
    const total = Math.floor((settings.durationS + WARMUP_S) * rate);
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = nowUs();
        const due = Math.min(total, Math.floor((now - startUs) / intervalUs) + 1);
        while (sent < due) {
          const dueUs = startUs + sent * intervalUs;
          if (dueUs >= recordFromUs && now - dueUs > maxLagUs) maxLagUs = now - dueUs;
          send(dueUs);
          sent++;
        }
        if (sent >= total) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
  } else {
    const loop = () => send(0, loop);
    for (let i = 0; i < settings.connections; i++) loop();
    await new Promise((r) => setTimeout(r, (WARMUP_S + settings.durationS) * 1000));
    stopped = true;
  }
  const sendEndUs = nowUs();
  // Let the outstanding requests finish (they count) but stop at 10 s.
  const deadline = Date.now() + 10_000;
  while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const elapsedS = (settings.mode === 'rate' ? nowUs() - recordFromUs : sendEndUs - recordFromUs) / 1e6;
  const result = {
    mode: settings.mode,
    requests: completed + dropped,
    reqPerSec: Math.round((completed + dropped) / Math.max(elapsedS, durationUs / 1e6)),
    errors,
    non2xx,
    service: percentiles(service, completed),
    ...(scheduled ? { scheduled: percentiles(scheduled, completed), maxSendLagUs: Math.round(maxLagUs) } : {}),
    ...(ttft ? { ttft: percentiles(ttft, completed), noContent } : {}),
    ...(settings.raw
      ? { samples: { totalUs: Array.from(service.subarray(0, completed), Math.round), ...(ttft ? { ttftUs: Array.from(ttft.subarray(0, completed), Math.round) } : {}) } }
      : {}),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  await pool.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
