/**
 * DEMO ONLY — the `npm start` show, run against a stack that is already up (scripts/start.ts):
 *
 *   1. four demo model versions: v1 and v2 healthy, v3 failing ~8% of requests, v4 healthy on
 *      errors and end-to-end latency but twice as slow to its first token (~200 ms against v2's
 *      ~100 ms, then faster tokens: its streamed answers end about when v2's do);
 *   2. the target `chat` on v1 in the gateway, and traffic through it (random user keys);
 *   3. three rollouts, each watched through the REST API (GET /v1/rollouts/:id), one terminal
 *      line per change: v1 → v2, which promotes; v2 → v3, which rolls back by itself on its
 *      errors; then, with the traffic switched to streamed completions (SSE, `stream: true`, so
 *      the gateway times each answer's first token), v2 → v4, gated on errors, latency and time
 *      to first token (`analysis.metrics`), which rolls back by itself on its time to first token;
 *   4. a summary with the links (API, gateway, Temporal UI history of each rollout).
 *
 * Everything keeps running (models, traffic) until `stop()`. Times scale with `scale`
 * (DEMO_SCALE): 1 = 20 s bakes and a check every 5 s, about two minutes for the whole show
 * (the third rollout ends in two or three checks).
 */
import { startModelServer, type ModelServer, type ModelServerOptions } from './model-server';
import { startTraffic, type TrafficRun } from './traffic';
import { formatDuration, type RolloutSpecInput } from '../spec';
import { isFinal, reasonsText, type Decision, type RolloutStatus } from '../workflows/status';
import type { VersionSummary } from '../analysis/metrics';
import { GATE_METRICS, GATE_METRIC_NAMES } from '../analysis/gate-metrics';
import { ApiResponseError, createClient, metricEvidence, watchRollout as watchStatus, type CanaryClient } from '../client';

export interface ShowOptions {
  apiUrl: string;
  apiToken?: string;
  gatewayUrl: string;
  gatewayAdminToken?: string;
  /** Base URL of the Temporal UI (for the summary). */
  temporalUiUrl: string;
  namespace?: string;
  /** The gateway target the show rolls out (default `chat`). */
  target?: string;
  /** Traffic, requests per second (default 30). */
  rate?: number;
  /** Multiplies every bake and check interval (default 1: about two minutes). */
  scale?: number;
  /** Ports of v1, v2, v3, v4; 0 picks a free one (default 9001–9004; a busy one falls back to a free one). */
  modelPorts?: [number, number, number, number];
  /** Pause between one rollout and the next, ms (default 3000 × scale). */
  pauseMs?: number;
  /** Where lines go (default stdout, `[demo] ` prefixed). */
  print?: (line: string) => void;
  /** ANSI colours (default: when stdout is a terminal). */
  color?: boolean;
}

export interface ShowResult {
  rollouts: RolloutStatus[];
}

export interface Show {
  /** Resolves once the three rollouts have ended and the summary is printed. */
  done: Promise<ShowResult>;
  models: Record<DemoVersion, ModelServer>;
  /** Stops watching, the traffic and the model servers. Idempotent. */
  stop(): Promise<void>;
}

export const DEMO_TARGET = 'chat';

export type DemoVersion = 'v1' | 'v2' | 'v3' | 'v4';

/**
 * The demo's four model versions. `latencyMs` is a plain (non-streamed) answer's delay, the
 * traffic of rollouts 1 and 2; `ttftMs` and `interTokenMs` time a streamed one (the traffic of
 * rollout 3: 16 tokens, the first after ttftMs, then one every interTokenMs). v4 against v2:
 * first token ~200 ms against ~100 ms, then 3 ms between tokens against 10 ms, so that a whole
 * answer takes about as long (median ~250 ms; v4's narrower spread keeps its tail at or below
 * v2's: its time to first token regresses, its end-to-end latency does not).
 */
export const DEMO_MODELS: Array<Omit<ModelServerOptions, 'port'> & { version: DemoVersion; note: string }> = [
  { version: 'v1', latencyMs: 40, latencySpread: 0.2, errorRate: 0, note: 'healthy (serving today)' },
  { version: 'v2', latencyMs: 35, latencySpread: 0.2, errorRate: 0, ttftMs: 100, interTokenMs: 10, note: 'healthy (streamed: first token ~100 ms, then a token every 10 ms)' },
  { version: 'v3', latencyMs: 40, latencySpread: 0.2, errorRate: 0.08, note: '~8% errors' },
  {
    version: 'v4',
    latencyMs: 35,
    latencySpread: 0.1,
    errorRate: 0,
    ttftMs: 200,
    interTokenMs: 3,
    note: "no errors, streamed answers end as soon as v2's, but 2× the time to first token (first token ~200 ms, then a token every 3 ms)",
  },
];

/**
 * The three demo rollouts' specs, judged by the default (sequential) judge. Checks need a few
 * requests (minRequests follows the traffic), and the readiness gate beyond 25% is sized to a
 * demo's trickle of traffic: looser tolerances to bound (latency 3×, errors within 5 percentage
 * points) at 80% confidence. The rollback test keeps its defaults (α = 0.01 for the whole rollout).
 * The third lists its gate metrics (`analysis.metrics`): errors, latency and time to first token
 * (the latter at its default 1.25× tolerance), which only streamed traffic measures.
 */
export function demoSpecs(
  target: string,
  urls: Record<DemoVersion, string>,
  { scale = 1, rate = 30 }: { scale?: number; rate?: number } = {},
): [RolloutSpecInput, RolloutSpecInput, RolloutSpecInput] {
  // Checks at least a second apart, as the spec requires (and bakes no shorter than a check).
  const ms = (x: number) => formatDuration(Math.max(1_000, Math.round(x * scale)));
  const intervalMs = Math.max(1_000, 5_000 * scale);
  const minRequests = (firstWeight: number) => Math.max(3, Math.round(rate * (intervalMs / 1000) * (firstWeight / 100) * 0.6));
  const sequential = { readyAlpha: 0.2, readyMinRequests: 100, readyErrorRateSlack: 0.05, boundaryMinBaseline: 100, tolerances: { latency: 3, ttfb: 3 } };
  const analysis = (firstWeight: number) => ({ interval: ms(5_000), minRequests: minRequests(firstWeight), maxExtensionChecks: 60, sequential });
  return [
    {
      target,
      baseline: { version: 'v1', url: urls.v1 },
      candidate: { version: 'v2', url: urls.v2 },
      steps: [{ weight: 10, bake: ms(20_000) }, { weight: 25, bake: ms(20_000) }, { weight: 50, bake: ms(20_000) }, { weight: 100 }],
      analysis: analysis(10),
    },
    {
      target,
      baseline: { version: 'v2', url: urls.v2 },
      candidate: { version: 'v3', url: urls.v3 },
      steps: [{ weight: 20, bake: ms(20_000) }, { weight: 50, bake: ms(20_000) }, { weight: 100 }],
      analysis: analysis(20),
    },
    {
      target,
      baseline: { version: 'v2', url: urls.v2 },
      candidate: { version: 'v4', url: urls.v4 },
      steps: [{ weight: 20, bake: ms(20_000) }, { weight: 50, bake: ms(20_000) }, { weight: 100 }],
      analysis: { ...analysis(20), metrics: { errors: {}, latency: {}, ttft: {} } },
    },
  ];
}

export function runShow(options: ShowOptions): Show {
  const target = options.target ?? DEMO_TARGET;
  const rate = options.rate ?? 30;
  const scale = options.scale ?? 1;
  const color = options.color ?? Boolean(process.stdout.isTTY);
  const print = options.print ?? ((line: string) => void process.stdout.write(`[demo] ${line}\n`));
  const paint = painter(color);
  const api = createClient({ baseUrl: options.apiUrl, ...(options.apiToken ? { token: options.apiToken } : {}) }, {});
  const stopper = new AbortController();
  let traffic: TrafficRun | undefined;
  /** Traffic runs replaced by another (plain by streamed), still finishing their last requests. */
  const retired: Array<Promise<unknown>> = [];
  const models: Partial<Record<DemoVersion, ModelServer>> = {};
  let stopping: Promise<void> | undefined;

  const done = (async (): Promise<ShowResult> => {
    const ports = options.modelPorts ?? [9001, 9002, 9003, 9004];
    for (const [i, model] of DEMO_MODELS.entries()) {
      const { note, ...serverOptions } = model;
      models[model.version] = await startModelOn(serverOptions, ports[i] ?? 0, print);
      print(`model ${model.version} on ${models[model.version]!.url}: ${note}`);
    }
    const urls = { v1: models.v1!.url, v2: models.v2!.url, v3: models.v3!.url, v4: models.v4!.url };
    throwIfStopped();

    await putRoute(options.gatewayUrl, options.gatewayAdminToken, target, [{ name: 'v1', url: urls.v1, weight: 100 }]);
    print(`gateway: ${options.gatewayUrl}/${target}/… → v1 (100%)`);
    const demoTraffic = (stream: boolean) => startTraffic({ gatewayUrl: options.gatewayUrl, target, rate, durationMs: Number.POSITIVE_INFINITY, users: 1000, stream });
    traffic = demoTraffic(false);
    print(`traffic: ${rate} req/s through the gateway, random user keys (x-canary-key)`);
    let streamed = false;

    const [first, second, third] = demoSpecs(target, urls, { scale, rate });
    const results: RolloutStatus[] = [];
    const acts = [
      { spec: first, stream: false, title: `rollout 1/3: ${target} v1 → v2 (healthy candidate: expect promotion)` },
      { spec: second, stream: false, title: `rollout 2/3: ${target} v2 → v3 (~8% errors: expect an automatic rollback)` },
      { spec: third, stream: true, title: `rollout 3/3: ${target} v2 → v4 (2× time to first token: expect an automatic rollback)` },
    ];
    for (const [i, act] of acts.entries()) {
      if (act.stream && !streamed) {
        // The new traffic starts before the old one stops: the target never goes quiet.
        const plain = traffic;
        traffic = demoTraffic(true);
        streamed = true;
        plain.stop();
        retired.push(plain.done.catch(() => undefined));
        print('');
        print(`traffic: now streamed completions (SSE, stream: true), ${rate} req/s: the gateway times each answer's first token`);
      }
      if (i > 0) await sleep(options.pauseMs ?? 3_000 * scale, stopper.signal);
      print('');
      print(paint.bold(`── ${act.title} ──`));
      const started = await startRollout(api, act.spec, print, stopper.signal);
      print(`started ${started.id}: ${describeSpec(act.spec)}`);
      print(`history: ${started.links?.temporalUi ?? '(no link)'}`);
      const final = await watchRollout(api, started.id, { print: (l) => print(`  ${l}`), signal: stopper.signal, paint });
      results.push(final.links ? final : { ...final, ...(started.links ? { links: started.links } : {}) });
    }

    const ui = `${options.temporalUiUrl}/namespaces/${options.namespace ?? 'default'}/workflows`;
    print('');
    print(paint.bold('── the show is over; everything keeps running (Ctrl-C stops it all) ──'));
    print(`API          ${options.apiUrl}/v1/rollouts`);
    print(`Gateway      ${options.gatewayUrl}/${target}/v1/chat/completions  (admin: ${options.gatewayUrl}/admin/routes, /admin/metrics/${target})`);
    print(`Temporal UI  ${ui}`);
    results.forEach((r, i) => {
      print(`rollout ${i + 1}    ${r.baseline.version} → ${r.candidate.version} ${paint.phase(r.phase)}: ${r.outcome?.reason ?? ''}`);
      print(`             ${r.links?.temporalUi ?? ''}`);
    });
    print(`models       ${Object.entries(urls).map(([v, u]) => `${v} ${u}`).join(' · ')}`);
    print(`traffic      still ${rate} req/s to ${target}${streamed ? ' (streamed)' : ''}`);
    return { rollouts: results };
  })();
  done.catch(() => undefined);

  function throwIfStopped(): void {
    if (stopper.signal.aborted) throw new Error('show stopped');
  }

  return {
    done,
    get models() {
      return models as Record<DemoVersion, ModelServer>;
    },
    stop() {
      stopping ??= (async () => {
        stopper.abort();
        traffic?.stop();
        await traffic?.done.catch(() => undefined);
        await Promise.all(retired);
        await Promise.all(Object.values(models).map((m) => m.close()));
      })();
      return stopping;
    },
  };
}

// ---- watching a rollout: one line per change ----

export interface WatchOptions {
  print: (line: string) => void;
  signal?: AbortSignal;
  pollMs?: number;
  paint?: Painter;
}

/**
 * Watches a rollout through the shared REST client (src/client: polls GET /v1/rollouts/:id)
 * until it ends; prints phase, step/weights and each new check.
 */
export async function watchRollout(api: CanaryClient, id: string, options: WatchOptions): Promise<RolloutStatus> {
  const paint = options.paint ?? painter(false);
  const seen: Seen = { seenDecisions: 0 };
  const events = watchStatus(api, id, { pollMs: options.pollMs ?? 500, ...(options.signal ? { signal: options.signal } : {}) });
  for await (const event of events) {
    if (event.kind === 'trouble') {
      options.print(`${clock()} ${paint.dim(`API: ${event.message}`)}`);
      continue;
    }
    const { status, changes } = event;
    if (changes.stale && status.stale) options.print(`${clock()} ${paint.dim(`status is stale: ${status.stale}`)}`);
    for (const line of describeChanges(status, seen, paint)) options.print(`${clock()} ${line}`);
    seen.phase = status.phase;
    seen.stepKey = stepKeyOf(status);
    seen.seenDecisions = status.decisions.at(-1)?.seq ?? seen.seenDecisions;
    if (isFinal(status.phase)) return status;
  }
  throw new Error('watch stopped');
}

interface Seen {
  phase?: string;
  stepKey?: string;
  /** The `seq` of the newest decision already printed. */
  seenDecisions: number;
}

/** A step line is printed when the weights change (the step index moves just before them). */
function stepKeyOf(s: RolloutStatus): string {
  return `${s.weights.baseline}|${s.weights.candidate}`;
}

/** The lines a new status adds to what was seen: new checks, then step/weights, then phase. */
export function describeChanges(s: RolloutStatus, seen: Seen, paint: Painter = painter(false)): string[] {
  const lines: string[] = [];
  for (const d of s.decisions) if (d.seq > seen.seenDecisions) lines.push(describeDecision(s, d, d.seq, paint));
  if (stepKeyOf(s) !== seen.stepKey) {
    const step = s.step.index < s.step.total ? `step ${s.step.index + 1}/${s.step.total}` : `all ${s.step.total} steps done`;
    lines.push(`${step} · weights ${s.baseline.version} ${s.weights.baseline}% / ${s.candidate.version} ${s.weights.candidate}%`);
  }
  if (s.phase !== seen.phase) {
    lines.push(`phase ${paint.phase(s.phase)}${s.outcome ? `: ${s.outcome.reason}` : ''}`);
  }
  return lines;
}

function describeDecision(s: RolloutStatus, d: Decision, n: number, paint: Painter): string {
  // TTFT when the rollout gates on it (of a plain JSON answer, the gateway's TTFT is its latency).
  const ttft = s.spec.analysis.metrics?.ttft !== undefined;
  const figures = (name: string, v: VersionSummary) =>
    `${name} ${v.requests} req, ${(v.errorRate * 100).toFixed(1)}% err, p95 ${v.latencyP95Ms ?? '–'} ms` +
    (ttft ? `, TTFT p95 ${v.timeToFirstTokenP95Ms ?? '–'} ms` : '');
  const tally = s.spec.analysis.judge === 'threshold' ? ` · failed ${d.failedChecks}/${s.spec.analysis.failureLimit}` : '';
  // A passing sequential check is told by its evidence (the full sentences are in the status).
  const why = (d.verdict === 'pass' && evidenceLine(d.evidence)) || reasonsText(d.reasons);
  return (
    `check ${n} · step ${d.step + 1} @${d.weight}% · ${paint.verdict(d.verdict)} · ` +
    `${figures(s.candidate.version, d.metrics.candidate)} | ${figures(s.baseline.version, d.metrics.baseline)}` +
    `${tally} — ${why}`
  );
}

/**
 * The sequential judge's evidence in a few words per metric: the e-value against the level that
 * rolls back, the bound readiness rests on, and ✓ once the metric is bounded below its tolerance.
 */
export function evidenceLine(evidence: Record<string, unknown> | undefined): string | undefined {
  const parts = (metricEvidence(evidence) ?? []).map((m) =>
    m.calibrating ? `${m.label} calibrating` : `${m.label} e=${m.eValue} (rolls back at ${m.rollbackAt}), ${m.bound}${m.ready ? ' ✓' : ''}`,
  );
  return parts.length > 0 ? parts.join(' · ') : undefined;
}

function describeSpec(spec: RolloutSpecInput): string {
  const steps = spec.steps.map((s) => `${s.weight}%${s.bake ? ` (${s.bake})` : ''}`).join(' → ');
  const a = spec.analysis ?? {};
  const every = `a check every ${a.interval}, ≥${a.minRequests} requests`;
  if (a.judge === 'threshold') {
    return `${steps}; ${every}, error rate ≤ ${(a.thresholds?.maxErrorRate ?? 0.05) * 100}%, p95 ≤ ${a.thresholds?.maxLatencyP95Ms ?? 800} ms, ${a.failureLimit ?? 2} failed checks roll back`;
  }
  const labels = GATE_METRIC_NAMES.filter((n) => a.metrics?.[n]).map((n) => GATE_METRICS[n].label);
  const on = labels.length > 0 ? ` on ${[labels.slice(0, -1).join(', '), labels.at(-1)].filter(Boolean).join(' and ')} (analysis.metrics)` : '';
  return `${steps}; ${every}, sequential judge: candidate vs baseline${on}, any check whose evidence reaches 1/α rolls back (α = ${a.sequential?.alpha ?? 0.01} for the whole rollout); beyond 25% once every metric is bounded`;
}

// ---- helpers ----

/** Starts a rollout; a rollout of the same target left running by an earlier run is aborted first. */
async function startRollout(api: CanaryClient, spec: RolloutSpecInput, print: (l: string) => void, signal: AbortSignal): Promise<RolloutStatus> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await api.start(spec)).status;
    } catch (err) {
      if (!(err instanceof ApiResponseError)) throw err;
      if (!(err.status === 409 && attempt < 3)) throw new Error(err.detail);
      const id = `rollout-${spec.target}`;
      print(`${spec.target} already has a rollout in progress (an earlier run?): aborting ${id} first`);
      await api.act('abort', id, { reason: 'superseded by a new npm start demo' }).catch((e: unknown) => {
        if (!(e instanceof ApiResponseError && e.status === 409)) throw e; // 409: it ended meanwhile
      });
      await watchRollout(api, id, { print: () => undefined, signal });
    }
  }
}

async function putRoute(gatewayUrl: string, token: string | undefined, target: string, versions: Array<{ name: string; url: string; weight: number }>): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${gatewayUrl}/admin/routes/${encodeURIComponent(target)}`, {
    method: 'PUT',
    headers,
    body: JSON.stringify({ versions }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`PUT ${gatewayUrl}/admin/routes/${target} answered ${res.status}: ${await res.text()}`);
}

async function startModelOn(options: ModelServerOptions, port: number, print: (l: string) => void): Promise<ModelServer> {
  try {
    return await startModelServer({ ...options, port });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw err;
    print(`port ${port} is busy: model ${options.version} takes a free port`);
    return startModelServer({ ...options, port: 0 });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('stopped'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('stopped'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

export interface Painter {
  bold(text: string): string;
  dim(text: string): string;
  verdict(verdict: string): string;
  phase(phase: string): string;
}

function painter(enabled: boolean): Painter {
  const wrap = (code: string) => (text: string) => (enabled ? `\x1b[${code}m${text}\x1b[0m` : text);
  const green = wrap('32');
  const red = wrap('31');
  const yellow = wrap('33');
  return {
    bold: wrap('1'),
    dim: wrap('2'),
    verdict: (v) => (v === 'pass' ? green('PASS') : v === 'fail' ? red('FAIL') : yellow(v.toUpperCase())),
    phase: (p) => (p === 'promoted' ? green(p) : p === 'rolled_back' || p === 'failed' || p === 'aborted' ? red(p) : p === 'rolling_back' ? yellow(p) : p),
  };
}
